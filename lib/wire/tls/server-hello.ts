// The backend's first flight → what tether learns for tls-session and tls-ticket affinity. Pure.
//
//   ServerHello body (RFC 8446 §4.1.3; RFC 5246 §7.4.1.3)
//   legacy_version(2) random(32) legacy_session_id_echo<0..32> cipher_suite(2)
//   legacy_compression_method(1) extensions<0..2^16-1> (optional before TLS 1.3)
//     supported_versions(43): selected_version(2)  → 0x0304 means TLS 1.3
//     pre_shared_key(41):     selected_identity(2) → the offered PSK identity it accepted
//   HelloRetryRequest is a ServerHello whose random is the fixed value of RFC 8446 §4.1.3.
//
//   NewSessionTicket, TLS 1.2 (RFC 5077 §3.3), in the clear before ChangeCipherSpec:
//   ticket_lifetime_hint(4) ticket<0..2^16-1>
import { Buffer } from 'node:buffer';
import { ByteReader } from '../byte-reader.js';
import { NEED_MORE, match, notMine, type Parse } from '../parse.js';
import { EXT_PRE_SHARED_KEY, EXT_SUPPORTED_VERSIONS } from './client-hello.js';
import { scanHandshake } from './record.js';

export const HANDSHAKE_SERVER_HELLO = 2;
export const HANDSHAKE_NEW_SESSION_TICKET = 4;
export const TLS13 = 0x0304;

const HRR_RANDOM = Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex');

/** Largest backend flight we read for learning (certificate chains are several KB). */
export const MAX_SERVER_FLIGHT_BYTES = 64 * 1024;

export interface ServerHello {
  /** The negotiated version: supported_versions if present, else legacy_version. */
  readonly version: number;
  /** legacy_session_id(_echo) as lower-case hex; '' when empty. */
  readonly sessionId: string;
  /** The accepted PSK identity index (TLS 1.3 resumption), if any. */
  readonly selectedIdentity?: number;
  readonly helloRetry: boolean;
}

export interface ServerFlight {
  readonly hello: ServerHello;
  /** Tickets from TLS 1.2 NewSessionTicket messages seen in the clear. */
  readonly newTickets: readonly Buffer[];
  /** True when the flight is known to be over (a non-handshake record followed). */
  readonly complete: boolean;
}

/** Parses a ServerHello message body. */
export function parseServerHelloBody(body: Buffer): Parse<ServerHello> {
  const r = new ByteReader(body);
  const legacy = r.u16();
  const random = r.bytes(32);
  const sid = r.vector8();
  r.u16();
  r.u8();
  if (legacy === undefined || !random || !sid || !r.ok || sid.remaining > 32) return notMine('malformed ServerHello');
  let version = legacy;
  let selectedIdentity: number | undefined;
  if (r.remaining > 0) {
    const exts = r.vector16();
    if (!exts) return notMine('malformed extensions');
    while (exts.remaining > 0) {
      const type = exts.u16();
      const data = exts.vector16();
      if (type === undefined || !data) return notMine('malformed extension');
      if (type === EXT_SUPPORTED_VERSIONS) version = data.u16() ?? version;
      else if (type === EXT_PRE_SHARED_KEY) selectedIdentity = data.u16();
    }
  }
  return match({
    version,
    sessionId: sid.rest().toString('hex'),
    ...(selectedIdentity === undefined ? {} : { selectedIdentity }),
    helloRetry: random.equals(HRR_RANDOM),
  });
}

function ticketOf(body: Buffer): Buffer | undefined {
  const r = new ByteReader(body);
  r.bytes(4);
  const t = r.vector16();
  return t && t.remaining > 0 ? t.rest() : undefined;
}

/**
 * Parses the backend's bytes so far: the ServerHello (need-more until it is complete) and any
 * TLS 1.2 NewSessionTicket messages that follow in the clear. not-mine when the backend does not
 * answer with a TLS ServerHello. Accepts at most `maxBytes`.
 */
export function parseServerFlight(bytes: Buffer, maxBytes = MAX_SERVER_FLIGHT_BYTES): Parse<ServerFlight> {
  if (bytes.length === 0) return NEED_MORE;
  const scan = scanHandshake(bytes, maxBytes);
  const first = scan.messages[0];
  if (!first) {
    if (scan.status === 'more') return NEED_MORE;
    return notMine(scan.reason ?? 'no ServerHello');
  }
  if (first.type !== HANDSHAKE_SERVER_HELLO) return notMine('first handshake message is not a ServerHello');
  const hello = parseServerHelloBody(first.body);
  if (hello.kind !== 'match') return hello;
  const newTickets: Buffer[] = [];
  for (const m of scan.messages.slice(1)) {
    if (m.type !== HANDSHAKE_NEW_SESSION_TICKET) continue;
    const t = ticketOf(m.body);
    if (t) newTickets.push(t);
  }
  return match({ hello: hello.value, newTickets, complete: scan.status !== 'more' });
}
