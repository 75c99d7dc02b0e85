// Stage 1, I/O. Reads the PROXY protocol header a trusted balancer sends before the client's
// own bytes. Reads exactly the header (socket.read(n) from the stream's buffer), so whatever
// follows stays in the socket for peek, greet or splice: nothing is unshifted or lost.
import { Buffer } from 'node:buffer';
import type net from 'node:net';
import { PROXY_V2_SIGNATURE, parseProxyHeader, type ProxyHeader } from '../wire/proxy/header.js';

/** How long a trusted balancer may take to send its header: caddy-l4's matching timeout, as
 *  for peek. Balancers send it with the first segment, so this only bounds broken peers. */
export const PROXY_HEADER_TIMEOUT_MS = 3_000;

export type ProxyHeaderRead = { readonly ok: true; readonly header: ProxyHeader } | { readonly ok: false; readonly why: 'malformed' | 'timeout' | 'closed' };

/** How many bytes to ask the stream for next: the rest of a v2 header at once, else one. */
function nextReadBytes(got: Buffer): number {
  if (got.length < 16 || !got.subarray(0, 12).equals(PROXY_V2_SIGNATURE)) return 1;
  return Math.max(1, 16 + got.readUInt16BE(14) - got.length);
}

/**
 * Reads one PROXY header (v1 or v2, capped as in wire/proxy/header.ts) from `client`, paused
 * and not yet read. Resolves with the header, or why there is none; never rejects. Leaves
 * the client paused with the bytes after the header unread.
 */
export function readProxyHeader(client: net.Socket, timeoutMs = PROXY_HEADER_TIMEOUT_MS): Promise<ProxyHeaderRead> {
  return new Promise((resolve) => {
    let got = Buffer.alloc(0);
    let settled = false;
    const finish = (r: ProxyHeaderRead): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.off('readable', onReadable);
      client.off('end', onClosed);
      client.off('close', onClosed);
      client.pause();
      resolve(r);
    };
    const onReadable = (): void => {
      for (;;) {
        const chunk = client.read(nextReadBytes(got)) as Buffer | null;
        if (chunk === null) return;
        got = Buffer.concat([got, chunk]);
        const p = parseProxyHeader(got);
        if (p.kind === 'match') {
          finish({ ok: true, header: p.value });
          return;
        }
        if (p.kind === 'not-mine') {
          finish({ ok: false, why: 'malformed' });
          return;
        }
      }
    };
    // An error is followed by close; the caller's error listener records it.
    const onClosed = (): void => {
      finish({ ok: false, why: 'closed' });
    };
    const timer = setTimeout(() => {
      finish({ ok: false, why: 'timeout' });
    }, timeoutMs);
    client.on('readable', onReadable);
    client.once('end', onClosed);
    client.once('close', onClosed);
  });
}
