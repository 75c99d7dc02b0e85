// The admin API and /metrics through `node bin/tether --admin 127.0.0.1:0`: views with counters,
// affinity dump (hashed unless revealed), lookup, move (cutting the key's connections), flush,
// bearer tokens, request errors, and a scrape that must parse as Prometheus text.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { runTether, runTetherToExit, type RunningTether } from '../helpers/run-tether.js';
import { startBackend, whoAnswers, type TestBackend } from '../helpers/named-backend.js';
import { errorLines, holdConnection, isConnClose, waitForCount } from '../helpers/e2e-tools.js';
import { admin, parseExposition, sampleValue } from '../helpers/admin-client.js';
import { curl, startHttpBackend } from '../helpers/http-backend.js';
import { register, secret } from '../helpers/secrets.js';

async function backends(t: Test, names: readonly string[]): Promise<TestBackend[]> {
  const bs = await Promise.all(names.map((n) => startBackend(n)));
  t.teardown(() => Promise.all(bs.map((b) => b.close())));
  return bs;
}

const backendFlags = (bs: readonly TestBackend[]): string[] => bs.flatMap((b) => ['--backend', `${b.name}=127.0.0.1:${String(b.port)}`]);

/** tether with an admin API on a free loopback port; returns both ports. */
async function withAdmin(t: Test, args: readonly string[]): Promise<{ rt: RunningTether; port: number; adminPort: number }> {
  const rt = await runTether(['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', ...args]);
  t.teardown(() => rt.stop());
  const ready = await rt.waitFor((l) => l.event === 'admin.ready');
  return { rt, port: rt.ports[0]!, adminPort: ready['port'] as number };
}

interface Entry { pool: string; kind: string; hash: string; value?: string; backend: string; idleMs: number }

t.test('frontends view, dump, lookup, move with close, flush', async (t) => {
  const bs = await backends(t, ['a', 'b', 'c']);
  const { rt, port, adminPort } = await withAdmin(t, [...backendFlags(bs), '--affinity', 'source', '--balance', 'hash']);
  const first = await whoAnswers(port, { localAddress: '127.0.0.5' });
  await whoAnswers(port, { localAddress: '127.0.0.6' });
  await waitForCount(rt, isConnClose(), 2);

  const fe = await admin(adminPort, 'GET', '/frontends');
  t.equal(fe.status, 200);
  const view = fe.json as { name: string; accepted: number; pools: { name: string; table: { entries: number }; backends: { name: string; state: string; total: number }[] }[] }[];
  t.equal(view[0]?.name, 'default');
  t.equal(view[0]?.accepted, 2, 'two clients accepted');
  const pool = view[0]?.pools[0];
  t.equal(pool?.table.entries, 2, 'two keys pinned');
  t.same(pool?.backends.map((b) => b.state), ['up', 'up', 'up']);
  t.equal(pool?.backends.reduce((n, b) => n + b.total, 0), 2, 'backend totals add up');

  const dump = await admin(adminPort, 'GET', '/affinity');
  const entries = (dump.json as { entries: Entry[] }).entries;
  t.equal(entries.length, 2);
  t.ok(entries.every((e) => e.value === undefined && /^[0-9a-f]{12}$/.test(e.hash)), 'values hidden, hashes shown');
  t.notMatch(dump.text, /127\.0\.0\.5/, 'no address in a plain dump');
  const revealed = (await admin(adminPort, 'GET', '/affinity?reveal=1')).json as { entries: Entry[] };
  t.ok(revealed.entries.some((e) => e.value === '127.0.0.5/32' && e.backend === first), 'reveal=1 shows values');

  const look = await admin(adminPort, 'GET', '/affinity/lookup?kind=source&value=127.0.0.5');
  t.same((look.json as { pools: unknown[] }).pools, [{ pool: 'default', backend: first }], 'lookup by bare address uses the chain mask');

  // A held connection from .5 is cut when its key moves with close=1; the next one lands on the target.
  const held = await holdConnection(port, { localAddress: '127.0.0.5' });
  t.equal(held.name, first);
  const closed = new Promise<void>((resolve) => held.socket.once('close', () => { resolve(); }));
  const target = ['a', 'b', 'c'].find((n) => n !== first)!;
  const mv = await admin(adminPort, 'POST', '/affinity/move', { body: { kind: 'source', value: '127.0.0.5', to: target, close: true } });
  t.equal(mv.status, 200);
  t.match(mv.json, { from: first, closed: 1, to: target });
  await closed;
  t.equal(await whoAnswers(port, { localAddress: '127.0.0.5' }), target, 'moved key answers from the new backend');
  t.equal(await whoAnswers(port, { localAddress: '127.0.0.6' }), entries.find((e) => e.value === undefined && e.hash !== (mv.json as { hash: string }).hash)?.backend, 'the other key did not move');
  const moved = await rt.waitFor((l) => l.event === 'affinity.moved');
  t.notMatch(JSON.stringify(moved), /127\.0\.0\.5/, 'the log names the key by hash only');

  // Move by hash (as copied from a dump), without close.
  const h = (mv.json as { hash: string }).hash;
  const back = await admin(adminPort, 'POST', `/affinity/move?hash=${h}&to=${first}`);
  t.match(back.json, { from: target, to: first, closed: 0 });

  const fl = await admin(adminPort, 'DELETE', `/affinity?backend=${first}`);
  t.ok((fl.json as { removed: number }).removed >= 1, 'flush by backend removes its entries');
  const all = await admin(adminPort, 'POST', '/affinity/flush');
  t.equal(all.status, 200);
  t.equal(((await admin(adminPort, 'GET', '/affinity')).json as { total: number }).total, 0, 'table empty after a full flush');
});

t.test('request errors are JSON with a code, never a crash', async (t) => {
  const bs = await backends(t, ['a']);
  const { rt, adminPort } = await withAdmin(t, [...backendFlags(bs)]);
  const cases: [string, string, object | string | undefined, number, string][] = [
    ['GET', '/nope', undefined, 404, 'not-found'],
    ['PUT', '/frontends', undefined, 405, 'method-not-allowed'],
    ['POST', '/affinity/move', '{not json', 400, 'bad-json'],
    ['POST', '/affinity/move', '[1]', 400, 'bad-json'],
    ['POST', '/affinity/move', { kind: 'source', value: 'x' }, 400, 'backend-required'],
    ['POST', '/affinity/move', { to: 'a' }, 400, 'key-required'],
    ['POST', '/affinity/move', { kind: 'source', value: '127.0.0.1', to: 'zz' }, 404, 'no-such-backend'],
    ['POST', '/affinity/move', { hash: '000000000000', to: 'a' }, 404, 'no-such-entry'],
    ['GET', '/affinity?frontend=zz', undefined, 404, 'no-such-frontend'],
    ['GET', '/affinity?pool=zz', undefined, 404, 'no-such-pool'],
    ['GET', '/affinity?limit=-1', undefined, 400, 'bad-limit'],
    ['GET', '/affinity/lookup?kind=source', undefined, 400, 'key-required'],
    ['POST', '/affinity/move', 'x'.repeat(70 * 1024), 413, 'body-too-large'],
  ];
  for (const [method, p, body, status, code] of cases) {
    const r = await admin(adminPort, method, p, body === undefined ? {} : { body });
    t.equal(r.status, status, `${method} ${p} → ${String(status)}`);
    t.equal((r.json as { error?: string } | undefined)?.error, code, `${method} ${p} → ${code}`);
  }
  t.equal((await admin(adminPort, 'GET', '/health')).status, 200, 'still serving');
  t.equal(rt.child.exitCode, null, 'tether still running');
});

t.test('bearer token from a file', async (t) => {
  const dir = t.testdir();
  const tokenFile = path.join(dir, 'token');
  const token = secret('admin-token');
  const rotated = secret('admin-token-rotated');
  writeFileSync(tokenFile, `${token}\n`);
  const bs = await backends(t, ['a']);
  const { adminPort } = await withAdmin(t, [...backendFlags(bs), '--admin-token-file', tokenFile]);
  const none = await admin(adminPort, 'GET', '/frontends');
  t.equal(none.status, 401);
  t.match(none.headers['www-authenticate'], /^Bearer/);
  t.equal((await admin(adminPort, 'GET', '/metrics', { token: 'wrong' })).status, 401, 'wrong token refused');
  t.equal((await admin(adminPort, 'GET', '/metrics', { token })).status, 200, 'right token served');
  t.equal((await admin(adminPort, 'GET', '/health')).status, 200, '/health needs no token');

  // Reload re-reads the token file: the old token stops working.
  writeFileSync(tokenFile, `${rotated}\n`);
  const r = await admin(adminPort, 'POST', '/reload', { token });
  t.equal(r.status, 200);
  t.equal((await admin(adminPort, 'GET', '/frontends', { token })).status, 401, 'old token refused after reload');
  t.equal((await admin(adminPort, 'GET', '/frontends', { token: rotated })).status, 200, 'new token accepted');
});

t.test('admin misconfiguration exits 2 with one line each', async (t) => {
  const dir = t.testdir();
  const empty = path.join(dir, 'empty');
  writeFileSync(empty, '  \n');
  const runs: [string[], RegExp][] = [
    [['--admin', '0.0.0.0:9900'], /admin: 0\.0\.0\.0 is not a loopback address: the admin API there needs admin-token-file/],
    [['--admin', '127.0.0.1'], /--admin/],
    [['--admin', '127.0.0.1:9900-9901'], /--admin/],
    [['--admin-token-file', empty], /--admin-token-file: needs --admin/],
    [['--admin', '127.0.0.1:0', '--admin-token-file', path.join(dir, 'missing')], /cannot read --admin-token-file .*ENOENT/],
    [['--admin', '127.0.0.1:0', '--admin-token-file', empty], /expected one token/],
  ];
  for (const [args, want] of runs) {
    const r = await runTetherToExit(['--listen', '127.0.0.1:0', '--backend', '127.0.0.1:1', ...args]);
    t.equal(r.code, 2, args.join(' '));
    t.match(errorLines(r.stderr).join('\n'), want, args.join(' '));
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

t.test('/metrics parses as Prometheus text and counts what happened', async (t) => {
  const bs = await backends(t, ['a', 'b']);
  const { rt, port, adminPort } = await withAdmin(t, [...backendFlags(bs), '--backend', 'dead=127.0.0.1:1', '--affinity', 'sni,source', '--balance', 'roundrobin', '--peek-timeout', '200ms']);
  for (let i = 0; i < 6; i++) await whoAnswers(port, { localAddress: `127.0.0.${String(10 + i)}` });
  await waitForCount(rt, isConnClose(), 6);
  const r = await admin(adminPort, 'GET', '/metrics');
  t.equal(r.status, 200);
  t.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const e = parseExposition(r.text);
  t.ok(e.samples.length > 20, `${String(e.samples.length)} samples`);
  t.same([...e.types.keys()].filter((n) => !n.startsWith('tether_')), [], 'every metric is prefixed tether_');
  t.equal(sampleValue(e, 'tether_frontend_connections_total', { frontend: 'default' }), 6);
  t.equal(sampleValue(e, 'tether_frontend_connections_active', { frontend: 'default' }), 0);
  t.equal(e.types.get('tether_frontend_connections_total'), 'counter');
  t.equal(e.types.get('tether_backend_up'), 'gauge');
  const placed = ['a', 'b'].map((n) => sampleValue(e, 'tether_backend_connections_total', { backend: n }) ?? 0);
  t.equal(placed[0]! + placed[1]!, 6, 'all 6 connections placed on a or b');
  t.ok((sampleValue(e, 'tether_backend_connect_failures_total', { backend: 'dead' }) ?? 0) >= 1, 'the dead backend failed at least once');
  t.ok((sampleValue(e, 'tether_retries_total', { frontend: 'default' }) ?? 0) >= 1, 'failover counted as a retry');
  t.equal(sampleValue(e, 'tether_backend_up', { backend: 'dead' }), 0, 'dead backend is down');
  t.equal(sampleValue(e, 'tether_backend_state', { backend: 'dead', state: 'down' }), 1);
  t.equal(sampleValue(e, 'tether_backend_state', { backend: 'a', state: 'up' }), 1);
  t.equal(sampleValue(e, 'tether_affinity_entries', { pool: 'default' }), 6, 'six source keys pinned');
  t.equal(sampleValue(e, 'tether_affinity_misses_total', { pool: 'default' }), 6);
  // Clients send nothing: the peek ends on its deadline, and the chain falls back to source.
  t.equal(sampleValue(e, 'tether_peek_outcomes_total', { protocol: 'unknown', stop: 'timeout' }), 6);
  t.equal(sampleValue(e, 'tether_connection_closes_total', { cause: 'normal', stage: 'splice' }), 6);
  t.ok((sampleValue(e, 'tether_backend_bytes_total', { backend: 'a', direction: 'out' }) ?? 0) > 0, 'bytes counted');
  t.ok(e.samples.some((s) => s.name === 'tether_process_resident_memory_bytes'), 'process metrics present, prefixed');
});

t.test('the exposition reader itself rejects what is not Prometheus text', (t) => {
  t.throws(() => parseExposition('tether_x 1'), /newline/);
  t.throws(() => parseExposition('tether_x{a="1" 1\n'), /not Prometheus/);
  t.throws(() => parseExposition('# TYPE x counter\n# TYPE x counter\n'), /twice/);
  t.throws(() => parseExposition('x 1\n# TYPE x counter\n'), /after samples/);
  t.same(parseExposition('# HELP x h\n# TYPE x gauge\nx{a="b\\"c"} 2.5\n').samples, [{ name: 'x', labels: { a: 'b\\"c' }, value: 2.5 }]);
  t.end();
});

interface Explained { pool: string; backend: string | null; via: string | null; key: { kind: string; hash: string } | null; reason: string; steps: { kind: string; pinned: string | null }[]; candidates: string[] }

t.test('explain predicts the choice, says why, and changes nothing', async (t) => {
  const bs = await backends(t, ['a', 'b', 'c']);
  const { rt, port, adminPort } = await withAdmin(t, [...backendFlags(bs), '--affinity', 'http-cookie:SID,source', '--balance', 'hash', '--peek-timeout', '200ms']);
  const ex = async (q: string): Promise<Explained> => {
    const r = await admin(adminPort, 'GET', `/explain?${q}`);
    t.equal(r.status, 200, q);
    return r.json as Explained;
  };
  const before = await ex('source=127.0.0.40');
  t.equal(before.via, 'balance');
  t.match(before.reason, /source key has no entry yet: hash places it on/);
  t.same(before.candidates, ['a', 'b', 'c']);
  t.equal(((await admin(adminPort, 'GET', '/affinity')).json as { total: number }).total, 0, 'explaining pinned nothing');
  t.equal(await whoAnswers(port, { localAddress: '127.0.0.40' }), before.backend, 'the real client lands where explain said');
  await waitForCount(rt, isConnClose(), 1);
  const after = await ex('source=127.0.0.40');
  t.match(after, { via: 'table', backend: before.backend, key: { kind: 'source' } });
  t.match(after.reason, /affinity-table hit/);
  t.same(after.steps.map((s) => [s.kind, s.pinned]), [['source', before.backend]], 'no cookie given: only the source step');

  const routed = await ex(`source=127.0.0.40&http-cookie:SID=${secret('admin-sid')}.c`);
  t.match(routed, { via: 'named', backend: 'c', key: { kind: 'http-cookie:SID' } });
  t.match(routed.reason, /names backend c/);
  const unkeyed = await ex('');
  t.equal(unkeyed.via, 'balance');
  t.match(unkeyed.reason, /no key of the chain is present/);
  t.equal((await admin(adminPort, 'GET', '/explain?tls-session=zz')).status, 400, 'bad hex refused');
  t.equal((await admin(adminPort, 'GET', '/explain?pool=nope')).status, 404);
});

t.test('backend state over the API: drain keeps pinned keys, maint moves them, ready restores', async (t) => {
  const bs = await backends(t, ['a', 'b', 'c']);
  const { rt, port, adminPort } = await withAdmin(t, [...backendFlags(bs), '--affinity', 'source', '--balance', 'hash']);
  const sources = Array.from({ length: 15 }, (_, i) => `127.0.4.${String(i + 1)}`);
  const first = new Map<string, string>();
  for (const s of sources) first.set(s, await whoAnswers(port, { localAddress: s }));
  const target = first.get(sources[0]!)!;
  const pinned = sources.filter((s) => first.get(s) === target);

  const set = (body: object) => admin(adminPort, 'POST', '/backends/state', { body });
  const d = await set({ backend: target, state: 'drain' });
  t.equal(d.status, 200);
  t.match(d.json, { backend: target, pools: [{ pool: 'default', changed: true, state: 'draining' }] });
  await rt.waitFor((l) => l.event === 'backend.state' && l['backend'] === target && l['admin'] === 'drain');
  for (const s of pinned) t.equal(await whoAnswers(port, { localAddress: s }), target, `${s} pinned to ${target}: still served there while draining`);
  const fresh = await Promise.all(Array.from({ length: 20 }, (_, i) => whoAnswers(port, { localAddress: `127.0.5.${String(i + 1)}` })));
  t.notOk(fresh.includes(target), 'no new key goes to the draining backend');
  const view = (await admin(adminPort, 'GET', '/frontends')).json as { pools: { backends: { name: string; state: string; admin: string }[] }[] }[];
  t.match(view[0]?.pools[0]?.backends.find((b) => b.name === target), { state: 'draining', admin: 'drain' });
  const m = parseExposition((await admin(adminPort, 'GET', '/metrics')).text);
  t.equal(sampleValue(m, 'tether_backend_state', { backend: target, state: 'draining' }), 1, 'metrics say draining');

  t.match((await set({ backend: target, state: 'maint' })).json, { pools: [{ state: 'maint' }] });
  for (const s of pinned) t.not(await whoAnswers(port, { localAddress: s }), target, `${s} re-placed off the backend in maintenance`);
  for (const s of sources.filter((x) => first.get(x) !== target)) t.equal(await whoAnswers(port, { localAddress: s }), first.get(s), `${s} (not pinned there) did not move`);

  t.match((await set({ backend: target, state: 'ready' })).json, { pools: [{ state: 'up' }] });
  const again = await Promise.all(Array.from({ length: 30 }, (_, i) => whoAnswers(port, { localAddress: `127.0.6.${String(i + 1)}` })));
  t.ok(again.includes(target), 'ready again: new keys reach it');

  const errors: [object, number, string][] = [
    [{ state: 'drain' }, 400, 'backend-required'],
    [{ backend: target, state: 'sleep' }, 400, 'bad-state'],
    [{ backend: target, state: 'maint', deadline: '5m' }, 400, 'bad-deadline'],
    [{ backend: target, state: 'drain', deadline: 'soon' }, 400, 'bad-deadline'],
    [{ backend: 'zz', state: 'drain' }, 404, 'no-such-backend'],
  ];
  for (const [body, status, code] of errors) {
    const r = await set(body);
    t.equal(r.status, status, JSON.stringify(body));
    t.equal((r.json as { error?: string }).error, code);
  }
  t.match((await set({ backend: target, state: 'drain', deadline: '1ms' })).json, { pools: [{ changed: true }] });
  await new Promise((r) => setTimeout(r, 20));
  t.match(((await admin(adminPort, 'GET', '/frontends')).json as { pools: { backends: { name: string; state: string }[] }[] }[])[0]?.pools[0]?.backends.find((b) => b.name === target), { state: 'maint' }, 'a drain past its deadline takes no clients');
});

t.test('a 15 KB cookie: one bounded table entry, the same backend every time, found by its value', async (t) => {
  const bs = await Promise.all(['a', 'b', 'c'].map((n) => startHttpBackend(n)));
  t.teardown(() => Promise.all(bs.map((b) => b.close())));
  const { rt, port, adminPort } = await withAdmin(t, [...bs.flatMap((b) => ['--backend', `${b.name}=127.0.0.1:${String(b.port)}`]), '--affinity', 'http-cookie:sid', '--balance', 'roundrobin']);
  const long = register('cookie', `s${'0123456789'.repeat(1_500)}`, 'long-sid');
  const got: string[] = [];
  for (const src of ['127.0.0.1', '127.0.0.2', '127.0.0.3']) got.push((await curl(port, '/', ['-H', `Cookie: sid=${long}`], { source: src })).backend);
  t.equal(new Set(got).size, 1, `one backend for the long cookie under round robin (${got.join(' ')})`);
  const lines = await waitForCount(rt, isConnClose(), 3);
  t.same(lines.map((l) => l['via']), ['balance', 'table', 'table'], 'placed once, then the table');
  const dump = (await admin(adminPort, 'GET', '/affinity?reveal=1')).json as { entries: Entry[] };
  t.equal(dump.entries.length, 1, 'one entry');
  const e = dump.entries[0]!;
  t.match(e.value, /^#h:[A-Za-z0-9_-]{43}$/, 'stored as #h: + hash');
  t.ok(e.value!.length <= 46, `entry value is ${String(e.value!.length)} characters, not ${String(long.length)}`);
  t.equal((lines[0]!['key'] as { hash: string }).hash, e.hash, 'conn.close names the key by the hash the dump shows');
  // Named by its real value (too long for a query string: the JSON body), the key moves.
  const to = ['a', 'b', 'c'].find((n) => n !== got[0])!;
  const mv = await admin(adminPort, 'POST', '/affinity/move', { body: { kind: 'http-cookie:sid', value: long, to } });
  t.match(mv.json, { from: got[0], to, hash: e.hash }, 'found by value');
  t.equal((await curl(port, '/', ['-H', `Cookie: sid=${long}`])).backend, to, 'the cookie follows the move');
});
