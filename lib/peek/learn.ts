// Stage 2, I/O: learn what a client-first protocol's client says before a backend exists — the
// peeked prelude and its facts (TLS ClientHello, HTTP head, XMPP stream) — and refuse a PROXY
// header from a peer that is not a --trusted-proxy balancer.
import { Buffer } from 'node:buffer';
import type { Accepted, Learned, Step } from '../conn/connection.js';
import { ended, goOn } from '../conn/connection.js';
import { parseProxyHeader } from '../wire/proxy/header.js';
import { peek } from './collect.js';

export interface PeekLearnOptions {
  readonly timeoutMs: number;
  readonly maxBytes: number;
  /** Whether this frontend trusts any balancer's PROXY header (then others' are refused). */
  readonly trustsProxies: boolean;
  /** Told of a client cut at the peek deadline with a prelude a sniffer recognised. */
  readonly onSlow: () => void;
}

export async function learnByPeek(conn: Accepted, o: PeekLearnOptions): Promise<Step<Learned>> {
  const { client } = conn;
  const r = await peek(client.socket, { timeoutMs: o.timeoutMs, maxBytes: o.maxBytes });
  if (!r.ok) {
    if (r.started === undefined) return ended(conn, r.termination, { bytesIn: client.socket.bytesRead });
    client.destroy();
    o.onSlow();
    const slow: Accepted = { ...conn, facts: { ...conn.facts, peek: { protocol: r.started } }, peekStop: 'timeout' };
    return ended(slow, r.termination, { bytesIn: client.socket.bytesRead });
  }
  if (o.trustsProxies && !conn.trusted && r.prelude.length > 0 && parseProxyHeader(Buffer.concat(r.prelude)).kind !== 'not-mine') {
    // Only --trusted-proxy balancers may say who the client is; anyone else trying is refused.
    client.destroy();
    return ended(conn, { cause: 'client', stage: 'accept', code: 'proxy-untrusted' }, { bytesIn: client.socket.bytesRead });
  }
  return goOn({ ...conn, prelude: r.prelude, facts: { ...conn.facts, peek: r.facts }, peekStop: r.stop });
}
