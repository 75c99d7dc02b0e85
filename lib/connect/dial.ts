// Stage 5, I/O. Open a TCP connection to one backend, bounded by a connect timeout.
import net from 'node:net';
import { errorCode } from '../errors.js';

export type DialResult =
  | { readonly ok: true; readonly socket: net.Socket }
  | { readonly ok: false; readonly code: string; readonly timeout: boolean };

/**
 * Connects to `host:port`. Resolves (never rejects) with the connected socket, or with the
 * failure's code (ECONNREFUSED, EHOSTUNREACH, …; ETIMEDOUT after `timeoutMs`). The socket is
 * half-open capable, so a client's half-close can be passed on.
 */
export function dial(host: string, port: number, timeoutMs: number): Promise<DialResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, allowHalfOpen: true, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ ok: false, code: 'ETIMEDOUT', timeout: true });
    }, timeoutMs);
    const onError = (err: Error): void => {
      clearTimeout(timer);
      resolve({ ok: false, code: errorCode(err) ?? 'ECONNECT', timeout: false });
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve({ ok: true, socket });
    });
  });
}
