import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import t from 'tap';
import {
  ALPN_PROTOCOLS,
  SNI_NAME,
  captureAlpnHello,
  capturePlainHello,
  captureSniHello,
  captureTls12Hello,
  captureTls12SessionIdResumption,
  captureTls12TicketResumption,
  captureTls13Flight,
  captureTls13Resumption,
  frameHandshake,
  handshakeStream,
  reframeHandshake,
} from '../../fixtures/client-hellos.js';
import type { Parse } from '../../lib/wire/parse.js';
import { MAX_CLIENT_HELLO_BYTES, parseClientHello, parseClientHelloBody, type ClientHello } from '../../lib/wire/tls/client-hello.js';
import { seedFastCheck } from '../helpers/fc-seed.js';

seedFastCheck({ numRuns: 200 });

const TLS13 = 0x0304;
const TLS12 = 0x0303;
/** Node 20's defaults: minVersion TLSv1.2, maxVersion TLSv1.3, highest first. */
const NODE_DEFAULT_VERSIONS = [TLS13, TLS12];

const [plain, sni, alpn, tls12, ticketResumption, sessionIdResumption, tls13Resumption, tls13Flight] = await Promise.all([
  capturePlainHello(),
  captureSniHello(),
  captureAlpnHello(),
  captureTls12Hello(),
  captureTls12TicketResumption(),
  captureTls12SessionIdResumption(),
  captureTls13Resumption(),
  captureTls13Flight(),
]);

/** Every captured ClientHello, each in the single record node:tls sent it in. */
const HELLOS: readonly (readonly [string, Buffer])[] = [
  ['plain', plain],
  ['sni', sni],
  ['alpn', alpn],
  ['tls12', tls12],
  ['tls12 resumed by ticket', ticketResumption.resumedHello],
  ['tls12 resumed by session id', sessionIdResumption.resumedHello],
  ['tls13 resumed by psk', tls13Resumption.resumedHello],
];

function valueOf(p: Parse<ClientHello>): ClientHello {
  if (p.kind !== 'match') throw new Error(`expected a match, got ${JSON.stringify(p)}`);
  return p.value;
}

/** The session id a TLS 1.2 ServerHello chose, read straight from the server's first record. */
function serverHelloSessionId(flight: Buffer): string {
  const body = handshakeStream(flight).subarray(4);
  const at = 2 + 32;
  return body.subarray(at + 1, at + 1 + (body[at] ?? 0)).toString('hex');
}

/** A ClientHello message around `body`, in one record. */
function clientHelloRecord(body: Buffer): Buffer {
  return frameHandshake(Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 0xff]), body]), 0xffff);
}

const HOST_NAME = /^[a-z0-9_][a-z0-9_-]{0,62}(\.[a-z0-9_][a-z0-9_-]{0,62})*$/;

/** What every match must look like, whatever bytes produced it. */
function isWellFormed(h: ClientHello): boolean {
  return (
    Number.isInteger(h.legacyVersion) &&
    /^([0-9a-f]{2}){0,32}$/.test(h.sessionId) &&
    (h.sni === undefined || (h.sni.length <= 253 && HOST_NAME.test(h.sni))) &&
    h.alpn.every((p) => typeof p === 'string' && p.length <= 255) &&
    h.supportedVersions.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffff) &&
    (h.ticket === undefined || (Buffer.isBuffer(h.ticket) && h.ticket.length > 0)) &&
    h.pskIdentities.every((id) => Buffer.isBuffer(id))
  );
}

interface LengthField {
  readonly name: string;
  readonly offset: number;
  readonly width: 1 | 2 | 3;
}

/**
 * The offsets of the length fields of a single-record ClientHello, found by walking it
 * independently of the parser: record, handshake, session id, suites, compression,
 * extensions, each extension, and the inner lists of SNI, ALPN, supported_versions and PSK.
 */
function lengthFields(record: Buffer): LengthField[] {
  const fields: LengthField[] = [
    { name: 'record', offset: 3, width: 2 },
    { name: 'handshake', offset: 6, width: 3 },
  ];
  let at = 9 + 2 + 32;
  fields.push({ name: 'session id', offset: at, width: 1 });
  at += 1 + record.readUInt8(at);
  fields.push({ name: 'cipher suites', offset: at, width: 2 });
  at += 2 + record.readUInt16BE(at);
  fields.push({ name: 'compression', offset: at, width: 1 });
  at += 1 + record.readUInt8(at);
  fields.push({ name: 'extensions', offset: at, width: 2 });
  const end = at + 2 + record.readUInt16BE(at);
  at += 2;
  while (at < end) {
    const type = record.readUInt16BE(at);
    const length = record.readUInt16BE(at + 2);
    fields.push({ name: `extension ${String(type)}`, offset: at + 2, width: 2 });
    const data = at + 4;
    if (type === 0) {
      fields.push({ name: 'server_name list', offset: data, width: 2 }, { name: 'host_name', offset: data + 3, width: 2 });
    } else if (type === 16) {
      fields.push({ name: 'alpn list', offset: data, width: 2 }, { name: 'alpn first', offset: data + 2, width: 1 });
    } else if (type === 43) {
      fields.push({ name: 'supported_versions list', offset: data, width: 1 });
    } else if (type === 41) {
      fields.push({ name: 'psk identities', offset: data, width: 2 }, { name: 'psk first identity', offset: data + 2, width: 2 });
      const identities = record.readUInt16BE(data);
      fields.push({ name: 'psk binders', offset: data + 2 + identities, width: 2 });
    }
    at = data + length;
  }
  return fields;
}

function withLength(record: Buffer, field: LengthField, value: number): Buffer {
  const copy = Buffer.from(record);
  copy.writeUIntBE(value % 2 ** (8 * field.width), field.offset, field.width);
  return copy;
}

/**
 * The hello with a padding extension (type 21, RFC 7685) of `padBytes` zero bytes appended and
 * every enclosing length fixed, as one handshake message; re-framed into records of at most
 * 16 KiB, as a client with a big (post-quantum) key share would send it.
 */
function padded(record: Buffer, padBytes: number): Buffer {
  const message = handshakeStream(record);
  let at = 4 + 2 + 32;
  at += 1 + message.readUInt8(at);
  at += 2 + message.readUInt16BE(at);
  at += 1 + message.readUInt8(at);
  const extensionsAt = at;
  const extension = Buffer.alloc(4 + padBytes);
  extension.writeUInt16BE(21, 0);
  extension.writeUInt16BE(padBytes, 2);
  const grown = Buffer.concat([message, extension]);
  grown.writeUInt16BE(message.readUInt16BE(extensionsAt) + extension.length, extensionsAt);
  grown.writeUIntBE(grown.length - 4, 1, 3);
  return frameHandshake(grown, 16_384);
}

t.test('case table: captured hellos from this Node', (t) => {
  const ticketHello = valueOf(parseClientHello(ticketResumption.resumedHello));
  const sessionIdHello = valueOf(parseClientHello(sessionIdResumption.resumedHello));
  const pskHello = valueOf(parseClientHello(tls13Resumption.resumedHello));
  const cases: { name: string; bytes: Buffer; want: Partial<ClientHello>; sessionIdBytes: number; pskCount: number }[] = [
    { name: 'plain (no SNI)', bytes: plain, want: { alpn: [], supportedVersions: NODE_DEFAULT_VERSIONS }, sessionIdBytes: 32, pskCount: 0 },
    { name: 'SNI', bytes: sni, want: { sni: SNI_NAME, alpn: [], supportedVersions: NODE_DEFAULT_VERSIONS }, sessionIdBytes: 32, pskCount: 0 },
    { name: 'ALPN', bytes: alpn, want: { sni: 'localhost', alpn: ALPN_PROTOCOLS, supportedVersions: NODE_DEFAULT_VERSIONS }, sessionIdBytes: 32, pskCount: 0 },
    // A TLS 1.2-only client has no middlebox-compatibility session id (RFC 8446 §D.4).
    { name: 'TLS 1.2 only', bytes: tls12, want: { sni: 'localhost', sessionId: '', supportedVersions: [] }, sessionIdBytes: 0, pskCount: 0 },
    { name: 'TLS 1.2 resumed by ticket', bytes: ticketResumption.resumedHello, want: { sni: 'localhost', supportedVersions: [] }, sessionIdBytes: 32, pskCount: 0 },
    { name: 'TLS 1.2 resumed by session id', bytes: sessionIdResumption.resumedHello, want: { sni: 'localhost', supportedVersions: [] }, sessionIdBytes: 32, pskCount: 0 },
    { name: 'TLS 1.3 resumed by PSK', bytes: tls13Resumption.resumedHello, want: { sni: 'localhost', supportedVersions: [TLS13] }, sessionIdBytes: 32, pskCount: 1 },
  ];
  for (const c of cases) {
    const got = valueOf(parseClientHello(c.bytes));
    t.match(got, c.want, c.name);
    t.equal(got.legacyVersion, TLS12, `${c.name}: legacy_version is TLS 1.2 (RFC 8446 §4.1.2)`);
    t.equal(got.sessionId.length, 2 * c.sessionIdBytes, `${c.name}: ${String(c.sessionIdBytes)}-byte session id`);
    t.equal(got.pskIdentities.length, c.pskCount, `${c.name}: psk identities`);
    if (!('sni' in c.want)) t.equal(got.sni, undefined, `${c.name}: no SNI`);
    t.ok(isWellFormed(got), `${c.name}: well-formed`);
  }
  t.equal(valueOf(parseClientHello(plain)).ticket, undefined, 'a fresh hello offers an empty session_ticket, reported as no ticket');

  t.ok(ticketResumption.ticket, 'the TLS 1.2 server issued a ticket');
  t.same(ticketHello.ticket, ticketResumption.ticket, 'the resumed TLS 1.2 hello carries the issued ticket');
  t.not(ticketHello.sessionId, '', 'OpenSSL sends a fresh session id with a ticket (RFC 5077 §3.4)');

  t.equal(sessionIdHello.ticket, undefined, 'no ticket when the server issued none');
  t.equal(sessionIdHello.sessionId, serverHelloSessionId(sessionIdResumption.fullFlight), 'the resumed hello offers the id the ServerHello chose');
  t.ok(sessionIdResumption.isSessionReused && ticketResumption.isSessionReused && tls13Resumption.isSessionReused, 'the real server resumed each session');

  t.same(pskHello.pskIdentities[0], tls13Resumption.ticket, 'the TLS 1.3 PSK identity is the ticket');
  t.equal(pskHello.ticket, undefined, 'TLS 1.3 resumption does not use the session_ticket extension');
  t.same(
    { ...valueOf(parseClientHello(tls13Resumption.resumedToServer)), sessionId: '' },
    { ...pskHello, sessionId: '' },
    'the hello sent to the real server is the same but for its random legacy session id',
  );
  t.same(parseClientHello(ticketResumption.fullHello), parseClientHello(tls12), 'the rest of the client flight does not change the hello');
  t.end();
});

t.test('case table: not a ClientHello', (t) => {
  const hex = (h: string): Buffer => Buffer.from(h.replace(/\s/g, ''), 'hex');
  const notMine: [string, Buffer][] = [
    // SSLv2-compatible CLIENT-HELLO (RFC 6101 §E.2), as very old clients sent: msb-set 2-byte length.
    ['SSLv2-style hello', hex('80 2e 01 0301 0015 0000 0010 070080 050080 030080 010080 080080 060040 040080 020080 0000')],
    ['HTTP request', Buffer.from('GET / HTTP/1.1\r\nHost: example.com\r\n\r\n')],
    ['SSH banner', Buffer.from('SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n')],
    ['XMPP stream', Buffer.from("<?xml version='1.0'?><stream:stream to='example.com'>")],
    ['garbage', Buffer.from('\x00\xff\x13\x37garbage')],
    ['TLS alert record', hex('15 0303 0002 0228')],
    ['application data record', hex('17 0303 0003 010203')],
    ['record version 2.0', hex('16 0200 0004 01000000')],
    ['record version 3.5', hex('16 0305 0004 01000000')],
    ['empty handshake record', hex('16 0301 0000')],
    ['record longer than 2^14+2048', hex('16 0301 4801')],
    ['a ServerHello flight', tls13Flight],
    ['handshake record then ChangeCipherSpec before the hello is complete', hex('16 0301 0004 01000100 14 0303 0001 01')],
    ['ClientHello body too short', clientHelloRecord(hex('03030000'))],
    ['session id of 33 bytes', clientHelloRecord(Buffer.concat([hex('0303'), Buffer.alloc(32), hex('21'), Buffer.alloc(33), hex('0002 1301 0100')]))],
    ['extension vector longer than the body', clientHelloRecord(Buffer.concat([hex('0303'), Buffer.alloc(32), hex('00 0002 1301 0100 00ff')]))],
    ['extension header cut short', clientHelloRecord(Buffer.concat([hex('0303'), Buffer.alloc(32), hex('00 0002 1301 0100 0001 00')]))],
  ];
  for (const [name, bytes] of notMine) t.equal(parseClientHello(bytes).kind, 'not-mine', name);

  const needMore: [string, Buffer][] = [
    ['nothing', Buffer.alloc(0)],
    ['content type only', hex('16')],
    ['content type and version major', hex('1603')],
    ['record header without length', hex('160301')],
    ['record header only', hex('1603010100')],
    ['handshake header only', hex('1603010100 010000fc')],
  ];
  for (const [name, bytes] of needMore) t.equal(parseClientHello(bytes).kind, 'need-more', name);
  t.end();
});

/** A ClientHello record built from `extensions` ([type, data] pairs) around fixed fields. */
function buildHello(extensions: readonly (readonly [number, Buffer])[], sessionId = Buffer.alloc(0)): Buffer {
  const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
  const exts = Buffer.concat(extensions.map(([type, data]) => Buffer.concat([u16(type), u16(data.length), data])));
  const body = Buffer.concat([u16(TLS12), Buffer.alloc(32, 1), Buffer.from([sessionId.length]), sessionId, u16(2), u16(0x1301), Buffer.from([1, 0]), u16(exts.length), exts]);
  return clientHelloRecord(body);
}

function sniExtension(...names: (readonly [number, string])[]): readonly [number, Buffer] {
  const entries = Buffer.concat(names.map(([type, name]) => Buffer.concat([Buffer.from([type, name.length >> 8, name.length & 0xff]), Buffer.from(name, 'latin1')])));
  return [0, Buffer.concat([Buffer.from([entries.length >> 8, entries.length & 0xff]), entries])];
}

t.test('case table: hand-built extensions', (t) => {
  const hex = (h: string): Buffer => Buffer.from(h.replace(/\s/g, ''), 'hex');
  const cases: [string, Buffer, { readonly [K in keyof ClientHello]?: ClientHello[K] | undefined }][] = [
    ['SNI is lower-cased and loses its trailing dot', buildHello([sniExtension([0, 'MAIL.Example.COM.'])]), { sni: 'mail.example.com' }],
    ['a host_name after an unknown name type', buildHello([sniExtension([7, 'ignored'], [0, 'b.example'])]), { sni: 'b.example' }],
    ['only an unknown name type', buildHello([sniExtension([7, 'x.example'])]), { sni: undefined }],
    ['SNI with a space is not a host name', buildHello([sniExtension([0, 'exa mple.com'])]), { sni: undefined }],
    ['SNI with an empty label', buildHello([sniExtension([0, 'a..example'])]), { sni: undefined }],
    ['SNI of 254 characters', buildHello([sniExtension([0, `${'a'.repeat(63)}.`.repeat(4).slice(0, 254)])]), { sni: undefined }],
    ['SNI with a label of 64 characters', buildHello([sniExtension([0, `${'a'.repeat(64)}.example`])]), { sni: undefined }],
    ['SNI whose name overruns its list', buildHello([[0, hex('0005 00 00ff 6162')]]), { sni: undefined }],
    ['empty ALPN list', buildHello([[16, hex('0000')]]), { alpn: [] }],
    ['ALPN cut short keeps the whole names before the cut', buildHello([[16, hex('0006 02 6832 05 6874')]]), { alpn: ['h2'] }],
    ['supported_versions with an odd byte ignores it', buildHello([[43, hex('03 0304 03')]]), { supportedVersions: [TLS13] }],
    ['the last of duplicated extensions wins', buildHello([[43, hex('02 0303')], [43, hex('02 0304')]]), { supportedVersions: [TLS13] }],
    ['an empty session_ticket is no ticket', buildHello([[35, Buffer.alloc(0)]]), { ticket: undefined }],
    ['a session_ticket', buildHello([[35, hex('c0ffee')]]), { ticket: hex('c0ffee') }],
    ['PSK identities, two', buildHello([[41, hex('0010 0002 aaaa 00000001 0002 bbbb 00000002 0000')]]), { pskIdentities: [hex('aaaa'), hex('bbbb')] }],
    ['a PSK identity without its age is dropped', buildHello([[41, hex('0008 0002 aaaa 0002 bbbb')]]), { pskIdentities: [hex('aaaa')] }],
    ['an unknown extension is skipped', buildHello([[0xfe0d, hex('0102')], sniExtension([0, 'c.example'])]), { sni: 'c.example' }],
    ['a 32-byte session id', buildHello([], Buffer.alloc(32, 0xab)), { sessionId: 'ab'.repeat(32) }],
  ];
  for (const [name, bytes, want] of cases) {
    const got = valueOf(parseClientHello(bytes));
    for (const [key, value] of Object.entries(want)) t.same(got[key as keyof ClientHello], value, `${name}: ${key}`);
    t.ok(isWellFormed(got), `${name}: well-formed`);
  }
  t.end();
});

t.test('a hello without extensions (pre-TLS 1.2 clients) has none of the extension facts', (t) => {
  const body = Buffer.concat([Buffer.from('0303', 'hex'), Buffer.alloc(32, 7), Buffer.from('00 0002 002f 0100'.replace(/\s/g, ''), 'hex')]);
  t.same(parseClientHelloBody(body), {
    kind: 'match',
    value: { legacyVersion: TLS12, sessionId: '', alpn: [], supportedVersions: [], pskIdentities: [] },
  });
  t.end();
});

t.test('split at every offset: need-more until complete, then the same match', (t) => {
  const framings = (bytes: Buffer): [string, Buffer][] => {
    const length = handshakeStream(bytes).length;
    return [
      ['one record', bytes],
      ['one byte per record', reframeHandshake(bytes, 1)],
      ['two records split in the middle', reframeHandshake(bytes, [Math.floor(length / 2)])],
      ['two records split after the handshake header', reframeHandshake(bytes, [4])],
      ['two records, the last holding one byte', reframeHandshake(bytes, [length - 1])],
    ];
  };
  for (const [name, hello] of HELLOS) {
    const want = parseClientHello(hello);
    for (const [how, bytes] of framings(hello)) {
      let firstBad: string | undefined;
      for (let i = 0; i < bytes.length && firstBad === undefined; i++) {
        const got = parseClientHello(bytes.subarray(0, i));
        if (got.kind !== 'need-more') firstBad = `at ${String(i)}: ${got.kind}`;
      }
      t.equal(firstBad, undefined, `${name}, ${how}: need-more at every shorter prefix`);
      t.same(parseClientHello(bytes), want, `${name}, ${how}: the same match when complete`);
    }
  }
  t.end();
});

t.test('a hello split over two records at any point gives the same match', (t) => {
  for (const [name, hello] of HELLOS) {
    const want = parseClientHello(hello);
    const length = handshakeStream(hello).length;
    let firstBad: number | undefined;
    for (let cut = 1; cut < length && firstBad === undefined; cut++) {
      if (JSON.stringify(parseClientHello(reframeHandshake(hello, [cut]))) !== JSON.stringify(want)) firstBad = cut;
    }
    t.equal(firstBad, undefined, name);
  }
  t.end();
});

t.test('big hellos: padded to post-quantum sizes they match; past the cap they are not-mine', (t) => {
  const base = valueOf(parseClientHello(sni));
  for (const padBytes of [1_400, 8_000, MAX_CLIENT_HELLO_BYTES - handshakeStream(sni).length - 8]) {
    const big = padded(sni, padBytes);
    t.same(valueOf(parseClientHello(big)), base, `${String(padBytes)} bytes of padding: same facts`);
    t.equal(parseClientHello(big.subarray(0, big.length - 1)).kind, 'need-more', `${String(padBytes)} bytes of padding: need-more one byte short`);
  }
  // One byte past the cap: every prefix long enough to show that is not-mine, never need-more.
  const over = padded(sni, MAX_CLIENT_HELLO_BYTES - handshakeStream(sni).length - 3);
  t.equal(handshakeStream(over).length, MAX_CLIENT_HELLO_BYTES + 1);
  const firstOver = 5 + 16_384 + 5 + 1; // the first byte of handshake payload past the cap
  t.equal(parseClientHello(over.subarray(0, firstOver - 1)).kind, 'need-more', 'need-more while the payload fits the cap');
  const pastCap = new Set<string>();
  for (let i = firstOver; i < over.length; i += 7) pastCap.add(parseClientHello(over.subarray(0, i)).kind);
  pastCap.add(parseClientHello(over).kind);
  t.same([...pastCap], ['not-mine'], 'not-mine from the first byte past the cap to the end');
  t.equal(parseClientHello(over, MAX_CLIENT_HELLO_BYTES + 1).kind, 'match', 'fits a raised cap');

  // 64 KiB claimed by the handshake header, carried in full-size records: not-mine as soon as
  // the header is seen, and at every later point (the peek cap never has to save us).
  const huge = frameHandshake(Buffer.concat([Buffer.from('01010000', 'hex'), Buffer.from('0303', 'hex'), Buffer.alloc(65_534)]), 16_384);
  t.equal(huge.length, 5 * 5 + 65_540, 'four full records and a short one');
  const kinds = new Set<string>();
  for (let i = 9; i < huge.length; i += 997) kinds.add(parseClientHello(huge.subarray(0, i)).kind);
  kinds.add(parseClientHello(huge).kind);
  t.same([...kinds], ['not-mine'], '64 KiB hello');
  t.equal(parseClientHello(Buffer.from('160301ffff', 'hex')).kind, 'not-mine', 'record length 0xffff');
  // Records that each claim the maximum length but stay short are need-more; once their bytes
  // add up past the cap the answer is not-mine.
  const claimsMax = Buffer.concat([Buffer.from('1603014800', 'hex'), Buffer.from('01003ffe', 'hex'), Buffer.alloc(18_000)]);
  t.equal(parseClientHello(claimsMax.subarray(0, 100)).kind, 'need-more', 'a long record still arriving');
  t.equal(parseClientHello(claimsMax).kind, 'not-mine', 'a long record past the cap');
  t.end();
});

t.test('properties', (t) => {
  const kinds = ['need-more', 'not-mine', 'match'];
  const anyHello = fc.constantFrom(...HELLOS.map(([, b]) => b));

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1_024 }), (bytes) => {
        const got = parseClientHello(Buffer.from(bytes));
        return kinds.includes(got.kind) && (got.kind !== 'match' || isWellFormed(got.value));
      }),
    );
  }, 'random bytes never throw');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 38, maxLength: 600 }), fc.integer({ min: 0, max: 3 }), (body, version) => {
        // A well-framed record and handshake header around random contents: exercises the
        // body parser rather than the framing.
        const message = Buffer.concat([Buffer.from([1, 0, 0, 0]), Buffer.from(body)]);
        message.writeUIntBE(body.length, 1, 3);
        const record = Buffer.concat([Buffer.from([22, 3, version, 0, 0]), message]);
        record.writeUInt16BE(message.length, 3);
        const got = parseClientHello(record);
        return got.kind === 'not-mine' || (got.kind === 'match' && isWellFormed(got.value));
      }),
    );
  }, 'random hello bodies in valid framing never throw and never need more');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(anyHello, fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 64 }), (hello, at, fragment) => {
        const bytes = reframeHandshake(hello, fragment);
        const got = parseClientHello(bytes.subarray(0, Math.floor(at * bytes.length)));
        return got.kind === 'need-more' || JSON.stringify(got) === JSON.stringify(parseClientHello(hello));
      }),
    );
  }, 'a truncated hello is never a different match');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(anyHello, fc.uint8Array({ maxLength: 300 }), (hello, junk) => {
        return JSON.stringify(parseClientHello(Buffer.concat([hello, junk]))) === JSON.stringify(parseClientHello(hello));
      }),
    );
  }, 'junk appended after a complete hello does not change the value');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(anyHello, fc.nat(), fc.nat({ max: 0xffffff }), (hello, pick, value) => {
        const fields = lengthFields(hello);
        const field = fields[pick % fields.length]!;
        const got = parseClientHello(withLength(hello, field, value));
        return got.kind !== 'match' || isWellFormed(got.value);
      }),
      { numRuns: 2_000 },
    );
  }, 'a corrupted length field gives not-mine, need-more or a well-formed match; never a throw');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 20 }), anyHello, (sizes, hello) => {
        return JSON.stringify(parseClientHello(reframeHandshake(hello, sizes))) === JSON.stringify(parseClientHello(hello));
      }),
    );
  }, 'any re-framing into records gives the same match');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(anyHello, fc.integer({ min: 1, max: 4_096 }), (hello, maxBytes) => {
        const length = handshakeStream(hello).length;
        const got = parseClientHello(hello, maxBytes);
        return length <= maxBytes ? got.kind === 'match' : got.kind === 'not-mine';
      }),
    );
  }, 'maxBytes caps the handshake bytes: a hello over it is not-mine, never need-more');
  t.end();
});

t.test('every length field of every capture is found by the test walker', (t) => {
  for (const [name, hello] of HELLOS) {
    const fields = lengthFields(hello);
    t.ok(fields.length >= 10, `${name}: ${String(fields.length)} length fields`);
  }
  t.end();
});
