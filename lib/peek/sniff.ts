// Stage 2a, pure. The ordered sniffers for client-first protocols (sslh's probe table with a
// catch-all at the end): TLS, HTTP, XMPP, SSH, then "unknown".
import type { Buffer } from 'node:buffer';
import type { Parse } from '../wire/parse.js';
import { parseClientHello, type ClientHello } from '../wire/tls/client-hello.js';
import { parseRequestHead, type RequestHead } from '../wire/http/request-head.js';
import { parseStreamOpen, type StreamOpen } from '../wire/xmpp/stream-open.js';

export const PROTOCOLS = ['tls', 'http', 'xmpp', 'ssh', 'unknown'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

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

type Sniffer = (prelude: Buffer) => Parse<PeekFacts>;

const wrap =
  <T>(parse: (b: Buffer) => Parse<T>, facts: (v: T) => PeekFacts): Sniffer =>
  (prelude) => {
    const r = parse(prelude);
    return r.kind === 'match' ? { kind: 'match', value: facts(r.value) } : r;
  };

/** The sniffers in the order they are asked. */
export const SNIFFERS: readonly Sniffer[] = [
  wrap(parseClientHello, (tls) => ({ protocol: 'tls', tls })),
  wrap(parseRequestHead, (http) => ({ protocol: 'http', http })),
  wrap(parseStreamOpen, (xmpp) => ({ protocol: 'xmpp', xmpp })),
  wrap(parseSsh, () => ({ protocol: 'ssh' })),
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
    const r = s(prelude);
    if (r.kind === 'match') return { done: true, facts: r.value };
    if (r.kind === 'need-more') waiting = true;
  }
  return waiting && !final ? { done: false } : { done: true, facts: { protocol: 'unknown' } };
}
