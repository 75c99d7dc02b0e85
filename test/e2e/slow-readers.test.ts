// 500 slow readers at once: each client asks the backend for an 8 MiB download and stops
// reading. tether must not buffer the downloads: its resident memory (VmRSS of the child, from
// /proc) may grow by its per-connection state — socket buffers are the kernel's, Node holds at
// most about a highWaterMark (16 KiB) plus one read (libuv reads up to 64 KiB) per direction —
// not by the streams. The bound asserted: baseline + 500 × 256 KiB (PER_CONN_BOUND; 4 GiB would
// be buffered without backpressure). Then a sample of the clients resumes and reads every byte,
// checked byte-exact; the rest close, and tether logs a conn.close for each of the 500.
//
// 500 clients are ~1000 descriptors in tether and ~1500 in this process (client + backend);
// the test checks `ulimit -n` (RLIMIT_NOFILE) by opening nothing: it reads /proc/self/limits.
import t from 'tap';
import { Buffer } from 'node:buffer';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { runTether } from '../helpers/run-tether.js';
import { within } from '../helpers/e2e-tools.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const CLIENTS = 500;
const DOWNLOAD = 8 * MiB;
/** Clients that resume and read their whole download (the others close). */
const SAMPLE = 50;
const PER_CONN_BOUND = 256 * KiB;
/** Not a power of two, so a lost or repeated chunk misaligns the rest. */
const BLOCK = randomBytes(64 * KiB + 7);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** VmRSS of `pid` in bytes, from /proc/<pid>/status. */
function rssOf(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${String(pid)}/status`, 'utf8'));
  if (!m?.[1]) throw new Error(`no VmRSS for pid ${String(pid)}`);
  return Number(m[1]) * KiB;
}

/** This process's soft limit on open files, from /proc/self/limits. */
function openFilesLimit(): number {
  const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m?.[1] === undefined ? Infinity : Number(m[1]);
}

/** Where client `id`'s download starts in the endless repetition of BLOCK. */
const offsetOf = (id: number): number => (id * 7919) % BLOCK.length;

/** The bytes at `pos` (up to `n`) of client `id`'s download, without wrapping past BLOCK's end. */
function slice(id: number, pos: number, n: number): Buffer {
  const off = (offsetOf(id) + pos) % BLOCK.length;
  return BLOCK.subarray(off, Math.min(BLOCK.length, off + n));
}

/** Whether `data`, received at `pos` of client `id`'s download, is exactly what was sent there. */
function matches(id: number, pos: number, data: Buffer): boolean {
  for (let done = 0; done < data.length; ) {
    const want = slice(id, pos + done, data.length - done);
    if (!want.equals(data.subarray(done, done + want.length))) return false;
    done += want.length;
  }
  return true;
}

const onLinux = process.platform === 'linux';

t.test(`${String(CLIENTS)} clients stop reading an ${String(DOWNLOAD / MiB)} MiB download: tether does not buffer it`, { timeout: 300_000, skip: onLinux ? false : 'reads /proc/<pid>/status' }, async (t) => {
  const limit = openFilesLimit();
  t.ok(limit >= 3 * CLIENTS + 100, `ulimit -n is ${String(limit)}: enough for ${String(CLIENTS)} clients and their backends in this process`);

  let written = 0;
  const server = net.createServer((s) => {
    s.on('error', () => undefined); // a client that closes early ends its download; nothing to check here
    s.once('data', (d: Buffer) => {
      const id = d.readUInt32BE(0);
      let pos = 0;
      const pump = (): void => {
        while (pos < DOWNLOAD && !s.destroyed) {
          const c = slice(id, pos, DOWNLOAD - pos);
          pos += c.length;
          written += c.length;
          if (!s.write(c)) {
            s.once('drain', pump);
            return;
          }
        }
        if (pos >= DOWNLOAD) s.end();
      };
      pump();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => { resolve(); })));
  const bport = (server.address() as net.AddressInfo).port;
  const rt = await runTether(['--listen', '127.0.0.1:0', '--backend', `big=127.0.0.1:${String(bport)}`, '--affinity', 'none', '--grace', '1s']);
  t.teardown(() => rt.stop());
  const port = rt.ports[0] ?? 0;
  const pid = rt.child.pid ?? 0;

  // Baseline: after one full download through tether, so code paths and pools are warm.
  const warm = await within(download(port, CLIENTS + 1), 30_000, 'warm-up download');
  t.equal(warm.received, DOWNLOAD, 'warm-up download complete');
  await sleep(500);
  const baseline = rssOf(pid);

  const clients: Reader[] = [];
  for (let id = 0; id < CLIENTS; id++) clients.push(await connectPaused(port, id));
  // Wait until the downloads have stalled: nothing more written for a second (bounded).
  let last = -1;
  for (let i = 0; i < 60 && written !== last; i++) {
    last = written;
    await sleep(1_000);
  }
  const stalled = rssOf(pid);
  const bound = baseline + CLIENTS * PER_CONN_BOUND;
  const mib = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;
  t.comment(
    `tether VmRSS: baseline ${mib(baseline)}, with ${String(CLIENTS)} stalled readers ${mib(stalled)} (+${mib(stalled - baseline)}, ${String(Math.round((stalled - baseline) / CLIENTS / KiB))} KiB per connection); bound ${mib(bound)}; backend wrote ${mib(written)} of ${mib(CLIENTS * DOWNLOAD)} before stalling`,
  );
  t.ok(written < CLIENTS * DOWNLOAD, 'the downloads stalled (backpressure reached the backend)');
  t.ok(stalled <= bound, `VmRSS ${mib(stalled)} within baseline + ${String(CLIENTS)} × ${String(PER_CONN_BOUND / KiB)} KiB = ${mib(bound)}`);

  // A sample resumes and reads everything, byte-exact; the rest close.
  const sample = clients.filter((c) => c.id % (CLIENTS / SAMPLE) === 0);
  const rest = clients.filter((c) => c.id % (CLIENTS / SAMPLE) !== 0);
  const results = await within(Promise.all(sample.map((c) => c.resume())), 60_000, `${String(SAMPLE)} resumed downloads`);
  t.same(
    results.filter((r) => r.received !== DOWNLOAD || r.corrupt).map((r) => `client ${String(r.id)}: ${String(r.received)} bytes${r.corrupt ? ', corrupt' : ''}`),
    [],
    `${String(SAMPLE)} resumed clients each received all ${String(DOWNLOAD)} bytes, byte-exact`,
  );
  for (const c of rest) c.close();
  const closes = await within(
    (async () => {
      for (let i = 0; i < 400 && rt.lines.filter((l) => l.event === 'conn.close').length < CLIENTS + 1; i++) await sleep(25);
      return rt.lines.filter((l) => l.event === 'conn.close').length;
    })(),
    15_000,
    'conn.close lines',
  );
  t.equal(closes, CLIENTS + 1, 'one conn.close line per connection');
  t.equal(rt.child.exitCode, null, 'tether still running');
});

/** A client whose download is paused until `resume()`. */
interface Reader {
  readonly id: number;
  resume(): Promise<{ id: number; received: number; corrupt: boolean }>;
  close(): void;
}

/** Connects, asks for download `id`, and reads nothing (the socket stays paused). */
function connectPaused(port: number, id: number): Promise<Reader> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.pause();
    s.on('error', () => undefined); // a broken download shows as a short count
    s.once('connect', () => {
      const hello = Buffer.alloc(4);
      hello.writeUInt32BE(id);
      s.write(hello);
      resolve({
        id,
        resume: () => readAll(s, id),
        close: () => s.destroy(),
      });
    });
    s.once('error', reject);
  });
}

/** Reads `s` to its end, checking each byte against download `id`. */
function readAll(s: net.Socket, id: number): Promise<{ id: number; received: number; corrupt: boolean }> {
  return new Promise((resolve) => {
    let received = 0;
    let corrupt = false;
    s.on('data', (d: Buffer) => {
      if (!corrupt && !matches(id, received, d)) corrupt = true;
      received += d.length;
    });
    s.once('close', () => {
      resolve({ id, received, corrupt });
    });
    s.resume();
  });
}

/** One download `id` read as it comes. */
async function download(port: number, id: number): Promise<{ received: number; corrupt: boolean }> {
  const r = await connectPaused(port, id);
  return r.resume();
}
