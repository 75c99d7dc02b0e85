// Stage 1, I/O: admit a client before a byte of it is read — the connection limits, then the
// ACL, for a --trusted-proxy balancer on the address its PROXY header carries. A client refused
// here is closed at once.
import type { Accepted, Step } from '../conn/connection.js';
import { ended, goOn } from '../conn/connection.js';
import type { CompiledAcl } from './acl.js';
import type { LimitName } from './limits.js';
import { readProxyHeader } from './proxy-header.js';

export interface AdmitOptions {
  /** The accept limit this client exceeds (accept/limits.ts acceptLimit), if any. */
  readonly over: { readonly limit: LimitName; readonly max: number } | undefined;
  readonly acl: CompiledAcl;
  /** Told of a client refused by a limit (the caller logs it, throttled). */
  readonly onLimit: (limit: LimitName, max: number) => void;
}

export async function admit(conn: Accepted, o: AdmitOptions): Promise<Step<Accepted>> {
  const { client } = conn;
  if (o.over) {
    // Closed at once, before a byte is read (the socket is still paused). HAProxy stops
    // accepting at its maxconn instead, leaving clients in the kernel's backlog; a Node listener
    // cannot stop accepting without closing its socket and giving up the port, and a client
    // left unanswered in the backlog only learns of it by a timeout, where a close now lets it
    // retry at once (elsewhere, behind a balancer).
    client.destroy();
    o.onLimit(o.over.limit, o.over.max);
    return ended(conn, { cause: 'tether', stage: 'accept', code: o.over.limit });
  }
  let admitted = conn;
  if (conn.trusted) {
    const h = await readProxyHeader(client.socket);
    const v = h.ok ? h.header : undefined;
    if (v?.source !== undefined && v.sourcePort !== undefined && v.dest !== undefined && v.destPort !== undefined) {
      admitted = { ...conn, facts: { ...conn.facts, source: v.source, sourcePort: v.sourcePort }, destination: { address: v.dest, port: v.destPort } };
    }
    if (!h.ok) {
      client.destroy();
      return ended(admitted, { cause: 'client', stage: 'accept', code: 'proxy-header' }, { bytesIn: client.raw.bytesRead });
    }
  }
  if (!o.acl.admits(admitted.facts.source)) {
    client.destroy();
    return ended(admitted, { cause: 'client', stage: 'accept', code: 'acl-deny' }, conn.trusted ? { bytesIn: client.raw.bytesRead } : {});
  }
  if (admitted.facts.source === '') {
    // Reset (or gone) before its address could be read. The socket is paused, so its reset is
    // never read and nothing would ever close it: destroy it now.
    client.destroy();
    return ended(admitted, { cause: 'client', stage: 'accept', code: client.firstError ?? 'gone' });
  }
  return goOn(admitted);
}
