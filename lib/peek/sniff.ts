// Stage 2a, pure. The ordered sniffers for client-first protocols (sslh's probe table with a
// catch-all at the end): TLS, HTTP, XMPP, SSH, then "unknown". `sniff` asks them once over a
// whole prelude; a `Sniffing` asks them as the prelude grows, re-parsing only when an answer
// can have changed, so a client trickling a byte a second costs O(bytes), not O(bytes²).
import { Buffer } from 'node:buffer';
import type { PeekProtocol } from '../config/types.js';
import type { Parse } from '../wire/parse.js';
import { MAX_CLIENT_HELLO_BYTES, parseClientHello, type ClientHello } from '../wire/tls/client-hello.js';
import { CONTENT_HANDSHAKE, HANDSHAKE_WALK_START, walkHandshake, type HandshakeWalk } from '../wire/tls/record.js';
import { MAX_REQUEST_HEAD_BYTES, parseRequestHead, type RequestHead } from '../wire/http/request-head.js';
import { MAX_STREAM_OPEN_BYTES, parseStreamOpen, type StreamOpen } from '../wire/xmpp/stream-open.js';

/** The protocols peeking tells apart: config/types.ts PEEK_PROTOCOLS, the same list routes match on. */
export type Protocol = PeekProtocol;

/** What peeking learned. */
export interface PeekFacts {
  readonly protocol: Protocol;
  readonly tls?: ClientHello;
  readonly http?: RequestHead;
  readonly xmpp?: StreamOpen;
}

export type SniffVerdict = { readonly done: false } | { readonly done: true; readonly facts: PeekFacts };

/** RFC 4253 §4.2: the identification string starts "SSH-protoversion-". */
function parseSsh(prelude: Buffer): Parse<true> {
  const head = prelude.subarray(0, 4).toString('latin1');
  if ('SSH-'.startsWith(head)) return head.length === 4 ? { kind: 'match', value: true } : { kind: 'need-more' };
  return { kind: 'not-mine', reason: 'no SSH- banner' };
}

/**
 * Decides, for one growing prelude, whether the sniffer's answer can have changed since the
 * last call (`from`: the prelude's length then). Each sniffer gets a fresh one per client.
 * Checks only the new bytes (and O(1) around them), never the whole prelude.
 */
type Due = (prelude: Buffer, from: number) => boolean;

interface Sniffer {
  readonly protocol: Exclude<Protocol, 'unknown'>;
  readonly parse: (prelude: Buffer) => Parse<PeekFacts>;
  /**
   * Whether the bytes so far positively start this protocol — not just "could still be": a
   * started prelude still unfinished at the peek deadline is cut, not proxied (a slow peek).
   * Asked only while `parse` says need-more.
   */
  readonly started: (prelude: Buffer) => boolean;
  readonly due: () => Due;
}

const wrap =
  <T>(parse: (b: Buffer) => Parse<T>, facts: (v: T) => PeekFacts) =>
  (prelude: Buffer): Parse<PeekFacts> => {
    const r = parse(prelude);
    return r.kind === 'match' ? { kind: 'match', value: facts(r.value) } : r;
  };

/** Whether `needle` occurs in `b` at or after `from`. */
const has = (b: Buffer, needle: number, from: number): boolean => b.indexOf(needle, Math.max(0, from)) >= 0;

const LF = 0x0a;
const GT = 0x3e;

/**
 * Request-method tokens counted as a started HTTP request (RFC 9110 §9, RFC 5789 PATCH, the
 * WebDAV methods of RFC 4918); a method the parser accepts but that is not here is proxied at
 * the deadline as before, rather than cut.
 */
const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'REPORT', 'SEARCH'];
/** `METHOD ` prefixes, matched against the prelude's first bytes. */
const HTTP_STARTS = HTTP_METHODS.map((m) => Buffer.from(`${m} `, 'latin1'));
/** The XMPP openings: the XML declaration, or the stream element itself (RFC 6120 §4.7). */
const XMPP_START = /^\s*(<\?xml\s|<([A-Za-z_][\w.-]*:)?stream[\s>/])/;

/** The plausiblePrefix window of parseRequestHead: new bytes inside it are always re-parsed. */
const HTTP_PREFIX_BYTES = 33;
/** XMPP's early shape checks (`<?xml`, `<stream:stream`) fit here; past it, only a `>` matters. */
const XMPP_PREFIX_BYTES = 64;

/** The sniffers in the order they are asked. Order is behaviour: TLS decides from 1 byte. */
export const SNIFFERS: readonly Sniffer[] = [
  {
    protocol: 'tls',
    parse: wrap(parseClientHello, (tls) => ({ protocol: 'tls', tls })),
    // A handshake record with a TLS version (3.0–3.4): 0x16 alone could be anything.
    started: (b) => b.length >= 3 && b.readUInt8(0) === CONTENT_HANDSHAKE && b.readUInt8(1) === 3 && b.readUInt8(2) <= 4,
    due: () => {
      let walk: HandshakeWalk = HANDSHAKE_WALK_START;
      return (b) => {
        walk = walkHandshake(b, walk, MAX_CLIENT_HELLO_BYTES);
        return walk.ready;
      };
    },
  },
  {
    protocol: 'http',
    parse: wrap(parseRequestHead, (http) => ({ protocol: 'http', http })),
    started: (b) => HTTP_STARTS.some((m) => b.length >= m.length && b.subarray(0, m.length).equals(m)),
    due: () => {
      // Before the first LF only the method prefix (its first 33 bytes) and the cap decide; once
      // a request line is in (and valid: the answer was need-more), only the empty line that
      // ends the head, which can only end in the new bytes, so the search starts 2 bytes back.
      let lineIn = false;
      return (b, from) => {
        if (from < HTTP_PREFIX_BYTES || b.length >= MAX_REQUEST_HEAD_BYTES) return true;
        if (!lineIn) {
          lineIn = has(b, LF, from);
          return lineIn;
        }
        const at = b.indexOf('\n', Math.max(0, from - 2));
        for (let i = at; i >= 0; i = b.indexOf(LF, i + 1)) {
          const next = b[i + 1] === 0x0d ? b[i + 2] : b[i + 1];
          if (next === LF) return true;
        }
        return false;
      };
    },
  },
  {
    protocol: 'xmpp',
    parse: wrap(parseStreamOpen, (xmpp) => ({ protocol: 'xmpp', xmpp })),
    started: (b) => XMPP_START.test(b.subarray(0, XMPP_PREFIX_BYTES).toString('latin1')),
    // The header (and the XML declaration) ends at a '>'. A not-mine past the first 64 bytes
    // may wait for the next '>', the cap or the deadline's full pass: the verdict is the same.
    due: () => (b, from) => from < XMPP_PREFIX_BYTES || b.length >= MAX_STREAM_OPEN_BYTES || has(b, GT, from),
  },
  {
    protocol: 'ssh',
    parse: wrap(parseSsh, () => ({ protocol: 'ssh' })),
    started: () => false, // matched at its 4th byte: never "started but unfinished"
    due: () => (_b, from) => from < 4,
  },
];

/**
 * Runs the sniffers over the prelude. The first match wins; while any sniffer still needs
 * more bytes the verdict is "not done" — unless `final` (deadline, byte cap or client EOF:
 * the contents are definitive, HAProxy's inspect-delay), when the answer is "unknown".
 */
export function sniff(prelude: Buffer, final: boolean): SniffVerdict {
  if (prelude.length === 0) return final ? { done: true, facts: { protocol: 'unknown' } } : { done: false };
  let waiting = false;
  for (const s of SNIFFERS) {
    const r = s.parse(prelude);
    if (r.kind === 'match') return { done: true, facts: r.value };
    if (r.kind === 'need-more') waiting = true;
  }
  return waiting && !final ? { done: false } : { done: true, facts: { protocol: 'unknown' } };
}

/** The final answer over a whole prelude: a verdict, plus the protocol it started, if unfinished. */
export interface FinalVerdict {
  readonly facts: PeekFacts;
  /** Set when no sniffer matched but one still needed more of a prelude that starts its protocol. */
  readonly started?: Exclude<Protocol, 'unknown'>;
}

/** First capacity of the prelude copy; it doubles as bytes arrive. */
const INITIAL_BYTES = 512;

/**
 * The sniffers asked as one client's prelude grows (sslh's probe loop: a sniffer that says
 * not-mine is not asked again). `push` appends bytes and answers as `sniff(all, false)` would,
 * but re-parses a sniffer only when its `due` says the answer can have changed — except that a
 * not-mine may be noticed later (at the latest by `finish`). `finish` is `sniff(all, true)`.
 * `scanned` counts the bytes parsed and checked, for tests of the work done per byte.
 */
export class Sniffing {
  private buf = Buffer.alloc(0);
  private size = 0;
  private readonly live: { readonly sniffer: Sniffer; readonly due: Due }[] = SNIFFERS.map((sniffer) => ({ sniffer, due: sniffer.due() }));
  scanned = 0;

  /** The prelude so far, as one buffer (a view of the internal copy). */
  get bytes(): Buffer {
    return this.buf.subarray(0, this.size);
  }

  push(chunk: Buffer): SniffVerdict {
    const from = this.size;
    this.append(chunk);
    const all = this.bytes;
    for (let i = 0; i < this.live.length; ) {
      const l = this.live[i];
      /* c8 ignore next */
      if (l === undefined) break;
      this.scanned += all.length - from;
      if (!l.due(all, from)) {
        i++;
        continue;
      }
      this.scanned += all.length;
      const r = l.sniffer.parse(all);
      if (r.kind === 'match') return { done: true, facts: r.value };
      if (r.kind === 'not-mine') this.live.splice(i, 1);
      else i++;
    }
    return this.live.length > 0 ? { done: false } : { done: true, facts: { protocol: 'unknown' } };
  }

  /** The verdict when the contents are definitive (deadline, cap, EOF): one full pass. */
  finish(): FinalVerdict {
    const all = this.bytes;
    let started: Exclude<Protocol, 'unknown'> | undefined;
    for (const { sniffer } of this.live) {
      this.scanned += all.length;
      const r = sniffer.parse(all);
      if (r.kind === 'match') return { facts: r.value };
      if (r.kind === 'need-more' && started === undefined && all.length > 0 && sniffer.started(all)) started = sniffer.protocol;
    }
    return started === undefined ? { facts: { protocol: 'unknown' } } : { facts: { protocol: 'unknown' }, started };
  }

  private append(chunk: Buffer): void {
    if (this.size + chunk.length > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(INITIAL_BYTES, 2 * this.buf.length, this.size + chunk.length));
      this.buf.copy(grown, 0, 0, this.size);
      this.buf = grown;
    }
    chunk.copy(this.buf, this.size);
    this.size += chunk.length;
  }
}
