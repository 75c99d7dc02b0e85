// XMPP stream header → its `to` and `from` domains. Pure.
//
//   [<?xml version='1.0' ...?>] <stream:stream to='example.com' from='…' version='1.0'
//       xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>   (RFC 6120 §4.7)
//   Attribute values are quoted with ' or "; the stream prefix is almost always `stream`, but
//   any prefix bound to the streams namespace is allowed, so we accept `<PREFIX:stream`.
import type { Buffer } from 'node:buffer';
import { NEED_MORE, match, notMine, type Parse } from '../parse.js';

/** Largest stream header we wait for; real ones are ~200 bytes. */
export const MAX_STREAM_OPEN_BYTES = 4 * 1024;

export interface StreamOpen {
  readonly to?: string;
  readonly from?: string;
  /** The default namespace: `jabber:client`, `jabber:server`, or another. */
  readonly xmlns?: string;
}

const XML_ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function unescape(v: string): string {
  return v.replace(/&(amp|lt|gt|quot|apos);/g, (m, e: string) => XML_ENTITIES[e] ?? /* c8 ignore next */ m);
}

/**
 * Parses the XMPP stream header at the start of `prelude`. need-more until the `>` of the
 * stream element; not-mine for anything else or past `maxBytes`.
 */
export function parseStreamOpen(prelude: Buffer, maxBytes = MAX_STREAM_OPEN_BYTES): Parse<StreamOpen> {
  // Streaming decode holds back a trailing partial UTF-8 sequence instead of turning it into
  // U+FFFD, so a prelude cut inside a multi-byte character (e.g. a leading byte order mark,
  // which TextDecoder also drops) reads as "more to come", not as a stray character.
  const text = new TextDecoder().decode(prelude.subarray(0, maxBytes), { stream: true });
  let at = text.search(/\S/);
  if (at < 0) return prelude.length >= maxBytes ? notMine('only white space') : NEED_MORE;
  if (text[at] !== '<') return notMine('does not start with <');
  if (text.startsWith('<?', at)) {
    // Only the XML declaration: RFC 6120 §11.1 forbids other processing instructions.
    if (!text.startsWith('<?xml'.slice(0, text.length - at), at)) return notMine('not an XML declaration');
    const declEnd = text.indexOf('?>', at);
    if (declEnd < 0) return prelude.length >= maxBytes ? notMine('XML declaration too long') : NEED_MORE;
    at = declEnd + 2;
    const next = text.slice(at).search(/\S/);
    if (next < 0) return prelude.length >= maxBytes ? notMine('only white space after the XML declaration') : NEED_MORE;
    at += next;
  }
  const rest = text.slice(at);
  const head = /^<([A-Za-z_][\w.-]*:)?stream(?=[\s>/])/.exec(rest);
  if (!head) {
    const partial = /^<([A-Za-z_][\w.-]*:?)?s?t?r?e?a?m?$/.test(rest);
    return partial && prelude.length < maxBytes ? NEED_MORE : notMine('not a stream header');
  }
  const close = rest.indexOf('>');
  if (close < 0) return prelude.length >= maxBytes ? notMine('stream header too long') : NEED_MORE;
  const attrs = new Map<string, string>();
  const re = /([A-Za-z_][\w.:-]*)\s*=\s*(?:'([^']*)'|"([^"]*)")/g;
  for (const m of rest.slice(head[0].length, close).matchAll(re)) {
    const name = m[1];
    const value = m[2] ?? m[3];
    if (name !== undefined && value !== undefined && !attrs.has(name)) attrs.set(name, unescape(value));
  }
  const domain = (v: string | undefined): string | undefined => (v === undefined || v === '' ? undefined : v.toLowerCase());
  const to = domain(attrs.get('to'));
  const from = domain(attrs.get('from'));
  const xmlns = attrs.get('xmlns');
  return match({
    ...(to === undefined ? {} : { to }),
    ...(from === undefined ? {} : { from }),
    ...(xmlns === undefined ? {} : { xmlns }),
  });
}
