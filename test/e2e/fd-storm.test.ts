// File descriptors under abuse, through `node bin/tether` run with `ulimit -n 256`: clients
// that reset right after connecting (before tether has read their address) must not leak
// their sockets, and a storm larger than the fd limit is refused, logged as accept.error at
// most once a second, and survived — tether comes back to its baseline fd count and serves
// the next client. Fds are counted in /proc/PID/fd of the tether process.
import net from 'node:net';
import { readdirSync } from 'node:fs';
import t, { type Test } from 'tap';
import { runTether, type RunningTether } from '../helpers/run-tether.js';
import { startBackend, whoAnswers, type TestBackend } from '../helpers/named-backend.js';
import { isConnClose, waitForCount } from '../helpers/e2e-tools.js';

/** Runs `node bin/tether ARGS` with its fd limit lowered to `limit` (soft and hard). */
const withFdLimit = (limit: number): readonly [string, ...string[]] => ['bash', '-c', `ulimit -n ${String(limit)} && exec "$@"`, 'bash'];

/** The fds tether holds open now. */
function fdCount(rt: RunningTether): number {
  return readdirSync(`/proc/${String(rt.child.pid)}/fd`).length;
}

/** Waits (bounded) until tether holds at most `max` fds; returns the last count seen. */
async function settleFds(rt: RunningTether, max: number, ms = 10_000): Promise<number> {
  const deadline = Date.now() + ms;
  let n = fdCount(rt);
  while (n > max && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    n = fdCount(rt);
  }
  return n;
}

/** Connects and resets (SO_LINGER 0) the moment the connection is up; resolves once closed. */
function connectAndReset(port: number): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => s.destroy(), 5_000);
    s.on('error', () => undefined); // the client only wants to be gone
    s.once('connect', () => s.resetAndDestroy());
    s.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Runs `n` calls of `one`, at most `width` at a time. */
async function inBatches(n: number, width: number, one: () => Promise<unknown>): Promise<void> {
  for (let done = 0; done < n; done += width) {
    await Promise.all(Array.from({ length: Math.min(width, n - done) }, one));
  }
}

async function backend(t: Test, name: string): Promise<TestBackend> {
  const b = await startBackend(name);
  t.teardown(() => b.close());
  return b;
}

/** Slack over the baseline fd count: timers, pino's flush, an fd the runtime opens lazily. */
const FD_SLACK = 4;

for (const mode of ['--affinity none', '--affinity sni,source --peek-timeout 2s'] as const) {
  t.test(`300 clients that reset at once leave no fd behind (${mode})`, async (t) => {
    const a = await backend(t, 'a');
    const rt = await runTether(['--listen', '127.0.0.1:0', '--backend', `a=127.0.0.1:${String(a.port)}`, ...mode.split(' ')], { launcher: withFdLimit(256) });
    t.teardown(() => rt.stop());
    const port = rt.ports[0]!;
    t.equal(await whoAnswers(port), 'a', 'served before the storm');
    await waitForCount(rt, isConnClose(), 1);
    const baseline = fdCount(rt);

    await inBatches(300, 20, () => connectAndReset(port));
    await waitForCount(rt, isConnClose(), 301, 15_000);
    const codes = new Map<string, number>();
    for (const l of rt.lines.filter(isConnClose())) {
      const c = (l['termination'] as { code?: string } | undefined)?.code ?? 'none';
      codes.set(c, (codes.get(c) ?? 0) + 1);
    }
    t.comment(`how they ended: ${JSON.stringify(Object.fromEntries(codes))}`);
    const after = await settleFds(rt, baseline + FD_SLACK);
    t.ok(after <= baseline + FD_SLACK, `fds back to baseline: ${String(baseline)} before, ${String(after)} after`);
    t.equal(await whoAnswers(port), 'a', 'a fresh client is served');
    t.equal(rt.child.exitCode, null, 'tether still runs');
  });
}

/** A client of the storm: holds its connection until `release`, or resets at once. */
function stormClient(port: number, reset: boolean, release: Promise<void>): Promise<'served' | 'closed' | 'waiting'> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let outcome: 'served' | 'closed' | 'waiting' = 'waiting';
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      resolve(outcome);
    };
    // Bounded: a client still in the kernel's backlog after this counts as waiting.
    const timer = setTimeout(settle, 4_000);
    s.on('error', () => undefined); // refusals (FIN or reset) are what this storm is about
    s.once('connect', () => {
      if (reset) s.resetAndDestroy();
    });
    s.on('data', () => {
      outcome = 'served';
      clearTimeout(timer);
      settle();
    });
    s.once('close', () => {
      if (outcome === 'waiting') outcome = 'closed';
      clearTimeout(timer);
      settle();
    });
    void release.then(() => s.destroy());
  });
}

t.test('1,000 clients against 256 fds: refused, accept.error once a second at most, the backend never blamed, and back to baseline', async (t) => {
  const a = await backend(t, 'a');
  const rt = await runTether(['--listen', '127.0.0.1:0', '--backend', `a=127.0.0.1:${String(a.port)}`, '--affinity', 'none'], { launcher: withFdLimit(256) });
  t.teardown(() => rt.stop());
  const port = rt.ports[0]!;
  t.equal(await whoAnswers(port), 'a', 'served before the storm');
  await waitForCount(rt, isConnClose(), 1);
  const baseline = fdCount(rt);

  let release = (): void => undefined;
  const released = new Promise<void>((r) => (release = r));
  const storm = Array.from({ length: 1_000 }, (_, i) => stormClient(port, i % 4 === 3, released));
  const shortage = await rt.waitFor((l) => l.event === 'accept.error', 8_000).catch(() => undefined);
  t.match(shortage, { level: 'error', code: 'EMFILE' }, 'accept.error (EMFILE) is logged while the fds are gone');
  const peak = fdCount(rt);
  release();
  const outcomes = await Promise.all(storm);
  const tally = (o: string): number => outcomes.filter((x) => x === o).length;
  t.comment(`fds: ${String(baseline)} before, ${String(peak)} at the peak; clients served ${String(tally('served'))}, closed ${String(tally('closed'))}, waiting ${String(tally('waiting'))}`);
  t.ok(tally('closed') > 0, 'some clients were refused');

  const after = await settleFds(rt, baseline + FD_SLACK);
  t.ok(after <= baseline + FD_SLACK, `fds back to baseline: ${String(baseline)} before, ${String(after)} after`);
  t.equal(await whoAnswers(port), 'a', 'a fresh client is served');
  t.equal(rt.child.exitCode, null, 'tether never crashed');

  t.same(rt.lines.filter((l) => l.event === 'backend.down'), [], "tether's own fd shortage never holds the backend down");
  const times = rt.lines.filter((l) => l.event === 'accept.error').map((l) => Number(l['time']));
  t.ok(times.every((at, i) => i === 0 || at - times[i - 1]! >= 1_000), `accept.error at most once a second (${String(times.length)} lines)`);
  const emfileCloses = rt.lines.filter((l) => isConnClose()(l) && (l['termination'] as { code?: string } | undefined)?.code === 'EMFILE');
  t.ok(emfileCloses.every((l) => (l['termination'] as { cause?: string }).cause === 'tether'), `a dial that failed for want of an fd is tether's doing (${String(emfileCloses.length)})`);
});
