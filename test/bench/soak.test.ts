// The soak (bench/soak.ts): its verdict fails on each kind of leftover (a leaked descriptor,
// RSS past the bound, table entries or clients left, failures), and a short run of the real
// script through `node bin/tether` passes and prints its report.
import { spawn } from 'node:child_process';
import path from 'node:path';
import t from 'tap';
import { judgeSoak, renderVerdict, type SoakFigures } from '../../bench/soak-verdict.js';
import { ROOT } from '../helpers/run-tether.js';

const BOUNDS = { fdSlack: 2, rssSlackKib: 32 * 1024, maxFailures: 0 } as const;

const idle = { fds: 21, rssKib: 100 * 1024, tableEntries: 1, liveEntries: 1, open: 0 };
const healthy: SoakFigures = {
  baseline: idle,
  peak: { fds: 140, rssKib: 130 * 1024, tableEntries: 5_000, open: 60 },
  after: { ...idle, rssKib: 120 * 1024 },
  failures: 0,
  fatal: false,
};

const failed = (f: SoakFigures): string[] =>
  judgeSoak(f, BOUNDS)
    .checks.filter((c) => !c.ok)
    .map((c) => c.name);

t.test('a soak that gave everything back passes', (t) => {
  const v = judgeSoak(healthy, BOUNDS);
  t.ok(v.ok);
  t.match(renderVerdict(v), /^verdict: PASS — fds 21 → 21 \(exact\); RSS 100\.0 → 120\.0 MiB \(\+20\.0, bound \+32\.0\)/);
  t.end();
});

t.test('each leftover fails its own check', (t) => {
  t.same(failed({ ...healthy, after: { ...healthy.after, fds: 24 } }), ['fds'], 'three descriptors leaked, slack two');
  t.same(failed({ ...healthy, after: { ...healthy.after, fds: 23 } }), [], 'within the slack');
  t.same(failed({ ...healthy, after: { ...healthy.after, rssKib: 133 * 1024 } }), ['rss'], 'RSS 33 MiB over, bound 32');
  t.same(failed({ ...healthy, after: { ...healthy.after, tableEntries: 3_436 } }), ['table'], 'expired entries still held');
  t.same(failed({ ...healthy, after: { ...healthy.after, liveEntries: 2 } }), ['table'], 'an entry still live');
  t.same(failed({ ...healthy, peak: { ...healthy.peak, tableEntries: 1 } }), ['table-filled'], 'the table never filled');
  t.same(failed({ ...healthy, after: { ...healthy.after, open: 1 } }), ['open'], 'a client still open');
  t.same(failed({ ...healthy, failures: 1 }), ['failures']);
  t.same(failed({ ...healthy, fatal: true }), ['fatal']);
  const v = judgeSoak({ ...healthy, after: { ...healthy.after, fds: 24 } }, BOUNDS);
  t.notOk(v.ok);
  t.match(renderVerdict(v), /^verdict: FAIL — fds 21 → 24 \(\+3, slack 2\) \[FAIL\];/);
  t.end();
});

t.test('a short soak through the real tether passes and reports', async (t) => {
  // A short run's baseline is taken before V8's heap has grown to its working size (+25-35 MiB
  // over the first ~10k connections), so its RSS bound is loose; the 200k run keeps the default.
  const args = ['--connections', '2000', '--warmup', '500', '--concurrency', '32', '--affinity-timeout-ms', '1000', '--settle-ms', '300', '--rss-slack-mib', '256'];
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'bench', 'soak.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => child.kill('SIGTERM'), 60_000);
  t.teardown(() => {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) t.comment(`stdout:\n${out}\nstderr:\n${err}`);
  t.equal(code, 0, 'exits 0');
  t.match(out, /connections {2}2,000 of 2,000 in [\d.]+ s/);
  t.match(out, /by kind {4}normal \(name, echo, close\) 1,915 · reset mid-stream 40 · close before sending 40 · silent, cut at --idle-timeout 5\n/);
  t.match(out, /failures {3}none\n/);
  t.match(out, /\nverdict: PASS — fds (\d+) → \1 \(exact\);/);
});
