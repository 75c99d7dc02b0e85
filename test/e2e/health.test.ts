// Active health checks and operator states through `node bin/tether`, HAProxy reg-test style:
// backends answer with their name, and assertions are about who answered and what was logged.
// A killed backend is out within a check or two and only its keys move; restarted on the same
// port it is back (logged once) and takes new keys; banner checks tell a real greeting from
// garbage; drain keeps pinned clients and sends no new ones; maint sends none.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import t, { type Test } from 'tap';
import { type LogLine } from '../helpers/run-tether.js';
import { startBackend, whoAnswers, type BackendBehaviour, type TestBackend } from '../helpers/named-backend.js';
import { blackHole, errorLines, isConnClose, linesWhere, otherLines, tetherOnLoopback as tether, waitForCount } from '../helpers/e2e-tools.js';
import { runTether, runTetherToExit } from '../helpers/run-tether.js';
import { rawExchange, startHttpBackend, type HttpBackend } from '../helpers/http-backend.js';
import { rawLogin, startImapBackend } from '../helpers/imap-backend.js';
import { secret } from '../helpers/secrets.js';

/** Starts named backends, closed on teardown (a backend closed by the test closes again harmlessly). */
async function backends(t: Test, names: readonly string[], behaviour?: BackendBehaviour): Promise<TestBackend[]> {
  const bs = await Promise.all(names.map((n) => startBackend(n, behaviour === undefined ? {} : { behaviour })));
  t.teardown(() => Promise.all(bs.map((b) => b.close().catch(() => undefined))));
  return bs;
}

function backendFlags(bs: readonly { name: string; port: number }[], suffix: Readonly<Record<string, string>> = {}): string[] {
  return bs.flatMap((b) => ['--backend', `${b.name}=127.0.0.1:${String(b.port)}${suffix[b.name] ?? ''}`]);
}

const is = (event: string, fields: Readonly<Record<string, unknown>> = {}) => (l: LogLine): boolean =>
  l.event === event && Object.entries(fields).every(([k, v]) => l[k] === v);

/** 127.0.0.`from` … 127.0.0.`to` (all on the loopback interface on Linux). */
const sources = (from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => `127.0.0.${String(from + i)}`);

/** Who answers each source, in order. */
async function answersFrom(port: number, srcs: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const src of srcs) out.set(src, await whoAnswers(port, { localAddress: src }));
  return out;
}

/** Closes `b` as a crash would: its clients are cut and its port refuses. Safe to call twice. */
async function kill(b: TestBackend): Promise<void> {
  await b.close();
}

t.test('kill a backend mid-run: its keys move within a check or two, nobody else\'s; restarted, it is back', async (t) => {
  const bs = await backends(t, ['a', 'b', 'c']);
  const { rt, port } = await tether(t, [
    ...backendFlags(bs),
    '--affinity', 'source',
    '--health-check', 'tcp',
    '--health-interval', '200ms',
    '--health-fall', '2',
    '--health-rise', '2',
    // Passive hold-down far longer than the test: only the checks can bring the backend back.
    '--hold-down', '1h',
    '--log-level', 'debug',
  ]);
  const first = sources(1, 24);
  const before = await answersFrom(port, first);
  const tally = (n: string): number => [...before.values()].filter((x) => x === n).length;
  const victim = bs.reduce((best, b) => (tally(b.name) > tally(best.name) ? b : best));
  t.ok(tally(victim.name) > 0 && tally(victim.name) < first.length, `${victim.name} holds ${String(tally(victim.name))} of ${String(first.length)} sources`);
  const victimAddress = `127.0.0.1:${String(victim.port)}`;
  const checksOf = (ok: boolean) => is('health.check', { address: victimAddress, ok });
  await waitForCount(rt, checksOf(true), 1);

  await kill(victim);
  const down = await rt.waitFor(is('backend.down', { backend: victim.name }), 10_000);
  t.match(down, { level: 'warn', reason: 'check', code: 'ECONNREFUSED', pool: 'default', frontend: 'default' });

  const closesBefore = linesWhere(rt, isConnClose()).length;
  const after = await answersFrom(port, first);
  let moved = 0;
  for (const src of first) {
    const was = before.get(src)!;
    const now = after.get(src)!;
    if (was === victim.name) {
      moved++;
      if (now === victim.name || now === '') t.fail(`${src}: pinned to dead ${victim.name}, answered by "${now}"`);
    } else if (now !== was) {
      t.fail(`${src}: was on healthy ${was}, now on ${now}`);
    }
  }
  t.equal(moved, tally(victim.name), `the ${String(moved)} sources of ${victim.name} were re-placed; the others stayed`);
  const closes = (await waitForCount(rt, isConnClose(), closesBefore + first.length)).slice(closesBefore);
  t.ok(closes.every((l) => l['tries'] === 1), 'no client tried the dead backend: the check had taken it out');
  t.equal(linesWhere(rt, is('connect.fail')).length, 0, 'no connect.fail at all');

  // Several more failed checks: still the one backend.down line.
  const failedSoFar = linesWhere(rt, checksOf(false)).length;
  await waitForCount(rt, checksOf(false), failedSoFar + 3);
  t.equal(linesWhere(rt, is('backend.down')).length, 1, 'backend.down once per transition, not per check');

  const back = await startBackend(victim.name, { port: victim.port });
  t.teardown(() => back.close());
  const up = await rt.waitFor(is('backend.up', { backend: victim.name }), 10_000);
  t.match(up, { level: 'info', reason: 'check' });

  const again = await answersFrom(port, first);
  for (const src of first) {
    if (again.get(src) !== after.get(src)) t.fail(`${src}: moved again after ${victim.name} came back (${after.get(src)!} → ${again.get(src)!})`);
  }
  t.pass('re-pinned sources stay where they went; the rest never moved');
  const fresh = await answersFrom(port, sources(101, 160));
  const onVictim = [...fresh.values()].filter((n) => n === victim.name).length;
  t.ok(onVictim > 0, `new sources are placed on ${victim.name} again (${String(onVictim)} of 60)`);
  await waitForCount(rt, checksOf(true), linesWhere(rt, checksOf(true)).length + 3);
  t.equal(linesWhere(rt, is('backend.up')).length, 1, 'backend.up once');
  t.equal(linesWhere(rt, is('backend.down')).length, 1);
});

t.test('a backend a client found dead is back after passing checks, long before its hold-down ends', async (t) => {
  const bs = await backends(t, ['a', 'b']);
  const b = bs[1]!;
  const { rt, port } = await tether(t, [
    ...backendFlags(bs),
    '--balance', 'roundrobin',
    '--health-check', 'tcp',
    '--health-interval', '300ms',
    // Three failed checks (0.9 s) to notice on its own: the clients below find out first.
    '--health-fall', '3',
    '--health-rise', '1',
    '--hold-down', '1h',
    '--log-level', 'debug',
  ]);
  // A backend starts one failed check short of down: let its first check pass before the kill.
  await rt.waitFor(is('health.check', { address: `127.0.0.1:${String(b.port)}`, ok: true }));
  await kill(b);
  const got: string[] = [];
  for (let i = 0; i < 4; i++) got.push(await whoAnswers(port));
  t.ok(got.every((n) => n === 'a'), `every client answered by a (${got.join(' ')})`);
  const down = await rt.waitFor(is('backend.down', { backend: 'b' }));
  t.match(down, { reason: 'connect', code: 'ECONNREFUSED', holdDownMs: 3_600_000 });

  const back = await startBackend('b', { port: b.port });
  t.teardown(() => back.close());
  t.match(await rt.waitFor(is('backend.up', { backend: 'b' }), 10_000), { reason: 'check' });
  const later: string[] = [];
  for (let i = 0; i < 4; i++) later.push(await whoAnswers(port));
  t.same([...new Set(later)].sort(), ['a', 'b'], `b takes clients again (${later.join(' ')})`);
  t.equal(linesWhere(rt, is('backend.down')).length, 1, 'the checks that failed meanwhile logged no second down');
});

t.test('banner checks: a backend greeting * OK serves, one greeting garbage is taken out', async (t) => {
  const greet = (line: string): BackendBehaviour => (s, name) => {
    s.write(`${line} ${name}\n`);
    s.pipe(s);
  };
  const [good] = await backends(t, ['good'], greet('* OK'));
  const [bad] = await backends(t, ['bad'], greet('HELLO'));
  const { rt, port } = await tether(t, [
    ...backendFlags([good!, bad!]),
    '--balance', 'roundrobin',
    '--health-check', 'banner',
    '--health-expect', '^\\* OK',
    '--health-interval', '200ms',
    '--health-timeout', '300ms',
  ]);
  t.match(await rt.waitFor(is('backend.down', { backend: 'bad' })), { reason: 'check', code: 'expect-timeout' });
  const got: string[] = [];
  for (let i = 0; i < 8; i++) got.push(await whoAnswers(port));
  t.same([...new Set(got)], ['* OK good'], 'every client reached the backend that greets properly');
  t.equal(linesWhere(rt, is('backend.down', { backend: 'good' })).length, 0, 'good never went down');
  t.ok(bad!.accepted() >= 1 && good!.accepted() >= 8, 'both were checked; only good served');
});

t.test('imap: a banner check expects * OK by default', async (t) => {
  const good = await startImapBackend('m1');
  t.teardown(() => good.close());
  const [bad] = await backends(t, ['m2'], (s) => s.end('-ERR this is POP3\r\n'));
  const { rt, port } = await tether(t, [
    '--protocol', 'imap',
    '--affinity', 'login',
    ...backendFlags([{ name: 'm1', port: good.port }, bad!]),
    '--health-check', 'banner',
    '--health-interval', '200ms',
  ]);
  t.match(await rt.waitFor(is('backend.down', { backend: 'm2' })), { reason: 'check', code: 'expect-mismatch' });
  for (const user of ['alice', 'bob', 'carol', 'dave']) {
    const r = await rawLogin(port, `a1 LOGIN ${user} ${secret('mail-atom')}\r\n`, 'a1');
    r.wire.close();
    t.equal(r.who, 'm1', `${user} placed on the healthy backend`);
  }
  t.equal(linesWhere(rt, is('backend.down', { backend: 'm1' })).length, 0);
});

t.test('drain and maint from --backend: new keys and un-keyed clients go only to ready backends', async (t) => {
  const bs = await backends(t, ['a', 'b', 'c', 'd']);
  const { port } = await tether(t, [...backendFlags(bs, { c: ',drain', d: ',maint' }), '--balance', 'roundrobin']);
  const got: string[] = [];
  for (let i = 0; i < 12; i++) got.push(await whoAnswers(port));
  t.same(got.slice(0, 4), ['a', 'b', 'a', 'b'], `only a and b (${got.join(' ')})`);
  t.same([...new Set(got)].sort(), ['a', 'b']);

  const hashed = await tether(t, [...backendFlags(bs, { c: ',drain=1h', d: ',maint' }), '--affinity', 'source', '--balance', 'hash']);
  const placed = await answersFrom(hashed.port, sources(1, 30));
  t.same([...new Set(placed.values())].sort(), ['a', 'b'], 'thirty sources, none on draining c or maint d');
});

t.test('drain keeps pinned clients: a cookie naming a draining backend still reaches it; maint does not', async (t) => {
  const hs: HttpBackend[] = await Promise.all(['a', 'b', 'c'].map((n) => startHttpBackend(n)));
  t.teardown(() => Promise.all(hs.map((h) => h.close())));
  const request = (cookie?: string): string =>
    `GET / HTTP/1.1\r\nHost: test\r\n${cookie === undefined ? '' : `Cookie: ${cookie}\r\n`}Connection: close\r\n\r\n`;
  const spec = (h: HttpBackend, state: string): string => `${h.name}=127.0.0.1:${String(h.port)}${state}`;
  const dir = t.testdir();
  const run = async (cState: string) => {
    const file = path.join(dir, `tether-${cState.replace(/\W/g, '') || 'ready'}.yaml`);
    await writeFile(
      file,
      [
        'frontends:',
        '  - listen: 127.0.0.1:0',
        '    insert-cookie: TETHER',
        '    backends:',
        `      - ${spec(hs[0]!, '')}`,
        `      - ${spec(hs[1]!, '')}`,
        `      - { name: c, host: 127.0.0.1, port: ${String(hs[2]!.port)}, state: ${cState} }`,
        '',
      ].join('\n'),
    );
    const rt = await runTether(['--config', file]);
    t.teardown(() => rt.stop());
    return { rt, port: rt.ports[0]! };
  };

  const drained = await run('drain');
  for (const src of sources(1, 5)) {
    const r = await rawExchange(drained.port, request('TETHER=c'), { localAddress: src });
    t.equal(r.backend, 'c', `TETHER=c from ${src}: still served by draining c`);
    t.same(r.setCookies, [], 'and its cookie stands');
  }
  const fresh: string[] = [];
  for (const src of sources(11, 40)) fresh.push((await rawExchange(drained.port, request(), { localAddress: src })).backend);
  t.notOk(fresh.includes('c'), `30 new clients, none on c (${[...new Set(fresh)].sort().join(', ')})`);
  const routed = await waitForCount(drained.rt, isConnClose(), 35);
  t.equal(routed.filter((l) => l['backend'] === 'c').length, 5);
  t.ok(routed.filter((l) => l['backend'] === 'c').every((l) => l['via'] === 'named'), 'the pinned ones logged via named');

  const maint = await run('maint');
  const r = await rawExchange(maint.port, request('TETHER=c'));
  t.not(r.backend, 'c', `maint: TETHER=c is re-placed (on ${r.backend})`);
  t.same(r.setCookies, [`TETHER=${r.backend}; Path=/; HttpOnly`], 'with a fresh cookie naming its new backend');
});

t.test('usage errors: one line each, exit 2', async (t) => {
  const base = ['--listen', '127.0.0.1:0', '--backend', 'a=127.0.0.1:1'];
  const cases: [string[], string][] = [
    [['--health-check', 'http'], `option '--health-check <KIND>' argument 'http' is invalid. expected one of none, tcp, banner, send, got "http"`],
    [['--health-check', 'banner', '--health-expect', '('], `option '--health-expect <REGEX>' argument '(' is invalid. expected a regular expression (Invalid regular expression: /(/m: Unterminated group), got "("`],
    [['--health-check', 'send', '--health-expect', 'x', '--health-send', 'a\\q'], `option '--health-send <STRING>' argument 'a\\q' is invalid. expected at most 1024 printable ASCII characters with \\r, \\n, \\t, \\\\ and \\xHH escapes, got "a\\\\q"`],
    [['--health-rise', '0'], `option '--health-rise <N>' argument '0' is invalid. expected a whole number from 1 to 100, got "0"`],
    [['--health-fall', 'x'], `option '--health-fall <N>' argument 'x' is invalid. expected a whole number from 1 to 100, got "x"`],
    [['--health-check', 'banner'], '--health-check: --health-check banner needs --health-expect (imap/pop3 frontends default to their greeting)'],
    [['--health-check', 'tcp', '--health-interval', '10ms'], '--health-interval: must be at least 50ms'],
    [['--health-expect', '^x'], '--health-expect: needs --health-check banner or send'],
  ];
  for (const [args, message] of cases) {
    const r = await runTetherToExit([...base, ...args]);
    t.equal(r.code, 2, args.join(' '));
    t.same(errorLines(r.stderr), [`tether: error: ${message}`], args.join(' '));
    t.same(otherLines(r.stderr), [], 'no stack, nothing else');
  }
  const drainZero = await runTetherToExit(['--listen', '127.0.0.1:0', '--backend', 'a=127.0.0.1:1,drain=0']);
  t.equal(drainZero.code, 2);
  t.same(errorLines(drainZero.stderr), [
    `tether: error: option '--backend <SPEC>' argument 'a=127.0.0.1:1,drain=0' is invalid. expected drain=DURATION with a duration of at least 1ms in [NAME=]HOST[:PORT][,weight=N][,max-conns=N][,backup][,drain[=DURATION]|,maint], got "a=127.0.0.1:1,drain=0"`,
  ]);
  const ok = await runTetherToExit(['check', ...base, '--backend', 'b=127.0.0.1:2,drain=30m', '--backend', 'c=127.0.0.1:3,maint', '--health-check', 'send', '--health-send', 'PING\\r\\n', '--health-expect', '^\\+PONG']);
  t.equal(ok.code, 0, ok.stderr);
});

t.test('SIGTERM with a check in flight: tether stops at once and exits 0', async (t) => {
  const hole = await blackHole();
  if (!hole) {
    t.pass('not tested', { skip: 'no loopback black hole on this OS (a full accept queue does not drop SYNs here)' });
    return;
  }
  t.teardown(() => {
    hole.close();
  });
  const [a] = await backends(t, ['a']);
  const rt = await runTether([
    '--listen', '127.0.0.1:0',
    ...backendFlags([a!, { name: 'hole', port: hole.port }]),
    '--health-check', 'tcp',
    '--health-interval', '60s',
    '--health-timeout', '60s',
  ]);
  t.teardown(() => rt.stop());
  // Give the first round time to start dialling the black hole (it never completes).
  await new Promise((r) => setTimeout(r, 300));
  const started = Date.now();
  t.equal(await rt.stop(), 0);
  t.ok(Date.now() - started < 5_000, `exited in ${String(Date.now() - started)} ms, not after the 60 s check timeout`);
  t.ok(linesWhere(rt, is('stop.done')).length === 1);
  t.equal(linesWhere(rt, is('backend.down')).length, 0, 'the aborted check reported nothing');
});
