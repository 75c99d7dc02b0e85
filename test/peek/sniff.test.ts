import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import t from 'tap';
import { ALPN_PROTOCOLS, SNI_NAME, captureAlpnHello, captureSniHello, captureTls12Hello, reframeHandshake } from '../../fixtures/client-hellos.js';
import { Sniffing, sniff, type PeekFacts, type SniffVerdict } from '../../lib/peek/sniff.js';
import { seedFastCheck } from '../helpers/fc-seed.js';

seedFastCheck({ numRuns: 500 });

const [sniHello, alpnHello, tls12Hello] = await Promise.all([captureSniHello(), captureAlpnHello(), captureTls12Hello()]);

const HTTP_HEAD = Buffer.from('GET /cart;jsessionid=abc.a?x=1 HTTP/1.1\r\nHost: Shop.Example:8080\r\nCookie: SID=s1\r\n\r\n');
const XMPP_HEADER = Buffer.from(
  "<?xml version='1.0'?><stream:stream to='im.example.com' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
);
const SSH_BANNER = Buffer.from('SSH-2.0-x');

function factsOf(v: SniffVerdict): PeekFacts {
  if (!v.done) throw new Error('expected a verdict, got "not done"');
  return v.facts;
}

const UNKNOWN: SniffVerdict = { done: true, facts: { protocol: 'unknown' } };
const NOT_DONE: SniffVerdict = { done: false };

t.test('a TLS ClientHello is tls, with the hello as facts', (t) => {
  const facts = factsOf(sniff(sniHello, false));
  t.equal(facts.protocol, 'tls');
  t.equal(facts.tls?.sni, SNI_NAME);
  t.equal(facts.http, undefined);
  t.same(factsOf(sniff(alpnHello, false)).tls?.alpn, ALPN_PROTOCOLS, 'ALPN comes through');
  t.same(sniff(sniHello, true), sniff(sniHello, false), 'final does not change a complete verdict');
  t.end();
});

t.test('an HTTP request head is http, with the head as facts', (t) => {
  const facts = factsOf(sniff(HTTP_HEAD, false));
  t.equal(facts.protocol, 'http');
  t.equal(facts.http?.host, 'shop.example');
  t.equal(facts.http?.cookies.get('SID'), 's1');
  t.equal(facts.http?.pathParams.get('jsessionid'), 'abc.a');
  t.equal(facts.tls, undefined);
  t.end();
});

t.test('an XMPP stream header is xmpp, with its to', (t) => {
  const facts = factsOf(sniff(XMPP_HEADER, false));
  t.equal(facts.protocol, 'xmpp');
  t.equal(facts.xmpp?.to, 'im.example.com');
  t.end();
});

t.test('an SSH identification string is ssh', (t) => {
  t.same(sniff(SSH_BANNER, false), { done: true, facts: { protocol: 'ssh' } });
  t.same(sniff(Buffer.from('SSH-2.0-OpenSSH_9.6\r\n'), false), { done: true, facts: { protocol: 'ssh' } });
  t.end();
});

t.test('bytes no sniffer can claim are unknown at once, final or not', (t) => {
  for (const text of ['\x00\x01\x02', 'hello world\r\n', '+OK POP3 ready\r\n', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n']) {
    t.same(sniff(Buffer.from(text, 'latin1'), false), UNKNOWN, JSON.stringify(text));
  }
  t.end();
});

t.test('partial inputs are not done unless final; final makes them unknown', (t) => {
  const partials: readonly (readonly [string, Buffer])[] = [
    ['a TLS hello missing its last byte', sniHello.subarray(0, sniHello.length - 1)],
    ['a TLS record header only', sniHello.subarray(0, 5)],
    ['an HTTP head without its empty line', HTTP_HEAD.subarray(0, HTTP_HEAD.length - 2)],
    ['an HTTP method', Buffer.from('GET')],
    ['an XMPP header without its >', XMPP_HEADER.subarray(0, XMPP_HEADER.length - 1)],
    ['an XML declaration only', Buffer.from("<?xml version='1.0'?>")],
    ['SSH', Buffer.from('SSH')],
  ];
  for (const [name, bytes] of partials) {
    t.same(sniff(bytes, false), NOT_DONE, `${name}: not done`);
    t.same(sniff(bytes, true), UNKNOWN, `${name}: final → unknown`);
  }
  t.end();
});

t.test('empty input: not done, and unknown when final', (t) => {
  t.same(sniff(Buffer.alloc(0), false), NOT_DONE);
  t.same(sniff(Buffer.alloc(0), true), UNKNOWN);
  t.end();
});

t.test('split at every offset: not done until the whole message, then the same verdict', (t) => {
  for (const [name, bytes] of [
    ['TLS', sniHello],
    ['HTTP', HTTP_HEAD],
    ['XMPP', XMPP_HEADER],
  ] as const) {
    const whole = sniff(bytes, false);
    let firstBad: string | undefined;
    for (let i = 0; i < bytes.length && firstBad === undefined; i++) {
      const got = sniff(bytes.subarray(0, i), false);
      if (got.done) firstBad = `at ${String(i)}: ${JSON.stringify(got)}`;
    }
    t.equal(firstBad, undefined, `${name}: not done at every shorter prefix`);
    t.ok(whole.done, `${name}: done when whole`);
    t.same(sniff(bytes, false), whole, `${name}: the same verdict`);
  }
  t.end();
});

t.test('properties: random bytes never throw, and final always gives a verdict', (t) => {
  const piece = fc.constantFrom('\x16\x03\x01', '\x00', 'GET ', '/ ', 'HTTP/1.1', '\r\n', '<stream:stream', ' to="x"', '>', '<?xml', '?>', 'SSH-', 'S');
  const structured = fc.array(piece, { maxLength: 12 }).map((ps) => Buffer.from(ps.join(''), 'latin1'));
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b)),
    structured,
  );
  t.doesNotThrow(() => {
    fc.assert(
      fc.property(bytes, (b) => {
        const open = sniff(b, false);
        const final = sniff(b, true);
        if (!final.done) return false;
        // A verdict reached without `final` stays the same when the contents are definitive.
        return !open.done || JSON.stringify(open) === JSON.stringify(final);
      }),
    );
  });
  t.end();
});

/** Feeds `bytes` to a fresh Sniffing in pieces cut at `cuts`; the verdict after each piece. */
function feed(bytes: Buffer, cuts: readonly number[]): { readonly sniffing: Sniffing; readonly steps: { readonly at: number; readonly v: SniffVerdict }[] } {
  const sniffing = new Sniffing();
  const steps: { at: number; v: SniffVerdict }[] = [];
  let from = 0;
  for (const at of [...cuts, bytes.length]) {
    if (at <= from) continue;
    steps.push({ at, v: sniffing.push(bytes.subarray(from, at)) });
    from = at;
    if (steps.at(-1)?.v.done === true) break;
  }
  return { sniffing, steps };
}

const byteByByte = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

/** Real preludes, whole, and junk that no sniffer claims. */
const REAL: readonly (readonly [string, Buffer])[] = [
  ['TLS 1.3 hello with SNI', sniHello],
  ['TLS hello with ALPN', alpnHello],
  ['TLS 1.2 hello', tls12Hello],
  ['TLS hello in 1-byte records', reframeHandshake(sniHello, 1)],
  ['TLS hello in 40-byte records', reframeHandshake(sniHello, 40)],
  ['HTTP head', HTTP_HEAD],
  ['HTTP head with bare LFs', Buffer.from('GET / HTTP/1.0\nHost: a\n\n')],
  ['HTTP head with a long first header', Buffer.from(`POST /x HTTP/1.1\r\nX-Long: ${'v'.repeat(300)}\r\nHost: b\r\n\r\nbody`)],
  ['XMPP header', XMPP_HEADER],
  ['SSH banner', SSH_BANNER],
  ['a request line that is not HTTP', Buffer.from('HELLO there, this line is not a request at all\r\n')],
  ['junk', Buffer.from([0x80, 1, 2, 3])],
];

t.test('Sniffing byte by byte: the same verdict as one sniff of each prefix, and of the whole', (t) => {
  for (const [name, bytes] of REAL) {
    const { sniffing, steps } = feed(bytes, byteByByte(bytes.length));
    const bad = steps.find(({ at, v }) => v.done && JSON.stringify(v) !== JSON.stringify(sniff(bytes.subarray(0, at), false)));
    t.equal(bad?.at, undefined, `${name}: a verdict is the one-shot verdict of that prefix`);
    const last = steps.at(-1);
    const firstDone = byteByByte(bytes.length).find((i) => sniff(bytes.subarray(0, i), false).done);
    t.equal(last?.at, firstDone, `${name}: the verdict comes at the byte where one-shot reaches it`);
    t.same(last?.v, sniff(bytes, false), `${name}: the one-shot verdict of the whole`);
    t.same(sniffing.finish().facts, factsOf(sniff(sniffing.bytes, true)), `${name}: finish() is the final one-shot pass`);
  }
  t.end();
});

t.test('Sniffing, any split of real preludes: the verdict of a one-shot parse', (t) => {
  const real = fc.constantFrom(...REAL.map(([, b]) => b));
  t.doesNotThrow(() => {
    fc.assert(
      fc.property(real, fc.array(fc.nat(), { maxLength: 20 }), fc.nat(), (bytes, picks, cut) => {
        const cuts = [...new Set(picks.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
        const whole = feed(bytes, cuts).steps.at(-1)?.v;
        const prefix = bytes.subarray(0, cut % (bytes.length + 1));
        const part = feed(prefix, cuts.filter((c) => c < prefix.length));
        const partDone = part.steps.at(-1)?.v ?? { done: false };
        return (
          JSON.stringify(whole) === JSON.stringify(sniff(bytes, false)) &&
          // On a prefix, an answer is the one-shot answer, or "not done" where one-shot already
          // says not-mine (noticed at the latest by finish()).
          (!partDone.done || JSON.stringify(partDone) === JSON.stringify(sniff(prefix, false))) &&
          JSON.stringify(part.sniffing.finish().facts) === JSON.stringify(factsOf(sniff(prefix, true)))
        );
      }),
    );
  });
  t.end();
});

/** 16 KiB preludes that keep a sniffer waiting to the byte cap, each as a trickler sends it. */
const N = 16 * 1024;
const pad = (head: Buffer | string, fill: string): Buffer => {
  const b = Buffer.alloc(N, fill, 'latin1');
  Buffer.from(head as string, 'latin1').copy(b);
  return b;
};
const TRICKLES: readonly (readonly [string, Buffer])[] = [
  ['a TLS record of 16 KiB', pad(Buffer.from('160301400001003ffc0303', 'hex'), '\0')],
  ['a TLS hello in 1-byte records', reframeHandshake(Buffer.concat([Buffer.from('1603010fff01000ffb0303', 'hex'), Buffer.alloc(4085)]), 1).subarray(0, N)],
  ['an HTTP request line', pad('GET /', 'a')],
  ['an HTTP head of short header lines', Buffer.from(`GET / HTTP/1.1\r\n${'a: b\r\n'.repeat(N / 6)}`.slice(0, N), 'latin1')],
  ['an XMPP header', pad("<?xml version='1.0'?><stream:stream to='", 'a')],
];

t.test('Sniffing a 16 KiB trickle byte by byte does O(n) work, not O(n²)', (t) => {
  for (const [name, bytes] of TRICKLES) {
    const { sniffing, steps } = feed(bytes, byteByByte(bytes.length - 1));
    t.same(steps.at(-1)?.v, sniff(bytes, false), `${name}: the one-shot verdict`);
    // A full parse per byte scans n²/2 ≈ 134 M bytes here; 8 n is 131 K.
    t.ok(sniffing.scanned < 8 * bytes.length, `${name}: ${String(sniffing.scanned)} bytes scanned for ${String(bytes.length)}`);
  }
  t.end();
});

t.test('finish(): a recognised but unfinished prelude names its protocol; silence and the unknown do not', (t) => {
  const cases: readonly (readonly [string, Buffer, string | undefined])[] = [
    ['nothing', Buffer.alloc(0), undefined],
    ['a TLS record header', sniHello.subarray(0, 5), 'tls'],
    ['a TLS hello missing its last byte', sniHello.subarray(0, sniHello.length - 1), 'tls'],
    ['0x16 0x03 (no minor version yet)', sniHello.subarray(0, 2), undefined],
    ['a lone 0x16', Buffer.from([0x16]), undefined],
    ['GET and a space', Buffer.from('GET '), 'http'],
    ['an HTTP head without its empty line', HTTP_HEAD.subarray(0, HTTP_HEAD.length - 2), 'http'],
    ['GET without its space', Buffer.from('GET'), undefined],
    ['a single capital letter', Buffer.from('G'), undefined],
    ['an unknown method', Buffer.from('FROB / HTTP/1.1\r\n'), undefined],
    ['an XML declaration', Buffer.from("<?xml version='1.0'?>"), 'xmpp'],
    ['a stream header without its >', XMPP_HEADER.subarray(XMPP_HEADER.indexOf('<stream'), XMPP_HEADER.length - 1), 'xmpp'],
    ['a lone <', Buffer.from('<'), undefined],
    ['SSH', Buffer.from('SSH'), undefined],
    ['junk', Buffer.from([0x80]), undefined],
  ];
  for (const [name, bytes, started] of cases) {
    const s = new Sniffing();
    if (bytes.length > 0) s.push(bytes);
    const f = s.finish();
    t.equal(f.started, started, `${name}: started ${String(started)}`);
    t.same(f.facts, { protocol: 'unknown' }, `${name}: unknown`);
  }
  t.end();
});
