// The fd watch (lib/accept/fd-watch.ts) in a real fd shortage: a child node whose fd limit is
// lowered with `ulimit -n` opens /dev/null until EMFILE, then drives checkFds() and watchFds()
// and reports what each call saw. In this process (plenty of fds) the check finds nothing.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import t from 'tap';
import net from 'node:net';
import { readlinkSync } from 'node:fs';
import { checkFds, isFdShortage, parseFdLimit, readFdLimit, socketFd, watchFds } from '../../lib/accept/fd-watch.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const FD_WATCH_JS = pathToFileURL(path.join(ROOT, 'dist', 'lib', 'accept', 'fd-watch.js')).href;

/** What the child reports: each step's name and the shortages seen by then. */
interface ChildReport {
  readonly limit: number | null;
  readonly direct: string | null;
  readonly steps: readonly { readonly step: string; readonly calls: number }[];
}

// Runs in the child: fill the fds, then count onShortage calls after each step. Steps wait on
// real timers and immediates, with margins of a second where an order depends on time: the
// burst watch has a 1 s gap and an hour's interval, the interval watch a 100 ms interval.
const CHILD = `
import { closeSync, openSync } from 'node:fs';
import { checkFds, readFdLimit, watchFds } from ${JSON.stringify(FD_WATCH_JS)};
const limit = readFdLimit() ?? null;
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
process.stdout.write(JSON.stringify({ limit, direct, steps, codes: [...codes] }) + '\\n');
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

t.test('parseFdLimit reads the soft limit of /proc/PID/limits', (t) => {
  const head = 'Limit                     Soft Limit           Hard Limit           Units     \n';
  t.equal(parseFdLimit(`${head}Max open files            1024                 524288               files     \n`), 1024);
  t.equal(parseFdLimit(`${head}Max processes             63704                63704                processes \nMax open files            256                  256                  files     \n`), 256, 'among other lines');
  t.equal(parseFdLimit(`${head}Max open files            unlimited            unlimited            files     \n`), undefined, 'unlimited');
  t.equal(parseFdLimit(`${head}Max processes             63704                63704                processes \n`), undefined, 'no such line');
  t.equal(parseFdLimit(''), undefined);
  t.equal(parseFdLimit('Max open files            0                    0                    files\n'), undefined, 'zero is no limit to go by');
  const own = readFdLimit();
  t.ok(own === undefined || own > 0, `this process: ${String(own)}`);
  t.end();
});

t.test('socketFd: the fd of a real socket, undefined once it is closed', async (t) => {
  const server = net.createServer((c) => c.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const c = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r) => c.once('connect', r));
  const fd = socketFd(c);
  t.type(fd, 'number');
  t.match(readlinkSync(`/proc/self/fd/${String(fd)}`), /^socket:/, 'it names a socket of this process');
  c.destroy();
  await new Promise((r) => c.once('close', r));
  t.equal(socketFd(c), undefined);
});

t.test('sawFd: the last fd below the limit is a shortage, any lower one is not', (t) => {
  const seen: string[] = [];
  const w = watchFds((code) => seen.push(code), 3_600_000, 0, () => 100);
  w.sawFd(3);
  w.sawFd(98);
  w.sawFd(undefined);
  t.same(seen, [], 'fds to spare');
  w.sawFd(99);
  t.same(seen, ['EMFILE'], 'fd 99 of 100: none left');
  w.stop();
  const blind = watchFds((code) => seen.push(code), 3_600_000, 0, () => undefined);
  blind.sawFd(1_000_000);
  blind.stop();
  t.same(seen, ['EMFILE'], 'with no limit known, no verdict');
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
  t.equal(report.limit, 48, 'readFdLimit() reads the ulimit');
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
