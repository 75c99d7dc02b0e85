// SIGTERM as an operator sends it: listeners close at once (new clients are refused), open
// connections keep working until they finish or the grace period cuts them, then exit 0.
import t, { type Test } from 'tap';
import net from 'node:net';
import { runTether, type RunningTether } from '../helpers/run-tether.js';
import { echo, startBackend } from '../helpers/named-backend.js';
import { within } from '../helpers/e2e-tools.js';

function connect(t: Test, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    t.teardown(() => {
      s.destroy();
    });
    s.once('error', reject);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}

/** The error code of a connect attempt to `port`, or 'connected'. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('error', (e: NodeJS.ErrnoException) => {
      resolve(e.code ?? 'error');
    });
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
  });
}

/** Writes `text` and resolves with the same number of bytes read back. */
function roundTrip(s: net.Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer): void => {
      got += d.toString();
      if (got.length >= text.length) {
        s.off('data', onData);
        s.off('close', onClose);
        s.pause();
        resolve(got);
      }
    };
    const onClose = (): void => {
      reject(new Error(`closed after ${JSON.stringify(got)}`));
    };
    s.on('data', onData);
    s.once('close', onClose);
    s.resume();
    s.write(text);
  });
}

async function start(t: Test, extra: readonly string[]): Promise<RunningTether> {
  const b = await startBackend('a', { behaviour: echo });
  t.teardown(() => b.close());
  const rt = await runTether(['--listen', '127.0.0.1:0', '--backend', `a=127.0.0.1:${b.port}`, ...extra]);
  t.teardown(async () => {
    await rt.stop();
  });
  return rt;
}

t.test('SIGTERM: refuse new clients, finish open ones, exit 0', async (t) => {
  const rt = await start(t, ['--grace', '10s']);
  const port = rt.ports[0]!;
  const c = await connect(t, port);
  const client = `127.0.0.1:${c.localPort ?? 0}`;
  t.equal(await within(roundTrip(c, 'before'), 5_000, 'echo before SIGTERM'), 'before');

  rt.child.kill('SIGTERM');
  const begin = await rt.waitFor((l) => l.event === 'stop.begin', 5_000);
  t.equal(begin['open'], 1, 'stop.begin counts the open connection');
  t.equal(await tryConnect(port), 'ECONNREFUSED', 'a new client is refused');

  t.equal(await within(roundTrip(c, 'still here'), 5_000, 'echo after SIGTERM'), 'still here', 'the open connection still works');
  t.equal(rt.child.exitCode, null, 'tether waits for the open connection');

  const closed = new Promise<void>((resolve) => c.once('close', resolve));
  c.resume();
  c.end();
  await within(closed, 5_000, 'the connection to close');
  const t0 = Date.now();
  const code = await within(rt.exited, 5_000, 'tether to exit');
  t.equal(code, 0, 'exit code 0');
  t.ok(Date.now() - t0 < 2_000, 'exited promptly once the last connection closed');
  const line = await rt.waitFor((l) => l.event === 'conn.close' && l['client'] === client, 2_000);
  t.strictSame(line['termination'], { cause: 'normal', stage: 'splice' });
  t.equal(line['bytesIn'], 'beforestill here'.length);
  const done = await rt.waitFor((l) => l.event === 'stop.done', 2_000);
  t.equal(done['cut'], 0, 'nothing was cut');
});

t.test('SIGTERM with --grace 500ms cuts a connection that never closes', async (t) => {
  const rt = await start(t, ['--grace', '500ms']);
  const port = rt.ports[0]!;
  const c = await connect(t, port);
  const client = `127.0.0.1:${c.localPort ?? 0}`;
  t.equal(await within(roundTrip(c, 'hold'), 5_000, 'echo before SIGTERM'), 'hold');
  // allowHalfOpen: a cut shows as 'end' (FIN) or, if it came as a reset, 'close'.
  const closed = new Promise<void>((resolve) => {
    c.once('end', resolve);
    c.once('close', resolve);
  });
  c.on('error', () => undefined); // a reset is possible too; the termination is asserted below
  c.resume();

  const t0 = Date.now();
  rt.child.kill('SIGTERM');
  const code = await within(rt.exited, 5_000, 'tether to exit');
  const elapsed = Date.now() - t0;
  t.equal(code, 0, 'exit code 0');
  t.ok(elapsed >= 400 && elapsed < 2_000, `exited ${elapsed} ms after SIGTERM`);
  await within(closed, 2_000, 'the client to see the cut');
  const line = await rt.waitFor((l) => l.event === 'conn.close' && l['client'] === client, 2_000);
  t.strictSame(line['termination'], { cause: 'tether', stage: 'shutdown', code: 'shutdown' });
  const done = await rt.waitFor((l) => l.event === 'stop.done', 2_000);
  t.equal(done['cut'], 1, 'one connection was cut');
});
