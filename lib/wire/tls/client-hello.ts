// TLS ClientHello → the facts tether routes on. Pure; never throws on input.
//
//   ClientHello body (RFC 8446 §4.1.2; RFC 5246 §7.4.1.2)
//   legacy_version(2) random(32) legacy_session_id<0..32> cipher_suites<2..2^16-2>
//   legacy_compression_methods<1..2^8-1> extensions<0..2^16-1> (absent in very old clients)
//   Extension: type(2) length(2) data
//     server_name(0)       RFC 6066 §3: list<2> of { name_type(1)=0 host_name<2> }
//     alpn(16)             RFC 7301 §3.1: list<2> of ProtocolName<1>
//     session_ticket(35)   RFC 5077 §3.2: the opaque ticket (empty = "I support tickets")
//     pre_shared_key(41)   RFC 8446 §4.2.11: identities<2> of { identity<2> age(4) } binders<2>
//     supported_versions(43) RFC 8446 §4.2.1: versions<1> of u16
import type { Buffer } from 'node:buffer';
import { ByteReader } from '../byte-reader.js';
import { NEED_MORE, match, notMine, type Parse } from '../parse.js';
import { scanHandshake } from './record.js';

export const HANDSHAKE_CLIENT_HELLO = 1;
export const EXT_SERVER_NAME = 0;
export const EXT_ALPN = 16;
export const EXT_SESSION_TICKET = 35;
export const EXT_PRE_SHARED_KEY = 41;
export const EXT_SUPPORTED_VERSIONS = 43;

/** Largest ClientHello we wait for: caddy-l4's MaxMatchingBytes; post-quantum hellos are ~1.7 KB. */
export const MAX_CLIENT_HELLO_BYTES = 16 * 1024;

export interface ClientHello {
  readonly legacyVersion: number;
  /** legacy_session_id (0–32 bytes), as lower-case hex; '' when empty. */
  readonly sessionId: string;
  /** server_name, lower-cased, without a trailing dot; undefined when absent or not a host name. */
  readonly sni?: string;
  readonly alpn: readonly string[];
  /** supported_versions, or [] when the extension is absent (TLS ≤ 1.2 client). */
  readonly supportedVersions: readonly number[];
  /** A non-empty session_ticket extension (TLS 1.2 resumption by ticket). */
  readonly ticket?: Buffer;
  /** pre_shared_key identities (TLS 1.3 resumption tickets). */
  readonly pskIdentities: readonly Buffer[];
}

const HOST_NAME = /^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$/;

function hostName(raw: Buffer): string | undefined {
  let name = raw.toString('latin1').toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  return name.length <= 253 && HOST_NAME.test(name) ? name : undefined;
}

function serverName(r: ByteReader): string | undefined {
  const list = r.vector16();
  while (list && list.remaining > 0) {
    const type = list.u8();
    const name = list.vector16();
    if (type === 0 && name) return hostName(name.rest());
  }
  return undefined;
}

function alpnList(r: ByteReader): string[] {
  const out: string[] = [];
  const list = r.vector16();
  while (list && list.remaining > 0) {
    const p = list.vector8();
    if (!p) break;
    out.push(p.rest().toString('latin1'));
  }
  return out;
}

function pskIdentities(r: ByteReader): Buffer[] {
  const out: Buffer[] = [];
  const ids = r.vector16();
  while (ids && ids.remaining > 0) {
    const id = ids.vector16();
    const age = ids.bytes(4);
    if (!id || !age) break;
    out.push(id.rest());
  }
  return out;
}

/** Parses a ClientHello message body (after the 4-byte handshake header). */
export function parseClientHelloBody(body: Buffer): Parse<ClientHello> {
  const r = new ByteReader(body);
  const legacyVersion = r.u16();
  r.bytes(32);
  const sid = r.vector8();
  const suites = r.vector16();
  const compression = r.vector8();
  if (legacyVersion === undefined || !sid || !suites || !compression || !r.ok) return notMine('malformed ClientHello');
  if (sid.remaining > 32) return notMine('session id longer than 32 bytes');
  const sessionId = sid.rest().toString('hex');
  let sni: string | undefined;
  let alpn: string[] = [];
  let supportedVersions: number[] = [];
  let ticket: Buffer | undefined;
  let psk: Buffer[] = [];
  if (r.remaining > 0) {
    const exts = r.vector16();
    if (!exts) return notMine('malformed extensions');
    while (exts.remaining > 0) {
      const type = exts.u16();
      const data = exts.vector16();
      if (type === undefined || !data) return notMine('malformed extension');
      switch (type) {
        case EXT_SERVER_NAME:
          sni = serverName(data);
          break;
        case EXT_ALPN:
          alpn = alpnList(data);
          break;
        case EXT_SESSION_TICKET:
          if (data.remaining > 0) ticket = data.rest();
          break;
        case EXT_PRE_SHARED_KEY:
          psk = pskIdentities(data);
          break;
        case EXT_SUPPORTED_VERSIONS: {
          const list = data.vector8();
          supportedVersions = [];
          for (let v = list?.u16(); v !== undefined; v = list?.u16()) supportedVersions.push(v);
          break;
        }
        default:
          break;
      }
    }
  }
  return match({
    legacyVersion,
    sessionId,
    ...(sni === undefined ? {} : { sni }),
    alpn,
    supportedVersions,
    ...(ticket === undefined ? {} : { ticket }),
    pskIdentities: psk,
  });
}

/**
 * Parses the ClientHello at the start of `prelude` (the client's first bytes). need-more until
 * the whole message has arrived (across records and segments); not-mine for anything that is
 * not a TLS handshake starting with a ClientHello, or one over `maxBytes`.
 */
export function parseClientHello(prelude: Buffer, maxBytes = MAX_CLIENT_HELLO_BYTES): Parse<ClientHello> {
  if (prelude.length === 0) return NEED_MORE;
  const scan = scanHandshake(prelude, maxBytes);
  const first = scan.messages[0];
  if (first) {
    if (first.type !== HANDSHAKE_CLIENT_HELLO) return notMine('first handshake message is not a ClientHello');
    return parseClientHelloBody(first.body);
  }
  switch (scan.status) {
    case 'more':
      return NEED_MORE;
    case 'end':
      return notMine('handshake record ended before a ClientHello');
    case 'not-tls':
      /* c8 ignore next */
      return notMine(scan.reason ?? 'not TLS');
    case 'too-large':
      /* c8 ignore next */
      return notMine(scan.reason ?? 'ClientHello too large');
  }
}
