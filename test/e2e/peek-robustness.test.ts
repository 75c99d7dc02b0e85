// Peek robustness through `node bin/tether`: a ClientHello one byte per TCP segment, a client
// that says nothing (server-first), a slow client, random bytes, an oversized "ClientHello", and
// a client that goes away mid-peek. Backends are plain TCP and record every byte they receive,
// so each case checks that the backend got exactly what the client sent, in order.
import t, { type Test } from 'tap';
import { Buffer } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { SNI_NAME, captureSniHello, reframeHandshake } from '../../fixtures/client-hellos.js';
import { runTether, type LogLine, type RunningTether } from '../helpers/run-tether.js';
import { startBackend, type TestBackend } from '../helpers/named-backend.js';
import { admin, parseExposition, sampleValue } from '../helpers/admin-client.js';

const NAMES = ['a', 'b', 'c'] as const;

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const hash12 = (value: string): string => sha256(Buffer.from(value)).slice(0, 12);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What one backend connection received, complete once the client's FIN came through. */
interface Received {
  readonly backend: string;
  readonly bytes: Buffer;
}

interface Recorders {
  readonly bs: readonly TestBackend[];
  /** The next connection to finish (its client ended), at any backend; rejects after 5 s. */
  next(): Promise<Received>;
}

/**
 * Backends a, b, c that record all they receive; with `greet`, each first writes `NAME\n`
 * (a server-first protocol). Each ends its side once the client has ended.
 */
async function recorders(t: Test, greet: boolean): Promise<Recorders> {
  const done: Received[] = [];
  const waiting: ((r: Received) => void)[] = [];
  const bs = await Promise.all(
    NAMES.map((name) =>
      startBackend(name, {
        behaviour: (socket) => {
          const chunks: Buffer[] = [];
          if (greet) socket.write(`${name}\n`);
          socket.on('data', (d: Buffer) => chunks.push(d));
          socket.on('end', () => {
            socket.end();
            const r = { backend: name, bytes: Buffer.concat(chunks) };
            const w = waiting.shift();
            if (w) w(r);
            else done.push(r);
          });
        },
      }),
    ),
  );
  t.teardown(() => Promise.all(bs.map((b) => b.close())));
  return {
    bs,
    next: () => {
      const r = done.shift();
      if (r) return Promise.resolve(r);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.splice(waiting.indexOf(got), 1);
          reject(new Error('no backend connection finished within 5s'));
        }, 5_000);
        const got = (x: Received): void => {
          clearTimeout(timer);
          resolve(x);
        };
        waiting.push(got);
      });
    },
  };
}

async function tether(t: Test, bs: readonly TestBackend[], args: readonly string[]): Promise<{ rt: RunningTether; port: number }> {
  const backends = bs.flatMap((b) => ['--backend', `${b.name}=127.0.0.1:${b.port}`]);
  const rt = await runTether(['--listen', '127.0.0.1:0', ...backends, '--grace', '1s', ...args]);
  t.teardown(() => rt.stop());
  return { rt, port: rt.ports[0]! };
}

/** A raw client, destroyed on teardown, that timestamps the first line it receives. */
interface Client {
  readonly socket: net.Socket;
  /** The `client` field tether logs for this connection (kept: a closed socket forgets it). */
  readonly logName: string;
  readonly connectedAt: number;
  /** The first line received and when (ms since connect); rejects if none within `ms`. */
  firstLine(ms?: number): Promise<{ line: string; afterMs: number }>;
  /** Everything received so far. */
  received(): string;
  /** Writes and waits until the bytes are handed to the kernel. */
  write(b: Buffer | string): Promise<void>;
}

async function connect(t: Test, port: number): Promise<Client> {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  socket.setNoDelay(true);
  t.teardown(() => {
    socket.destroy();
  });
  socket.on('error', () => undefined); // cases assert on what arrived and on tether's log
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const connectedAt = Date.now();
  const logName = `${socket.localAddress ?? ''}:${String(socket.localPort)}`;
  let got = '';
  let at: number | undefined;
  const lineWaiters: (() => void)[] = [];
  socket.on('data', (d: Buffer) => {
    got += d.toString('latin1');
    if (at === undefined && got.includes('\n')) {
      at = Date.now();
      for (const w of lineWaiters) w();
    }
  });
  return {
    socket,
    logName,
    connectedAt,
    received: () => got,
    firstLine: (ms = 5_000) =>
      new Promise((resolve, reject) => {
        const settle = (): void => {
          clearTimeout(timer);
          resolve({ line: got.split('\n')[0] ?? '', afterMs: (at ?? Date.now()) - connectedAt });
        };
        const timer = setTimeout(() => {
          reject(new Error(`no line within ${ms} ms (got ${JSON.stringify(got)})`));
        }, ms);
        if (at !== undefined) settle();
        else lineWaiters.push(settle);
      }),
    write: (b) =>
      new Promise((resolve, reject) => {
        socket.write(b, (err) => {
          if (err) reject(err);
          else resolve();
        });
      }),
  };
}

/** The conn.close line of the client `c`. */
const closeOf = (rt: RunningTether, c: Client, ms = 5_000): Promise<LogLine> =>
  rt.waitFor((l) => l.event === 'conn.close' && l['client'] === c.logName, ms);

const keyOf = (l: LogLine): unknown => l['key'];

/** Sends `pieces` one TCP segment each (no Nagle), waiting a little between them, then FIN. */
async function sendInSegments(c: Client, pieces: readonly Buffer[]): Promise<void> {
  for (const p of pieces) {
    await c.write(p);
    await sleep(1);
  }
  c.socket.end();
}

/** `b` cut every `n` bytes. */
const cut = (b: Buffer, n: number): Buffer[] => Array.from({ length: Math.ceil(b.length / n) }, (_, i) => b.subarray(i * n, (i + 1) * n));

/** The TLS records of `b` (5-byte header + length), one Buffer each. */
function records(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at + 5 <= b.length; at += 5 + b.readUInt16BE(at + 3)) out.push(b.subarray(at, at + 5 + b.readUInt16BE(at + 3)));
  return out;
}

t.test('a ClientHello one byte per TCP segment, or in 40-byte records, still routes by SNI, bytes intact', async (t) => {
  const rec = await recorders(t, false);
  const { rt, port } = await tether(t, rec.bs, ['--affinity', 'sni', '--peek-timeout', '10s']);
  const hello = await captureSniHello();

  // Reference: the same hello in one segment shows where this SNI goes.
  const whole = await connect(t, port);
  await sendInSegments(whole, [hello]);
  const ref = await rec.next();
  t.ok(ref.bytes.equals(hello), 'whole hello delivered exactly');

  // The same message framed as 40-byte TLS records (RFC 8446 §5.1 allows any split).
  const framed = reframeHandshake(hello, 40);
  const variants: readonly [string, Buffer, Buffer[]][] = [
    ['one byte per segment', hello, cut(hello, 1)],
    ['40-byte records, one record per segment', framed, records(framed)],
  ];
  for (const [label, bytes, pieces] of variants) {
    const c = await connect(t, port);
    await sendInSegments(c, pieces);
    const got = await rec.next();
    t.equal(got.backend, ref.backend, `${label}: routed to the same backend (${ref.backend})`);
    t.equal(got.bytes.length, bytes.length, `${label}: ${bytes.length} bytes in ${pieces.length} segments delivered`);
    t.ok(got.bytes.equals(bytes), `${label}: exactly the bytes sent, in order`);
    const l = await closeOf(rt, c);
    t.same(keyOf(l), { kind: 'sni', hash: hash12(SNI_NAME) }, `${label}: placed by the SNI`);
    t.equal(l['protocol'], 'tls', `${label}: protocol tls`);
    t.equal(l['peek'], 'verdict', `${label}: the parser reached a verdict (not the deadline)`);
  }
});

t.test('a client that sends nothing is proxied after the peek timeout and gets the greeting', async (t) => {
  const rec = await recorders(t, true);
  const { rt, port } = await tether(t, rec.bs, ['--affinity', 'sni,source', '--peek-timeout', '300ms']);
  const c = await connect(t, port);
  const { line, afterMs } = await c.firstLine(3_000);
  t.ok(NAMES.includes(line as (typeof NAMES)[number]), `greeted by ${line}`);
  t.ok(afterMs >= 250, `not before the peek timeout (${afterMs} ms)`);
  t.ok(afterMs < 1_300, `within peek timeout + 1 s (${afterMs} ms)`);
  const payload = Buffer.from('a1 LOGIN user pass\r\n');
  await c.write(payload);
  c.socket.end();
  const got = await rec.next();
  t.equal(got.backend, line);
  t.ok(got.bytes.equals(payload), 'the backend received exactly what the client sent');
  const l = await closeOf(rt, c);
  t.equal(l['protocol'], 'unknown');
  t.equal(l['peek'], 'timeout');
  t.same(keyOf(l), { kind: 'source', hash: hash12('127.0.0.1/32') }, 'fell back to the source key');
});

t.test('slow clients that started a TLS record, an HTTP request or an XMPP header are cut at the peek timeout', async (t) => {
  const rec = await recorders(t, true);
  const { rt, port } = await tether(t, rec.bs, ['--affinity', 'sni,source', '--peek-timeout', '500ms', '--admin', '127.0.0.1:0']);
  const ready = await rt.waitFor((l) => l.event === 'admin.ready');
  const adminPort = Number(ready['port']);
  const hello = await captureSniHello();
  // Each sends its first 8 bytes, then trickles a byte every 200 ms, as a slowloris does, and
  // never finishes in time.
  const slow: readonly (readonly [string, Buffer])[] = [
    ['tls', hello],
    ['tls', hello],
    ['http', Buffer.from('GET /slow HTTP/1.1\r\nHost: a\r\n\r\n')],
    ['xmpp', Buffer.from("<?xml version='1.0'?><stream:stream to='im.example'>")],
  ];
  const clients = await Promise.all(slow.map(() => connect(t, port)));
  const trickles = clients.map(async (c, i) => {
    const bytes = slow[i]![1];
    await c.write(bytes.subarray(0, 8));
    for (let k = 8; k < 16 && !c.socket.destroyed; k++) {
      await sleep(200);
      await c.write(bytes.subarray(k, k + 1)).catch(() => undefined);
    }
  });
  for (const [i, c] of clients.entries()) {
    const l = await closeOf(rt, c);
    t.same(l['termination'], { cause: 'client-timeout', stage: 'peek', code: 'peek-timeout' }, `${slow[i]![0]}: cut at the peek timeout`);
    t.equal(l['protocol'], slow[i]![0], 'with the protocol it started');
    t.equal(l['peek'], 'timeout');
    t.equal(l['backend'], null, 'never handed to a backend');
    t.ok(Number(l['durationMs']) < 1_500, `at the deadline (${String(l['durationMs'])} ms)`);
  }
  await Promise.all(trickles);
  t.same(rec.bs.map((b) => b.accepted()), [0, 0, 0], 'no backend was dialled');
  const warns = rt.lines.filter((l) => l.event === 'peek.slow');
  t.ok(warns.length >= 1 && warns.length <= 2, `peek.slow at most once a second (${String(warns.length)} lines)`);
  t.equal(warns[0]?.['level'], 'warn');
  const m = parseExposition((await admin(adminPort, 'GET', '/metrics')).text);
  t.equal(sampleValue(m, 'tether_peek_outcomes_total', { protocol: 'tls', stop: 'timeout' }), 2, 'metrics count the cut as tls|timeout');
  t.equal(sampleValue(m, 'tether_peek_outcomes_total', { protocol: 'http', stop: 'timeout' }), 1);
  t.equal(sampleValue(m, 'tether_connection_closes_total', { cause: 'client-timeout', stage: 'peek', code: 'peek-timeout' }), 4);
});

t.test('a slow client whose bytes no sniffer recognises is still proxied at the peek timeout, every byte in order', async (t) => {
  const rec = await recorders(t, true);
  const { rt, port } = await tether(t, rec.bs, ['--affinity', 'sni,source', '--peek-timeout', '500ms']);
  const c = await connect(t, port);
  // Capitals could still become an HTTP method, so the HTTP sniffer keeps waiting, but no known
  // method and space ever comes: nothing was recognised, and only the deadline decides.
  const payload = Buffer.from('XYZZYPL');
  const greeting = c.firstLine(3_000);
  for (const byte of payload) {
    await c.write(Buffer.from([byte]));
    await sleep(200);
  }
  const { line, afterMs } = await greeting;
  t.ok(NAMES.includes(line as (typeof NAMES)[number]), `greeted by ${line} while still sending`);
  t.ok(afterMs >= 450 && afterMs < 1_500, `greeting after the peek timeout, not after the last byte (${afterMs} ms)`);
  c.socket.end();
  const got = await rec.next();
  t.equal(got.backend, line);
  t.equal(got.bytes.toString('latin1'), payload.toString('latin1'), 'all bytes, in order');
  const l = await closeOf(rt, c);
  t.equal(l['peek'], 'timeout');
  t.equal(l['protocol'], 'unknown');
});

t.test('random bytes are proxied at once as protocol unknown, intact', async (t) => {
  const rec = await recorders(t, true);
  const { rt, port } = await tether(t, rec.bs, ['--affinity', 'sni,source', '--peek-timeout', '5s']);
  const junk = randomBytes(4096);
  junk[0] = junk[0]! | 0x80; // no protocol starts with a byte above 0x7f, so the verdict is immediate
  const c = await connect(t, port);
  await c.write(junk);
  const { afterMs } = await c.firstLine(3_000);
  t.ok(afterMs < 2_000, `proxied without waiting for the 5 s peek timeout (${afterMs} ms)`);
  c.socket.end();
  const got = await rec.next();
  t.equal(sha256(got.bytes), sha256(junk), 'the backend received exactly the 4 KiB sent');
  const l = await closeOf(rt, c);
  t.equal(l['protocol'], 'unknown');
  t.equal(l['peek'], 'verdict');
  t.same(keyOf(l), { kind: 'source', hash: hash12('127.0.0.1/32') });
});

/** 64 KiB starting with `head`, the rest random. */
function bigHello(head: readonly number[]): Buffer {
  const b = randomBytes(64 * 1024);
  Buffer.from(head).copy(b);
  return b;
}

/** Each 64 KiB prelude, and why peek must stop: at once (`verdict`) or at its byte cap (`cap`). */
const OVERSIZED: readonly [string, Buffer, string][] = [
  ['a handshake message claiming 16 MiB', bigHello([0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0xff, 0xff, 0xff]), 'verdict'],
  ['a full 16 KiB record of junk "ClientHello"', bigHello([0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0x3f, 0xfc, 0x03, 0x03]), 'cap'],
  ['a record header claiming 65535 bytes', bigHello([0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0x00, 0xff, 0xfb]), 'verdict'],
];

t.test('a 64 KiB "ClientHello" does not get stuck: proxied within peek timeout + 1 s, bytes intact', async (t) => {
  const rec = await recorders(t, true);
  const { rt, port } = await tether(t, rec.bs, ['--affinity', 'sni,source', '--peek-timeout', '1s']);
  for (const [label, bytes, stop] of OVERSIZED) {
    const c = await connect(t, port);
    // The headers first, on their own: the claim they make decides whether peek may stop at once.
    await c.write(bytes.subarray(0, 16));
    if (stop === 'verdict') {
      const { afterMs } = await c.firstLine(2_000);
      t.ok(afterMs < 2_000, `${label}: proxied on the headers alone, before the rest was sent (${afterMs} ms)`);
      await c.write(bytes.subarray(16));
    } else {
      await sleep(300);
      t.equal(c.received(), '', `${label}: still peeking while the record is incomplete`);
      const sent = c.write(bytes.subarray(16));
      const { afterMs } = await c.firstLine(2_000);
      t.ok(afterMs < 2_000, `${label}: proxied once the cap was reached (${afterMs} ms after connect)`);
      await sent;
    }
    c.socket.end();
    const got = await rec.next();
    t.equal(got.bytes.length, bytes.length, `${label}: all ${bytes.length} bytes delivered`);
    t.equal(sha256(got.bytes), sha256(bytes), `${label}: byte for byte`);
    const l = await closeOf(rt, c);
    t.equal(l['peek'], stop, `${label}: peek stopped by ${stop}`);
    t.same(l['termination'], { cause: 'normal', stage: 'splice' }, `${label}: a normal close`);
    t.same(keyOf(l), { kind: 'source', hash: hash12('127.0.0.1/32') }, `${label}: placed by the fallback key`);
  }
});

t.test('a client that resets during peek ends at stage peek, and no backend is dialled', async (t) => {
  const rec = await recorders(t, true);
  const { rt, port } = await tether(t, rec.bs, ['--affinity', 'sni,source', '--peek-timeout', '5s']);
  const c = await connect(t, port);
  await c.write(Buffer.from([0x16, 0x03, 0x01, 0x02])); // the start of a TLS record
  await sleep(300); // time for tether to accept and read them, even on a loaded machine
  c.socket.resetAndDestroy();
  const l = await closeOf(rt, c);
  t.same(l['termination'], { cause: 'client', stage: 'peek', code: 'ECONNRESET' });
  t.equal(l['backend'], null);
  t.equal(l['bytesIn'], 4, 'the 4 bytes read before the reset are counted');
  t.ok(Number(l['durationMs']) < 3_000, 'ended at the reset, not at the peek timeout');
  t.same(rec.bs.map((b) => b.accepted()), [0, 0, 0], 'no backend was dialled');
});

t.test('a client that half-closes (FIN) during peek: what it sent is passed on, then its FIN', async (t) => {
  // tether treats the client's EOF as "the contents are definitive" (peek: 'eof'), as for a
  // client that sends a request and shuts its write side: it is proxied, not dropped.
  const rec = await recorders(t, true);
  const { rt, port } = await tether(t, rec.bs, ['--affinity', 'sni,source', '--peek-timeout', '5s']);
  const c = await connect(t, port);
  const partial = Buffer.from([0x16, 0x03, 0x01, 0x02]);
  await c.write(partial);
  c.socket.end();
  const got = await rec.next();
  t.ok(got.bytes.equals(partial), 'the backend got the partial record, then the FIN');
  const { line, afterMs } = await c.firstLine(3_000);
  t.equal(line, got.backend, 'and the client still reads the backend');
  t.ok(afterMs < 3_000, `without waiting for the peek timeout (${afterMs} ms)`);
  const l = await closeOf(rt, c);
  t.equal(l['peek'], 'eof');
  t.equal(l['protocol'], 'unknown');
  t.same(l['termination'], { cause: 'normal', stage: 'splice' });
});
