// --state-file through `node bin/tether`: the affinity table outlives a restart (saved on
// SIGTERM, and periodically, so also after a SIGKILL), stale entries are dropped at load, a
// corrupt file only warns, and an unusable path is refused at start. roundrobin makes a fresh
// placement predictable: the first new key goes to the first backend listed, so a restart that
// lists the backends in the other order shows whether the table or the balancer placed a source.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { runTether, runTetherToExit, type RunningTether } from '../helpers/run-tether.js';
import { startBackend, whoAnswers, type TestBackend } from '../helpers/named-backend.js';
import { errorLines, isConnClose, waitForCount } from '../helpers/e2e-tools.js';

async function backends(t: Test): Promise<Record<'a' | 'b', TestBackend>> {
  const [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  return { a, b };
}

/** Starts tether with source affinity and roundrobin over `order`, saving to `file`. */
async function tether(t: Test, bs: Record<'a' | 'b', TestBackend>, order: readonly ('a' | 'b')[], file: string, extra: readonly string[] = []): Promise<{ rt: RunningTether; port: number }> {
  const rt = await runTether([
    '--listen', '127.0.0.1:0',
    ...order.flatMap((n) => ['--backend', `${n}=127.0.0.1:${String(bs[n].port)}`]),
    '--affinity', 'source', '--balance', 'roundrobin', '--grace', '1s', '--state-file', file, ...extra,
  ]);
  t.teardown(() => rt.stop());
  return { rt, port: rt.ports[0] ?? 0 };
}

/** The affinity-table key of a source address under `--affinity source` (kind NUL value/bits). */
const src = (address: string): string => `source\u0000${address}/32`;

const from = (port: number, source: string): Promise<string> => whoAnswers(port, { localAddress: source });

t.test('a source keeps its backend across a SIGTERM restart', async (t) => {
  const bs = await backends(t);
  const file = path.join(t.testdir(), 'tether.state');
  const first = await tether(t, bs, ['a', 'b'], file);
  await first.rt.waitFor((l) => l.event === 'state.loaded' && l['missing'] === true);
  t.equal(await from(first.port, '127.0.0.2'), 'a', 'first new source: first backend');
  t.equal(await from(first.port, '127.0.0.3'), 'b', 'second new source: second backend');
  await waitForCount(first.rt, isConnClose(), 2);
  t.equal(await first.rt.stop(), 0);
  t.match(first.rt.lines.filter((l) => l.event === 'state.saved'), [{ level: 'info', entries: 2 }], 'saved once, on stop');
  t.equal(statSync(file).mode & 0o777, 0o600, 'mode 0600');
  t.notOk(first.rt.lines.some((l) => l.event?.startsWith('state.') === true && JSON.stringify(l).includes('127.0.0.2')), 'state lines carry no key');

  // Listed b, a: a fresh roundrobin would now send 127.0.0.2 to b and 127.0.0.3 to a.
  const second = await tether(t, bs, ['b', 'a'], file);
  t.match(await second.rt.waitFor((l) => l.event === 'state.loaded'), { entries: 2, dropped: 0 });
  t.equal(await from(second.port, '127.0.0.2'), 'a', '127.0.0.2 is still on a');
  t.equal(await from(second.port, '127.0.0.3'), 'b', '127.0.0.3 is still on b');
  t.equal(await from(second.port, '127.0.0.4'), 'b', 'a new source is placed fresh: first listed backend');
  const closes = await waitForCount(second.rt, isConnClose(), 3);
  t.same(closes.map((l) => l['via']), ['table', 'table', 'balance']);
});

t.test('a periodic save outlives a SIGKILL', async (t) => {
  const bs = await backends(t);
  const file = path.join(t.testdir(), 'tether.state');
  const first = await tether(t, bs, ['a', 'b'], file, ['--state-interval', '200ms', '--log-level', 'debug']);
  t.equal(await from(first.port, '127.0.0.2'), 'a');
  t.equal(await from(first.port, '127.0.0.3'), 'b');
  await first.rt.waitFor((l) => l.event === 'state.saved' && l['entries'] === 2 && l['level'] === 'debug');
  first.rt.child.kill('SIGKILL');
  await first.rt.exited;
  const second = await tether(t, bs, ['b', 'a'], file);
  t.equal(await from(second.port, '127.0.0.2'), 'a', 'restored from the last periodic save');
  t.equal(await from(second.port, '127.0.0.3'), 'b');
});

t.test('at load, entries past the affinity timeout, on removed backends, or of unknown frontends are dropped', async (t) => {
  const bs = await backends(t);
  const file = path.join(t.testdir(), 'tether.state');
  const now = Date.now();
  const hour = 3_600_000;
  writeFileSync(
    file,
    JSON.stringify({
      version: 1,
      savedAt: now - 1_000,
      frontends: {
        default: {
          pools: {
            default: [
              [src('127.0.0.2'), 'a', now - 2 * hour],
              [src('127.0.0.3'), 'gone', now - 1_000],
              [src('127.0.0.4'), 'a', now - 1_000],
            ],
            nopool: [[src('127.0.0.5'), 'a', now]],
          },
        },
        other: { pools: { default: [[src('127.0.0.6'), 'a', now]] } },
      },
    }),
  );
  // Listed b, a: anything not restored goes to b first.
  const { rt, port } = await tether(t, bs, ['b', 'a'], file, ['--affinity-timeout', '1h']);
  t.match(await rt.waitFor((l) => l.event === 'state.loaded'), { entries: 1, dropped: 4 });
  t.equal(await from(port, '127.0.0.4'), 'a', 'the live entry is restored');
  t.equal(await from(port, '127.0.0.2'), 'b', 'the entry idle for 2h (timeout 1h) is gone: placed fresh');
  t.equal(await from(port, '127.0.0.3'), 'a', 'the entry on a removed backend is gone: placed fresh (next in turn)');
});

t.test('a restart with a shorter affinity timeout drops what is now expired', async (t) => {
  const bs = await backends(t);
  const file = path.join(t.testdir(), 'tether.state');
  const first = await tether(t, bs, ['a', 'b'], file);
  t.equal(await from(first.port, '127.0.0.2'), 'a');
  t.equal(await first.rt.stop(), 0);
  // 1ms: the entry was last used before the first tether stopped, so it is idle for longer.
  const second = await tether(t, bs, ['b', 'a'], file, ['--affinity-timeout', '1ms']);
  t.match(await second.rt.waitFor((l) => l.event === 'state.loaded'), { entries: 0, dropped: 1 });
  t.equal(await from(second.port, '127.0.0.2'), 'b', 'placed fresh');
});

t.test('a corrupt state file is a warning: tether starts, serves, and replaces it on stop', async (t) => {
  const bs = await backends(t);
  const dir = t.testdir({ 'tether.state': '{"version":1,"savedAt":' });
  const file = path.join(dir, 'tether.state');
  const { rt, port } = await tether(t, bs, ['a', 'b'], file);
  t.match(await rt.waitFor((l) => l.event === 'state.error'), { level: 'warn', op: 'load', reason: 'not JSON', file });
  t.equal(await from(port, '127.0.0.2'), 'a');
  t.equal(await rt.stop(), 0);
  t.match(JSON.parse(readFileSync(file, 'utf8')), { version: 1, frontends: { default: { pools: { default: [[src('127.0.0.2'), 'a']] } } } });
});

t.test('state-file and state-interval in a config file', async (t) => {
  const bs = await backends(t);
  const dir = t.testdir();
  const file = path.join(dir, 'tether.state');
  const conf = path.join(dir, 'tether.yaml');
  writeFileSync(
    conf,
    `state-file: ${file}\nstate-interval: 0\nfrontends:\n  - name: web\n    listen: 127.0.0.1:0\n    backends: [a=127.0.0.1:${String(bs.a.port)}]\n    affinity: source\n`,
  );
  const rt = await runTether(['--config', conf]);
  t.teardown(() => rt.stop());
  t.equal(await whoAnswers(rt.ports[0] ?? 0), 'a');
  t.equal(await rt.stop(), 0);
  t.match(JSON.parse(readFileSync(file, 'utf8')), { frontends: { web: { pools: { default: [[src('127.0.0.1'), 'a']] } } } });
});

t.test('an unusable state file path is refused at start with one line, exit 2', async (t) => {
  const dir = t.testdir({ sub: {} });
  const bad = path.join(dir, 'missing', 'tether.state');
  const r = await runTetherToExit(['--listen', '127.0.0.1:0', '--backend', '127.0.0.1:9', '--state-file', bad]);
  t.equal(r.code, 2);
  t.same(errorLines(r.stderr), [`tether: error: cannot use --state-file ${bad}: folder ${path.join(dir, 'missing')} does not exist`]);
  t.equal(r.stdout, '', 'nothing started, nothing logged');
  const dirAsFile = await runTetherToExit(['--listen', '127.0.0.1:0', '--backend', '127.0.0.1:9', '--state-file', path.join(dir, 'sub')]);
  t.equal(dirAsFile.code, 2);
  t.same(errorLines(dirAsFile.stderr), [`tether: error: cannot use --state-file ${path.join(dir, 'sub')}: not a regular file`]);
});

t.test('--state-interval needs --state-file, and is 0 or at least 100ms', async (t) => {
  const base = ['--listen', '127.0.0.1:0', '--backend', '127.0.0.1:9'];
  const alone = await runTetherToExit([...base, '--state-interval', '1s']);
  t.equal(alone.code, 2);
  t.same(errorLines(alone.stderr), ['tether: error: --state-interval: needs --state-file (state-file in a config file)']);
  const tiny = await runTetherToExit([...base, '--state-file', path.join(t.testdir(), 's'), '--state-interval', '5ms']);
  t.equal(tiny.code, 2);
  t.same(errorLines(tiny.stderr), ['tether: error: --state-interval: must be 0 (save only on stop) or at least 100ms']);
});
