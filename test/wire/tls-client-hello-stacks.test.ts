// ClientHellos from other TLS stacks (GnuTLS, BoringSSL, JSSE, OpenSSL s_client, curl), captured
// once into fixtures/client-hellos/: the parser and the peek sniffer must read the same facts from
// each, in one piece, split at every byte, fed a byte at a time, and reframed across records.
import { Buffer } from 'node:buffer';
import { isDeepStrictEqual } from 'node:util';
import t from 'tap';
import { reframeHandshake } from '../../fixtures/client-hellos.js';
import { STACK_HELLOS, stackHelloBytes, type StackHelloFacts } from '../../fixtures/client-hellos/stacks.js';
import { Sniffing, sniff } from '../../lib/peek/sniff.js';
import { parseClientHello, type ClientHello } from '../../lib/wire/tls/client-hello.js';

/** RFC 8701 GREASE values are 0x?A?A with both bytes equal. */
const isGrease = (v: number): boolean => (v & 0x0f0f) === 0x0a0a && v >> 8 === (v & 0xff);

function factsOf(h: ClientHello): StackHelloFacts {
  return {
    sni: h.sni ?? '',
    alpn: h.alpn,
    versions: h.supportedVersions.filter((v) => !isGrease(v)),
    ticket: h.ticket !== undefined,
    psk: h.pskIdentities.length > 0,
  };
}

for (const { name, stack, facts } of STACK_HELLOS) {
  t.test(`${name}: ${stack}`, (t) => {
    const bytes = stackHelloBytes(name);
    const one = parseClientHello(bytes);
    if (one.kind !== 'match') throw new Error(`${name}: expected a match, got ${JSON.stringify(one)}`);
    t.same(factsOf(one.value), facts, 'the facts of the capture');
    t.equal(one.value.sessionId.length, 64, 'a 32-byte legacy session id (TLS 1.3 middlebox compatibility)');

    const sniffed = sniff(bytes, false);
    t.same(sniffed, { done: true, facts: { protocol: 'tls', tls: one.value } }, 'sniff: tls, with the parser’s facts');

    let splitsOk = true;
    for (let i = 1; i < bytes.length && splitsOk; i++) {
      const head = bytes.subarray(0, i);
      const s = new Sniffing();
      const first = s.push(head);
      const second = s.push(bytes.subarray(i));
      splitsOk =
        parseClientHello(head).kind === 'need-more' &&
        !sniff(head, false).done &&
        !first.done &&
        second.done &&
        isDeepStrictEqual(second.facts.tls, one.value);
      if (!splitsOk) t.fail(`split at ${String(i)} disagrees with one-shot`);
    }
    t.ok(splitsOk, `every split (${String(bytes.length - 1)}) agrees with one-shot`);

    const trickle = new Sniffing();
    let last = trickle.push(Buffer.alloc(0));
    for (const b of bytes) last = trickle.push(Buffer.from([b]));
    t.same(last, sniffed, 'byte-by-byte feed agrees with one-shot');

    const oneByteRecords = reframeHandshake(bytes, 1);
    t.same(parseClientHello(oneByteRecords), one, 'reframed into 1-byte records: same hello');
    let reframedOk = true;
    const streamLength = oneByteRecords.length / 6;
    for (let i = 1; i < streamLength && reframedOk; i++) {
      const r = parseClientHello(reframeHandshake(bytes, [i]));
      reframedOk = r.kind === 'match' && isDeepStrictEqual(r.value, one.value);
      if (!reframedOk) t.fail(`records of ${String(i)} + rest disagree with one-shot`);
    }
    t.ok(reframedOk, 'split across two records at every handshake byte: same hello');
    t.end();
  });
}
