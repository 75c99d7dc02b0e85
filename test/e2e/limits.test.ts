// Connection limits through `node bin/tether`: a backend's max-conns (the next client goes to
// another backend, or waits in the pool's queue), the queue's bound and timeout, a client that
// leaves while queued, and --max-conns / --frontend-max-conns refusing clients at accept before
// a byte is read. Named backends answer with their name; assertions are about who answered,
// what each backend saw, and what tether logged.
import net from 'node:net';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { runTether, runTetherToExit, type LogLine, type RunningTether } from '../helpers/run-tether.js';
import { deadPort, startBackend, whoAnswers, type TestBackend } from '../helpers/named-backend.js';
import { errorLines, holdConnection, isConnClose, tetherOnLoopback as tether, waitForCount, watchClose } from '../helpers/e2e-tools.js';

async function backends(t: Test, names: readonly string[]): Promise<TestBackend[]> {
  const bs = await Promise.all(names.map((n) => startBackend(n)));
  t.teardown(() => Promise.all(bs.map((b) => b.close())));
  return bs;
}

/** `--backend NAME=127.0.0.1:PORT,max-conns=N` for each backend. */
const limited = (bs: readonly TestBackend[], n: number): string[] => bs.flatMap((b) => ['--backend', `${b.name}=127.0.0.1:${b.port},max-conns=${n}`]);

const code = (l: LogLine): string | undefined => (l['termination'] as { code?: string } | undefined)?.code;
const closedWith = (c: string) => (l: LogLine): boolean => l.event === 'conn.close' && code(l) === c;
const accepted = (bs: readonly TestBackend[]): number => bs.reduce((n, b) => n + b.accepted(), 0);

/** How a client that wrote `hello` at once was closed: what it received, and how. */
function writeAndWatch(port: number): Promise<{ data: string; ended: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let data = '';
    let ended = false;
    const timer = setTimeout(() => s.destroy(), 5_000);
    s.on('data', (d: Buffer) => (data += d.toString()));
    s.on('end', () => (ended = true));
    s.on('error', () => undefined); // a reset counts as closed, like a FIN: both are checked below
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ data, ended });
    });
    s.write('hello');
  });
}

/** A client that connects, and records everything it receives until it closes. */
function openClient(port: number, localAddress?: string): { socket: net.Socket; received: () => string; closed: Promise<void> } {
  const socket = net.connect({ host: '127.0.0.1', port, ...(localAddress === undefined ? {} : { localAddress }) });
  let got = '';
  socket.on('data', (d: Buffer) => (got += d.toString()));
  socket.on('error', () => undefined); // what the client received is what the tests check
  const closed = new Promise<void>((r) => socket.once('close', () => { r(); }));
  return { socket, received: () => got, closed };
}

/** Resolves once `read()` contains `text`; rejects after `ms`. */
async function until(read: () => string, text: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!read().includes(text)) {
    if (Date.now() > deadline) throw new Error(`never received ${JSON.stringify(text)} (got ${JSON.stringify(read())})`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const queued = (rt: RunningTether, n = 1): Promise<LogLine[]> => waitForCount(rt, (l) => l.event === 'queue.wait', n);

t.test('backend max-conns=1 on a and b: the second client goes to the other backend, a third waits and times out', async (t) => {
  const bs = await backends(t, ['a', 'b']);
  const { rt, port } = await tether(t, [...limited(bs, 1), '--affinity', 'none', '--queue-timeout', '300ms']);
  const held = [await holdConnection(port), await holdConnection(port)];
  t.teardown(() => {
    for (const h of held) h.close();
  });
  t.same(held.map((h) => h.name).sort(), ['a', 'b'], 'one client on each backend');

  const end = await watchClose(port, 10_000);
  t.equal(end.data, '', 'the waiting client got no byte');
  t.ok(end.gotEnd && end.error === undefined, 'and a clean FIN after the queue timeout');
  t.equal(accepted(bs), 2, 'neither backend saw a third connection');
  const line = await rt.waitFor(closedWith('queue-timeout'));
  t.match(line, { backend: null, pool: 'default', tries: 0, bytesIn: 0, termination: { cause: 'backend-timeout', stage: 'queue', code: 'queue-timeout' } });
});

t.test('a client pinned to a full backend waits for it, not for the backend with room, and what it sent meanwhile arrives', async (t) => {
  const bs = await backends(t, ['a', 'b']);
  const { rt, port } = await tether(t, [...limited(bs, 1), '--affinity', 'source', '--queue-timeout', '30s', '--log-level', 'debug']);
  const first = await holdConnection(port, { localAddress: '127.0.0.1' });
  const mine = bs.find((b) => b.name === first.name)!;
  const other = bs.find((b) => b.name !== first.name)!;

  const second = openClient(port, '127.0.0.1');
  t.teardown(() => second.socket.destroy());
  const [wait] = await queued(rt);
  t.match(wait, { level: 'debug', frontend: 'default', pool: 'default', waiting: 1 });
  second.socket.write('sent while queued\n');
  first.close();
  await until(second.received, `${first.name}\nsent while queued\n`);
  t.pass(`the same source reached ${first.name} once it freed its slot; the bytes sent while queued were replayed`);
  t.equal(other.accepted(), 0, `${other.name}, which had room all along, never saw it`);
  t.equal(mine.accepted(), 2);
  second.socket.end();
  const closes = await waitForCount(rt, isConnClose(), 2);
  const last = closes.find((l) => l['via'] === 'table');
  t.match(last, { backend: first.name, key: { kind: 'source' } }, 'placed from the affinity table');
});

t.test('a client that leaves while queued is dropped from the queue, and its place is not leaked', async (t) => {
  const bs = await backends(t, ['a']);
  const [a] = bs;
  const { rt, port } = await tether(t, [...limited(bs, 1), '--queue-timeout', '30s', '--queue-size', '1', '--log-level', 'debug']);
  const holder = await holdConnection(port);
  const leaver = openClient(port);
  await queued(rt);
  leaver.socket.end();
  const line = await rt.waitFor(closedWith('client-closed'));
  t.match(line, { backend: null, termination: { cause: 'client', stage: 'queue', code: 'client-closed' } });
  await leaver.closed;
  t.equal(a!.accepted(), 1, 'the backend never saw the client that left');

  // The queue (size 1) has room again: the next client waits there and is served.
  const next = openClient(port);
  t.teardown(() => next.socket.destroy());
  await queued(rt, 2);
  holder.close();
  await until(next.received, 'a\n');
  t.equal(a!.accepted(), 2);
});

t.test('a full queue refuses at once with queue-full and a limit.reached warning', async (t) => {
  const bs = await backends(t, ['a']);
  const { rt, port } = await tether(t, [...limited(bs, 1), '--queue-timeout', '30s', '--queue-size', '1', '--log-level', 'debug']);
  const holder = await holdConnection(port);
  t.teardown(() => {
    holder.close();
  });
  const waiter = openClient(port);
  t.teardown(() => waiter.socket.destroy());
  await queued(rt);
  const end = await watchClose(port, 10_000);
  t.equal(end.data, '', 'no byte for the refused client');
  const line = await rt.waitFor(closedWith('queue-full'));
  t.match(line, { backend: null, termination: { cause: 'tether', stage: 'queue', code: 'queue-full' } });
  const warn = await rt.waitFor((l) => l.event === 'limit.reached');
  t.match(warn, { level: 'warn', frontend: 'default', pool: 'default', limit: 'queue-size', max: 1, refused: 1 });
  t.equal(bs[0]!.accepted(), 1);
});

t.test('--max-conns closes extra clients at accept without reading a byte; below it they are served again', async (t) => {
  const bs = await backends(t, ['a']);
  const { rt, port } = await tether(t, ['--backend', `a=127.0.0.1:${bs[0]!.port}`, '--max-conns', '1']);
  const holder = await holdConnection(port);
  const refused = await writeAndWatch(port);
  t.equal(refused.data, '', 'the extra client got no byte (a FIN or a reset)');
  t.equal(bs[0]!.accepted(), 1, 'no backend was dialled for it');
  const line = await rt.waitFor(closedWith('max-conns'));
  t.match(line, { backend: null, pool: null, bytesIn: 0, termination: { cause: 'tether', stage: 'accept', code: 'max-conns' } });
  const warn = await rt.waitFor((l) => l.event === 'limit.reached');
  t.match(warn, { level: 'warn', frontend: 'default', limit: 'max-conns', max: 1, refused: 1 });
  t.notOk('pool' in warn, 'an accept limit names no pool');

  holder.close();
  await rt.waitFor((l) => l.event === 'conn.close' && l['backend'] === 'a');
  t.equal(await whoAnswers(port), 'a', 'the count went down with the close: the next client is served');
});

t.test('a burst of refused clients logs limit.reached at most once a second', async (t) => {
  const bs = await backends(t, ['a']);
  const { rt, port } = await tether(t, ['--backend', `a=127.0.0.1:${bs[0]!.port}`, '--frontend-max-conns', '1']);
  const holder = await holdConnection(port);
  t.teardown(() => {
    holder.close();
  });
  const started = Date.now();
  const N = 40;
  for (let i = 0; i < N; i++) await watchClose(port);
  const elapsedS = (Date.now() - started) / 1000;
  const closes = await waitForCount(rt, closedWith('frontend-max-conns'), N);
  t.ok(closes.every((l) => (l['termination'] as { cause?: string }).cause === 'tether'));
  const warns = rt.lines.filter((l) => l.event === 'limit.reached');
  t.ok(warns.length >= 1 && warns.length <= Math.ceil(elapsedS) + 1, `${String(warns.length)} limit.reached lines for ${String(N)} refusals in ${elapsedS.toFixed(1)} s`);
  t.ok(warns.every((l) => l['limit'] === 'frontend-max-conns' && l['max'] === 1));
  t.equal(bs[0]!.accepted(), 1);
});

t.test('config file: max-conns counts every frontend, frontend-max-conns one', async (t) => {
  const [a, b] = await backends(t, ['a', 'b']);
  const [p1, p2] = [await deadPort(), await deadPort()];
  const file = path.join(t.testdir(), 'limits.yaml');
  writeFileSync(
    file,
    `max-conns: 3
frontends:
  - name: one
    listen: 127.0.0.1:${p1}
    backends: [a=127.0.0.1:${a!.port}]
    frontend-max-conns: 1
  - name: two
    listen: 127.0.0.1:${p2}
    backends: [{ name: b, host: 127.0.0.1, port: ${b!.port}, max-conns: 5 }]
`,
  );
  const rt = await runTether(['--config', file], { readyCount: 2 });
  t.teardown(() => rt.stop());
  const held = [await holdConnection(p1)];
  t.teardown(() => {
    for (const h of held) h.close();
  });
  t.equal((await watchClose(p1)).data, '', 'one: its own limit of 1 is reached');
  t.match(await rt.waitFor(closedWith('frontend-max-conns')), { frontend: 'one' });
  held.push(await holdConnection(p2), await holdConnection(p2));
  t.equal((await watchClose(p2)).data, '', 'two: 1 + 2 open clients reach the process-wide 3');
  t.match(await rt.waitFor(closedWith('max-conns')), { frontend: 'two', termination: { cause: 'tether', stage: 'accept' } });
  t.equal(a!.accepted() + b!.accepted(), 3);
});

t.test('limit flags: usage errors exit 2 with one line each', async (t) => {
  const base = ['--listen', '127.0.0.1:0', '--backend', 'a=127.0.0.1:1'];
  const cases: [string[], string][] = [
    [['--max-conns', '0'], `option '--max-conns <N>' argument '0' is invalid. expected a whole number from 1 to 10000000, got "0"`],
    [['--frontend-max-conns', 'lots'], `option '--frontend-max-conns <N>' argument 'lots' is invalid. expected a whole number from 1 to 10000000, got "lots"`],
    [['--queue-size', '-1'], `option '--queue-size <N>' argument '-1' is invalid. expected a whole number from 0 to 100000, got "-1"`],
    [['--queue-timeout', '5 s'], `option '--queue-timeout <DURATION>' argument '5 s' is invalid. expected a duration such as 500ms, 30s, 10m, 1h (a bare number is milliseconds), got "5 s"`],
    [['--queue-timeout', '0'], '--queue-timeout: must be at least 1ms'],
    [['--backend', 'b=127.0.0.1:2,max-conns=0'], `option '--backend <SPEC>' argument 'b=127.0.0.1:2,max-conns=0' is invalid. expected max-conns=N with N in 1..10000000 in [NAME=]HOST[:PORT][,weight=N][,max-conns=N][,backup][,drain[=DURATION]|,maint], got "b=127.0.0.1:2,max-conns=0"`],
    [['--config', 'x.yaml', '--frontend-max-conns', '5'], '--frontend-max-conns cannot be combined with --config (put it in the file)'],
  ];
  const results = await Promise.all(cases.map(([args]) => runTetherToExit(args[0] === '--config' ? args : [...base, ...args])));
  cases.forEach(([args, want], i) => {
    const r = results[i]!;
    t.equal(r.code, 2, args.join(' '));
    t.same(errorLines(r.stderr), [`tether: error: ${want}`], args.join(' '));
  });
  const ok = await runTetherToExit(['check', ...base, '--max-conns', '100', '--frontend-max-conns', '50', '--queue-size', '0', '--queue-timeout', '2s', '--backend', 'b=127.0.0.1:2,max-conns=1']);
  t.equal(ok.code, 0, ok.stderr);
});
