// Reassembles TLS handshake messages from the record layer. Pure. The one place that walks
// records, for ClientHellos (client side) and ServerHello flights (backend side).
//
//   TLSPlaintext (RFC 8446 §5.1, RFC 5246 §6.2.1)
//   +---------+-----------------+-------------+------------------------+
//   | type(1) | version(2)      | length(2)   | fragment(length)       |
//   | 22=hs   | 0x03 0x01..0x04 | <= 2^14 (*) |                        |
//   +---------+-----------------+-------------+------------------------+
//   Handshake (RFC 8446 §4): msg_type(1) length(3) body(length). A message may span records
//   and a record may hold several messages; a large (post-quantum, ~1.7 KB+) ClientHello
//   commonly spans TCP segments and sometimes records.
//   (*) plaintext limit 2^14; we accept up to 2^14+2048 (the ciphertext bound) to stay lenient.
import { Buffer } from 'node:buffer';

export const RECORD_HEADER = 5;
export const CONTENT_HANDSHAKE = 22;
export const CONTENT_CHANGE_CIPHER_SPEC = 20;
const MAX_RECORD_LENGTH = 16_384 + 2_048;

export interface HandshakeMessage {
  readonly type: number;
  /** The body, without the 4-byte message header. */
  readonly body: Buffer;
}

export interface HandshakeScan {
  /** Complete handshake messages, in order. */
  readonly messages: readonly HandshakeMessage[];
  /**
   * `more`: the input ended inside the handshake records (more bytes may bring more messages);
   * `end`: a record of another type (ChangeCipherSpec, alert, encrypted data) follows;
   * `not-tls`: the bytes are not a TLS record stream; `too-large`: over `maxBytes`.
   */
  readonly status: 'more' | 'end' | 'not-tls' | 'too-large';
  readonly reason?: string;
}

/**
 * Scans `buf` from its first byte as a TLS record stream and returns the complete handshake
 * messages carried by its leading handshake records. Accepts at most `maxBytes` of handshake
 * payload. Never throws.
 */
export function scanHandshake(buf: Buffer, maxBytes: number): HandshakeScan {
  const fragments: Buffer[] = [];
  let total = 0;
  let pos = 0;
  let status: HandshakeScan['status'] = 'more';
  let reason: string | undefined;
  while (pos < buf.length) {
    const type = buf.readUInt8(pos);
    if (type !== CONTENT_HANDSHAKE) {
      if (pos === 0) {
        status = 'not-tls';
        reason = 'first byte is not a handshake record';
      } else status = 'end';
      break;
    }
    if (buf.length >= pos + 2 && buf.readUInt8(pos + 1) !== 3) {
      status = 'not-tls';
      reason = 'record version major is not 3';
      break;
    }
    if (buf.length >= pos + 3 && buf.readUInt8(pos + 2) > 4) {
      status = 'not-tls';
      reason = 'record version minor above 4';
      break;
    }
    if (buf.length < pos + RECORD_HEADER) break;
    const length = buf.readUInt16BE(pos + 3);
    if (length === 0 || length > MAX_RECORD_LENGTH) {
      status = 'not-tls';
      reason = 'record length out of range';
      break;
    }
    const available = Math.min(length, buf.length - pos - RECORD_HEADER);
    if (total + available > maxBytes) {
      status = 'too-large';
      reason = `handshake exceeds ${String(maxBytes)} bytes`;
      break;
    }
    fragments.push(buf.subarray(pos + RECORD_HEADER, pos + RECORD_HEADER + available));
    total += available;
    if (available < length) break;
    pos += RECORD_HEADER + length;
  }
  // One fragment is the common case; concat then returns a copy, which is fine at ≤ 16 KiB.
  const stream = Buffer.concat(fragments);
  const messages: HandshakeMessage[] = [];
  let at = 0;
  while (stream.length >= at + 4) {
    const msgLength = stream.readUIntBE(at + 1, 3);
    if (msgLength > maxBytes) {
      return { messages, status: 'too-large', reason: `handshake message of ${String(msgLength)} bytes` };
    }
    if (stream.length < at + 4 + msgLength) break;
    messages.push({ type: stream.readUInt8(at), body: stream.subarray(at + 4, at + 4 + msgLength) });
    at += 4 + msgLength;
  }
  return reason === undefined ? { messages, status } : { messages, status, reason };
}

/**
 * How far a resumable walk over a prelude's handshake records got (see walkHandshake): the
 * offset of the first record not yet complete, the handshake payload before it, the first
 * payload bytes (the message header, up to 4) and whether a parse can now answer.
 */
export interface HandshakeWalk {
  readonly pos: number;
  readonly payload: number;
  readonly head: readonly number[];
  /** scanHandshake(buf) now finds a message or a status other than `more`. */
  readonly ready: boolean;
}

export const HANDSHAKE_WALK_START: HandshakeWalk = Object.freeze({ pos: 0, payload: 0, head: Object.freeze([]), ready: false });

/**
 * Continues `from` over `buf` (the same prelude, grown since) and says whether a ClientHello
 * parse of `buf` could now give something other than need-more: a complete first message, or
 * any of scanHandshake's verdicts. Reads only record headers and the 4-byte message header, and
 * resumes at the record it stopped in, so a prelude fed a byte at a time costs O(bytes) in all
 * (a full parse on every byte costs O(bytes²): 2.2 s of CPU for one 16 KiB trickle).
 */
export function walkHandshake(buf: Buffer, from: HandshakeWalk, maxBytes: number): HandshakeWalk {
  if (from.ready) return from;
  let { pos, payload } = from;
  const head = [...from.head];
  const ready = (): HandshakeWalk => ({ pos, payload, head, ready: true });
  while (pos < buf.length) {
    if (buf.readUInt8(pos) !== CONTENT_HANDSHAKE) return ready();
    if (buf.length >= pos + 2 && buf.readUInt8(pos + 1) !== 3) return ready();
    if (buf.length >= pos + 3 && buf.readUInt8(pos + 2) > 4) return ready();
    if (buf.length < pos + RECORD_HEADER) break;
    const length = buf.readUInt16BE(pos + 3);
    if (length === 0 || length > MAX_RECORD_LENGTH) return ready();
    const available = Math.min(length, buf.length - pos - RECORD_HEADER);
    if (payload + available > maxBytes) return ready();
    // The message header may span records: take what this record adds to it.
    const known = [...head];
    for (let i = 0; known.length < 4 && i < available; i++) known.push(buf.readUInt8(pos + RECORD_HEADER + i));
    if (known.length === 4) {
      const msgLength = Buffer.from(known).readUIntBE(1, 3);
      if (msgLength > maxBytes || payload + available >= 4 + msgLength) return ready();
    }
    if (available < length) break;
    head.splice(0, head.length, ...known);
    pos += RECORD_HEADER + length;
    payload += length;
  }
  return { pos, payload, head, ready: false };
}

/** How far a record stream's framing is complete (see walkRecords). */
export interface RecordWalk {
  /** Offset just past the last complete leading handshake record. */
  readonly end: number;
  /** The input length at which more can be said: the type byte, the header, then the record complete. */
  readonly need: number;
  /** Whether a record of another type starts at `end` (the handshake records are over). */
  readonly other: boolean;
}

/**
 * Walks the record headers of `buf` from `from`, which must be a record boundary, over the
 * complete handshake records. Only reads headers, so walking a stream as it grows, from the
 * last `end`, costs O(records) in all. Types and versions are the parser's business, except
 * that a non-handshake type stops the walk. Never throws.
 */
export function walkRecords(buf: Buffer, from: number): RecordWalk {
  let pos = from;
  while (pos < buf.length) {
    if (buf.readUInt8(pos) !== CONTENT_HANDSHAKE) return { end: pos, need: pos + RECORD_HEADER, other: true };
    if (pos + RECORD_HEADER > buf.length) break;
    const next = pos + RECORD_HEADER + buf.readUInt16BE(pos + 3);
    if (next > buf.length) return { end: pos, need: next, other: false };
    pos = next;
  }
  return { end: pos, need: pos + (pos < buf.length ? RECORD_HEADER : 1), other: false };
}
