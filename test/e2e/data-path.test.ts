// The data path end to end: the real `node bin/tether` between real loopback clients and
// backends. Payloads are random and compared by SHA-256; half-close, resets, idle timeout,
// IPv6, port-range fronting and the one-conn.close-per-connection rule are asserted from both
// ends of the wire and from the log.
import t, { type Test } from 'tap';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { runTether, type LogLine, type RunningTether } from '../helpers/run-tether.js';
import { greetAndEcho, startBackend, whoAnswers, type TestBackend } from '../helpers/named-backend.js';
import { within } from '../helpers/e2e-tools.js';

const KiB = 1024;
const MiB = 1024 * KiB;

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Opens a half-open capable client to `host:port`, destroyed in t.teardown. */
function connect(t: Test, port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, allowHalfOpen: true });
    t.teardown(() => {
      s.destroy();
    });
    s.once('error', reject);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}

/** The `client` field tether logs for a socket connected from `s`. */
function clientField(s: net.Socket): string {
  const host = s.localAddress ?? '';
  const port = String(s.localPort ?? 0);
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

interface Drained {
  readonly bytes: number;
  readonly sha256: string;
  /** 'end' (a FIN) was seen, as opposed to only 'close'. */
  readonly ended: boolean;
  readonly errorCode: string | undefined;
}

/** Reads and hashes everything `s` delivers; resolves at 'end' (FIN) or, failing that, 'close'. */
function drain(s: net.Socket): Promise<Drained> {
  const h = createHash('sha256');
  let bytes = 0;
  let errorCode: string | undefined;
  s.on('data', (d: Buffer) => {
    h.update(d);
    bytes += d.length;
  });
  s.on('error', (e: NodeJS.ErrnoException) => {
    errorCode ??= e.code ?? 'error';
  });
  return new Promise((resolve) => {
    let done = false;
    const finish = (ended: boolean): void => {
      if (done) return;
      done = true;
      resolve({ bytes, sha256: h.digest('hex'), ended, errorCode });
    };
    s.once('end', () => {
      finish(true);
    });
    s.once('close', () => {
      finish(false);
    });
  });
}

/** Resolves once `s` has emitted 'close', with the error code seen before it (if any). */
function closed(s: net.Socket): Promise<{ errorCode: string | undefined; atMs: number }> {
  let errorCode: string | undefined;
  s.on('error', (e: NodeJS.ErrnoException) => {
    errorCode ??= e.code ?? 'error';
  });
  return new Promise((resolve) => {
    if (s.closed) {
      resolve({ errorCode, atMs: Date.now() });
      return;
    }
    s.once('close', () => {
      resolve({ errorCode, atMs: Date.now() });
    });
  });
}

/** Resolves once `n` bytes have arrived on `s`; `s` keeps flowing (later bytes are dropped). */
function readBytes(s: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let have = 0;
    const onData = (d: Buffer): void => {
      parts.push(d);
      have += d.length;
      if (have >= n) {
        cleanup();
        resolve(Buffer.concat(parts));
      }
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error(`stream ended after ${have} of ${n} bytes`));
    };
    const cleanup = (): void => {
      s.off('data', onData);
      s.off('end', onEnd);
      s.off('close', onEnd);
    };
    s.on('data', onData);
    s.once('end', onEnd);
    s.once('close', onEnd);
  });
}

/**
 * A backend whose accepted sockets the test takes one by one with `next()`, so each case drives
 * the backend side itself. Nothing reads a socket before the test takes it, so no byte is lost.
 */
async function startScriptedBackend(t: Test, name: string, host = '127.0.0.1'): Promise<{ backend: TestBackend; next(): Promise<net.Socket> }> {
  const ready: net.Socket[] = [];
  const waiting: ((s: net.Socket) => void)[] = [];
  const backend = await startBackend(name, {
    host,
    behaviour: (s) => {
      const w = waiting.shift();
      if (w) w(s);
      else ready.push(s);
    },
  });
  t.teardown(() => backend.close());
  return {
    backend,
    next: () => {
      const s = ready.shift();
      return within(s ? Promise.resolve(s) : new Promise((r) => waiting.push(r)), 5_000, `a connection at backend ${name}`);
    },
  };
}

const connClose = (rt: RunningTether, client: string, ms = 5_000): Promise<LogLine> =>
  rt.waitFor((l) => l.event === 'conn.close' && l['client'] === client, ms);

/** A short grace, so a failed case that leaves a connection open does not stall teardown. */
const GRACE = ['--grace', '1s'];

async function startTether(t: Test, args: readonly string[], readyCount = 1): Promise<RunningTether> {
  const rt = await runTether([...args, ...GRACE], { readyCount });
  t.teardown(async () => {
    await rt.stop();
  });
  return rt;
}

/** Whether this host can bind ::1 (IPv6 loopback); checked before the IPv6 cases. */
function canBindIPv6Loopback(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => {
      resolve(false);
    });
    s.listen(0, '::1', () => {
      s.close(() => {
        resolve(true);
      });
    });
  });
}

const SIZES: readonly [string, number][] = [
  ['0 B', 0],
  ['1 B', 1],
  ['64 KiB', 64 * KiB],
  ['8 MiB', 8 * MiB],
];

t.test('spliced byte streams', async (t) => {
  const sb = await startScriptedBackend(t, 'a');
  const rt = await startTether(t, ['--listen', '127.0.0.1:0', '--backend', `a=127.0.0.1:${sb.backend.port}`]);
  const port = rt.ports[0]!;

  for (const [label, size] of SIZES) {
    t.test(`echo ${label}: client → backend → client byte-exact`, async (t) => {
      const payload = randomBytes(size);
      const backendSide = sb.next();
      const c = await connect(t, port);
      const client = clientField(c);
      const atClient = drain(c);
      const bs = await backendSide;
      const atBackend = drain(bs);
      bs.pipe(bs); // echo; ends its side once the client's FIN has come through
      c.end(payload);
      const [b, r] = await within(Promise.all([atBackend, atClient]), 15_000, 'echo round trip');
      t.strictSame(b, { bytes: size, sha256: sha256(payload), ended: true, errorCode: undefined }, 'backend got every byte, then FIN');
      t.strictSame(r, { bytes: size, sha256: sha256(payload), ended: true, errorCode: undefined }, 'client got the echo, then FIN');
      const line = await connClose(rt, client);
      t.equal(line['backend'], 'a');
      t.equal(line['bytesIn'], size);
      t.equal(line['bytesOut'], size);
      t.strictSame(line['termination'], { cause: 'normal', stage: 'splice' });
    });

    t.test(`both directions at once, ${label} each way`, async (t) => {
      const up = randomBytes(size);
      const down = randomBytes(size);
      const backendSide = sb.next();
      const c = await connect(t, port);
      const client = clientField(c);
      const atClient = drain(c);
      const bs = await backendSide;
      const atBackend = drain(bs);
      // Each side writes its whole payload and half-closes without waiting for the other.
      bs.end(down);
      c.end(up);
      const [b, r] = await within(Promise.all([atBackend, atClient]), 15_000, 'simultaneous transfer');
      t.strictSame(b, { bytes: size, sha256: sha256(up), ended: true, errorCode: undefined }, 'client → backend byte-exact');
      t.strictSame(r, { bytes: size, sha256: sha256(down), ended: true, errorCode: undefined }, 'backend → client byte-exact');
      const line = await connClose(rt, client);
      t.equal(line['bytesIn'], size);
      t.equal(line['bytesOut'], size);
      t.strictSame(line['termination'], { cause: 'normal', stage: 'splice' });
    });
  }

  t.test('half-close: the client ends first, the backend still replies', async (t) => {
    const request = randomBytes(4 * KiB);
    const reply = randomBytes(256 * KiB);
    const backendSide = sb.next();
    const c = await connect(t, port);
    const client = clientField(c);
    let clientEnded = false;
    const atClient = drain(c).then((d) => {
      clientEnded = d.ended;
      return d;
    });
    c.end(request);
    const bs = await backendSide;
    const b = await within(drain(bs), 5_000, "the client's FIN at the backend");
    t.strictSame(b, { bytes: request.length, sha256: sha256(request), ended: true, errorCode: undefined }, 'backend saw the request, then end');
    await sleep(50);
    t.notOk(clientEnded, 'the client has not seen end while the backend is still open');
    t.notOk(bs.destroyed, 'tether did not close the backend on the client FIN');
    bs.write(reply.subarray(0, 1000));
    await sleep(20);
    bs.end(reply.subarray(1000));
    const r = await within(atClient, 5_000, 'reply and FIN at the client');
    t.strictSame(r, { bytes: reply.length, sha256: sha256(reply), ended: true, errorCode: undefined }, 'client got the whole reply, then end');
    const line = await connClose(rt, client);
    t.equal(line['bytesIn'], request.length);
    t.equal(line['bytesOut'], reply.length);
    t.strictSame(line['termination'], { cause: 'normal', stage: 'splice' });
  });

  t.test('half-close: the backend ends first, the client still sends', async (t) => {
    const banner = randomBytes(3 * KiB);
    const more = randomBytes(512 * KiB);
    const backendSide = sb.next();
    const c = await connect(t, port);
    const client = clientField(c);
    const bs = await backendSide;
    let backendEnded = false;
    const atBackend = drain(bs).then((d) => {
      backendEnded = d.ended;
      return d;
    });
    bs.end(banner);
    const r = await within(drain(c), 5_000, "the backend's FIN at the client");
    t.strictSame(r, { bytes: banner.length, sha256: sha256(banner), ended: true, errorCode: undefined }, 'client got the banner, then end');
    await sleep(50);
    t.notOk(c.destroyed, 'tether did not close the client on the backend FIN');
    t.notOk(backendEnded, 'the backend has not seen end yet');
    c.write(more.subarray(0, 1000));
    await sleep(20);
    c.end(more.subarray(1000));
    const b = await within(atBackend, 5_000, "the client's data and FIN at the backend");
    t.strictSame(b, { bytes: more.length, sha256: sha256(more), ended: true, errorCode: undefined }, 'backend got every later byte, then end');
    const line = await connClose(rt, client);
    t.equal(line['bytesIn'], more.length);
    t.equal(line['bytesOut'], banner.length);
    t.strictSame(line['termination'], { cause: 'normal', stage: 'splice' });
  });

  t.test('a client reset closes the backend side', async (t) => {
    const backendSide = sb.next();
    const c = await connect(t, port);
    const client = clientField(c);
    const bs = await backendSide;
    const bsClosed = closed(bs);
    const first = readBytes(bs, 10 * KiB);
    c.write(randomBytes(10 * KiB));
    await within(first, 5_000, 'data at the backend');
    const t0 = Date.now();
    c.resetAndDestroy();
    const { errorCode, atMs } = await within(bsClosed, 1_000, 'the backend side to close after a client reset');
    t.ok(atMs - t0 < 1_000, `backend closed ${atMs - t0} ms after the reset`);
    t.equal(errorCode, 'ECONNRESET', 'the reset is passed on as a reset');
    const line = await connClose(rt, client);
    t.strictSame(line['termination'], { cause: 'client', stage: 'splice', code: 'ECONNRESET' });
    t.equal(line['bytesIn'], 10 * KiB);
  });

  t.test('a backend reset closes the client side', async (t) => {
    const backendSide = sb.next();
    const c = await connect(t, port);
    const client = clientField(c);
    const cClosed = closed(c);
    const bs = await backendSide;
    const first = readBytes(c, 10 * KiB);
    bs.write(randomBytes(10 * KiB));
    await within(first, 5_000, 'data at the client');
    const t0 = Date.now();
    bs.resetAndDestroy();
    const { errorCode, atMs } = await within(cClosed, 1_000, 'the client side to close after a backend reset');
    t.ok(atMs - t0 < 1_000, `client closed ${atMs - t0} ms after the reset`);
    t.equal(errorCode, 'ECONNRESET', 'the reset is passed on as a reset');
    const line = await connClose(rt, client);
    t.strictSame(line['termination'], { cause: 'backend', stage: 'splice', code: 'ECONNRESET' });
    t.equal(line['bytesOut'], 10 * KiB);
  });
});

t.test('idle timeout', async (t) => {
  const sb = await startScriptedBackend(t, 'a');
  const rt = await startTether(t, ['--listen', '127.0.0.1:0', '--backend', `a=127.0.0.1:${sb.backend.port}`, '--idle-timeout', '300ms']);
  const port = rt.ports[0]!;

  t.test('a silent connection is closed after 300 ms', async (t) => {
    const backendSide = sb.next();
    const t0 = Date.now();
    const c = await connect(t, port);
    const client = clientField(c);
    const bs = await backendSide;
    // Both test sockets are allowHalfOpen, so tether closing shows as a FIN ('end') on each.
    const at = (s: net.Socket): Promise<Drained & { atMs: number }> => drain(s).then((d) => ({ ...d, atMs: Date.now() }));
    const [r, b] = await within(Promise.all([at(c), at(bs)]), 3_000, 'tether to close an idle connection');
    for (const [side, d] of [['client', r], ['backend', b]] as const) {
      const elapsed = d.atMs - t0;
      t.ok(elapsed >= 250 && elapsed < 2_000, `${side} got FIN after ${elapsed} ms`);
      t.strictSame({ bytes: d.bytes, ended: d.ended, errorCode: d.errorCode }, { bytes: 0, ended: true, errorCode: undefined }, `${side}: FIN, no data`);
    }
    const line = await connClose(rt, client);
    t.strictSame(line['termination'], { cause: 'client-timeout', stage: 'splice', code: 'idle' });
  });

  t.test('a client sending a byte every 100 ms stays open for 1 s', async (t) => {
    const backendSide = sb.next();
    const c = await connect(t, port);
    const client = clientField(c);
    const bs = await backendSide;
    bs.pipe(bs);
    let echoed = 0;
    c.on('data', (d: Buffer) => {
      echoed += d.length;
    });
    const atClient = drain(c);
    for (let i = 0; i < 10; i++) {
      c.write('x');
      await sleep(100);
      if (c.closed || bs.closed) break;
    }
    t.notOk(c.closed || c.readableEnded, 'client still open after 1 s of trickle');
    t.notOk(bs.closed, 'backend still open');
    t.equal(echoed, 10, 'every byte was echoed');
    c.end();
    const r = await within(atClient, 3_000, 'normal close');
    t.equal(r.bytes, 10);
    t.ok(r.ended);
    const line = await connClose(rt, client);
    t.strictSame(line['termination'], { cause: 'normal', stage: 'splice' });
  });

  t.test('a backend sending a byte every 100 ms keeps the connection open for 1 s', async (t) => {
    const backendSide = sb.next();
    const c = await connect(t, port);
    const client = clientField(c);
    const bs = await backendSide;
    const atClient = drain(c);
    const atBackend = drain(bs);
    for (let i = 0; i < 10; i++) {
      bs.write('y');
      await sleep(100);
      if (c.closed || bs.closed) break;
    }
    t.notOk(c.closed || c.readableEnded, 'client still open after 1 s of trickle');
    t.notOk(bs.closed, 'backend still open');
    bs.end();
    c.end();
    const [r, b] = await within(Promise.all([atClient, atBackend]), 3_000, 'normal close');
    t.equal(r.bytes, 10);
    t.ok(r.ended && b.ended);
    const line = await connClose(rt, client);
    t.strictSame(line['termination'], { cause: 'normal', stage: 'splice' });
  });
});

const ipv6 = await canBindIPv6Loopback();

t.test('IPv6', { skip: ipv6 ? false : '::1 cannot be bound on this host' }, async (t) => {
  const a6 = await startBackend('a6', { host: '::1', behaviour: greetAndEcho });
  t.teardown(() => a6.close());
  const a4 = await startBackend('a4', { host: '127.0.0.1', behaviour: greetAndEcho });
  t.teardown(() => a4.close());

  t.test('[::1] listener and 127.0.0.1 listener → [::1] backend', async (t) => {
    const rt = await startTether(t, ['--listen', '[::1]:0', '--listen', '127.0.0.1:0', '--backend', `a6=[::1]:${a6.port}`], 2);
    const [v6port, v4port] = [rt.ports[0]!, rt.ports[1]!];
    t.equal(await whoAnswers(v6port, { host: '::1' }), 'a6', 'v6 → v6');
    t.equal(await whoAnswers(v4port, { host: '127.0.0.1' }), 'a6', 'v4 → v6');
    const payload = randomBytes(256 * KiB);
    const c = await connect(t, v6port, '::1');
    const client = clientField(c);
    t.match(client, /^\[::1\]:\d+$/);
    const r = drain(c);
    c.end(payload);
    const d = await within(r, 5_000, 'echo over IPv6');
    const expected = Buffer.concat([Buffer.from('a6\n'), payload]);
    t.strictSame(d, { bytes: expected.length, sha256: sha256(expected), ended: true, errorCode: undefined });
    const line = await connClose(rt, client);
    t.equal(line['backend'], 'a6');
    t.equal(line['bytesIn'], payload.length);
    t.equal(line['bytesOut'], expected.length);
    t.strictSame(line['termination'], { cause: 'normal', stage: 'splice' });
  });

  t.test('[::1] listener → 127.0.0.1 backend', async (t) => {
    const rt = await startTether(t, ['--listen', '[::1]:0', '--backend', `a4=127.0.0.1:${a4.port}`]);
    t.equal(await whoAnswers(rt.ports[0]!, { host: '::1' }), 'a4');
  });
});

/** Binds named backends on 127.0.0.2 at three consecutive free ports; undefined when busy. */
async function backendsAtRange(low: number): Promise<TestBackend[] | undefined> {
  const bs: TestBackend[] = [];
  try {
    for (let p = low; p < low + 3; p++) bs.push(await startBackend(String(p), { host: '127.0.0.2', port: p, behaviour: greetAndEcho }));
    return bs;
  } catch (e) {
    await Promise.all(bs.map((b) => b.close()));
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES') return undefined; // taken: try another range
    throw e;
  }
}

t.test('port range fronting port-less backends', async (t) => {
  let found: { rt: RunningTether; low: number; backends: TestBackend[] } | undefined;
  for (let attempt = 0; attempt < 8 && !found; attempt++) {
    // Below the ephemeral range (32768+), so outgoing connections do not take these ports.
    const low = 20_000 + Math.floor(Math.random() * 12_000);
    const backends = await backendsAtRange(low);
    if (!backends) continue;
    try {
      const rt = await runTether(['--listen', `127.0.0.1:${low}-${low + 2}`, '--backend', 'b=127.0.0.2', ...GRACE], { readyCount: 3 });
      found = { rt, low, backends };
    } catch (e) {
      await Promise.all(backends.map((b) => b.close()));
      // tether could not bind the range: try another; any other failure is the test's answer.
      if (!(e instanceof Error && e.message.includes('EADDRINUSE'))) throw e;
    }
  }
  if (!found) throw new Error('no free range of 3 ports found in 8 attempts');
  const { rt, low, backends } = found;
  t.teardown(async () => {
    await rt.stop();
    await Promise.all(backends.map((b) => b.close()));
  });
  t.strictSame(rt.ports, [low, low + 1, low + 2], 'tether bound the whole range');
  for (const p of [low + 2, low, low + 1]) {
    t.equal(await whoAnswers(p), String(p), `port ${p} reaches the backend on 127.0.0.2:${p}`);
  }
});

t.test('one conn.close line per connection, with sizes and no payload', async (t) => {
  const MARKER = 'PAYLOAD-MARKER-do-not-log-9f2c41';
  const bs = await Promise.all(['a', 'b'].map((n) => startBackend(n, { behaviour: greetAndEcho })));
  t.teardown(() => Promise.all(bs.map((b) => b.close())));
  const rt = await startTether(t, [
    '--listen', '127.0.0.1:0', '--balance', 'roundrobin', '--log-level', 'trace',
    ...bs.flatMap((b) => ['--backend', `${b.name}=127.0.0.1:${b.port}`]),
  ]);
  const port = rt.ports[0]!;
  const N = 20;
  const results = await within(
    Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const payload = Buffer.from(`${MARKER}-${i}-${'z'.repeat(100 + 97 * i)}\n`);
        const c = await connect(t, port);
        const client = clientField(c);
        const r = drain(c);
        const greeting = await new Promise<string>((resolve) => {
          c.once('data', (d: Buffer) => {
            resolve(d.toString());
          });
        });
        c.end(payload);
        const d = await r;
        return { client, greeting, sent: payload.length, received: d.bytes };
      }),
    ),
    15_000,
    `${N} connections`,
  );
  const deadline = Date.now() + 5_000;
  const closeLines = (): LogLine[] => rt.lines.filter((l) => l.event === 'conn.close');
  while (closeLines().length < N && Date.now() < deadline) await sleep(20);
  await sleep(300); // a duplicate line would show up here
  const lines = closeLines();
  t.equal(lines.length, N, 'one conn.close per connection in total');
  for (const r of results) {
    const mine = lines.filter((l) => l['client'] === r.client);
    t.equal(mine.length, 1, `one conn.close for ${r.client}`);
    const l = mine[0];
    if (!l) continue;
    const name = r.greeting.split('\n')[0] ?? '';
    t.equal(l['backend'], name, 'backend field names who answered');
    t.equal(l['bytesIn'], r.sent);
    t.equal(l['bytesOut'], r.received);
    t.equal(r.received, name.length + 1 + r.sent, 'the echo came back whole');
    t.strictSame(l['termination'], { cause: 'normal', stage: 'splice' });
  }
  t.strictSame(new Set(results.map((r) => r.greeting.split('\n')[0])), new Set(['a', 'b']), 'both backends served');
  t.notOk(rt.stdout().includes('PAYLOAD-MARKER'), 'no payload in stdout');
  t.notOk(rt.stderr().includes('PAYLOAD-MARKER'), 'no payload in stderr');
});
