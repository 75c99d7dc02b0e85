// Stage 2a, I/O. Collect the prelude: read the client's first bytes until the sniffers reach a
// verdict, the peek deadline passes, the byte cap is reached or the client ends its side.
// Never writes to the client. The bytes are kept (never unshifted) and replayed to the backend.
import { Buffer } from 'node:buffer';
import type net from 'node:net';
import { errorCode, type Termination } from '../errors.js';
import { sniff, type PeekFacts } from './sniff.js';

export interface PeekLimits {
  readonly timeoutMs: number;
  readonly maxBytes: number;
}

export type PeekResult =
  | {
      readonly ok: true;
      readonly prelude: readonly Buffer[];
      readonly facts: PeekFacts;
      /** Why peeking stopped: a verdict, the deadline, the cap, or the client's EOF. */
      readonly stop: 'verdict' | 'timeout' | 'cap' | 'eof';
    }
  | { readonly ok: false; readonly termination: Termination };

/**
 * Peeks at `client` (paused, not yet read). Resolves with the prelude and facts, leaving the
 * client paused with any later bytes still buffered in the socket; or with a termination when
 * the client errs or closes before a verdict.
 */
export function peek(client: net.Socket, limits: PeekLimits): Promise<PeekResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (r: PeekResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.off('data', onData);
      client.off('end', onEnd);
      client.off('error', onError);
      client.off('close', onClose);
      client.pause();
      resolve(r);
    };
    const decide = (final: boolean, stop: 'verdict' | 'timeout' | 'cap' | 'eof'): void => {
      const all = chunks.length === 1 ? (chunks[0] ?? Buffer.alloc(0)) : Buffer.concat(chunks, size);
      // Ask without `final` first, so a match is reported as a verdict even at the cap; an
      // "unknown" reached at the cap or deadline is reported as that stop.
      const v = sniff(all, false);
      if (v.done && (v.facts.protocol !== 'unknown' || !final)) {
        finish({ ok: true, prelude: chunks, facts: v.facts, stop: 'verdict' });
        return;
      }
      const last = final ? sniff(all, true) : v;
      if (last.done) finish({ ok: true, prelude: chunks, facts: last.facts, stop });
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      decide(size >= limits.maxBytes, 'cap');
    };
    const onEnd = (): void => {
      decide(true, 'eof');
    };
    // Errors and closes before a verdict end the connection; the termination records them.
    const onError = (err: Error): void => {
      finish({ ok: false, termination: { cause: 'client', stage: 'peek', code: errorCode(err) ?? 'error' } });
    };
    const onClose = (): void => {
      finish({ ok: false, termination: { cause: 'client', stage: 'peek', code: 'closed' } });
    };
    const timer = setTimeout(() => {
      decide(true, 'timeout');
    }, limits.timeoutMs);
    client.on('data', onData);
    client.once('end', onEnd);
    client.once('error', onError);
    client.once('close', onClose);
    client.resume();
  });
}
