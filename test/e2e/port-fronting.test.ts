// Port fronting through `node bin/tether`: `--listen 127.0.0.1:P-P+2` with port-less backends
// on 127.0.0.2 and 127.0.0.3, dialled on the port the client connected to. Nothing listens on
// the middle port of either host: a client there holds down that address (host:port), not the
// hosts, and the other ports keep being served by both.
import t from 'tap';
import { runTether, type LogLine, type RunningTether } from '../helpers/run-tether.js';
import { startBackend, whoAnswers, type TestBackend } from '../helpers/named-backend.js';
import { linesWhere, waitForCount } from '../helpers/e2e-tools.js';

const HOSTS = ['127.0.0.2', '127.0.0.3'] as const;

/** Backends named after their host on `ports` of each host; undefined when a port is taken. */
async function backendsAt(ports: readonly number[]): Promise<TestBackend[] | undefined> {
  const bs: TestBackend[] = [];
  try {
    for (const host of HOSTS) for (const port of ports) bs.push(await startBackend(host, { host, port }));
    return bs;
  } catch (e) {
    await Promise.all(bs.map((b) => b.close()));
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES') return undefined; // taken: try another range
    throw e;
  }
}

const is = (event: string) => (l: LogLine): boolean => l.event === event;

t.test('a closed port holds down its address only: the other ports stay served by both hosts', async (t) => {
  let found: { rt: RunningTether; low: number; backends: TestBackend[] } | undefined;
  for (let attempt = 0; attempt < 8 && !found; attempt++) {
    // Below the ephemeral range (32768+), so outgoing connections do not take these ports.
    const low = 20_000 + Math.floor(Math.random() * 12_000);
    const backends = await backendsAt([low, low + 2]);
    if (!backends) continue;
    try {
      const rt = await runTether(
        ['--listen', `127.0.0.1:${String(low)}-${String(low + 2)}`, ...HOSTS.flatMap((h) => ['--backend', h]), '--balance', 'roundrobin', '--affinity', 'none', '--hold-down', '30s', '--grace', '1s'],
        { readyCount: 3 },
      );
      found = { rt, low, backends };
    } catch (e) {
      await Promise.all(backends.map((b) => b.close()));
      if (!(e instanceof Error && e.message.includes('EADDRINUSE'))) throw e;
    }
  }
  if (!found) throw new Error('no free range of 3 ports found in 8 attempts');
  const { rt, low, backends } = found;
  t.teardown(async () => {
    await rt.stop();
    await Promise.all(backends.map((b) => b.close()));
  });

  t.equal(await whoAnswers(low + 1), '', 'the closed port: nobody answers');
  const downs = await waitForCount(rt, is('backend.down'), 2);
  t.same(
    downs.map((l) => l['address']).sort(),
    HOSTS.map((h) => `${h}:${String(low + 1)}`),
    'backend.down names the address dialled (host:port), once for each host',
  );

  for (const port of [low, low + 2]) {
    const names: string[] = [];
    for (let i = 0; i < 4; i++) names.push(await whoAnswers(port));
    t.same([...new Set(names)].sort(), [...HOSTS], `port ${String(port)}: served by both hosts (${names.join(' ')})`);
  }
  t.equal(linesWhere(rt, is('backend.down')).length, 2, 'no other address went down');
  t.equal(await whoAnswers(low + 1), '', 'the closed port is still held down');
  t.equal(linesWhere(rt, is('backend.down')).length, 2, 'and not reported again');
});
