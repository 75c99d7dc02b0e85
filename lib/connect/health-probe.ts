// Stage 5, I/O. One active health check of one backend: connect within a timeout, write an
// optional preamble (a PROXY header) and request, then read until the expected response
// matches (judged by health/check.ts), the backend closes, the read cap or the timeout.
import { Buffer } from 'node:buffer';
import net from 'node:net';
import { errorCode } from '../errors.js';
import { judgeResponse } from '../health/check.js';

export interface ProbeOptions {
  /** For the whole check: connect, write, and read until a match. */
  readonly timeoutMs: number;
  /** Written first on connect (a PROXY header for backends that require one). */
  readonly preamble?: Buffer;
  /** Written after the preamble (`--health-send`). */
  readonly send?: Buffer;
  /** Without it, the check passes once connected (and the writes are handed to the kernel). */
  readonly expect?: RegExp;
  /** Response bytes read at most before the check fails. */
  readonly maxBytes: number;
  /** Aborts the check (tether is stopping); it then resolves with code `aborted`. */
  readonly signal?: AbortSignal;
}

/**
 * `code` says why a check failed: the socket's error (ECONNREFUSED, EHOSTUNREACH, ECONNRESET,
 * …), `ETIMEDOUT` (no connection within the timeout), `expect-timeout` (connected, no match in
 * time), `expect-mismatch` (the backend closed, or sent `maxBytes`, without a match),
 * `aborted`.
 */
export type ProbeResult = { readonly ok: true } | { readonly ok: false; readonly code: string };

/** Checks `host:port` once. Resolves (never rejects); the socket is closed when it resolves. */
export function probe(host: string, port: number, opts: ProbeOptions): Promise<ProbeResult> {
  return new Promise((resolve) => {
    if (opts.signal?.aborted === true) {
      resolve({ ok: false, code: 'aborted' });
      return;
    }
    let connected = false;
    let done = false;
    const chunks: Buffer[] = [];
    let received = 0;
    const socket = net.connect({ host, port, noDelay: true });
    const finish = (r: ProbeResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(r);
    };
    const onAbort = (): void => {
      finish({ ok: false, code: 'aborted' });
    };
    const timer = setTimeout(() => {
      finish({ ok: false, code: connected ? 'expect-timeout' : 'ETIMEDOUT' });
    }, opts.timeoutMs);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const judge = (ended: boolean): void => {
      const expect = opts.expect;
      if (!expect) return;
      const verdict = judgeResponse(Buffer.concat(chunks, received), expect, opts.maxBytes, ended);
      if (verdict === 'match') finish({ ok: true });
      else if (verdict === 'mismatch') finish({ ok: false, code: 'expect-mismatch' });
    };
    socket.once('connect', () => {
      connected = true;
      if (opts.preamble) socket.write(opts.preamble);
      if (opts.send) socket.write(opts.send);
      if (!opts.expect) finish({ ok: true });
    });
    socket.on('data', (d: Buffer) => {
      const room = opts.maxBytes - received;
      const kept = d.length > room ? d.subarray(0, room) : d;
      chunks.push(kept);
      received += kept.length;
      judge(false);
    });
    socket.on('end', () => {
      judge(true);
    });
    socket.on('error', (err) => {
      finish({ ok: false, code: errorCode(err) ?? (connected ? 'expect-mismatch' : 'ECONNECT') });
    });
    socket.on('close', () => {
      // A reset after connecting (or a close with no 'end') ends the response as well.
      judge(true);
      finish({ ok: false, code: connected ? 'expect-mismatch' : 'ECONNECT' });
    });
  });
}
