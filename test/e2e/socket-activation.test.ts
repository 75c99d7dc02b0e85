// systemd socket activation through the real binary: a python3 launcher binds listening
// sockets, places them at fds 3, 4, …, sets LISTEN_PID (its own PID) / LISTEN_FDS /
// LISTEN_FDNAMES and execs `node bin/tether`, as systemd does. tether must serve on the
// inherited sockets without binding those addresses itself, close the ones no frontend wants,
// leave alone what is not a listening socket, and never crash on bad variables.
import net from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { runTether, type LogLine, type RunningTether } from '../helpers/run-tether.js';
import { startBackend, whoAnswers } from '../helpers/named-backend.js';
import { waitForCount } from '../helpers/e2e-tools.js';
import { activationLauncher, hasCommand, type PassedSocket } from '../helpers/systemd.js';
import { needTool } from '../helpers/tools.js';

const skip = needTool(hasCommand('python3') ? false : 'python3 is not installed: the socket-activation launcher is a python3 script');

const isReady = (l: LogLine): boolean => l.event === 'listen.ready';
const isIgnored = (l: LogLine): boolean => l.event === 'activation.ignored';
const activator = (rt: RunningTether): Promise<LogLine> => rt.waitFor((l) => 'activator' in l);
const portsOf = async (rt: RunningTether): Promise<(number | null)[]> => ((await activator(rt))['activator'] as { ports: (number | null)[] }).ports;

/** Resolves true when a connect to 127.0.0.1:port is refused (nobody holds the port). */
const refused = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      resolve(e.code === 'ECONNREFUSED');
    });
  });

const start = (sockets: readonly PassedSocket[], args: readonly string[], env: Record<string, string> = {}, readyCount = 1): Promise<RunningTether> =>
  runTether(args, { launcher: activationLauncher(sockets, env), readyCount });

t.test('an inherited socket serves its --listen address; tether binds nothing itself', { skip }, async (t) => {
  const a = await startBackend('a');
  t.teardown(() => a.close());
  const dir = t.testdir();
  const probe = path.join(dir, 'env.json');
  // A key module is loaded after start-up has read systemd's variables: it sees what any code
  // (or child) of tether would see.
  writeFileSync(path.join(dir, 'key.mjs'), `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(probe)}, JSON.stringify({ LISTEN_PID: process.env.LISTEN_PID ?? null, LISTEN_FDS: process.env.LISTEN_FDS ?? null, LISTEN_FDNAMES: process.env.LISTEN_FDNAMES ?? null }));\nexport function key() { return undefined; }\n`);
  const args = ['--name', 'edge', '--listen', '127.0.0.1:{port0}', '--backend', `a=127.0.0.1:${a.port}`, '--key-module', path.join(dir, 'key.mjs')];
  const rt = await start([{ type: 'tcp', host: '127.0.0.1' }], args, { LISTEN_FDNAMES: 'edge' }, 0);
  t.teardown(() => rt.stop());
  const act = (await activator(rt))['activator'] as { pid: number; ports: number[] };
  // A client that connects while tether is still starting waits in the socket's queue, as
  // with systemd, and is served once the frontend is up.
  const early = whoAnswers(act.ports[0]!);
  const ready = await rt.waitFor(isReady);
  t.equal(await early, 'a', 'a client that connected during start-up is served');
  t.equal(ready['activated'], true, 'listen.ready says the socket was inherited');
  t.equal(ready['port'], act.ports[0], 'on the port the launcher bound');
  t.equal(ready['pid'], act.pid, 'tether is the process LISTEN_PID named (exec, not a child)');
  // Binding 127.0.0.1:PORT itself would have failed with EADDRINUSE (the launcher's socket
  // holds it), so serving at all shows the inherited socket is in use.
  t.equal(await whoAnswers(act.ports[0]!), 'a', 'a client reaches the backend');
  t.equal(await whoAnswers(act.ports[0]!), 'a', 'and the next one too');
  t.same(JSON.parse(readFileSync(probe, 'utf8')), { LISTEN_PID: null, LISTEN_FDS: null, LISTEN_FDNAMES: null }, 'LISTEN_* are gone from the environment once read');
  t.same(rt.lines.filter(isIgnored), [], 'nothing was ignored');
  t.equal(await rt.stop(), 0, 'SIGTERM: a graceful stop, exit 0');
  t.ok(await refused(act.ports[0]!), 'after the stop, the inherited socket is closed');
});

t.test('several frontends: sockets go by address; unwanted sockets are closed, non-listening ones left alone', { skip }, async (t) => {
  const [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const config = path.join(t.testdir(), 'tether.yaml');
  const sockets: PassedSocket[] = [
    { type: 'tcp', host: '127.0.0.1' }, // fd 3: frontend one
    { type: 'tcp', host: '127.0.0.1' }, // fd 4: frontend two
    { type: 'tcp', host: '127.0.0.1' }, // fd 5: no frontend listens there
    { type: 'udp', host: '127.0.0.1' }, // fd 6: a datagram socket
    { type: 'fifo' }, // fd 7: not a socket
  ];
  // The launcher writes the file once it knows the ports, then execs tether.
  const yaml = `frontends:\n  - name: one\n    listen: 127.0.0.1:{port0}\n    backends: [a=127.0.0.1:${a.port}]\n  - name: two\n    listen: [127.0.0.1:{port1}, 127.0.0.1:0]\n    backends: [b=127.0.0.1:${b.port}]\n`;
  const rt = await runTether(['--config', config], { launcher: activationLauncher(sockets, { LISTEN_FDNAMES: 'one:two:spare:dgram:pipe' }, { [config]: yaml }), readyCount: 3 });
  t.teardown(() => rt.stop());
  const ports = await portsOf(rt);
  const ready = rt.lines.filter(isReady).map((l) => ({ frontend: l['frontend'], port: l['port'], activated: l['activated'] === true }));
  t.same(ready.slice(0, 2), [
    { frontend: 'one', port: ports[0], activated: true },
    { frontend: 'two', port: ports[1], activated: true },
  ], 'each frontend serves the socket bound to its address');
  t.equal(ready[2]?.activated, false, 'an address no socket was passed for is bound by tether');
  t.not(ready[2]?.port, ports[2], '(on a port of its own)');
  const ignored = await waitForCount(rt, isIgnored, 3);
  t.same(
    ignored.map((l) => ({ fd: l['fd'], name: l['name'], reason: l['reason'] })).sort((x, y) => Number(x.fd) - Number(y.fd)),
    [
      { fd: 5, name: 'spare', reason: 'no --listen address matches it; closed' },
      { fd: 6, name: 'dgram', reason: 'cannot listen on it (EINVAL); left open' },
      { fd: 7, name: 'pipe', reason: 'not a socket; left open' },
    ],
    'one warning per socket not used, saying what became of it',
  );
  t.equal(ignored.find((l) => l['fd'] === 5)?.['address'], `127.0.0.1:${String(ports[2])}`, 'the closed one is named by address');
  t.equal(await whoAnswers(ports[0]!), 'a', 'frontend one answers on its inherited socket');
  t.equal(await whoAnswers(ports[1]!), 'b', 'frontend two answers on its inherited socket');
  t.equal(await whoAnswers(ready[2]!.port as number), 'b', 'and on the address it bound itself');
  t.ok(await refused(ports[2]!), 'the unwanted socket was closed: its port refuses connections');
  t.equal(await rt.stop(), 0);
});

t.test('a wildcard --listen takes systemd\'s wildcard socket on its port', { skip }, async (t) => {
  const a = await startBackend('a');
  t.teardown(() => a.close());
  // A bare `ListenStream=PORT` is [::]:PORT, which also accepts IPv4 clients.
  const rt = await start([{ type: 'tcp', host: '::' }], ['--listen', '0.0.0.0:{port0}', '--backend', `a=127.0.0.1:${a.port}`]);
  t.teardown(() => rt.stop());
  const ports = await portsOf(rt);
  const ready = await rt.waitFor(isReady);
  t.match(ready, { activated: true, host: '::', port: ports[0] }, 'listen.ready names the socket actually used');
  t.equal(await whoAnswers(ports[0]!), 'a', 'an IPv4 client is served through it');
});

t.test('bad or foreign LISTEN_* variables are ignored with a warning, never a crash', { skip }, async (t) => {
  const a = await startBackend('a');
  t.teardown(() => a.close());
  const backend = ['--backend', `a=127.0.0.1:${a.port}`];

  await t.test('LISTEN_FDS that is not a number', async (t) => {
    const rt = await start([{ type: 'tcp', host: '127.0.0.1' }], ['--listen', '127.0.0.1:0', ...backend], { LISTEN_FDS: 'three' });
    t.teardown(() => rt.stop());
    const [w] = await waitForCount(rt, isIgnored, 1);
    t.equal(w?.['reason'], 'LISTEN_FDS="three" is not a count from 0 to 65536: inherited sockets ignored');
    const ready = await rt.waitFor(isReady);
    t.equal(ready['activated'], undefined, 'tether binds its address itself');
    t.equal(await whoAnswers(ready['port'] as number), 'a');
  });

  await t.test('LISTEN_FDS larger than what was passed: the extra fds are Node\'s own and stay untouched', async (t) => {
    // fds 4.. are then the event loop's epoll fd and pipes; adopting or closing one of them
    // would abort Node.
    const rt = await start([{ type: 'tcp', host: '127.0.0.1' }], ['--listen', '127.0.0.1:{port0}', ...backend], { LISTEN_FDS: '6' });
    t.teardown(() => rt.stop());
    const ports = await portsOf(rt);
    const ready = await rt.waitFor(isReady);
    t.equal(ready['activated'], true, 'fd 3 is still used');
    const ignored = await waitForCount(rt, isIgnored, 5);
    t.same(ignored.map((l) => l['fd']).sort(), [4, 5, 6, 7, 8], 'fds 4-8 each get a warning');
    for (const l of ignored) t.match(l['reason'], /^(not a socket; left open|not open \(EBADF\))$/, `fd ${String(l['fd'])}: ${String(l['reason'])}`);
    t.equal(await whoAnswers(ports[0]!), 'a', 'and tether serves');
    t.equal(await rt.stop(), 0, 'and stops cleanly');
  });

  await t.test('LISTEN_PID of another process: the sockets were not meant for us', async (t) => {
    const rt = await start([{ type: 'tcp', host: '127.0.0.1' }], ['--listen', '127.0.0.1:0', ...backend], { LISTEN_PID: '1' });
    t.teardown(() => rt.stop());
    const ready = await rt.waitFor(isReady);
    t.equal(ready['activated'], undefined, 'not adopted');
    t.equal(await whoAnswers(ready['port'] as number), 'a');
    t.same(rt.lines.filter(isIgnored), [], 'and no warning: this is how a parent\'s sockets look');
  });

  await t.test('a wrong number of LISTEN_FDNAMES: names dropped, sockets still used', async (t) => {
    const rt = await start([{ type: 'tcp', host: '127.0.0.1' }], ['--listen', '127.0.0.1:{port0}', ...backend], { LISTEN_FDNAMES: 'a:b' });
    t.teardown(() => rt.stop());
    const ports = await portsOf(rt);
    const [w] = await waitForCount(rt, isIgnored, 1);
    t.equal(w?.['reason'], 'LISTEN_FDNAMES has 2 names for 1 sockets: names ignored');
    t.equal((await rt.waitFor(isReady))['activated'], true);
    t.equal(await whoAnswers(ports[0]!), 'a');
  });
});
