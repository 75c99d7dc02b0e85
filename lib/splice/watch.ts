// Stage 6, pure. Watch the backend's answer for affinity keys (HAProxy's stick store-response):
// TLS session IDs and ticket key names from the ServerHello flight, HTTP session cookies from
// the first response head, and tether's own inserted cookie. Each function returns a callback
// for splice's watchBackend / rewriteHead; `pin` records a table key for the chosen backend.
import { Buffer } from 'node:buffer';
import type { AffinityStep } from '../config/types.js';
import type { PeekFacts } from '../peek/sniff.js';
import type { SpliceOptions } from './splice.js';
import { ticketKeyName } from '../wire/tls/ticket-key-name.js';
import { parseResponseHead } from '../wire/http/response-head.js';
import { MAX_REQUEST_HEAD_BYTES } from '../wire/http/request-head.js';
import type { ClientHello } from '../wire/tls/client-hello.js';
import { walkRecords } from '../wire/tls/record.js';
import { MAX_SERVER_FLIGHT_BYTES, TLS13, parseServerFlight } from '../wire/tls/server-hello.js';

export type Pin = (kind: string, value: string) => void;

/**
 * Watches the backend's TLS flight. With `session`: a TLS ≤ 1.2 ServerHello with a non-empty
 * session ID pins `tls-session` (a TLS 1.3 legacy_session_id_echo is the client's random
 * value, never pinned). With `ticket`: pins the key_name of a ticket the backend accepted (TLS
 * 1.2 resumption echoing the client's session ID, or the TLS 1.3 PSK identity it selected) and
 * of every TLS 1.2 NewSessionTicket sent in the clear. Stops at the first non-handshake record.
 */
export function tlsWatcher(
  hello: ClientHello,
  want: { session: boolean; ticket: boolean },
  pin: Pin,
  parse: typeof parseServerFlight = parseServerFlight,
): (received: Buffer) => boolean {
  const pinned = new Set<string>();
  const once = (kind: string, value: string): void => {
    if (pinned.has(`${kind}\u0000${value}`)) return;
    pinned.add(`${kind}\u0000${value}`);
    pin(kind, value);
  };
  // Parsing runs over everything received, so running it on every byte of a trickling backend
  // costs O(n²). It runs only when it can learn something new — the first complete record, the
  // end of the handshake records, the byte cap — or when the complete records have doubled
  // since it last ran (so a ServerHello spanning records is still found): O(n) in all.
  let walked = 0;
  let need = 1;
  let parsedAt = 0;
  return (received) => {
    if (received.length < need && received.length < MAX_SERVER_FLIGHT_BYTES) return false;
    const w = walkRecords(received, walked);
    walked = w.end;
    need = w.need;
    const due = w.other || received.length >= MAX_SERVER_FLIGHT_BYTES || (walked > 0 && (parsedAt === 0 || walked >= 2 * parsedAt));
    if (!due) return false;
    parsedAt = Math.max(walked, 1);
    const r = parse(received, MAX_SERVER_FLIGHT_BYTES);
    if (r.kind === 'need-more') return received.length >= MAX_SERVER_FLIGHT_BYTES;
    if (r.kind === 'not-mine') return true;
    const { hello: sh, newTickets, complete } = r.value;
    if (sh.helloRetry) return true;
    if (want.session && sh.version < TLS13 && sh.sessionId !== '') once('tls-session', sh.sessionId);
    if (want.ticket) {
      if (sh.version < TLS13 && hello.ticket !== undefined && hello.sessionId !== '' && sh.sessionId === hello.sessionId) {
        const n = ticketKeyName(hello.ticket);
        if (n !== undefined) once('tls-ticket', n);
      }
      if (sh.version >= TLS13 && sh.selectedIdentity !== undefined) {
        const id = hello.pskIdentities[sh.selectedIdentity];
        const n = id === undefined ? undefined : ticketKeyName(id);
        if (n !== undefined) once('tls-ticket', n);
      }
      for (const t of newTickets) {
        const n = ticketKeyName(t);
        if (n !== undefined) once('tls-ticket', n);
      }
    }
    // TLS 1.3 encrypts everything after the ServerHello; TLS 1.2 may still send a
    // NewSessionTicket in its second flight, so keep watching until a non-handshake record.
    return complete || sh.version >= TLS13 || !want.ticket;
  };
}

/**
 * Handles the first HTTP response head: pins `http-cookie:NAME` for each cookie of `learn` that
 * the response sets, and when `insert` is given adds `Set-Cookie: NAME=VALUE; Path=/; HttpOnly`
 * after the status line. Interim 1xx heads before it pass at once, unchanged. Anything that is
 * not an HTTP/1.x response head passes unchanged.
 */
export function responseHeadRewriter(
  learn: readonly string[],
  insert: { readonly name: string; readonly value: string } | undefined,
  pin: Pin,
): (received: Buffer) => { done: false; pass?: number } | { done: true; out: Buffer } {
  return (received) => {
    const r = parseResponseHead(received, MAX_REQUEST_HEAD_BYTES);
    if (r.kind === 'need-more') return received.length >= MAX_REQUEST_HEAD_BYTES ? { done: true, out: received } : { done: false };
    if (r.kind === 'not-mine') return { done: true, out: received };
    // An interim response (100 Continue, 103 Early Hints; RFC 9110 §15.2) precedes the real one:
    // clients ignore its cookies, and one waiting for 100 Continue stalls if we hold it. 101
    // Switching Protocols is final for this connection (a WebSocket handshake may set cookies).
    if (r.value.status < 200 && r.value.status !== 101) return { done: false, pass: r.value.headLength };
    for (const name of learn) {
      const v = r.value.setCookies.get(name);
      if (v !== undefined && v !== '') pin(`http-cookie:${name}`, v);
    }
    if (!insert) return { done: true, out: received };
    const line = Buffer.from(`Set-Cookie: ${insert.name}=${insert.value}; Path=/; HttpOnly\r\n`, 'latin1');
    const at = r.value.statusLineEnd;
    return { done: true, out: Buffer.concat([received.subarray(0, at), line, received.subarray(at)]) };
  };
}

/**
 * What to watch for in one connection's backend, as splice options: the TLS flight when the
 * chain keys on tls-session or tls-ticket, the HTTP response head when it keys on a cookie the
 * client did not send yet or tether inserts its own (`insertCookie`, set to `backend`).
 */
export function watchOptions(
  chain: readonly AffinityStep[],
  insertCookie: string | undefined,
  peek: PeekFacts | undefined,
  backend: string,
  pin: Pin,
): Pick<SpliceOptions, 'watchBackend' | 'rewriteHead'> {
  const tls = peek?.tls;
  const http = peek?.http;
  if (tls) {
    const want = { session: chain.some((s) => s.kind === 'tls-session'), ticket: chain.some((s) => s.kind === 'tls-ticket') };
    return want.session || want.ticket ? { watchBackend: tlsWatcher(tls, want, pin) } : {};
  }
  if (http) {
    const cookies = chain.flatMap((s) => (s.kind === 'http-cookie' && !http.cookies.has(s.name) ? [s.name] : []));
    const insert = insertCookie !== undefined && http.cookies.get(insertCookie) !== backend ? { name: insertCookie, value: backend } : undefined;
    return cookies.length > 0 || insert ? { rewriteHead: responseHeadRewriter(cookies, insert, pin) } : {};
  }
  return {};
}
