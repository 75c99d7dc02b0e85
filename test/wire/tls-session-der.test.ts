import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import tls from 'node:tls';
import fc from 'fast-check';
import t from 'tap';
import { generatePki } from '../../fixtures/pki.js';
import { ticketFromSession } from '../../lib/wire/tls/session-der.js';
import { seedFastCheck } from '../helpers/fc-seed.js';

seedFastCheck({ numRuns: 500 });

/** Node's ticketKeys: key_name(16) HMAC secret(16) AES key(16); OpenSSL puts key_name first in every ticket. */
const TICKET_KEYS = randomBytes(48);
const KEY_NAME = TICKET_KEYS.subarray(0, 16);

/**
 * A real serialized session (the client's first 'session' event) from a handshake with a
 * node:tls server that issues tickets under TICKET_KEYS.
 */
async function captureSession(maxVersion: tls.SecureVersion): Promise<Buffer> {
  const pki = await generatePki();
  const server = tls.createServer({ key: pki.key, cert: pki.cert, ticketKeys: TICKET_KEYS }, (s) => {
    s.on('error', () => undefined); // the client hangs up as soon as it has its session
    s.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const client = tls.connect({ host: '127.0.0.1', port, ca: pki.ca, servername: 'localhost', maxVersion });
  client.on('error', () => undefined);
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('no session within 5 s')); }, 5_000);
      client.once('session', (session: Buffer) => {
        clearTimeout(timer);
        resolve(session);
      });
      client.resume();
    });
  } finally {
    client.destroy();
    await new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
    });
  }
}

const [session12, session13] = await Promise.all([captureSession('TLSv1.2'), captureSession('TLSv1.3')]);
const SESSIONS = [
  ['TLS 1.2', session12],
  ['TLS 1.3', session13],
] as const;

/** DER tag-length-value, short or long form length. */
function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let length: Buffer;
  if (n < 0x80) length = Buffer.from([n]);
  else if (n < 0x100) length = Buffer.from([0x81, n]);
  else length = Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, content]);
}
const seq = (...fields: Buffer[]): Buffer => tlv(0x30, Buffer.concat(fields));
const int = (v: number): Buffer => tlv(0x02, Buffer.from([v]));
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const ticketField = (inner: Buffer): Buffer => tlv(0xaa, inner);

t.test('a real session holds the ticket, which starts with the ticketKeys key_name', (t) => {
  for (const [name, session] of SESSIONS) {
    const ticket = ticketFromSession(session);
    t.ok(ticket, `${name}: a ticket`);
    t.ok(ticket && ticket.length >= 48, `${name}: RFC 5077 §4 layout length`);
    t.ok(ticket?.subarray(0, 16).equals(KEY_NAME), `${name}: starts with the 16-byte key name`);
  }
  t.end();
});

t.test('hand-built DER: the [10] ticket field, wherever it sits', (t) => {
  const ticket = Buffer.alloc(200, 7);
  t.same(ticketFromSession(seq(int(1), ticketField(octets(ticket)))), ticket, 'after other fields, long-form lengths');
  t.same(ticketFromSession(seq(ticketField(octets(Buffer.from('ab'))), int(2))), Buffer.from('ab'), 'first field, short form');
  t.same(ticketFromSession(seq(int(1), tlv(0xa9, octets(Buffer.from('no'))), ticketField(octets(Buffer.from('yes'))))), Buffer.from('yes'), 'not the [9] field');
  t.end();
});

t.test('no ticket, garbage or truncated DER: undefined, never a throw', (t) => {
  const cases: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from([0x30])],
    ['not a SEQUENCE', tlv(0x31, int(1))],
    ['a SEQUENCE without a ticket', seq(int(1), int(2), octets(Buffer.from('x')))],
    ['an empty ticket', seq(ticketField(octets(Buffer.alloc(0))))],
    ['a ticket field holding an INTEGER', seq(ticketField(int(5)))],
    ['an empty ticket field', seq(ticketField(Buffer.alloc(0)))],
    ['indefinite length (not DER)', Buffer.from([0x30, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00])],
    ['a length of five bytes', Buffer.from([0x30, 0x85, 0, 0, 0, 0, 1, 0])],
    ['a length longer than the input', Buffer.from([0x30, 0x82, 0xff, 0xff, 0x02, 0x01, 0x01])],
    ['a field overrunning its SEQUENCE', Buffer.concat([Buffer.from([0x30, 0x03]), Buffer.from([0xaa, 0x10, 0x04])])],
    ['a ticket field overrunning its own length', seq(Buffer.from([0xaa, 0x02, 0x04, 0x05, 0x01, 0x02]))],
    ['random bytes', randomBytes(64)],
  ];
  for (const [name, der] of cases) t.equal(ticketFromSession(der), undefined, name);
  for (const [name, session] of SESSIONS) {
    let firstBad: string | undefined;
    for (let i = 0; i < session.length && firstBad === undefined; i++) {
      const got = ticketFromSession(session.subarray(0, i));
      if (got !== undefined) firstBad = `at ${String(i)}`;
    }
    t.equal(firstBad, undefined, `${name}: every truncation is undefined`);
  }
  t.end();
});

t.test('properties', (t) => {
  t.doesNotThrow(() => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        const der = Buffer.from(bytes);
        const got = ticketFromSession(der);
        // A ticket is always a non-empty slice of the input.
        return got === undefined || (got.length > 0 && der.includes(got));
      }),
    );
  }, 'random bytes never throw');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(fc.constantFrom(session12, session13), fc.nat(), fc.integer({ min: 0, max: 255 }), (session, at, byte) => {
        const copy = Buffer.from(session);
        copy[at % copy.length] = byte;
        const got = ticketFromSession(copy);
        return got === undefined || (got.length > 0 && copy.includes(got));
      }),
      { numRuns: 2_000 },
    );
  }, 'a corrupted byte in a real session never throws');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 5 }), fc.uint8Array({ minLength: 1, maxLength: 300 }), (others, ticket) => {
        const fields = others.map((o, i) => tlv(0xa0 + (i % 10), octets(Buffer.from(o))));
        const der = seq(int(1), ...fields, ticketField(octets(Buffer.from(ticket))));
        return ticketFromSession(der)?.equals(Buffer.from(ticket)) ?? false;
      }),
    );
  }, 'a ticket after any other fields is found');
  t.end();
});
