import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import t from 'tap';
import {
  captureHelloRetryFlight,
  capturePlainHello,
  captureTls12TicketResumption,
  captureTls13Resumption,
  frameHandshake,
  handshakeStream,
  reframeHandshake,
} from '../../fixtures/client-hellos.js';
import { HANDSHAKE_WALK_START, scanHandshake, walkHandshake, walkRecords, type HandshakeMessage, type HandshakeScan, type HandshakeWalk } from '../../lib/wire/tls/record.js';
import { seedFastCheck } from '../helpers/fc-seed.js';

seedFastCheck({ numRuns: 200 });

const MAX = 64 * 1024;
const hex = (h: string): Buffer => Buffer.from(h.replace(/\s/g, ''), 'hex');

const [plain, tls12, tls13, helloRetry] = await Promise.all([capturePlainHello(), captureTls12TicketResumption(), captureTls13Resumption(), captureHelloRetryFlight()]);

/** Message types in order, for readable assertions (RFC 8446 §4 / RFC 5246 §7.4 numbering). */
const types = (scan: HandshakeScan): number[] => scan.messages.map((m) => m.type);

/** The messages of a scan as comparable plain data. */
const plainMessages = (messages: readonly HandshakeMessage[]): [number, string][] => messages.map((m) => [m.type, m.body.toString('hex')]);

/** Each capture with the handshake messages it must yield and the status after all of it. */
const FLIGHTS: readonly { name: string; bytes: Buffer; types: number[]; status: HandshakeScan['status'] }[] = [
  { name: 'ClientHello', bytes: plain, types: [1], status: 'more' },
  // ClientHello, then ClientKeyExchange (16) in its own record, then ChangeCipherSpec.
  { name: 'TLS 1.2 client flight', bytes: tls12.fullHello, types: [1, 16], status: 'end' },
  // ServerHello, Certificate, ServerKeyExchange, ServerHelloDone, NewSessionTicket, then CCS.
  { name: 'TLS 1.2 server flight', bytes: tls12.fullFlight, types: [2, 11, 12, 14, 4], status: 'end' },
  { name: 'TLS 1.2 resumed server flight', bytes: tls12.resumedFlight, types: [2], status: 'end' },
  // TLS 1.3 encrypts everything after the ServerHello; the compatibility CCS ends the scan.
  { name: 'TLS 1.3 server flight', bytes: tls13.fullFlight, types: [2], status: 'end' },
  { name: 'HelloRetryRequest flight', bytes: helloRetry, types: [2], status: 'end' },
];

t.test('case table: captured flights', (t) => {
  for (const f of FLIGHTS) {
    const scan = scanHandshake(f.bytes, MAX);
    t.same(types(scan), f.types, `${f.name}: message types`);
    t.equal(scan.status, f.status, `${f.name}: status`);
    t.equal(scan.reason, undefined, `${f.name}: no reason`);
    const stream = handshakeStream(f.bytes);
    const total = scan.messages.reduce((n, m) => n + 4 + m.body.length, 0);
    t.equal(total, stream.length, `${f.name}: the messages account for every handshake byte`);
  }
  t.end();
});

t.test('case table: framing edge cases', (t) => {
  const cases: [string, Buffer, HandshakeScan['status'], number[], string?][] = [
    ['nothing', Buffer.alloc(0), 'more', []],
    ['a partial header', hex('1603'), 'more', []],
    ['two messages in one record', hex('16 0303 000a 0e000000 0e000002 abcd'), 'more', [14, 14]],
    ['a message split over two records', hex('16 0303 0003 0e0000 16 0303 0003 02abcd'), 'more', [14]],
    ['a message cut short', hex('16 0303 0006 0e000004 abcd'), 'more', []],
    ['a record still arriving', hex('16 0303 0010 0e000000'), 'more', [14]],
    ['SSL 3.0 record version', hex('16 0300 0004 0e000000'), 'more', [14]],
    ['TLS 1.3 record version', hex('16 0304 0004 0e000000'), 'more', [14]],
    ['alert after a message', hex('16 0303 0004 0e000000 15 0303 0002 0228'), 'end', [14]],
    ['application data first', hex('17 0303 0001 00'), 'not-tls', [], 'first byte is not a handshake record'],
    ['SSLv2 hello', hex('80 2e 01 0301'), 'not-tls', [], 'first byte is not a handshake record'],
    ['version major 2', hex('16 02'), 'not-tls', [], 'record version major is not 3'],
    ['version minor 5', hex('16 0305'), 'not-tls', [], 'record version minor above 4'],
    ['zero-length record (RFC 8446 §5.1 forbids it)', hex('16 0303 0000'), 'not-tls', [], 'record length out of range'],
    ['record over 2^14 + 2048', hex('16 0303 4801'), 'not-tls', [], 'record length out of range'],
    ['record of exactly 2^14 + 2048 still arriving', hex('16 0303 4800 0e'), 'more', []],
    ['bad second record after a message', hex('16 0303 0004 0e000000 16 0205'), 'not-tls', [14], 'record version major is not 3'],
  ];
  for (const [name, bytes, status, want, reason] of cases) {
    const scan = scanHandshake(bytes, MAX);
    t.equal(scan.status, status, `${name}: status`);
    t.same(types(scan), want, `${name}: messages`);
    t.equal(scan.reason, reason, `${name}: reason`);
  }
  t.end();
});

t.test('maxBytes bounds the handshake payload', (t) => {
  const twoMessages = hex('16 0303 000a 0e000000 0e000002 abcd');
  t.same(scanHandshake(twoMessages, 10), { messages: scanHandshake(twoMessages, MAX).messages, status: 'more' }, 'exactly at the cap');
  const over = scanHandshake(twoMessages, 9);
  t.equal(over.status, 'too-large', 'a record that pushes the payload over the cap');
  t.equal(over.reason, 'handshake exceeds 9 bytes');
  t.same(types(over), [], 'nothing from a record past the cap');
  const inSecond = scanHandshake(hex('16 0303 0004 0e000000 16 0303 0004 0e000000'), 6);
  t.same([inSecond.status, types(inSecond)], ['too-large', [14]], 'the messages before the cap are kept');
  const claims = scanHandshake(hex('16 0303 0004 01010000'), 1024);
  t.same([claims.status, claims.reason, types(claims)], ['too-large', 'handshake message of 65536 bytes', []], 'a message header claiming more than the cap');
  t.end();
});

t.test('split at every offset: a prefix of the message list, then all of it', (t) => {
  for (const f of FLIGHTS) {
    const want = plainMessages(scanHandshake(f.bytes, MAX).messages);
    for (const [how, bytes] of [
      ['as captured', f.bytes],
      ['one byte per record', Buffer.concat([reframeHandshake(f.bytes, 1), f.bytes.subarray(recordsLength(f.bytes))])],
    ] as const) {
      let firstBad: string | undefined;
      for (let i = 0; i <= bytes.length && firstBad === undefined; i++) {
        const scan = scanHandshake(bytes.subarray(0, i), MAX);
        const got = plainMessages(scan.messages);
        const isPrefix = got.every((m, k) => JSON.stringify(m) === JSON.stringify(want[k]));
        const wantStatus = i > recordsLength(bytes) ? f.status : 'more';
        if (!isPrefix || scan.status !== wantStatus) firstBad = `at ${String(i)}: ${scan.status}, ${String(got.length)} messages`;
      }
      t.equal(firstBad, undefined, `${f.name}, ${how}`);
      t.same(plainMessages(scanHandshake(bytes, MAX).messages), want, `${f.name}, ${how}: every message at the end`);
    }
  }
  t.end();
});

/** Bytes taken by the leading handshake records of `bytes`. */
function recordsLength(bytes: Buffer): number {
  let at = 0;
  while (bytes.length >= at + 5 && bytes[at] === 22) at += 5 + bytes.readUInt16BE(at + 3);
  return Math.min(at, bytes.length);
}

t.test('properties', (t) => {
  const statuses = ['more', 'end', 'not-tls', 'too-large'];
  const anyFlight = fc.constantFrom(...FLIGHTS.map((f) => f.bytes));

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1_024 }), fc.integer({ min: 0, max: 2_048 }), (bytes, maxBytes) => {
        const scan = scanHandshake(Buffer.from(bytes), maxBytes);
        const payload = scan.messages.reduce((n, m) => n + 4 + m.body.length, 0);
        return statuses.includes(scan.status) && payload <= maxBytes;
      }),
    );
  }, 'random bytes never throw, and the messages never exceed the cap');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { maxLength: 8 }), (parts) => {
        // Records with valid headers around random contents, so the message layer is exercised.
        const bytes = Buffer.concat(parts.map((p) => frameHandshake(Buffer.from(p), 0xffff)));
        const scan = scanHandshake(bytes, MAX);
        return scan.status === 'more' || scan.status === 'too-large';
      }),
    );
  }, 'well-framed records of random contents are never not-tls');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(anyFlight, fc.array(fc.integer({ min: 1, max: 2_000 }), { minLength: 1, maxLength: 10 }), (flight, sizes) => {
        const reframed = Buffer.concat([reframeHandshake(flight, sizes), flight.subarray(recordsLength(flight))]);
        return JSON.stringify(plainMessages(scanHandshake(reframed, MAX).messages)) === JSON.stringify(plainMessages(scanHandshake(flight, MAX).messages));
      }),
    );
  }, 'any re-framing yields the same messages');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(anyFlight, fc.nat(), fc.nat({ max: 0xffff }), (flight, pick, value) => {
        const starts: number[] = [];
        for (let at = 0; at < recordsLength(flight); at += 5 + flight.readUInt16BE(at + 3)) starts.push(at);
        const copy = Buffer.from(flight);
        copy.writeUInt16BE(value, starts[pick % starts.length]! + 3);
        return statuses.includes(scanHandshake(copy, MAX).status);
      }),
      { numRuns: 1_000 },
    );
  }, 'a corrupted record length never throws');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(anyFlight, fc.uint8Array({ maxLength: 200 }), (flight, junk) => {
        const complete = flight.subarray(0, recordsLength(flight));
        const before = plainMessages(scanHandshake(complete, MAX).messages);
        const after = plainMessages(scanHandshake(Buffer.concat([complete, junk]), MAX).messages);
        return before.every((m, k) => JSON.stringify(m) === JSON.stringify(after[k]));
      }),
    );
  }, 'bytes appended after complete records never take a message away');
  t.end();
});

/** Whether scanHandshake can answer: a message, or a status other than `more`. */
const scanReady = (b: Buffer, max: number): boolean => {
  const scan = scanHandshake(b, max);
  return scan.messages.length > 0 || scan.status !== 'more';
};

/** walkHandshake over `bytes` grown through `cuts` (ascending lengths); the ready flag after each. */
function walkThrough(bytes: Buffer, cuts: readonly number[], max: number): { readonly at: number; readonly walk: HandshakeWalk }[] {
  let walk = HANDSHAKE_WALK_START;
  return cuts.map((at) => {
    walk = walkHandshake(bytes.subarray(0, at), walk, max);
    return { at, walk };
  });
}

const WALK_CASES: readonly [string, Buffer, number][] = [
  ...FLIGHTS.map((f): [string, Buffer, number] => [f.name, f.bytes, MAX]),
  ['a ClientHello in 1-byte records', reframeHandshake(plain, 1), MAX],
  ['a ClientHello in 40-byte records', reframeHandshake(plain, 40), MAX],
  ['a message over maxBytes', hex('16 0303 0008 01001000 00000000'), 64],
  ['payload over maxBytes before the message ends', hex('16 0303 0010 01000006 0000000000000000'), 8],
  ['a bad record after one still short of a message', hex('16 0303 0002 0100 15 0303 0002 0228'), MAX],
  ['zero-length record', hex('16 0303 0000'), MAX],
  ['version major 2', hex('16 02'), MAX],
  ['version minor 5', hex('16 0305'), MAX],
  ['not a handshake record', hex('17 0303 0001 00'), MAX],
];

t.test('walkHandshake: ready exactly when scanHandshake can answer, byte by byte', (t) => {
  for (const [name, bytes, max] of WALK_CASES) {
    const cuts = Array.from({ length: bytes.length + 1 }, (_, i) => i);
    const bad = walkThrough(bytes, cuts, max).find(({ at, walk }) => walk.ready !== scanReady(bytes.subarray(0, at), max));
    t.equal(bad?.at, undefined, `${name}: agrees at every length`);
  }
  t.end();
});

t.test('walkHandshake: once ready it stays ready, and resumes where it stopped', (t) => {
  const whole = walkHandshake(plain, HANDSHAKE_WALK_START, MAX);
  t.ok(whole.ready, 'a whole ClientHello is ready');
  t.equal(walkHandshake(plain, whole, MAX), whole, 'a ready walk is returned as is');
  const records = reframeHandshake(plain, 100);
  const mid = walkHandshake(records.subarray(0, 250), HANDSHAKE_WALK_START, MAX);
  t.equal(mid.pos, 210, 'stopped at the third record, the first not yet complete');
  t.equal(mid.payload, 200);
  t.equal(mid.head.length, 4, 'the message header is known');
  t.end();
});

t.test('walkHandshake: any split of real flights agrees with a one-shot scan', (t) => {
  const flights = fc.constantFrom(...WALK_CASES.map(([, b, max]) => [b, max] as const));
  t.doesNotThrow(() => {
    fc.assert(
      fc.property(flights, fc.array(fc.nat(), { maxLength: 12 }), ([bytes, max], picks) => {
        const cuts = [...new Set(picks.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
        cuts.push(bytes.length);
        return walkThrough(bytes, cuts, max).every(({ at, walk }) => walk.ready === scanReady(bytes.subarray(0, at), max));
      }),
    );
  });
  t.doesNotThrow(() => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat({ max: 64 }), (raw, cut) => {
        const b = Buffer.concat([hex('16 03'), Buffer.from(raw)]);
        const at = Math.min(cut, b.length);
        const [first, second] = walkThrough(b, [at, b.length], 32);
        return first?.walk.ready === scanReady(b.subarray(0, at), 32) && second?.walk.ready === scanReady(b, 32);
      }),
    );
  }, 'random record streams agree too');
  t.end();
});

t.test('walkRecords: over complete handshake records only, reading headers', (t) => {
  const rec = (type: number, body: number): Buffer => Buffer.concat([Buffer.from([type, 3, 3, body >> 8, body & 0xff]), Buffer.alloc(body, 1)]);
  const two = Buffer.concat([rec(22, 3), rec(22, 300)]);
  t.same(walkRecords(Buffer.alloc(0), 0), { end: 0, need: 1, other: false }, 'nothing yet: the type byte first');
  t.same(walkRecords(two.subarray(0, 2), 0), { end: 0, need: 5, other: false }, 'a partial header');
  t.same(walkRecords(two.subarray(0, 7), 0), { end: 0, need: 8, other: false }, 'a partial body');
  t.same(walkRecords(two.subarray(0, 8), 0), { end: 8, need: 9, other: false }, 'one complete record');
  t.same(walkRecords(two, 0), { end: two.length, need: two.length + 1, other: false }, 'both');
  t.same(walkRecords(two, 8), walkRecords(two, 0), 'from the last end: the same');
  const then = Buffer.concat([two, rec(20, 1)]);
  t.same(walkRecords(then, 0), { end: two.length, need: two.length + 5, other: true }, 'a ChangeCipherSpec ends the walk');
  t.same(walkRecords(Buffer.from([0x16, 3, 3, 0]), 0), { end: 0, need: 5, other: false });
  t.same(walkRecords(Buffer.from([0x48]), 0), { end: 0, need: 5, other: true }, 'not a handshake record at all');
  t.end();
});
