// Stage 2a, I/O. Collect the prelude: read the client's first bytes until the sniffers reach a
// verdict, the peek deadline passes, the byte cap is reached or the client ends its side.
// Never writes to the client. The bytes are kept (never unshifted) and replayed to the backend.
import type { Buffer } from 'node:buffer';
import type net from 'node:net';
import { errorCode, type Termination } from '../errors.js';
import { Sniffing, type PeekFacts, type Protocol } from './sniff.js';

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
  | {
      readonly ok: false;
      readonly termination: Termination;
      /** A slow peek: the protocol the unfinished prelude started (counted as `PROTOCOL|timeout`). */
      readonly started?: Exclude<Protocol, 'unknown'>;
    };

/**
 * Peeks at `client` (paused, not yet read). Resolves with the prelude and facts, leaving the
 * client paused with any later bytes still buffered in the socket; or with a termination when
 * the client errs or closes before a verdict, or when the deadline finds a prelude that a
 * sniffer recognised still unfinished (`peek-timeout`: cut, not proxied half-sent). Only a
 * silent client or bytes no sniffer recognises are passed on at the deadline.
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
    const sniffing = new Sniffing();
    const settle = (stop: 'timeout' | 'cap' | 'eof'): void => {
      const f = sniffing.finish();
      if (f.started !== undefined && stop === 'timeout') {
        // A prelude a sniffer recognised, still unfinished at the deadline: a slow peek (a
        // client trickling a byte a second holds a slot and would reach a backend half-sent).
        finish({ ok: false, termination: { cause: 'client-timeout', stage: 'peek', code: 'peek-timeout' }, started: f.started });
        return;
      }
      finish({ ok: true, prelude: chunks, facts: f.facts, stop: f.facts.protocol === 'unknown' ? stop : 'verdict' });
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      const v = sniffing.push(chunk);
      // A match is reported as a verdict even at the cap; an "unknown" reached at the cap is
      // reported as that stop.
      if (v.done && (v.facts.protocol !== 'unknown' || size < limits.maxBytes)) finish({ ok: true, prelude: chunks, facts: v.facts, stop: 'verdict' });
      else if (size >= limits.maxBytes) settle('cap');
    };
    const onEnd = (): void => {
      settle('eof');
    };
    // Errors and closes before a verdict end the connection; the termination records them.
    const onError = (err: Error): void => {
      finish({ ok: false, termination: { cause: 'client', stage: 'peek', code: errorCode(err) ?? 'error' } });
    };
    const onClose = (): void => {
      finish({ ok: false, termination: { cause: 'client', stage: 'peek', code: 'closed' } });
    };
    const timer = setTimeout(() => {
      settle('timeout');
    }, limits.timeoutMs);
    client.on('data', onData);
    client.once('end', onEnd);
    client.once('error', onError);
    client.once('close', onClose);
    client.resume();
  });
}
