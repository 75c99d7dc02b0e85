// HTTP/1.x request head → method, target, headers, cookies and URL parameters. Pure.
//
//   request-line = method SP request-target SP HTTP-version CRLF      (RFC 9112 §3)
//   field-line   = field-name ":" OWS field-value OWS CRLF            (RFC 9112 §5)
//   head ends at an empty line. Bare LF line ends are accepted (RFC 9112 §2.2 allows it).
//   Cookie: name=value *( "; " name=value )                           (RFC 6265 §4.2.1)
//   target: /path;name=value/seg?query  — ';' path parameters (RFC 3986 §3.3, the Servlet
//   `;jsessionid=` habit) and the query's name=value pairs joined by '&'.
import type { Buffer } from 'node:buffer';
import { NEED_MORE, match, notMine, type Parse } from '../parse.js';

/** Largest request head we wait for (nginx's large_client_header_buffers default is 8 KiB ×4). */
export const MAX_REQUEST_HEAD_BYTES = 16 * 1024;

export interface RequestHead {
  readonly method: string;
  readonly target: string;
  readonly version: string;
  /** Header fields in order, names lower-cased, values trimmed. */
  readonly headers: readonly (readonly [string, string])[];
  /** Host without port, lower-cased; undefined when absent. */
  readonly host?: string;
  /** Cookies from every Cookie header, first occurrence of a name wins. */
  readonly cookies: ReadonlyMap<string, string>;
  /** Query parameters (percent-decoded), first occurrence wins. */
  readonly query: ReadonlyMap<string, string>;
  /** `;name=value` path parameters of any segment, first occurrence wins. */
  readonly pathParams: ReadonlyMap<string, string>;
}

const METHOD = /^[A-Z][A-Z_-]{0,19}$/;
const VERSION = /^HTTP\/1\.[01]$/;
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s; // malformed %-escape: keep the raw text, which is still a stable key
  }
}

/** Whether `prefix` could still become a request line (for an early not-mine). */
function plausiblePrefix(prefix: string): boolean {
  const sp = prefix.indexOf(' ');
  const method = sp < 0 ? prefix : prefix.slice(0, sp);
  if (sp < 0) return /^[A-Z][A-Z_-]{0,19}$/.test(method) || method === '';
  return METHOD.test(method);
}

function params(text: string, sep: string, into: Map<string, string>): void {
  for (const part of text.split(sep)) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = decode(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? '' : decode(part.slice(eq + 1));
    if (name !== '' && !into.has(name)) into.set(name, value);
  }
}

function hostOf(value: string): string | undefined {
  const v = value.trim().toLowerCase();
  if (v === '') return undefined;
  if (v.startsWith('[')) {
    const close = v.indexOf(']');
    return close < 0 ? undefined : v.slice(0, close + 1);
  }
  const colon = v.indexOf(':');
  const host = colon < 0 ? v : v.slice(0, colon);
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

/**
 * Parses the request head at the start of `prelude`. need-more until the empty line that ends
 * the head; not-mine when the bytes cannot be an HTTP/1.x request or the head exceeds `maxBytes`.
 */
export function parseRequestHead(prelude: Buffer, maxBytes = MAX_REQUEST_HEAD_BYTES): Parse<RequestHead> {
  const window = prelude.subarray(0, maxBytes);
  const text = window.toString('latin1');
  const firstLineEnd = text.indexOf('\n');
  if (firstLineEnd < 0) {
    if (!plausiblePrefix(text.slice(0, 32))) return notMine('not an HTTP request line');
    return prelude.length >= maxBytes ? notMine('request line too long') : NEED_MORE;
  }
  // The empty line is LF, optional CR, LF: a bare LF ends a line and a CR before it is dropped
  // (RFC 9112 §2.2), so LF-terminated header lines followed by CRLF end the head too.
  const blank = /\n\r?\n/.exec(text);
  const end = blank ? blank.index : -1;
  const endLen = blank ? blank[0].length : 0;
  const requestLine = text.slice(0, firstLineEnd).replace(/\r$/, '');
  const parts = requestLine.split(' ');
  const [method, target, version] = parts;
  if (parts.length !== 3 || method === undefined || target === undefined || version === undefined) return notMine('malformed request line');
  if (!METHOD.test(method) || !VERSION.test(version) || target === '') return notMine('malformed request line');
  if (end < 0) return prelude.length >= maxBytes ? notMine(`request head exceeds ${String(maxBytes)} bytes`) : NEED_MORE;

  const headers: [string, string][] = [];
  for (const raw of text.slice(firstLineEnd + 1, end + endLen).split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) return notMine('malformed header line');
    const name = line.slice(0, colon);
    if (!FIELD_NAME.test(name)) return notMine('malformed header name');
    headers.push([name.toLowerCase(), line.slice(colon + 1).trim()]);
  }
  const cookies = new Map<string, string>();
  let host: string | undefined;
  for (const [name, value] of headers) {
    if (name === 'host' && host === undefined) host = hostOf(value);
    if (name !== 'cookie') continue;
    for (const pair of value.split(';')) {
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const cname = pair.slice(0, eq).trim();
      let cvalue = pair.slice(eq + 1).trim();
      if (cvalue.length >= 2 && cvalue.startsWith('"') && cvalue.endsWith('"')) cvalue = cvalue.slice(1, -1);
      if (cname !== '' && !cookies.has(cname)) cookies.set(cname, cvalue);
    }
  }
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const query = new Map<string, string>();
  if (q >= 0) params(target.slice(q + 1).replace(/#.*/s, ''), '&', query);
  const pathParams = new Map<string, string>();
  for (const segment of path.split('/')) {
    const semi = segment.indexOf(';');
    if (semi >= 0) params(segment.slice(semi + 1), ';', pathParams);
  }
  return match({
    method,
    target,
    version,
    headers,
    ...(host === undefined ? {} : { host }),
    cookies,
    query,
    pathParams,
  });
}
