// lib/systemd/notify.ts: the pure field builders, then the notifier in-process against a
// stand-in notify socket (python3, answering barriers like systemd) through the real
// systemd-notify: order, RELOADING=1's MONOTONIC_USEC, notifyReload, and the disabled case.
import { Writable } from 'node:stream';
import t from 'tap';
import { monotonicMicros } from '../../lib/clock.js';
import { createLogger } from '../../lib/log.js';
import { createNotifier, notifyReload, readyFields, reloadingFields, statusField, watchdogIntervalMs } from '../../lib/systemd/notify.js';
import { hasCommand, startNotifyReceiver } from '../helpers/systemd.js';
import { needTool } from '../helpers/tools.js';

t.test('field builders', (t) => {
  t.same(readyFields(42), ['READY=1', 'MAINPID=42']);
  t.same(readyFields(42, 'up'), ['READY=1', 'MAINPID=42', 'STATUS=up']);
  t.same(reloadingFields(123456789n), ['RELOADING=1', 'MONOTONIC_USEC=123456789']);
  t.equal(statusField('two\nlines\r\n\tand\u0000more'), 'STATUS=two lines and more', 'control characters cannot start a new field');
  t.equal(statusField('x'.repeat(500)).length, 'STATUS='.length + 200, 'bounded');
  t.end();
});

t.test('watchdog interval: half of WATCHDOG_USEC, only when meant for us', (t) => {
  t.equal(watchdogIntervalMs({}, 7), undefined, 'no watchdog asked');
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 7), 15_000);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '7' }, 7), 15_000, 'WATCHDOG_PID is us');
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '8' }, 7), undefined, 'meant for another process');
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '0' }, 7), undefined, 'zero: off');
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '1' }, 7), 1, 'never below a millisecond');
  for (const bad of ['', 'abc', '-5', '1e6', '9'.repeat(20)]) t.equal(watchdogIntervalMs({ WATCHDOG_USEC: bad }, 7), undefined, `ignored: ${JSON.stringify(bad)}`);
  t.end();
});

/** A logger whose JSON lines land in `lines`. */
function sinkLogger(): { logger: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger('debug', dest), lines };
}

t.test('without NOTIFY_SOCKET every call is a no-op', async (t) => {
  const { logger, lines } = sinkLogger();
  const n = createNotifier({ WATCHDOG_USEC: '1000' }, logger, { pid: process.pid, monotonicMicros });
  t.equal(n.enabled, false);
  n.ready('x');
  n.reloading();
  n.status('y');
  n.stopping();
  await n.close();
  t.same(lines, [], 'nothing logged, nothing spawned');
});

const skip = needTool(!hasCommand('python3') ? 'python3 is not installed' : !hasCommand('systemd-notify') ? 'systemd-notify is not installed' : false);

t.test('messages arrive in order; RELOADING=1 carries the monotonic time', { skip }, async (t) => {
  const recv = await startNotifyReceiver();
  t.teardown(() => recv.close());
  const { logger, lines } = sinkLogger();
  const n = createNotifier({ NOTIFY_SOCKET: recv.path, PATH: process.env['PATH'] }, logger, { pid: 4242, monotonicMicros });
  t.equal(n.enabled, true);
  const before = monotonicMicros();
  n.ready('starting');
  n.status('busy');
  const result = await notifyReload(n, () => Promise.resolve('reloaded'));
  t.equal(result, 'reloaded', 'notifyReload returns what the reload returned');
  await t.rejects(
    notifyReload(n, () => Promise.reject(new Error('bad file'))),
    /bad file/,
    'a failed reload rejects as it did',
  );
  n.stopping();
  await n.close();
  const got = recv.messages.filter((m) => m.fields['BARRIER'] === undefined).map((m) => m.fields);
  t.same(
    got.map((f) => Object.keys(f).join(',')),
    ['READY,MAINPID,STATUS', 'STATUS', 'RELOADING,MONOTONIC_USEC', 'READY,MAINPID', 'RELOADING,MONOTONIC_USEC', 'READY,MAINPID', 'STOPPING'],
    'one datagram per call, in call order; READY=1 after each reload, failed or not',
  );
  t.same(got[0], { READY: '1', MAINPID: '4242', STATUS: 'starting' });
  const reload = recv.messages.find((m) => m.fields['RELOADING'] === '1');
  const usec = Number(reload?.fields['MONOTONIC_USEC']);
  t.ok(usec >= Number(before), 'MONOTONIC_USEC is not before the call');
  t.ok(usec <= (reload?.monoUsec ?? 0), 'and not after the receiver got it (CLOCK_MONOTONIC, the clock systemd compares)');
  t.same(lines.filter((l) => l['event'] === 'notify.error'), [], 'no failure');
});
