import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import t from 'tap';
import { ALPN_PROTOCOLS, SNI_NAME, captureAlpnHello, captureSniHello } from '../../fixtures/client-hellos.js';
import { sniff, type PeekFacts, type SniffVerdict } from '../../lib/peek/sniff.js';

fc.configureGlobal({ seed: Number(process.env['FC_SEED'] ?? 0x7e7e), numRuns: 500 });

const [sniHello, alpnHello] = await Promise.all([captureSniHello(), captureAlpnHello()]);

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
