// Stage 2a on real loopback sockets: peek() against a client socket accepted paused, as
// lib/accept/listen.ts accepts them.
import { Buffer } from 'node:buffer';
import net from 'node:net';
import t, { type Test } from 'tap';
import { SNI_NAME, captureSniHello } from '../../fixtures/client-hellos.js';
import { MAX_PRELUDE_BYTES } from '../../lib/config/defaults.js';
import { peek, type PeekLimits, type PeekResult } from '../../lib/peek/collect.js';

const hello = await captureSniHello();
const LONG_MS = 10_000;
const LIMITS: PeekLimits = { timeoutMs: LONG_MS, maxBytes: MAX_PRELUDE_BYTES };

interface Pair {
  /** tether's side: accepted paused, half-open capable. */
  readonly accepted: net.Socket;
  /** The client's side. */
  readonly client: net.Socket;
}

/** A connected pair on 127.0.0.1, closed in teardown. */
async function connectPair(t: Test): Promise<Pair> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const acceptedP = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect(port, '127.0.0.1');
  client.on('error', () => undefined); // resets are the point of some tests
  const accepted = await acceptedP;
  accepted.on('error', () => undefined); // peek records errors in its result; this only keeps them off the process
  t.teardown(() => {
    client.destroy();
    accepted.destroy();
    return new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
    });
  });
  return { accepted, client };
}

function ok(r: PeekResult): Extract<PeekResult, { ok: true }> {
  if (!r.ok) throw new Error(`expected ok, got ${JSON.stringify(r.termination)}`);
  return r;
}

/** Reads `socket` to its end (resuming it, as splice does) and returns every byte. */
function readToEnd(socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('end', () => {
      resolve(Buffer.concat(chunks));
    });
    socket.resume();
  });
}

const listeners = (s: net.Socket): number[] => ['data', 'end', 'error', 'close'].map((e) => s.listenerCount(e));

t.test('a whole ClientHello gives a tls verdict with its facts and bytes', async (t) => {
  const { accepted, client } = await connectPair(t);
  const before = listeners(accepted);
  client.write(hello);
  const r = ok(await peek(accepted, LIMITS));
  t.equal(r.stop, 'verdict');
  t.equal(r.facts.protocol, 'tls');
  t.equal(r.facts.tls?.sni, SNI_NAME);
  t.ok(Buffer.concat(r.prelude).equals(hello), 'the prelude is the hello');
  t.same(listeners(accepted), before, 'peek removed its listeners');
});

t.test('a hello arriving in two pieces still gives the verdict, with both pieces', async (t) => {
  const { accepted, client } = await connectPair(t);
  const result = peek(accepted, LIMITS);
  client.write(hello.subarray(0, 7), () => {
    setTimeout(() => client.write(hello.subarray(7)), 20);
  });
  const r = ok(await result);
  t.equal(r.stop, 'verdict');
  t.equal(r.facts.protocol, 'tls');
  t.ok(Buffer.concat(r.prelude).equals(hello));
});

t.test('a silent client: timeout, protocol unknown, no bytes, within bounds', async (t) => {
  const { accepted } = await connectPair(t);
  const timeoutMs = 150;
  const started = performance.now();
  const r = ok(await peek(accepted, { timeoutMs, maxBytes: MAX_PRELUDE_BYTES }));
  const tookMs = performance.now() - started;
  t.equal(r.stop, 'timeout');
  t.same(r.facts, { protocol: 'unknown' });
  t.same(r.prelude, []);
  t.ok(tookMs >= timeoutMs - 5, `not before the deadline (${tookMs.toFixed(0)} ms)`);
  t.ok(tookMs < timeoutMs + 1_000, `soon after the deadline (${tookMs.toFixed(0)} ms)`);
  t.ok(accepted.isPaused(), 'left paused');
});

t.test('a client that stops mid-prelude it started (TLS, HTTP, XMPP) is cut at the deadline, not passed on', async (t) => {
  const partials: readonly (readonly [string, Buffer, string])[] = [
    ['a TLS hello missing its last bytes', hello.subarray(0, hello.length - 10), 'tls'],
    ['a TLS record header', hello.subarray(0, 5), 'tls'],
    ['an HTTP head without its empty line', Buffer.from('GET / HTTP/1.1\r\nHost: a.example\r\n'), 'http'],
    ['an HTTP method and a space', Buffer.from('POST '), 'http'],
    ['an XMPP declaration', Buffer.from("<?xml version='1.0'?>"), 'xmpp'],
  ];
  for (const [name, partial, started] of partials) {
    const { accepted, client } = await connectPair(t);
    client.write(partial);
    const r = await peek(accepted, { timeoutMs: 150, maxBytes: MAX_PRELUDE_BYTES });
    t.same(r, { ok: false, termination: { cause: 'client-timeout', stage: 'peek', code: 'peek-timeout' }, started }, name);
  }
});

t.test('bytes no sniffer recognises are still passed on at the deadline, as unknown', async (t) => {
  // Each keeps some sniffer asking for more, yet none positively starts its protocol.
  for (const text of ['\x16', '\x16\x03', 'G', 'GET', 'XYZZY-PLUGH', '<', 'SSH']) {
    const { accepted, client } = await connectPair(t);
    const partial = Buffer.from(text, 'latin1');
    client.write(partial);
    const r = ok(await peek(accepted, { timeoutMs: 150, maxBytes: MAX_PRELUDE_BYTES }));
    t.equal(r.stop, 'timeout', `${JSON.stringify(text)}: timeout`);
    t.equal(r.facts.protocol, 'unknown');
    t.ok(Buffer.concat(r.prelude).equals(partial), 'the bytes are kept');
  }
});

t.test('a slow junk stream stops at the byte cap, before the deadline', async (t) => {
  const { accepted, client } = await connectPair(t);
  const maxBytes = 1_024;
  const chunkBytes = 100;
  // "GET /aaaa…" with no line end keeps the HTTP sniffer asking for more, so only the cap ends it.
  const sent: Buffer[] = [Buffer.from('GET /')];
  client.write(sent[0]!);
  const timer = setInterval(() => {
    const chunk = Buffer.alloc(chunkBytes, 'a');
    sent.push(chunk);
    client.write(chunk);
  }, 3);
  t.teardown(() => {
    clearInterval(timer);
  });
  const r = ok(await peek(accepted, { timeoutMs: LONG_MS, maxBytes }));
  clearInterval(timer);
  t.equal(r.stop, 'cap');
  t.equal(r.facts.protocol, 'unknown');
  const size = r.prelude.reduce((n, c) => n + c.length, 0);
  const last = r.prelude.at(-1)?.length ?? 0;
  t.ok(size >= maxBytes, `reached the cap (${String(size)} bytes)`);
  t.ok(size - last < maxBytes, 'stopped at the chunk that reached it');
  client.end();
  const rest = await readToEnd(accepted);
  t.ok(Buffer.concat([...r.prelude, rest]).equals(Buffer.concat(sent)), 'nothing lost past the cap');
});

t.test("the client's EOF ends peeking with the bytes it sent", async (t) => {
  const { accepted, client } = await connectPair(t);
  const partial = Buffer.from('GET / HTT');
  client.end(partial);
  const r = ok(await peek(accepted, LIMITS));
  t.equal(r.stop, 'eof');
  t.equal(r.facts.protocol, 'unknown');
  t.ok(Buffer.concat(r.prelude).equals(partial));
});

t.test("the client's EOF with nothing sent: eof, unknown, empty prelude", async (t) => {
  const { accepted, client } = await connectPair(t);
  client.end();
  const r = ok(await peek(accepted, LIMITS));
  t.equal(r.stop, 'eof');
  t.same(r.facts, { protocol: 'unknown' });
  t.same(r.prelude, []);
});

t.test('a client reset before any byte ends the connection at stage peek', async (t) => {
  const { accepted, client } = await connectPair(t);
  const before = listeners(accepted);
  const result = peek(accepted, LIMITS);
  client.resetAndDestroy();
  t.same(await result, { ok: false, termination: { cause: 'client', stage: 'peek', code: 'ECONNRESET' } });
  t.same(listeners(accepted), before, 'peek removed its listeners');
});

t.test('a client reset after a partial head, before any verdict, ends at stage peek', async (t) => {
  const { accepted, client } = await connectPair(t);
  const result = peek(accepted, LIMITS);
  // The reset must come after peek has read the bytes: a reset landing on unread bytes is
  // reported (Linux, through libuv) as the data then EOF, which peek rightly calls 'eof'.
  client.write('GET /', () => setTimeout(() => client.resetAndDestroy(), 30));
  t.same(await result, { ok: false, termination: { cause: 'client', stage: 'peek', code: 'ECONNRESET' } });
});

t.test('a socket closed under peek (tether cutting it) ends at stage peek', async (t) => {
  const { accepted } = await connectPair(t);
  const result = peek(accepted, LIMITS);
  accepted.destroy();
  t.same(await result, { ok: false, termination: { cause: 'client', stage: 'peek', code: 'closed' } });
});

t.test('after peek the socket is paused and later bytes are still there', async (t) => {
  const { accepted, client } = await connectPair(t);
  const head = Buffer.from('GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n');
  const body = Buffer.from('first-body-bytes');
  const later = Buffer.from('bytes-written-after-the-verdict');
  client.write(Buffer.concat([head, body]));
  const r = ok(await peek(accepted, LIMITS));
  t.equal(r.facts.protocol, 'http');
  t.ok(accepted.isPaused(), 'paused');
  t.equal(accepted.readableFlowing, false, 'not flowing');
  await new Promise<void>((resolve) => {
    client.write(later, () => {
      resolve();
    });
  });
  // Give the bytes time to reach the paused socket; nothing may consume them.
  await new Promise((resolve) => setTimeout(resolve, 30));
  t.ok(accepted.isPaused(), 'still paused');
  client.end();
  const rest = await readToEnd(accepted);
  t.ok(Buffer.concat([...r.prelude, rest]).equals(Buffer.concat([head, body, later])), 'prelude + rest is what the client sent');
});
