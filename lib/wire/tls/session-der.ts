// OpenSSL's serialized SSL_SESSION (what node:tls hands out as `session`) → the session ticket
// it holds. Pure; never throws on input.
//
//   SSL_SESSION ::= SEQUENCE {              (OpenSSL ssl/ssl_asn1.c, SSL_SESSION_ASN1)
//     version INTEGER, ssl_version INTEGER, cipher OCTET STRING, session_id OCTET STRING,
//     master_key OCTET STRING, … optional [n] EXPLICIT fields …,
//     tlsext_tick [10] EXPLICIT OCTET STRING OPTIONAL, … }
//   DER: tag(1) length(1, or 0x80|n then n bytes big-endian) content(length)
import type { Buffer } from 'node:buffer';

const TAG_SEQUENCE = 0x30;
const TAG_OCTET_STRING = 0x04;
/** Context-specific, constructed, number 10. */
const TAG_TICKET = 0xaa;

interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly end: number;
}

function readTlv(buf: Buffer, at: number, limit: number): Tlv | undefined {
  if (at + 2 > limit) return undefined;
  const tag = buf.readUInt8(at);
  let len = buf.readUInt8(at + 1);
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) return undefined;
    len = buf.readUIntBE(start, n);
    start += n;
  }
  const end = start + len;
  return end > limit ? undefined : { tag, start, end };
}

/** The ticket inside a serialized SSL_SESSION, or undefined when there is none. */
export function ticketFromSession(der: Buffer): Buffer | undefined {
  const top = readTlv(der, 0, der.length);
  if (top?.tag !== TAG_SEQUENCE) return undefined;
  let at = top.start;
  while (at < top.end) {
    const field = readTlv(der, at, top.end);
    if (!field) return undefined;
    if (field.tag === TAG_TICKET) {
      const inner = readTlv(der, field.start, field.end);
      return inner?.tag === TAG_OCTET_STRING && inner.end > inner.start ? der.subarray(inner.start, inner.end) : undefined;
    }
    at = field.end;
  }
  return undefined;
}
