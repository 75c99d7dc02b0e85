import { Buffer } from 'node:buffer';
import t from 'tap';
import {
  captureHelloRetryFlight,
  captureTls12SessionIdResumption,
  captureTls12TicketResumption,
  captureTls13Resumption,
  handshakeStream,
} from '../../fixtures/client-hellos.js';
import { responseHeadRewriter, tlsWatcher } from '../../lib/splice/watch.js';
import { MAX_REQUEST_HEAD_BYTES } from '../../lib/wire/http/request-head.js';
import { parseClientHello, type ClientHello } from '../../lib/wire/tls/client-hello.js';
import { parseServerFlight } from '../../lib/wire/tls/server-hello.js';

const [ticket12, session12, tls13, helloRetry] = await Promise.all([
  captureTls12TicketResumption(),
  captureTls12SessionIdResumption(),
  captureTls13Resumption(),
  captureHelloRetryFlight(),
]);

type Pins = [string, string][];
const BOTH = { session: true, ticket: true };

function helloOf(bytes: Buffer): ClientHello {
  const p = parseClientHello(bytes);
  if (p.kind !== 'match') throw new Error('fixture ClientHello does not parse');
  return p.value;
}

/**
 * The ServerHello's session id, read straight from the flight (not through lib/): handshake
 * header(4) legacy_version(2) random(32) then session_id<0..32>.
 */
function serverSessionId(flight: Buffer): string {
  const hs = handshakeStream(flight);
  const length = hs.readUInt8(4 + 2 + 32);
  return hs.subarray(4 + 2 + 32 + 1, 4 + 2 + 32 + 1 + length).toString('hex');
}

/** Offset of the first handshake record that starts with a NewSessionTicket (type 4). */
function newSessionTicketAt(flight: Buffer): number | undefined {
  for (let at = 0; at + 5 <= flight.length; at += 5 + flight.readUInt16BE(at + 3)) {
    if (flight[at] === 22 && flight[at + 5] === 4) return at;
  }
  return undefined;
}

const keyName = (ticket: Buffer | undefined): string => {
  if (!ticket) throw new Error('the fixture client holds no ticket');
  return ticket.subarray(0, 16).toString('hex');
};

/** Feeds the whole flight at once; returns the pins and whether the learner stopped watching. */
function learnWhole(hello: ClientHello, flight: Buffer, want = BOTH): { pins: Pins; stopped: boolean } {
  const pins: Pins = [];
  const learn = tlsWatcher(hello, want, (kind, value) => pins.push([kind, value]));
  return { pins, stopped: learn(flight) };
}

/** Feeds the flight as splice does: the accumulated bytes after each of `cuts`, until it stops. */
function learnAccumulated(hello: ClientHello, flight: Buffer, cuts: readonly number[], want = BOTH): { pins: Pins; stopped: boolean } {
  const pins: Pins = [];
  const learn = tlsWatcher(hello, want, (kind, value) => pins.push([kind, value]));
  for (const cut of [...cuts, flight.length]) {
    if (learn(flight.subarray(0, cut))) return { pins, stopped: true };
  }
  return { pins, stopped: false };
}

interface FlightCase {
  readonly name: string;
  readonly hello: ClientHello;
  readonly flight: Buffer;
  readonly pins: Pins;
}

const CASES: readonly FlightCase[] = [
  {
    name: 'TLS 1.2 full handshake, session id (tickets off): pins the tls-session id',
    hello: helloOf(session12.fullHello),
    flight: session12.fullFlight,
    pins: [['tls-session', serverSessionId(session12.fullFlight)]],
  },
  {
    name: 'TLS 1.2 resumed by session id: pins the same id',
    hello: helloOf(session12.resumedToServer),
    flight: session12.resumedFlight,
    pins: [['tls-session', serverSessionId(session12.fullFlight)]],
  },
  {
    // OpenSSL answers a ticket-capable client with an empty session id and a NewSessionTicket.
    name: 'TLS 1.2 full handshake issuing a ticket: pins the NewSessionTicket key_name',
    hello: helloOf(ticket12.fullHello),
    flight: ticket12.fullFlight,
    pins: [['tls-ticket', keyName(ticket12.ticket)]],
  },
  {
    // The server accepts the ticket and echoes the client's session id (RFC 5077 §3.4).
    name: 'TLS 1.2 resumed by ticket: pins the echoed id and the accepted ticket key_name',
    hello: helloOf(ticket12.resumedToServer),
    flight: ticket12.resumedFlight,
    pins: [
      ['tls-session', serverSessionId(ticket12.resumedFlight)],
      ['tls-ticket', keyName(ticket12.ticket)],
    ],
  },
  {
    // legacy_session_id_echo is the client's random value (RFC 8446 §4.1.3); tickets are encrypted.
    name: 'TLS 1.3 full handshake: pins nothing',
    hello: helloOf(tls13.fullHello),
    flight: tls13.fullFlight,
    pins: [],
  },
  {
    name: 'TLS 1.3 resumed by PSK: pins the selected identity key_name',
    hello: helloOf(tls13.resumedToServer),
    flight: tls13.resumedFlight,
    pins: [['tls-ticket', keyName(tls13.ticket)]],
  },
  {
    name: 'TLS 1.3 HelloRetryRequest: pins nothing',
    hello: helloOf(tls13.fullHello),
    flight: helloRetry,
    pins: [],
  },
];

t.test('the fixtures are what the cases assume', (t) => {
  t.ok(ticket12.isSessionReused && session12.isSessionReused && tls13.isSessionReused, 'every resumption was accepted');
  t.equal(serverSessionId(ticket12.fullFlight), '', 'ticket-issuing TLS 1.2 ServerHello has an empty session id');
  t.equal(serverSessionId(session12.fullFlight).length, 64, 'a 32-byte TLS 1.2 session id');
  t.end();
});

t.test('captured flights: what each pins, and it stops watching', (t) => {
  for (const c of CASES) {
    const got = learnWhole(c.hello, c.flight);
    t.same(got.pins, c.pins, c.name);
    t.equal(got.stopped, true, `${c.name}: stops`);
  }
  t.end();
});

t.test('only the kinds asked for are pinned', (t) => {
  const resumed = CASES[3]!;
  t.same(learnWhole(resumed.hello, resumed.flight, { session: true, ticket: false }).pins, [resumed.pins[0]], 'session only');
  t.same(learnWhole(resumed.hello, resumed.flight, { session: false, ticket: true }).pins, [resumed.pins[1]], 'ticket only');
  const psk = CASES[5]!;
  t.same(learnWhole(psk.hello, psk.flight, { session: true, ticket: false }).pins, [], 'TLS 1.3 with session only: nothing');
  t.end();
});

t.test('a TLS 1.3 PSK is pinned only if the client offered that identity', (t) => {
  const psk = CASES[5]!;
  t.same(learnWhole({ ...psk.hello, pskIdentities: [] }, psk.flight).pins, [], 'selected index out of range');
  t.same(learnWhole({ ...psk.hello, pskIdentities: [Buffer.alloc(47, 1)] }, psk.flight).pins, [], 'an identity without a key_name');
  t.end();
});

t.test('a TLS 1.2 ticket resumption pins the ticket only when the server echoed the session id', (t) => {
  const resumed = CASES[3]!;
  const other = { ...resumed.hello, sessionId: '00'.repeat(32) };
  t.same(learnWhole(other, resumed.flight, { session: false, ticket: true }).pins, [], 'a full handshake, not a resumption');
  t.end();
});

t.test('TLS 1.2 with tickets: the first flight alone keeps the learner watching', (t) => {
  const full = CASES[2]!;
  const nst = newSessionTicketAt(full.flight);
  t.ok(nst, 'the fixture flight has a NewSessionTicket record');
  const pins: Pins = [];
  const learn = tlsWatcher(full.hello, BOTH, (kind, value) => pins.push([kind, value]));
  t.equal(learn(full.flight.subarray(0, nst)), false, 'ServerHello … ServerHelloDone: keep watching');
  t.same(pins, []);
  t.equal(learn(full.flight), true, 'the ticket and ChangeCipherSpec: done');
  t.same(pins, full.pins);
  t.end();
});

t.test('split at every offset: the same pins, each once', (t) => {
  for (const c of CASES) {
    let firstBad: string | undefined;
    for (let i = 0; i <= c.flight.length && firstBad === undefined; i++) {
      const got = learnAccumulated(c.hello, c.flight, [i]);
      if (JSON.stringify(got.pins) !== JSON.stringify(c.pins) || !got.stopped) firstBad = `split at ${String(i)}: ${JSON.stringify(got)}`;
    }
    t.equal(firstBad, undefined, c.name);
    const byteByByte = learnAccumulated(
      c.hello,
      c.flight,
      Array.from({ length: c.flight.length }, (_, i) => i + 1),
    );
    t.same(byteByByte.pins, c.pins, `${c.name}: one byte at a time`);
  }
  t.end();
});

t.test('the same flight fed twice pins once', (t) => {
  const c = CASES[3]!;
  const pins: Pins = [];
  const learn = tlsWatcher(c.hello, BOTH, (kind, value) => pins.push([kind, value]));
  learn(c.flight);
  learn(c.flight);
  t.same(pins, c.pins);
  t.end();
});

t.test('a backend that does not speak TLS: stops at once, pins nothing', (t) => {
  const hello = helloOf(ticket12.fullHello);
  for (const [name, bytes] of [
    ['an HTTP response', Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')],
    ['an SSH banner', Buffer.from('SSH-2.0-OpenSSH_9.6\r\n')],
    ['a TLS alert', Buffer.from('150303000202 28'.replace(/\s/g, ''), 'hex')],
    ['one byte of junk', Buffer.from([0x00])],
  ] as const) {
    const got = learnWhole(hello, bytes);
    t.same(got, { pins: [], stopped: true }, name);
  }
  t.end();
});

const HEAD = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: SID=abc.a; Path=/; Secure\r\nSet-Cookie: other=1\r\nSet-Cookie: EMPTY=\r\nContent-Length: 5\r\n\r\n';
const BODY = 'hello';
const STATUS_LINE = 'HTTP/1.1 200 OK\r\n';

type Rewritten = { done: false } | { done: true; out: Buffer };

function rewrite(learn: readonly string[], insert: { name: string; value: string } | undefined, bytes: Buffer): { result: Rewritten; pins: Pins } {
  const pins: Pins = [];
  const result = responseHeadRewriter(learn, insert, (kind, value) => pins.push([kind, value]))(bytes);
  return { result, pins };
}

const outOf = (r: Rewritten): Buffer => {
  if (!r.done) throw new Error('expected done');
  return r.out;
};

t.test('responseHeadRewriter learns the Set-Cookie names it was asked for', (t) => {
  const bytes = Buffer.from(HEAD + BODY);
  const { result, pins } = rewrite(['SID'], undefined, bytes);
  t.same(pins, [['http-cookie:SID', 'abc.a']], 'only SID');
  t.equal(outOf(result), bytes, 'without insert the bytes pass untouched');
  t.same(rewrite(['SID', 'other', 'EMPTY', 'absent'], undefined, bytes).pins, [['http-cookie:SID', 'abc.a'], ['http-cookie:other', '1']], 'empty and absent values are not pinned');
  t.same(rewrite(['sid'], undefined, bytes).pins, [], 'names are case-sensitive');
  t.end();
});

t.test('responseHeadRewriter inserts its cookie right after the status line, rest byte-exact', (t) => {
  const bytes = Buffer.from(HEAD + BODY);
  const { result, pins } = rewrite([], { name: 'tether', value: 'b' }, bytes);
  t.same(pins, []);
  const want = STATUS_LINE + 'Set-Cookie: tether=b; Path=/; HttpOnly\r\n' + HEAD.slice(STATUS_LINE.length) + BODY;
  t.equal(outOf(result).toString('latin1'), want);
  const lf = Buffer.from('HTTP/1.0 302 Found\nLocation: /x\n\n\x00\xff');
  t.ok(
    outOf(rewrite([], { name: 'c', value: 'v' }, lf).result).equals(Buffer.concat([Buffer.from('HTTP/1.0 302 Found\nSet-Cookie: c=v; Path=/; HttpOnly\r\n'), lf.subarray(19)])),
    'bare LF heads too, and binary body bytes are kept',
  );
  t.end();
});

t.test('responseHeadRewriter needs more until the head is complete, then the same output', (t) => {
  const bytes = Buffer.from(HEAD + BODY);
  const headLength = HEAD.length;
  const whole = rewrite(['SID'], { name: 'tether', value: 'a' }, bytes);
  let firstBad: string | undefined;
  for (let i = 0; i < headLength && firstBad === undefined; i++) {
    const got = rewrite(['SID'], { name: 'tether', value: 'a' }, bytes.subarray(0, i));
    if (got.result.done || got.pins.length > 0) firstBad = `at ${String(i)}`;
  }
  t.equal(firstBad, undefined, 'need-more (and no pins) at every shorter prefix');
  const exact = rewrite(['SID'], { name: 'tether', value: 'a' }, bytes.subarray(0, headLength));
  t.same(exact.pins, whole.pins);
  t.equal(outOf(exact.result).toString('latin1') + BODY, outOf(whole.result).toString('latin1'), 'the head alone, then the body, is the same output');
  t.end();
});

t.test('responseHeadRewriter passes anything else through unchanged', (t) => {
  for (const [name, bytes] of [
    ['a TLS record', Buffer.from('160303002a02', 'hex')],
    ['an SSH banner', Buffer.from('SSH-2.0-OpenSSH_9.6\r\n')],
    ['an HTTP/2 response (not 1.x)', Buffer.from('HTTP/2 200\r\n\r\n')],
    ['a malformed status line', Buffer.from('HTTP/1.1 OK\r\n\r\n')],
  ] as const) {
    const { result, pins } = rewrite(['SID'], { name: 'tether', value: 'a' }, bytes);
    t.equal(outOf(result), bytes, name);
    t.same(pins, [], `${name}: no pins`);
  }
  t.end();
});

t.test('responseHeadRewriter passes an over-cap head through unchanged', (t) => {
  const huge = Buffer.from(`HTTP/1.1 200 OK\r\nSet-Cookie: SID=x\r\n${'X-Pad: 0123456789abcdef\r\n'.repeat(MAX_REQUEST_HEAD_BYTES / 16)}`);
  t.ok(huge.length > MAX_REQUEST_HEAD_BYTES);
  const { result, pins } = rewrite(['SID'], { name: 'tether', value: 'a' }, huge);
  t.equal(outOf(result), huge);
  t.same(pins, []);
  const below = huge.subarray(0, MAX_REQUEST_HEAD_BYTES - 1);
  t.same(rewrite(['SID'], undefined, below).result, { done: false }, 'one byte below the cap still waits');
  t.end();
});

t.test('a flight trickled one byte at a time: parsing work stays O(n), the pins are the same', (t) => {
  // A 64 KiB flight: each captured flight's handshake records, then padding handshake records
  // (a long certificate chain, as far as the learner knows), then what followed them.
  for (const c of CASES) {
    let hsEnd = 0;
    while (hsEnd + 5 <= c.flight.length && c.flight[hsEnd] === 22) hsEnd += 5 + c.flight.readUInt16BE(hsEnd + 3);
    const pad: Buffer[] = [];
    for (let n = hsEnd; n < 64 * 1024 - 16_389; n += 16_389) pad.push(Buffer.concat([Buffer.from([22, 3, 3, 0x40, 0]), Buffer.alloc(16_384, 0)]));
    const flight = Buffer.concat([c.flight.subarray(0, hsEnd), ...pad, c.flight.subarray(hsEnd)]);
    let calls = 0;
    let parsed = 0;
    const pins: Pins = [];
    const learn = tlsWatcher(c.hello, BOTH, (kind, value) => pins.push([kind, value]), (bytes, max) => {
      calls++;
      parsed += bytes.length;
      return parseServerFlight(bytes, max);
    });
    let stopped = false;
    for (let i = 1; i <= flight.length && !stopped; i++) stopped = learn(flight.subarray(0, i));
    t.ok(stopped, `${c.name}: stops`);
    t.same(pins, c.pins, `${c.name}: the same pins as the whole flight`);
    t.ok(parsed <= 4 * flight.length, `${c.name}: ${String(calls)} parses over ${String(parsed)} bytes for a ${String(flight.length)}-byte flight`);
  }
  t.end();
});
