// Placement and failover through `node bin/tether`, HAProxy reg-test style: backends a, b and c
// answer with their name, and every assertion is about who answered (and what tether logged).
import t, { type Test } from 'tap';
import { type LogLine } from '../helpers/run-tether.js';
import { deadPort, startBackend, whoAnswers, type TestBackend } from '../helpers/named-backend.js';
import { blackHole, holdConnection, isConnClose, linesWhere, waitForCount, watchClose, tetherOnLoopback as tether } from '../helpers/e2e-tools.js';

/** Starts named backends, closed on teardown. */
async function backends(t: Test, names: readonly string[]): Promise<TestBackend[]> {
  const bs = await Promise.all(names.map((n) => startBackend(n)));
  t.teardown(() => Promise.all(bs.map((b) => b.close())));
  return bs;
}

/** `--backend NAME=127.0.0.1:PORT[SUFFIX]` for each backend. */
function backendFlags(bs: readonly { name: string; port: number }[], suffix: Readonly<Record<string, string>> = {}): string[] {
  return bs.flatMap((b) => ['--backend', `${b.name}=127.0.0.1:${b.port}${suffix[b.name] ?? ''}`]);
}

/** Starts tether on 127.0.0.1:0 with `args`, stopped on teardown; returns it and its port. */
/** `n` sequential connections; the names that answered, in order. */
async function answers(port: number, n: number, localAddress?: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(await whoAnswers(port, localAddress === undefined ? {} : { localAddress }));
  return out;
}

function tally(names: readonly string[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const n of names) c[n] = (c[n] ?? 0) + 1;
  return c;
}

/** 127.0.0.1 … 127.0.0.N (all on the loopback interface on Linux). */
const SOURCES = Array.from({ length: 20 }, (_, i) => `127.0.0.${String(i + 1)}`);

const is = (event: string, fields: Readonly<Record<string, unknown>> = {}) => (l: LogLine): boolean =>
  l.event === event && Object.entries(fields).every(([k, v]) => l[k] === v);

t.test('placement', (t) => {
  t.test('roundrobin without affinity cycles a, b, c evenly', async (t) => {
    const bs = await backends(t, ['a', 'b', 'c']);
    const { port } = await tether(t, [...backendFlags(bs), '--affinity', 'none', '--balance', 'roundrobin']);
    const got = await answers(port, 30);
    t.same(got.slice(0, 6), ['a', 'b', 'c', 'a', 'b', 'c'], 'in turn');
    t.same(tally(got), { a: 10, b: 10, c: 10 }, 'exactly 10 each over 30 connections');
  });

  t.test('hash with source affinity: one source sticks, many sources spread', async (t) => {
    const bs = await backends(t, ['a', 'b', 'c']);
    const { rt, port } = await tether(t, [...backendFlags(bs), '--affinity', 'source', '--balance', 'hash']);
    const one = await answers(port, 8, '127.0.0.1');
    t.ok(['a', 'b', 'c'].includes(one[0]!), `answered (${one[0]!})`);
    t.same(new Set(one).size, 1, `all 8 from 127.0.0.1 on one backend (${one.join(' ')})`);
    const closes = await waitForCount(rt, isConnClose(), 8);
    t.same(closes.map((l) => l['via']), ['balance', ...Array<string>(7).fill('table')], 'placed once, then from the affinity table');
    t.ok(closes.every((l) => (l['key'] as { kind?: string } | null)?.kind === 'source'), 'conn.close names the key kind');

    const bySource = new Map<string, string>();
    for (const src of SOURCES) bySource.set(src, await whoAnswers(port, { localAddress: src }));
    const used = new Set(bySource.values());
    t.ok(used.size > 1, `20 sources spread over more than one backend (${[...used].join(', ')})`);
    t.notOk(used.has(''), 'every source was answered');
    for (const src of SOURCES.slice(0, 5)) t.equal(await whoAnswers(port, { localAddress: src }), bySource.get(src), `${src} sticks`);
  });

  t.test('source/24 puts every 127.0.0.x source on one backend', async (t) => {
    const bs = await backends(t, ['a', 'b', 'c']);
    const { port } = await tether(t, [...backendFlags(bs), '--affinity', 'source/24', '--balance', 'roundrobin']);
    const got: string[] = [];
    for (const src of SOURCES) got.push(await whoAnswers(port, { localAddress: src }));
    t.ok(['a', 'b', 'c'].includes(got[0]!));
    t.same(new Set(got).size, 1, `one backend for 127.0.0.0/24 (${got.join(' ')})`);
  });

  t.test('leastconn sends the next connection to the backend with none', async (t) => {
    const bs = await backends(t, ['a', 'b', 'c']);
    const { rt, port } = await tether(t, [...backendFlags(bs), '--affinity', 'none', '--balance', 'leastconn']);
    const held = [await holdConnection(port), await holdConnection(port)];
    t.teardown(() => {
      for (const h of held) h.close();
    });
    const busy = held.map((h) => h.name);
    t.equal(new Set(busy).size, 2, `two held connections on two backends (${busy.join(', ')})`);
    const third = ['a', 'b', 'c'].find((n) => !busy.includes(n))!;
    const next = await holdConnection(port);
    held.push(next);
    t.equal(next.name, third, 'the third goes to the idle backend');
    // All three hold one now; closing a's makes a the least loaded again.
    const onA = held.find((h) => h.name === 'a')!;
    onA.close();
    // conn.close is logged after tether stops counting the connection against a.
    await rt.waitFor(is('conn.close', { backend: 'a' }));
    const after = await holdConnection(port);
    held.push(after);
    t.equal(after.name, 'a', 'a freed its connection, so it takes the next');
  });

  t.test('weights: weight=3 against weight=1 under roundrobin is 30/10', async (t) => {
    const bs = await backends(t, ['a', 'b']);
    const { port } = await tether(t, [...backendFlags(bs, { a: ',weight=3' }), '--affinity', 'none', '--balance', 'roundrobin']);
    t.same(tally(await answers(port, 40)), { a: 30, b: 10 });
  });

  t.end();
});

t.test('failover', (t) => {
  t.test('a dead backend: every client is answered, connect.fail and one backend.down', async (t) => {
    const [a, c] = await backends(t, ['a', 'c']);
    const dead = await deadPort();
    const pool = [{ name: 'a', port: a!.port }, { name: 'b', port: dead }, { name: 'c', port: c!.port }];
    const { rt, port } = await tether(t, [...backendFlags(pool), '--affinity', 'none', '--balance', 'roundrobin', '--retries', '2', '--hold-down', '30s']);
    const got = await answers(port, 10);
    t.ok(got.every((n) => n === 'a' || n === 'c'), `all 10 answered by a or c (${got.join(' ')})`);
    const closes = await waitForCount(rt, isConnClose(), 10);
    t.ok(closes.every((l) => (l['termination'] as { cause?: string }).cause === 'normal'), 'every connection ended normally');
    const fail = linesWhere(rt, is('connect.fail', { backend: 'b' }));
    t.equal(fail.length, 1, 'b was dialled once, then skipped during its hold-down');
    t.match(fail[0], { level: 'warn', frontend: 'default', address: `127.0.0.1:${dead}`, code: 'ECONNREFUSED' });
    t.equal(linesWhere(rt, is('backend.down', { backend: 'b' })).length, 1, 'backend.down once, not per connection');
    t.equal(linesWhere(rt, is('backend.down')).length, 1, 'no other backend went down');
    t.ok(closes.some((l) => l['tries'] === 2), 'the client that met b was carried on to another backend');
  });

  t.test('a pinned source moves when its backend dies; other sources keep theirs', async (t) => {
    const bs = await backends(t, ['a', 'b', 'c']);
    const { rt, port } = await tether(t, [...backendFlags(bs), '--affinity', 'source', '--balance', 'hash']);
    const before = new Map<string, string>();
    for (const src of SOURCES) before.set(src, await whoAnswers(port, { localAddress: src }));
    // Kill the backend holding the most sources, so both groups (moved and kept) are non-empty.
    const counts = tally([...before.values()]);
    const victim = bs.reduce((m, b) => ((counts[b.name] ?? 0) > (counts[m.name] ?? 0) ? b : m));
    const onVictim = SOURCES.filter((s) => before.get(s) === victim.name);
    const others = SOURCES.filter((s) => before.get(s) !== victim.name);
    t.ok(onVictim.length > 0 && others.length > 0, `${victim.name} holds ${String(onVictim.length)} of 20 sources`);
    await victim.close();

    const after = new Map<string, string>();
    for (const src of SOURCES) after.set(src, await whoAnswers(port, { localAddress: src }));
    for (const src of onVictim) {
      const now = after.get(src)!;
      t.ok(now !== '' && now !== victim.name, `${src} moved from ${victim.name} to a live backend (${now})`);
    }
    t.same(others.map((s) => after.get(s)), others.map((s) => before.get(s)), 'sources on live backends kept theirs');
    // The moved sources are pinned to their new backend.
    for (const src of onVictim.slice(0, 3)) t.equal(await whoAnswers(port, { localAddress: src }), after.get(src), `${src} stays moved`);
    // Log lines are written in batches: wait for the line, then count every one there is.
    await waitForCount(rt, is('backend.down', { backend: victim.name }), 1);
    t.equal(linesWhere(rt, is('backend.down', { backend: victim.name })).length, 1, `backend.down ${victim.name} once`);
  });

  t.test('every backend dead: the client is closed cleanly, and tether keeps serving', async (t) => {
    const pool = [{ name: 'a', port: await deadPort() }, { name: 'b', port: await deadPort() }, { name: 'c', port: await deadPort() }];
    const { rt, port } = await tether(t, [...backendFlags(pool), '--affinity', 'none', '--balance', 'roundrobin', '--retries', '2', '--hold-down', '30s']);
    const first = await watchClose(port);
    t.equal(first.data, '', 'no data');
    t.equal(first.error, undefined, 'no reset: a clean close');
    t.ok(first.gotEnd, 'a FIN from tether');
    t.ok(first.ms < 2_000, `closed within 2s (${String(first.ms)}ms)`);
    const [c1] = await waitForCount(rt, isConnClose(), 1);
    t.match(c1, { backend: null, tries: 3, termination: { cause: 'backend', stage: 'connect', code: 'ECONNREFUSED' } }, 'dialled all three, then gave up');
    t.equal(linesWhere(rt, is('connect.fail')).length, 3);
    t.equal(linesWhere(rt, is('backend.down')).length, 3);

    // All three are held down now: the next clients are refused at once, just as cleanly.
    for (let i = 0; i < 2; i++) {
      const next = await watchClose(port);
      t.same({ data: next.data, error: next.error, gotEnd: next.gotEnd }, { data: '', error: undefined, gotEnd: true }, `client ${String(i + 2)} closed cleanly`);
      t.ok(next.ms < 2_000);
    }
    const closes = await waitForCount(rt, isConnClose(), 3);
    for (const l of closes.slice(1)) {
      t.match(l, { backend: null, tries: 0, termination: { cause: 'backend', stage: 'place', code: 'no-backend' } }, 'nothing to dial: the backends are the cause');
    }
    t.equal(linesWhere(rt, is('connect.fail')).length, 3, 'held-down backends are not dialled again');
    t.equal(rt.child.exitCode, null, 'tether is still running');
  });

  t.test('backup: no traffic while a primary is up, all of it when none is', async (t) => {
    const [a, b, x] = await backends(t, ['a', 'b', 'x']);
    const { rt, port } = await tether(t, [...backendFlags([a!, b!, x!], { x: ',backup' }), '--affinity', 'none', '--balance', 'roundrobin']);
    const up = await answers(port, 10);
    t.same(tally(up), { a: 5, b: 5 }, 'primaries share the traffic');
    t.equal(x!.accepted(), 0, 'the backup saw no connection');
    await a!.close();
    await b!.close();
    const down = await answers(port, 10);
    t.same(tally(down), { x: 10 }, 'with both primaries dead, the backup takes everything');
    await waitForCount(rt, isConnClose(), 20); // every line logged before the last close is in
    t.equal(linesWhere(rt, is('backend.down')).length, 2, 'both primaries marked down');
  });

  t.test('connect timeout: a black-holed backend is given up after --connect-timeout', async (t) => {
    const hole = await blackHole();
    if (hole === undefined) {
      t.pass('connect timeout not tested', { skip: 'no loopback black hole on this OS (a full accept queue does not drop SYNs here)' });
      return;
    }
    t.teardown(() => {
      hole.close();
    });
    const [a] = await backends(t, ['a']);
    const pool = [{ name: 'slow', port: hole.port }, { name: 'a', port: a!.port }];
    const { rt, port } = await tether(t, [...backendFlags(pool), '--affinity', 'none', '--balance', 'roundrobin', '--connect-timeout', '200ms', '--retries', '1', '--hold-down', '30s']);
    const started = Date.now();
    t.equal(await whoAnswers(port), 'a', 'the client is carried on to a');
    const ms = Date.now() - started;
    t.ok(ms >= 180 && ms < 2_000, `after about the connect timeout (${String(ms)}ms)`);
    const fail = await rt.waitFor(is('connect.fail', { backend: 'slow' }));
    t.match(fail, { code: 'ETIMEDOUT' });
    t.equal(await whoAnswers(port), 'a', 'slow is held down: the next client goes straight to a');

    // Only the black hole: the client is closed after the timeout, and the cause is a timeout.
    const only = await tether(t, [...backendFlags([pool[0]!]), '--connect-timeout', '200ms', '--retries', '0']);
    const end = await watchClose(only.port);
    t.same({ data: end.data, error: end.error }, { data: '', error: undefined }, 'closed cleanly, no data');
    t.ok(end.ms >= 180 && end.ms < 2_500, `after about the connect timeout (${String(end.ms)}ms)`);
    const [close] = await waitForCount(only.rt, isConnClose(), 1);
    t.match(close, { tries: 1, termination: { cause: 'backend-timeout', stage: 'connect', code: 'ETIMEDOUT' } });
  });

  t.end();
});
