// A slow reader must not make tether buffer: the backend streams 200 MiB with backpressure to a
// client that does not read for 2 s. tether's resident memory (VmRSS of the child, from /proc)
// may grow by a few socket buffers, never by the stream; then the client reads every byte.
import t from 'tap';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { runTether } from '../helpers/run-tether.js';
import { startBackend } from '../helpers/named-backend.js';

const MiB = 1024 * 1024;
const TOTAL = 200 * MiB;
/** Not a power of two, so a lost or repeated chunk misaligns the rest and changes the hash. */
const CHUNK = randomBytes(64 * 1024 + 7);
const PAUSE_MS = 2_000;
const MAX_GROWTH = 64 * MiB;

/** VmRSS of `pid` in bytes, from /proc/<pid>/status. */
function rssOf(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m?.[1]) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** The bytes `sent` bytes into the endless repetition of CHUNK: the stream the backend writes. */
function chunkAt(sent: number): Buffer {
  const off = sent % CHUNK.length;
  return CHUNK.subarray(off, Math.min(CHUNK.length, off + TOTAL - sent));
}

function expectedSha256(): string {
  const h = createHash('sha256');
  for (let sent = 0; sent < TOTAL; ) {
    const c = chunkAt(sent);
    h.update(c);
    sent += c.length;
  }
  return h.digest('hex');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const onLinux = process.platform === 'linux';

t.test('a client that does not read for 2 s does not grow tether', { timeout: 30_000, skip: onLinux ? false : 'reads /proc/<pid>/status' }, async (t) => {
  let sent = 0;
  let backendDone = false;
  const backend = await startBackend('big', {
    behaviour: (s) => {
      // Writes TOTAL bytes, waiting for 'drain' whenever the socket asks; then ends.
      const pump = (): void => {
        while (sent < TOTAL && !s.destroyed) {
          const c = chunkAt(sent);
          sent += c.length;
          if (!s.write(c)) {
            s.once('drain', pump);
            return;
          }
        }
        if (sent >= TOTAL && !backendDone) {
          backendDone = true;
          s.end();
        }
      };
      s.resume(); // nothing comes this way but the client's FIN
      pump();
    },
  });
  t.teardown(() => backend.close());
  const rt = await runTether(['--listen', '127.0.0.1:0', '--backend', `big=127.0.0.1:${backend.port}`]);
  t.teardown(async () => {
    await rt.stop();
  });
  const pid = rt.child.pid!;
  const expected = expectedSha256();

  const before = rssOf(pid);
  const c = net.connect({ host: '127.0.0.1', port: rt.ports[0]!, allowHalfOpen: true });
  t.teardown(() => {
    c.destroy();
  });
  c.pause();
  await new Promise<void>((resolve, reject) => {
    c.once('connect', resolve);
    c.once('error', reject);
  });
  const client = `127.0.0.1:${c.localPort ?? 0}`;

  // Not reading: sample tether's RSS while the backend fills every buffer on the way.
  let peak = before;
  const deadline = Date.now() + PAUSE_MS;
  while (Date.now() < deadline) {
    await sleep(100);
    peak = Math.max(peak, rssOf(pid));
  }
  const sentWhilePaused = sent;
  const growth = peak - before;
  t.comment(
    `tether VmRSS before ${(before / MiB).toFixed(1)} MiB, peak while paused ${(peak / MiB).toFixed(1)} MiB ` +
      `(growth ${(growth / MiB).toFixed(1)} MiB); backend had written ${(sentWhilePaused / MiB).toFixed(1)} MiB`,
  );
  t.ok(sentWhilePaused > 0, 'the backend started writing');
  t.ok(sentWhilePaused < TOTAL / 4, 'backpressure stopped the backend well short of the whole stream');
  t.ok(growth < MAX_GROWTH, `tether RSS grew by ${(growth / MiB).toFixed(1)} MiB (< ${MAX_GROWTH / MiB} MiB)`);
  t.notOk(c.readableEnded || c.destroyed, 'the client is still connected');

  // Now read everything.
  const h = createHash('sha256');
  let got = 0;
  const read = new Promise<boolean>((resolve) => {
    c.on('data', (d: Buffer) => {
      h.update(d);
      got += d.length;
    });
    c.once('end', () => {
      resolve(true);
    });
    c.once('close', () => {
      resolve(false);
    });
    c.resume();
  });
  let timer: NodeJS.Timeout | undefined;
  const ended = await Promise.race([
    read,
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => {
        resolve(false);
      }, 20_000);
    }),
  ]);
  clearTimeout(timer);
  t.ok(ended, 'the client got end after the stream');
  t.equal(got, TOTAL, 'byte count exact');
  t.equal(h.digest('hex'), expected, 'bytes exact (sha256)');
  c.end();
  const line = await rt.waitFor((l) => l.event === 'conn.close' && l['client'] === client, 5_000);
  t.equal(line['bytesOut'], TOTAL);
  t.equal(line['bytesIn'], 0);
  t.strictSame(line['termination'], { cause: 'normal', stage: 'splice' });
});
