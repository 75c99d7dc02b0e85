// Readiness notification through the real binary and the real systemd-notify: a python3
// AF_UNIX datagram socket stands in for systemd (answering barriers as systemd does), tether
// runs with NOTIFY_SOCKET pointing at it. READY=1 only once clients are accepted, STOPPING=1 on
// SIGTERM, WATCHDOG=1 when asked; any failure to notify is one warning, never a crash.
import net from 'node:net';
import os from 'node:os';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { runTether, type LogLine } from '../helpers/run-tether.js';
import { startBackend, whoAnswers } from '../helpers/named-backend.js';
import { hasCommand, startNotifyReceiver } from '../helpers/systemd.js';
import { needTool } from '../helpers/tools.js';

const skip = needTool(
  !hasCommand('python3')
    ? 'python3 is not installed: the stand-in notify socket is a python3 script'
    : !hasCommand('systemd-notify')
      ? 'systemd-notify is not installed: tether sends notifications through it'
      : false,
);

const isNotifyError = (l: LogLine): boolean => l.event === 'notify.error';

/** A port that was free a moment ago (for a --listen known before tether logs it). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => { r(); }));
  return port;
}

t.test('READY=1 once clients are accepted, STOPPING=1 when a stop begins', { skip }, async (t) => {
  const dir = t.testdir();
  const recv = await startNotifyReceiver();
  t.teardown(() => recv.close());
  const a = await startBackend('a');
  t.teardown(() => a.close());
  const probe = path.join(dir, 'env.json');
  writeFileSync(path.join(dir, 'key.mjs'), `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(probe)}, JSON.stringify({ NOTIFY_SOCKET: process.env.NOTIFY_SOCKET ?? null }));\nexport function key() { return undefined; }\n`);
  const port = await freePort();
  const rt = await runTether(['--listen', `127.0.0.1:${port}`, '--backend', `a=127.0.0.1:${a.port}`, '--key-module', path.join(dir, 'key.mjs')], {
    env: { ...process.env, NOTIFY_SOCKET: recv.path },
    readyCount: 0,
  });
  t.teardown(() => rt.stop());
  const ready = await recv.waitFor((m) => m.fields['READY'] === '1');
  // Connect the moment READY=1 arrives: systemd starts dependent units then.
  t.equal(await whoAnswers(port), 'a', 'when READY=1 arrives, tether already accepts and serves');
  t.equal(ready.fields['MAINPID'], String(rt.child.pid), 'MAINPID is tether itself');
  t.match(ready.fields['STATUS'], /^serving 1 frontend\(s\) on 1 listener\(s\)$/, 'with a status line');
  t.equal(recv.messages.filter((m) => m.fields['READY'] === '1').length, 1, 'READY=1 once');
  t.same(JSON.parse(readFileSync(probe, 'utf8')), { NOTIFY_SOCKET: null }, 'NOTIFY_SOCKET is gone from the environment once read');
  rt.child.kill('SIGTERM');
  await recv.waitFor((m) => m.fields['STOPPING'] === '1');
  t.equal(await rt.exited, 0, 'the stop completes: exit 0');
  const order = recv.messages.map((m) => Object.keys(m.fields).find((k) => k === 'READY' || k === 'STOPPING')).filter((k) => k !== undefined);
  t.same(order, ['READY', 'STOPPING'], 'in that order');
  t.same(rt.lines.filter(isNotifyError), [], 'no notification failed');
});

t.test('WATCHDOG_USEC: WATCHDOG=1 pings at half the interval', { skip }, async (t) => {
  const recv = await startNotifyReceiver();
  t.teardown(() => recv.close());
  const a = await startBackend('a');
  t.teardown(() => a.close());
  const rt = await runTether(['--listen', '127.0.0.1:0', '--backend', `a=127.0.0.1:${a.port}`], {
    env: { ...process.env, NOTIFY_SOCKET: recv.path, WATCHDOG_USEC: '400000' },
  });
  t.teardown(() => rt.stop());
  await recv.waitFor((m) => m.fields['WATCHDOG'] === '1');
  await recv.waitFor((m) => m.fields['WATCHDOG'] === '1' && recv.messages.filter((x) => x.fields['WATCHDOG'] === '1').length >= 2);
  t.pass('two pings arrived');
  t.equal(await rt.stop(), 0);
});

t.test('a notification that cannot be sent is one warning; tether serves and stops as usual', { skip }, async (t) => {
  const a = await startBackend('a');
  t.teardown(() => a.close());
  const args = ['--listen', '127.0.0.1:0', '--backend', `a=127.0.0.1:${a.port}`];

  await t.test('no systemd-notify on PATH', async (t) => {
    const rt = await runTether(args, { env: { ...process.env, PATH: path.join(t.testdir(), 'empty'), NOTIFY_SOCKET: path.join(t.testdir(), 'notify.sock') } });
    t.teardown(() => rt.stop());
    const w = await rt.waitFor(isNotifyError);
    t.equal(w['reason'], 'cannot run systemd-notify: ENOENT');
    t.equal(w['level'], 'warn');
    t.equal(await whoAnswers(rt.ports[0]!), 'a', 'tether serves');
    t.equal(await rt.stop(), 0, 'and stops cleanly');
    t.equal(rt.lines.filter(isNotifyError).length, 1, 'one warning, although STOPPING=1 failed too');
  });

  await t.test('NOTIFY_SOCKET naming no socket', async (t) => {
    const rt = await runTether(args, { env: { ...process.env, NOTIFY_SOCKET: path.join(os.tmpdir(), `tether-no-such-${String(process.pid)}.sock`) } });
    t.teardown(() => rt.stop());
    const w = await rt.waitFor(isNotifyError);
    t.match(w['reason'], /^systemd-notify READY=1: .*No such file or directory/, 'systemd-notify\'s own words');
    t.equal(await whoAnswers(rt.ports[0]!), 'a', 'tether serves');
    t.equal(await rt.stop(), 0, 'and stops cleanly');
    t.equal(rt.lines.filter(isNotifyError).length, 1, 'one warning');
  });

  await t.test('a receiver that never answers barriers (not systemd)', async (t) => {
    const recv = await startNotifyReceiver({ answerBarriers: false });
    t.teardown(() => recv.close());
    const rt = await runTether(args, { env: { ...process.env, NOTIFY_SOCKET: recv.path } });
    t.teardown(() => rt.stop());
    await recv.waitFor((m) => m.fields['READY'] === '1');
    t.equal(await whoAnswers(rt.ports[0]!), 'a', 'tether serves while systemd-notify waits for its answer');
    rt.child.kill('SIGTERM');
    // systemd-notify gives up on the barrier after 5 s; STOPPING=1 follows READY=1 in order.
    await recv.waitFor((m) => m.fields['STOPPING'] === '1', 15_000);
    t.equal(await rt.exited, 0, 'exit 0');
    t.same(rt.lines.filter(isNotifyError), [], 'an unanswered barrier is not a failure');
  });
});
