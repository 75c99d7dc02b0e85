// The fd watch (lib/accept/fd-watch.ts) in a real fd shortage: a child node whose fd limit is
// lowered with `ulimit -n` opens /dev/null until EMFILE, then drives checkFds() and watchFds()
// and reports what each call saw. In this process (plenty of fds) the check finds nothing.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import t from 'tap';
import { checkFds, isFdShortage, watchFds } from '../../lib/accept/fd-watch.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const FD_WATCH_JS = pathToFileURL(path.join(ROOT, 'dist', 'lib', 'accept', 'fd-watch.js')).href;

/** What the child reports: each step's name and the shortages seen by then. */
interface ChildReport {
  readonly direct: string | null;
  readonly steps: readonly { readonly step: string; readonly calls: number }[];
}

// Runs in the child: fill the fds, then count onShortage calls after each step. Steps wait on
// real timers and immediates, with margins of a second where an order depends on time: the
// burst watch has a 1 s gap and an hour's interval, the interval watch a 100 ms interval.
const CHILD = `
import { closeSync, openSync } from 'node:fs';
import { checkFds, watchFds } from ${JSON.stringify(FD_WATCH_JS)};
const held = [];
for (let i = 0; i < 10000; i++) {
  try { held.push(openSync('/dev/null', 'r')); } catch (e) { if (e.code === 'EMFILE') break; throw e; }
}
const direct = checkFds() ?? null;
const codes = new Set();
let calls = 0;
const bursts = watchFds((code) => { calls++; codes.add(code); }, 3_600_000, 1_000);
let ticks = 0;
const turn = () => new Promise((r) => setImmediate(() => setImmediate(r)));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const steps = [];
const mark = (step, n = calls) => steps.push({ step, calls: n });
bursts.soon(); await turn(); mark('first burst of one');
bursts.soon(); await turn(); mark('a burst of one inside the gap');
bursts.soon(); bursts.soon(); bursts.soon(); await turn(); mark('a burst of three inside the gap');
await sleep(1_050); bursts.soon(); await turn(); mark('a burst of one after the gap');
bursts.soon(); bursts.soon(); bursts.stop(); await turn(); mark('stopped with a check pending');
const interval = watchFds(() => ticks++, 100, 0);
await sleep(450); mark('interval ticks in 450 ms', Math.min(ticks, 2));
interval.stop(); const atStop = ticks;
await sleep(300); mark('ticks after stop', ticks - atStop);
// Give the fds back: coverage and tap's process info are written at exit.
for (const fd of held) closeSync(fd);
process.stdout.write(JSON.stringify({ direct, steps, codes: [...codes] }) + '\\n');
process.exit(0);
`;

function runChild(fdLimit: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `ulimit -n ${String(fdLimit)} && exec "$@"`, 'bash', process.execPath, '--input-type=module', '-e', CHILD], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

t.test('isFdShortage names only EMFILE and ENFILE', (t) => {
  t.ok(isFdShortage('EMFILE'));
  t.ok(isFdShortage('ENFILE'));
  for (const c of ['ENOENT', 'EACCES', 'ECONNRESET', '', undefined]) t.notOk(isFdShortage(c), String(c));
  t.end();
});

t.test('with fds to spare the check finds no shortage, and the watch never calls', async (t) => {
  t.equal(checkFds(), undefined);
  let calls = 0;
  const w = watchFds(() => calls++, 20, 0);
  w.soon();
  w.soon();
  await new Promise((r) => setTimeout(r, 80));
  w.stop();
  t.equal(calls, 0);
});

t.test('out of fds: checkFds says EMFILE; the watch checks after bursts, by the gap and on its interval, and not after stop', async (t) => {
  const r = await runChild(48);
  t.equal(r.code, 0, `the child ran to its end${r.stderr ? `: ${r.stderr}` : ''}`);
  const report = JSON.parse(r.stdout.trim()) as ChildReport & { codes: string[] };
  t.equal(report.direct, 'EMFILE', 'checkFds() at the limit');
  t.same(report.codes, ['EMFILE'], 'onShortage gets the code');
  t.same(
    report.steps.map((s) => [s.step, s.calls]),
    [
      ['first burst of one', 1],
      ['a burst of one inside the gap', 1],
      ['a burst of three inside the gap', 2],
      ['a burst of one after the gap', 3],
      ['stopped with a check pending', 3],
      ['interval ticks in 450 ms', 2],
      ['ticks after stop', 0],
    ],
  );
});
