// No cross-talk under faults: 200 concurrent clients through one plain-TCP tether
// (`--affinity none`), each sending its own deterministic bytes, to a backend that echoes,
// resets mid-stream or accepts and never reads, or to an address where nothing listens. Every
// client must get back a prefix of its own stream (byte-exact) or nothing — never another
// client's bytes — and every socket must close within a bound: the never-read backend fills
// the kernel's buffers, then tether's --backend-stall-timeout (1 s here) applies. Then the
// process is alive and serves a fresh client.
//
// One frontend listens on two adjacent ports and its one backend has no port (tether dials the
// port the client connected to): port P reaches the live backend on 127.0.0.2:P, port P+1
// reaches 127.0.0.2:P+1, where nothing listens. The live backend picks its behaviour from the
// first byte a client sends. --hold-down 0, so the refusals on P+1 do not hold the backend down
// for the clients of P (the hold-down is per backend, not per address, today).
import t from 'tap';
import { Buffer } from 'node:buffer';
import net from 'node:net';
import { runTether, type RunningTether } from '../helpers/run-tether.js';
import { patternBytes } from '../helpers/fault-backend.js';
import { within } from '../helpers/e2e-tools.js';

const CLIENTS = 200;
const STREAM_BYTES = 64 * 1024;
/** The reset backend echoes this much, then resets. */
const RESET_AFTER = 20_000;
/** A never-read client writes until closed, at most this much (far above loopback buffering). */
const NEVER_READ_CAP = 64 * 1024 * 1024;
const STALL_MS = 1_000;
/** Stall timeout, plus time for 200 clients to connect and stream on two shared cores. */
const CLOSE_BOUND_MS = STALL_MS + 10_000;
/** The flag of the write-stall timeout (added in parallel with this test; default 10 s). */
const STALL_FLAGS = ['--backend-stall-timeout', `${String(STALL_MS)}ms`];

type Mode = 'echo' | 'reset' | 'refused' | 'never-read';
const MODES: readonly Mode[] = ['echo', 'reset', 'refused', 'never-read'];
const MARK: Record<Mode, number> = { echo: 0x45, reset: 0x52, refused: 0x58, 'never-read': 0x4e };

/** Client `i`'s stream: its mode's mark, then its own pattern. */
function streamOf(i: number, mode: Mode, n = STREAM_BYTES): Buffer {
  const b = patternBytes(i + 1, n);
  b[0] = MARK[mode];
  return b;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The live backend on 127.0.0.2:`port` (0: any): echo, reset after RESET_AFTER, or never read. */
async function startLiveBackend(port: number): Promise<{ server: net.Server; port: number; sockets: Set<net.Socket> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined); // clients and tether see the effects; nothing to assert here
    s.once('data', (first: Buffer) => {
      const mark = first[0];
      if (mark === MARK['never-read']) {
        s.pause(); // accepted and never read again: the kernel buffers fill
        return;
      }
      if (mark === MARK.reset) {
        let seen = 0;
        const onData = (d: Buffer): void => {
          const room = RESET_AFTER - seen;
          seen += d.length;
          if (room > 0) s.write(d.subarray(0, room));
          if (seen >= RESET_AFTER) {
            s.off('data', onData);
            // After what was echoed has left (write callback), reset.
            s.write(Buffer.alloc(0), () => {
              s.resetAndDestroy();
            });
          }
        };
        s.on('data', onData);
        onData(first);
        return;
      }
      s.write(first);
      s.pipe(s);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.2', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server, port: (server.address() as net.AddressInfo).port, sockets };
}

/** Whether something accepts connections on `host`:`port`. */
function accepting(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      resolve(false);
    });
  });
}

/** Whether 127.0.0.1:`port` can be bound now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => {
      resolve(false);
    });
    s.listen(port, '127.0.0.1', () => {
      s.close(() => {
        resolve(true);
      });
    });
  });
}

interface ClientOutcome {
  readonly i: number;
  readonly mode: Mode;
  readonly received: Buffer;
  readonly sent: number;
  readonly error: string | undefined;
  /** From connect to close; undefined when still open at the bound (then destroyed). */
  readonly closedAfterMs: number | undefined;
}

/** Client `i` in `mode`: writes its stream (a never-read client: until closed), reads what comes back. */
function runClient(i: number, mode: Mode, port: number): Promise<ClientOutcome> {
  return new Promise((resolve) => {
    const started = Date.now();
    const s = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let sent = 0;
    let error: string | undefined;
    let closed = false;
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', (e: NodeJS.ErrnoException) => {
      error ??= e.code ?? 'error';
    });
    const bound = setTimeout(() => s.destroy(), CLOSE_BOUND_MS + 5_000);
    s.once('close', () => {
      closed = true;
      clearTimeout(bound);
      const ms = Date.now() - started;
      resolve({ i, mode, received: Buffer.concat(chunks), sent, error, closedAfterMs: ms <= CLOSE_BOUND_MS ? ms : undefined });
    });
    s.once('connect', () => {
      if (mode !== 'never-read') {
        const b = streamOf(i, mode);
        sent = b.length;
        s.end(b);
        return;
      }
      // Never-read: keep writing (respecting backpressure) until tether lets go.
      const block = streamOf(i, mode, 256 * 1024);
      const pump = (): void => {
        while (!closed && sent < NEVER_READ_CAP) {
          sent += block.length;
          if (!s.write(block)) {
            s.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
  });
}

/** The live backend on 127.0.0.2:P with 127.0.0.1:P and P+1 free and nothing on 127.0.0.2:P+1. */
async function portPair(): Promise<{ backend: Awaited<ReturnType<typeof startLiveBackend>>; port: number }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const backend = await startLiveBackend(0);
    const p = backend.port;
    if (p < 65535 && (await bindable(p)) && (await bindable(p + 1)) && !(await accepting('127.0.0.2', p + 1))) return { backend, port: p };
    await new Promise<void>((resolve) => backend.server.close(() => { resolve(); }));
  }
  throw new Error('no free port pair on 127.0.0.1 / 127.0.0.2 after 20 attempts');
}

t.test('200 clients, four backend behaviours: no byte crosses to another client, none hangs', { timeout: 180_000 }, async (t) => {
  const { backend, port } = await portPair();
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of backend.sockets) s.destroy();
        backend.server.close(() => {
          resolve();
        });
      }),
  );
  const rt: RunningTether = await runTether([
    '--listen',
    `127.0.0.1:${String(port)}-${String(port + 1)}`,
    '--backend',
    'live=127.0.0.2',
    '--affinity',
    'none',
    '--hold-down',
    '0',
    '--connect-timeout',
    '1s',
    ...STALL_FLAGS,
    '--grace',
    '1s',
  ]);
  t.teardown(() => rt.stop());
  const pid = rt.child.pid;

  const outcomes = await within(
    Promise.all(
      Array.from({ length: CLIENTS }, (_, i) => {
        const mode = MODES[i % MODES.length] ?? 'echo';
        return runClient(i, mode, mode === 'refused' ? port + 1 : port);
      }),
    ),
    CLOSE_BOUND_MS + 15_000,
    `${String(CLIENTS)} clients to finish`,
  );

  const foreign = outcomes.filter((o) => !streamOf(o.i, o.mode, o.received.length).equals(o.received) && o.mode !== 'never-read');
  // A never-read client's stream repeats its 256 KiB block; it must get nothing back at all.
  const neverReadGot = outcomes.filter((o) => o.mode === 'never-read' && o.received.length > 0);
  t.same(
    foreign.map((o) => `client ${String(o.i)} (${o.mode}): ${String(o.received.length)} bytes that are not a prefix of its own stream`),
    [],
    'every client received only a byte-exact prefix of its own stream',
  );
  t.same(neverReadGot.map((o) => `client ${String(o.i)}: ${String(o.received.length)} bytes`), [], 'never-read clients receive nothing');
  const hung = outcomes.filter((o) => o.closedAfterMs === undefined);
  t.same(
    hung.map((o) => `client ${String(o.i)} (${o.mode}) open after ${String(CLOSE_BOUND_MS)} ms (sent ${String(o.sent)}, got ${String(o.received.length)})`),
    [],
    `every client closed within ${String(CLOSE_BOUND_MS)} ms (stall timeout ${String(STALL_MS)} ms + 10 s)`,
  );
  const by = (m: Mode): ClientOutcome[] => outcomes.filter((o) => o.mode === m);
  t.same(
    by('echo').filter((o) => o.received.length !== STREAM_BYTES).map((o) => `client ${String(o.i)}: ${String(o.received.length)} of ${String(STREAM_BYTES)}`),
    [],
    'echo clients got their whole stream back',
  );
  t.same(
    by('reset').filter((o) => o.received.length > RESET_AFTER).map((o) => `client ${String(o.i)}: ${String(o.received.length)}`),
    [],
    `reset clients got at most the ${String(RESET_AFTER)} bytes echoed before the reset`,
  );
  t.same(by('refused').filter((o) => o.received.length > 0).map((o) => o.i), [], 'refused clients got nothing');

  const closes = await within(
    (async () => {
      for (let i = 0; i < 200 && rt.lines.filter((l) => l.event === 'conn.close').length < CLIENTS; i++) await sleep(25);
      return rt.lines.filter((l) => l.event === 'conn.close');
    })(),
    10_000,
    'conn.close lines',
  );
  t.equal(closes.length, CLIENTS, 'one conn.close line per client');

  t.equal(rt.child.exitCode, null, `tether (pid ${String(pid)}) still running`);
  const fresh = await runClient(CLIENTS, 'echo', port);
  t.ok(fresh.received.equals(streamOf(CLIENTS, 'echo')), 'a fresh client gets its whole stream back, byte-exact');
  t.equal(fresh.error, undefined, 'without an error');
});
