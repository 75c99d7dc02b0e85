import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import t from 'tap';
import {
  captureHelloRetryFlight,
  capturePlainHello,
  captureTls12SessionIdResumption,
  captureTls12TicketResumption,
  captureTls13Resumption,
  frameHandshake,
  handshakeStream,
  reframeHandshake,
} from '../../fixtures/client-hellos.js';
import type { Parse } from '../../lib/wire/parse.js';
import { parseClientHello } from '../../lib/wire/tls/client-hello.js';
import { MAX_SERVER_FLIGHT_BYTES, TLS13, parseServerFlight, parseServerHelloBody, type ServerFlight } from '../../lib/wire/tls/server-hello.js';
import { seedFastCheck } from '../helpers/fc-seed.js';

seedFastCheck({ numRuns: 200 });

const TLS12 = 0x0303;
const hex = (h: string): Buffer => Buffer.from(h.replace(/\s/g, ''), 'hex');
/** A handshake message of `type` around `body`, in one record. */
const record = (type: number, body: Buffer): Buffer => frameHandshake(Buffer.concat([Buffer.from([type, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]), body]), 0xffff);

const [ticket, sessionId, tls13, helloRetry, clientHello] = await Promise.all([
  captureTls12TicketResumption(),
  captureTls12SessionIdResumption(),
  captureTls13Resumption(),
  captureHelloRetryFlight(),
  capturePlainHello(),
]);

const FLIGHTS: readonly (readonly [string, Buffer])[] = [
  ['TLS 1.2 full, ticket issued', ticket.fullFlight],
  ['TLS 1.2 resumed by ticket', ticket.resumedFlight],
  ['TLS 1.2 full, session id', sessionId.fullFlight],
  ['TLS 1.2 resumed by session id', sessionId.resumedFlight],
  ['TLS 1.3 full', tls13.fullFlight],
  ['TLS 1.3 resumed by PSK', tls13.resumedFlight],
  ['TLS 1.3 HelloRetryRequest', helloRetry],
];

function valueOf(p: Parse<ServerFlight>): ServerFlight {
  if (p.kind !== 'match') throw new Error(`expected a match, got ${JSON.stringify(p)}`);
  return p.value;
}

function helloSessionId(bytes: Buffer): string {
  const p = parseClientHello(bytes);
  if (p.kind !== 'match') throw new Error('fixture ClientHello does not parse');
  return p.value.sessionId;
}

/** Bytes taken by the leading handshake records of `bytes`. */
function recordsLength(bytes: Buffer): number {
  let at = 0;
  while (bytes.length >= at + 5 && bytes[at] === 22) at += 5 + bytes.readUInt16BE(at + 3);
  return Math.min(at, bytes.length);
}

/** The length of the ServerHello's record prefix: the bytes needed before it can match. */
function serverHelloEnd(bytes: Buffer): number {
  const messageLength = 4 + handshakeStream(bytes).readUIntBE(1, 3);
  let at = 0;
  let seen = 0;
  while (seen < messageLength) {
    const length = bytes.readUInt16BE(at + 3);
    const need = messageLength - seen;
    if (need <= length) return at + 5 + need;
    seen += length;
    at += 5 + length;
  }
  return at;
}

function isWellFormed(f: ServerFlight): boolean {
  const h = f.hello;
  return (
    Number.isInteger(h.version) &&
    /^([0-9a-f]{2}){0,32}$/.test(h.sessionId) &&
    (h.selectedIdentity === undefined || Number.isInteger(h.selectedIdentity)) &&
    typeof h.helloRetry === 'boolean' &&
    f.newTickets.every((b) => Buffer.isBuffer(b) && b.length > 0) &&
    typeof f.complete === 'boolean'
  );
}

t.test('case table: captured server flights', (t) => {
  const cases: [string, Buffer, Partial<ServerFlight['hello']>, { tickets: Buffer[]; sessionIdBytes: number }][] = [
    // With tickets on, OpenSSL answers a full TLS 1.2 handshake with an empty session id and
    // a NewSessionTicket (RFC 5077 §3.4): there is no id to learn, the ticket is the key.
    ['TLS 1.2 full, ticket issued', ticket.fullFlight, { version: TLS12, sessionId: '', helloRetry: false }, { tickets: ticket.ticket ? [ticket.ticket] : [], sessionIdBytes: 0 }],
    // Resuming by ticket, the server echoes the session id the client made up (RFC 5077 §3.4).
    ['TLS 1.2 resumed by ticket', ticket.resumedFlight, { version: TLS12, sessionId: helloSessionId(ticket.resumedToServer) }, { tickets: [], sessionIdBytes: 32 }],
    ['TLS 1.2 full, session id', sessionId.fullFlight, { version: TLS12, sessionId: helloSessionId(sessionId.resumedHello) }, { tickets: [], sessionIdBytes: 32 }],
    ['TLS 1.2 resumed by session id', sessionId.resumedFlight, { version: TLS12, sessionId: helloSessionId(sessionId.resumedHello) }, { tickets: [], sessionIdBytes: 32 }],
    // TLS 1.3 echoes the client's random legacy_session_id (RFC 8446 §4.1.3): nothing to learn.
    ['TLS 1.3 full', tls13.fullFlight, { version: TLS13, sessionId: helloSessionId(tls13.fullHello), helloRetry: false }, { tickets: [], sessionIdBytes: 32 }],
    ['TLS 1.3 resumed by PSK', tls13.resumedFlight, { version: TLS13, sessionId: helloSessionId(tls13.resumedToServer), selectedIdentity: 0 }, { tickets: [], sessionIdBytes: 32 }],
    ['TLS 1.3 HelloRetryRequest', helloRetry, { version: TLS13, helloRetry: true }, { tickets: [], sessionIdBytes: 32 }],
  ];
  t.ok(ticket.ticket, 'the fixture client holds a ticket');
  for (const [name, bytes, hello, { tickets, sessionIdBytes }] of cases) {
    const got = valueOf(parseServerFlight(bytes));
    t.match(got.hello, hello, `${name}: hello`);
    t.equal(got.hello.sessionId.length, 2 * sessionIdBytes, `${name}: ${String(sessionIdBytes)}-byte session id`);
    if (!('selectedIdentity' in hello)) t.equal(got.hello.selectedIdentity, undefined, `${name}: no selected identity`);
    t.same(got.newTickets, tickets, `${name}: tickets`);
    t.equal(got.complete, true, `${name}: complete (a non-handshake record follows)`);
    t.ok(isWellFormed(got), `${name}: well-formed`);
  }
  t.end();
});

t.test('case table: not a ServerHello', (t) => {
  const notMine: [string, Buffer][] = [
    ['a ClientHello', clientHello],
    ['an HTTP response', Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n')],
    ['an SSH banner', Buffer.from('SSH-2.0-OpenSSH_9.6\r\n')],
    ['an SMTP greeting', Buffer.from('220 mail.example.com ESMTP\r\n')],
    ['a handshake_failure alert', hex('15 0303 0002 0228')],
    ['garbage', hex('00ff1337')],
    ['CCS before any handshake message', hex('16 0303 0004 02000010 14 0303 0001 01')],
    ['a ServerHello body too short', record(2, hex('03030000'))],
    ['a session id of 33 bytes', record(2, Buffer.concat([hex('0303'), Buffer.alloc(32), hex('21'), Buffer.alloc(33), hex('1301 00')]))],
    ['extensions longer than the body', record(2, Buffer.concat([hex('0303'), Buffer.alloc(32), hex('00 1301 00 00ff')]))],
    ['an extension header cut short', record(2, Buffer.concat([hex('0303'), Buffer.alloc(32), hex('00 1301 00 0001 00')]))],
    ['a handshake message over the cap', hex('16 0303 0004 02100000')],
  ];
  for (const [name, bytes] of notMine) t.equal(parseServerFlight(bytes).kind, 'not-mine', name);
  const needMore: [string, Buffer][] = [
    ['nothing', Buffer.alloc(0)],
    ['a record header', hex('16 0303 0100')],
    ['half a ServerHello', ticket.fullFlight.subarray(0, 40)],
  ];
  for (const [name, bytes] of needMore) t.equal(parseServerFlight(bytes).kind, 'need-more', name);
  t.end();
});

t.test('case table: hand-built ServerHello bodies', (t) => {
  /** A ServerHello body; `extensions` is the list's contents, undefined for no list at all. */
  const body = (extensions: string | undefined, sid = ''): Buffer => {
    const sidBytes = hex(sid);
    const parts = [hex('0303'), Buffer.alloc(32, 9), Buffer.from([sidBytes.length]), sidBytes, hex('c02f 00')];
    if (extensions === undefined) return Buffer.concat(parts);
    const exts = hex(extensions);
    return Buffer.concat([...parts, Buffer.from([exts.length >> 8, exts.length & 0xff]), exts]);
  };
  t.same(parseServerHelloBody(body(undefined)), { kind: 'match', value: { version: TLS12, sessionId: '', helloRetry: false } }, 'no extensions at all (TLS 1.0 style)');
  t.same(parseServerHelloBody(body('')), { kind: 'match', value: { version: TLS12, sessionId: '', helloRetry: false } }, 'an empty extension list');
  t.same(parseServerHelloBody(body('002b 0002 0304 0029 0002 0001', 'abcd')), { kind: 'match', value: { version: TLS13, sessionId: 'abcd', selectedIdentity: 1, helloRetry: false } }, 'version and selected identity');
  t.same(parseServerHelloBody(body('002b 0000')), { kind: 'match', value: { version: TLS12, sessionId: '', helloRetry: false } }, 'an empty supported_versions keeps legacy_version');
  t.same(parseServerHelloBody(body('ff01 0001 00')), { kind: 'match', value: { version: TLS12, sessionId: '', helloRetry: false } }, 'renegotiation_info is skipped');

  const ticketFlight = Buffer.concat([
    record(2, body(undefined)),
    record(4, hex('00001c20 0004 c0ffee00')),
    record(4, hex('00001c20 0000')),
    record(14, Buffer.alloc(0)),
  ]);
  t.same(valueOf(parseServerFlight(ticketFlight)).newTickets, [hex('c0ffee00')], 'NewSessionTicket tickets are collected; an empty one (RFC 5077 §3.3) is not');
  t.equal(valueOf(parseServerFlight(ticketFlight)).complete, false, 'not complete while only handshake records have come');
  t.end();
});

t.test('split at every offset: need-more until the ServerHello is complete, then the same hello', (t) => {
  for (const [name, flight] of FLIGHTS) {
    const final = valueOf(parseServerFlight(flight));
    const onePerRecord = Buffer.concat([reframeHandshake(flight, 1), flight.subarray(recordsLength(flight))]);
    for (const [how, bytes] of [
      ['as captured', flight],
      ['one byte per record', onePerRecord],
      ['two records', Buffer.concat([reframeHandshake(flight, [30]), flight.subarray(recordsLength(flight))])],
    ] as const) {
      const helloEnd = serverHelloEnd(bytes);
      const handshakeEnd = recordsLength(bytes);
      let firstBad: string | undefined;
      let tickets = 0;
      for (let i = 0; i <= bytes.length && firstBad === undefined; i++) {
        const got = parseServerFlight(bytes.subarray(0, i));
        if (i < helloEnd) {
          if (got.kind !== 'need-more') firstBad = `at ${String(i)}: ${got.kind}`;
          continue;
        }
        if (got.kind !== 'match') {
          firstBad = `at ${String(i)}: ${got.kind}`;
          continue;
        }
        const v = got.value;
        if (JSON.stringify(v.hello) !== JSON.stringify(final.hello)) firstBad = `at ${String(i)}: a different hello`;
        else if (v.complete !== i > handshakeEnd) firstBad = `at ${String(i)}: complete is ${String(v.complete)}`;
        else if (v.newTickets.length < tickets || !v.newTickets.every((b, k) => b.equals(final.newTickets[k]!))) firstBad = `at ${String(i)}: tickets went back or differ`;
        tickets = v.newTickets.length;
      }
      t.equal(firstBad, undefined, `${name}, ${how}`);
      t.same(parseServerFlight(bytes), parseServerFlight(flight), `${name}, ${how}: the same match at the end`);
    }
  }
  t.end();
});

t.test('properties', (t) => {
  const anyFlight = fc.constantFrom(...FLIGHTS.map(([, b]) => b));
  const same = (a: Parse<ServerFlight>, b: Parse<ServerFlight>): boolean => JSON.stringify(a) === JSON.stringify(b);

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1_024 }), (bytes) => {
        const got = parseServerFlight(Buffer.from(bytes));
        return got.kind !== 'match' || isWellFormed(got.value);
      }),
    );
  }, 'random bytes never throw');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 35, maxLength: 300 }), (body) => {
        const message = Buffer.concat([hex('02000000'), Buffer.from(body)]);
        message.writeUIntBE(body.length, 1, 3);
        const got = parseServerFlight(frameHandshake(message, 0xffff));
        return got.kind === 'not-mine' || (got.kind === 'match' && isWellFormed(got.value));
      }),
    );
  }, 'random ServerHello bodies in valid framing never throw and never need more');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(anyFlight, fc.double({ min: 0, max: 1, noNaN: true }), (flight, at) => {
        const got = parseServerFlight(flight.subarray(0, Math.floor(at * flight.length)));
        const final = parseServerFlight(flight);
        return got.kind === 'need-more' || (got.kind === 'match' && final.kind === 'match' && JSON.stringify(got.value.hello) === JSON.stringify(final.value.hello));
      }),
    );
  }, 'a truncated flight never gives a different hello');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(anyFlight, fc.uint8Array({ maxLength: 300 }), (flight, junk) => same(parseServerFlight(Buffer.concat([flight, junk])), parseServerFlight(flight))),
    );
  }, 'junk appended after a complete flight does not change the value');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(anyFlight, fc.nat(), fc.nat({ max: 0xffffff }), (flight, pick, value) => {
        // Record length (u16), handshake length (u24), session id length (u8), extensions
        // length (u16) of the ServerHello, all in the first record.
        const fields: [number, 1 | 2 | 3][] = [[3, 2], [6, 3], [9 + 34, 1]];
        const sidLength = flight.readUInt8(9 + 34);
        fields.push([9 + 34 + 1 + sidLength + 3, 2]);
        const [offset, width] = fields[pick % fields.length]!;
        const copy = Buffer.from(flight);
        copy.writeUIntBE(value % 2 ** (8 * width), offset, width);
        const got = parseServerFlight(copy);
        return got.kind !== 'match' || isWellFormed(got.value);
      }),
      { numRuns: 1_000 },
    );
  }, 'a corrupted length field gives not-mine, need-more or a well-formed match; never a throw');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(anyFlight, fc.array(fc.integer({ min: 1, max: 3_000 }), { minLength: 1, maxLength: 10 }), (flight, sizes) =>
        same(parseServerFlight(Buffer.concat([reframeHandshake(flight, sizes), flight.subarray(recordsLength(flight))])), parseServerFlight(flight)),
      ),
    );
  }, 'any re-framing gives the same match');
  t.end();
});

t.test('a flight bigger than the cap is not-mine', (t) => {
  const flight = ticket.fullFlight;
  t.equal(parseServerFlight(flight, 100).kind, 'match', 'the ServerHello fits in 100 bytes');
  t.equal(parseServerFlight(flight, 60).kind, 'not-mine', 'the ServerHello does not fit in 60 bytes');
  t.equal(MAX_SERVER_FLIGHT_BYTES, 64 * 1024);
  const huge = frameHandshake(Buffer.concat([hex('02020000'), Buffer.alloc(0x20000)]), 16_384);
  t.equal(parseServerFlight(huge.subarray(0, 9)).kind, 'not-mine', '128 KiB ServerHello, from its header');
  t.end();
});
