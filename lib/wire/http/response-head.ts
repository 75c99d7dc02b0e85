// HTTP/1.x response head → status and Set-Cookie pairs, plus where the head ends (so a header
// can be inserted before it ends). Pure.
//
//   status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF   (RFC 9112 §4)
//   status-code = 3DIGIT, defined 100–599                                 (RFC 9110 §15)
//   field-line  = field-name ":" OWS field-value OWS; field-name = token  (RFC 9112 §5)
//   Set-Cookie: name=value *( ";" attribute )                             (RFC 6265 §4.1)
// A head that breaks these (status 000, a line without a colon) is not learned from: the
// bytes still pass through unchanged, but nothing is read out of them or inserted into them.
import type { Buffer } from 'node:buffer';
import { NEED_MORE, match, notMine, type Parse } from '../parse.js';
import { MAX_REQUEST_HEAD_BYTES } from './request-head.js';

export interface ResponseHead {
  readonly status: number;
  /** Offset just after the status line's line end: where a new header line can go. */
  readonly statusLineEnd: number;
  /** Length of the whole head including the empty line. */
  readonly headLength: number;
  /** Cookies set by this response (name → value), first occurrence wins. */
  readonly setCookies: ReadonlyMap<string, string>;
}

/** A field line's start: a token (RFC 9110 §5.6.2), then the colon, no whitespace between. */
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:/;

/**
 * Parses the response head at the start of `bytes`. need-more until the empty line; not-mine
 * when the bytes are not an HTTP/1.x response or the head exceeds `maxBytes`.
 */
export function parseResponseHead(bytes: Buffer, maxBytes = MAX_REQUEST_HEAD_BYTES): Parse<ResponseHead> {
  const text = bytes.subarray(0, maxBytes).toString('latin1');
  if (!'HTTP/1.'.startsWith(text.slice(0, 7)) && !text.startsWith('HTTP/1.')) return notMine('not an HTTP/1.x response');
  const lineEnd = text.indexOf('\n');
  if (lineEnd < 0) return bytes.length >= maxBytes ? notMine('status line too long') : NEED_MORE;
  const m = /^HTTP\/1\.[01] ([1-5]\d\d)(?: [^\r\n]*)?\r?$/.exec(text.slice(0, lineEnd));
  if (!m?.[1]) return notMine('malformed status line');
  // The empty line is LF, optional CR, LF (as in request-head.ts): a bare LF ends a line and a
  // CR before it is dropped (RFC 9112 §2.2), so LF-terminated lines followed by CRLF end the head.
  const blank = /\n\r?\n/.exec(text);
  const end = blank ? blank.index : -1;
  const endLen = blank ? blank[0].length : 0;
  if (end < 0) return bytes.length >= maxBytes ? notMine(`response head exceeds ${String(maxBytes)} bytes`) : NEED_MORE;
  const setCookies = new Map<string, string>();
  for (const raw of text.slice(lineEnd + 1, end).split('\n')) {
    const line = raw.replace(/\r$/, '');
    // obs-fold (a line that starts with SP or HTAB) continues the previous field's value.
    if (line === '' || line.startsWith(' ') || line.startsWith('\t')) continue; // '' : a head with no field lines
    if (!FIELD_NAME.test(line)) return notMine('malformed header line');
    const colon = line.indexOf(':');
    if (line.slice(0, colon).toLowerCase() !== 'set-cookie') continue;
    const pair = line.slice(colon + 1).replace(/;.*/s, '').trim();
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const name = pair.slice(0, eq).trim();
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (!setCookies.has(name)) setCookies.set(name, value);
  }
  return match({ status: Number(m[1]), statusLineEnd: lineEnd + 1, headLength: end + endLen, setCookies });
}
