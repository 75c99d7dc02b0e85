import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import t from 'tap';
import { capturePlainHello } from '../../fixtures/client-hellos.js';
import type { Parse } from '../../lib/wire/parse.js';
import { MAX_STREAM_OPEN_BYTES, parseStreamOpen, type StreamOpen } from '../../lib/wire/xmpp/stream-open.js';
import { seedFastCheck } from '../helpers/fc-seed.js';

seedFastCheck({ numRuns: 300 });

const hello = await capturePlainHello();
const STREAMS_NS = "xmlns:stream='http://etherx.jabber.org/streams'";

const same = (a: Parse<StreamOpen>, b: Parse<StreamOpen>): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Hand-written stream headers, each complete up to its `>`, and what they must yield. */
const HEADERS: readonly (readonly [string, string, StreamOpen])[] = [
  [
    'with an XML declaration, single quotes (RFC 6120 §4.7 example)',
    `<?xml version='1.0'?><stream:stream from='juliet@im.example.com' to='im.example.com' version='1.0' xml:lang='en' xmlns='jabber:client' ${STREAMS_NS}>`,
    { to: 'im.example.com', from: 'juliet@im.example.com', xmlns: 'jabber:client' },
  ],
  ['without an XML declaration', `<stream:stream to='example.com' version='1.0' xmlns='jabber:client' ${STREAMS_NS}>`, { to: 'example.com', xmlns: 'jabber:client' }],
  [
    'double quotes, and a declaration with an encoding',
    '<?xml version="1.0" encoding="UTF-8"?><stream:stream to="example.net" xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" version="1.0">',
    { to: 'example.net', xmlns: 'jabber:client' },
  ],
  ['to missing', `<stream:stream from='a@b.example' xmlns='jabber:client' ${STREAMS_NS} version='1.0'>`, { from: 'a@b.example', xmlns: 'jabber:client' }],
  ['no attributes at all', '<stream:stream>', {}],
  ['an empty to is no to', `<stream:stream to='' xmlns='jabber:client'>`, { xmlns: 'jabber:client' }],
  ['the domain is lower-cased', `<stream:stream to='Example.COM' xmlns='jabber:client'>`, { to: 'example.com', xmlns: 'jabber:client' }],
  ['server-to-server', `<stream:stream from='a.example' to='b.example' xmlns='jabber:server' ${STREAMS_NS} version='1.0'>`, { to: 'b.example', from: 'a.example', xmlns: 'jabber:server' }],
  ['a prefix other than stream', `<s:stream to='example.org' xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams'>`, { to: 'example.org', xmlns: 'jabber:client' }],
  ['no prefix', `<stream to='example.org' xmlns='http://etherx.jabber.org/streams'>`, { to: 'example.org', xmlns: 'http://etherx.jabber.org/streams' }],
  ['white space around = and between attributes', `<stream:stream\n  to = "ws.example"\n\txmlns='jabber:client'>`, { to: 'ws.example', xmlns: 'jabber:client' }],
  ['leading white space and a newline after the declaration', `\r\n <?xml version='1.0'?>\n\n<stream:stream to='nl.example'>`, { to: 'nl.example' }],
  ['a UTF-8 byte order mark', `\uFEFF<stream:stream to='bom.example'>`, { to: 'bom.example' }],
  ['entities in attribute values', `<stream:stream to='a&amp;b' from="&quot;q&quot;&lt;&gt;&apos;">`, { to: 'a&b', from: `"q"<>'` }],
  ['the first of a repeated attribute wins', `<stream:stream to='one.example' to='two.example'>`, { to: 'one.example' }],
  ['an IDN domain in UTF-8', `<stream:stream to='bücher.example'>`, { to: 'bücher.example' }],
  ['an element closed at once', `<stream:stream to='self.example'/>`, { to: 'self.example' }],
];

const NOT_MINE: readonly (readonly [string, Buffer])[] = [
  ['a TLS ClientHello', hello],
  ['an HTTP request', Buffer.from('GET / HTTP/1.1\r\nHost: example.com\r\n\r\n')],
  ['an SSH banner', Buffer.from('SSH-2.0-OpenSSH_9.6p1\r\n')],
  ['garbage', Buffer.from([0x00, 0xff, 0x13, 0x37])],
  ['HTML', Buffer.from('<html><body>')],
  ['another element with attributes', Buffer.from("<message to='x'>")],
  ['stream:features is not a stream header', Buffer.from('<stream:features>')],
  ['a processing instruction that is not a declaration', Buffer.from('<?php echo 1; ?>')],
  ['a bare <?', Buffer.from('<?>')],
  ['a declaration followed by something else', Buffer.from("<?xml version='1.0'?>hello")],
  ['a stream header without > past the cap', Buffer.from(`<stream:stream to='${'a'.repeat(MAX_STREAM_OPEN_BYTES)}`)],
  ['a declaration without ?> past the cap', Buffer.from(`<?xml version='1.0' ${' '.repeat(MAX_STREAM_OPEN_BYTES)}`)],
  ['white space up to the cap', Buffer.from(' '.repeat(MAX_STREAM_OPEN_BYTES))],
  ['a declaration then white space up to the cap', Buffer.from(`<?xml version='1.0'?>${'\n'.repeat(MAX_STREAM_OPEN_BYTES)}`)],
  ['an element name still arriving at the cap', Buffer.from(`<${'a'.repeat(MAX_STREAM_OPEN_BYTES)}`)],
];

const NEED_MORE: readonly string[] = ['', ' ', '\n', '<', '<?', '<?x', '<?xml', "<?xml version='1.0'", "<?xml version='1.0'?>", "<?xml version='1.0'?> ", '<s', '<stream', '<stream:', '<stream:str', '<stream:stream', "<stream:stream to='a"];

t.test('case table: hand-written stream headers', (t) => {
  for (const [name, text, want] of HEADERS) t.same(parseStreamOpen(Buffer.from(text)), { kind: 'match', value: want }, name);
  t.end();
});

t.test('case table: not an XMPP stream', (t) => {
  for (const [name, bytes] of NOT_MINE) t.equal(parseStreamOpen(bytes).kind, 'not-mine', name);
  t.end();
});

t.test('case table: need-more', (t) => {
  for (const text of NEED_MORE) t.equal(parseStreamOpen(Buffer.from(text)).kind, 'need-more', JSON.stringify(text));
  t.end();
});

t.test('maxBytes: a header that fits matches, one byte more is not-mine', (t) => {
  const header = Buffer.from(`<stream:stream to='cap.example'>`);
  t.same(parseStreamOpen(header, header.length), { kind: 'match', value: { to: 'cap.example' } }, 'exactly at the cap');
  t.equal(parseStreamOpen(header, header.length - 1).kind, 'not-mine', 'one byte over the cap');
  t.same(parseStreamOpen(Buffer.concat([header, Buffer.from('<auth/>')]), header.length), parseStreamOpen(header), 'what follows the header does not count');
  t.end();
});

t.test('split at every offset: need-more until the >, then the same match', (t) => {
  for (const [name, text] of HEADERS) {
    const bytes = Buffer.from(text);
    const want = parseStreamOpen(bytes);
    let firstBad: string | undefined;
    for (let i = 0; i < bytes.length && firstBad === undefined; i++) {
      const got = parseStreamOpen(bytes.subarray(0, i));
      if (got.kind !== 'need-more') firstBad = `at ${String(i)}: ${JSON.stringify(got)}`;
    }
    t.equal(firstBad, undefined, `${name}: need-more at every shorter prefix`);
    t.ok(same(parseStreamOpen(Buffer.concat([bytes, Buffer.from('<starttls/>')])), want), `${name}: what follows changes nothing`);
  }
  t.end();
});

t.test('properties', (t) => {
  const kinds = ['need-more', 'not-mine', 'match'];
  const anyHeader = fc.constantFrom(...HEADERS.map(([, text]) => Buffer.from(text)));
  // Pieces of stream headers, so generated inputs get past the first `<`.
  const piece = fc.constantFrom('<', '>', '?', '<?xml', "version='1.0'", '?>', ' ', '\n', 'stream', ':', '<stream:stream', "to='x.example'", 'to="y"', '=', "'", '"', '&amp;', '/', 'xmlns', 'é', '\uFEFF');
  const xmlish = fc.array(piece, { maxLength: 30 }).map((ps) => Buffer.from(ps.join('')));

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)), xmlish), fc.integer({ min: 1, max: 300 }), (bytes, maxBytes) => {
        const got = parseStreamOpen(bytes, maxBytes);
        return kinds.includes(got.kind) && !(got.kind === 'need-more' && bytes.length >= maxBytes);
      }),
      { numRuns: 3_000 },
    );
  }, 'random and XML-ish bytes never throw, and at the cap the answer is never need-more');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(xmlish, (bytes) => {
        const full = parseStreamOpen(bytes);
        if (full.kind !== 'match') return true;
        for (let i = 0; i < bytes.length; i++) {
          const got = parseStreamOpen(bytes.subarray(0, i));
          if (got.kind === 'not-mine' || (got.kind === 'match' && !same(got, full))) return false;
        }
        return true;
      }),
      { numRuns: 2_000 },
    );
  }, 'a prefix of a matching XML-ish input is need-more or the same match, never not-mine or a different match');

  t.doesNotThrow(() => {
    fc.assert(fc.property(anyHeader, fc.uint8Array({ maxLength: 200 }), (header, junk) => same(parseStreamOpen(Buffer.concat([header, junk])), parseStreamOpen(header))));
  }, 'junk appended after a complete header does not change the value');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(anyHeader, fc.nat(), fc.integer({ min: 0, max: 255 }), (header, at, byte) => {
        // The stream header has no length fields; its framing is `<`, quotes and `>`.
        const copy = Buffer.from(header);
        copy[at % copy.length] = byte;
        return kinds.includes(parseStreamOpen(copy).kind);
      }),
      { numRuns: 1_000 },
    );
  }, 'a corrupted byte never throws');
  t.end();
});
