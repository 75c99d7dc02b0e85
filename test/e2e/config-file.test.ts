// Config files through `node bin/tether`: `check` on good, bad, missing, unparsable and JSON
// files, then a two-frontend file actually serving both, and --log-level on the command line
// overriding the file's level. Files are written under t.testdir().
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { runTether, runTetherToExit, type LogLine } from '../helpers/run-tether.js';
import { deadPort, startBackend, whoAnswers, type TestBackend } from '../helpers/named-backend.js';
import { errorLines, isConnClose, otherLines, waitAccepting, waitForCount } from '../helpers/e2e-tools.js';

/** Writes `files` (name → text) into `dir` (a t.testdir()); returns name → path. */
function writeFiles(dir: string, files: Readonly<Record<string, string>>): Record<string, string> {
  const paths: Record<string, string> = {};
  for (const [name, text] of Object.entries(files)) {
    paths[name] = path.join(dir, name);
    writeFileSync(paths[name], text);
  }
  return paths;
}

const GOOD_YAML = `# two frontends, each with its own pool
log-level: info
grace: 5s
frontends:
  - name: imap
    listen: 127.0.0.1:7143
    backends: [a=127.0.0.1:8001, b=127.0.0.1:8002]
    affinity: source/24
  - name: web
    listen: [127.0.0.1:7080, 127.0.0.1:7081-7082]
    backends:
      - {name: c, host: 127.0.0.1, port: 8003, weight: 2}
      - {name: d, host: 127.0.0.1, port: 8004, backup: true}
    balance: roundrobin
    connect-timeout: 500ms
    retries: 1
`;

t.test('check --config on a good YAML file exits 0', async (t) => {
  const f = writeFiles(t.testdir(), { 'good.yaml': GOOD_YAML });
  const r = await runTetherToExit(['check', '--config', f['good.yaml']!]);
  t.equal(r.code, 0);
  t.equal(r.stdout, 'tether: configuration ok (2 frontends)\n');
  t.equal(r.stderr, '');
});

t.test('check --config on a JSON file works too', async (t) => {
  const doc = { 'log-level': 'warn', frontends: [{ listen: '127.0.0.1:7001', backends: ['a=127.0.0.1:8001', { name: 'b', host: '127.0.0.1', port: 8002 }], affinity: ['source'] }] };
  const f = writeFiles(t.testdir(), { 'tether.json': JSON.stringify(doc, null, 2) });
  const r = await runTetherToExit(['check', '--config', f['tether.json']!]);
  t.equal(r.code, 0);
  t.equal(r.stdout, 'tether: configuration ok (1 frontend)\n');
  t.equal(r.stderr, '');
});

t.test('check --config on a file with several bad values reports each with its field path', async (t) => {
  const f = writeFiles(t.testdir(), {
    'bad.yaml': `frontends:
  - listen: 127.0.0.1:7001
    colour: red
    backends:
      - a=127.0.0.1:8001
      - {name: b, host: 127.0.0.1, port: 8002, weight: 0}
      - a=127.0.0.1:8003
    retries: 99
`,
  });
  const file = f['bad.yaml']!;
  const r = await runTetherToExit(['check', '--config', file]);
  t.equal(r.code, 2);
  t.equal(r.stdout, '');
  // Every problem in one pass: the bad values, then the cross-field rules. The duplicate "a"
  // is named by its own path, backends[2], although backends[1] was dropped.
  t.same(errorLines(r.stderr), [
    `tether: error: ${file}: frontends[0].colour: unknown field; expected one of listen, backends, affinity, balance, affinity-timeout, affinity-max-entries, connect-timeout, idle-timeout, backend-stall-timeout, client-stall-timeout, fin-timeout, retries, hold-down, peek-timeout, insert-cookie, key-module, pools, routes, protocol, tls, tls-cert, tls-key, require-tls, backend-tls, backend-ca, backend-insecure, user-map, user-lookup, user-cache-ttl, login-timeout, login-domain, allow, deny, proxy-protocol, accept-proxy-protocol, trusted-proxies, frontend-max-conns, queue-size, queue-timeout, health-check, health-expect, health-send, health-interval, health-timeout, health-rise, health-fall, name`,
    `tether: error: ${file}: frontends[0].backends[1].weight: expected a whole number from 1 to 1000, got "0"`,
    `tether: error: ${file}: frontends[0].retries: expected a whole number from 0 to 16, got "99"`,
    `tether: error: ${file}: frontends[0].backends[2]: duplicate backend name "a"; give each a NAME= prefix`,
  ]);
  t.same(otherLines(r.stderr), []);
  t.notMatch(r.stderr, '    at ');
});

t.test('check --config on a file breaking several cross-field rules reports them all', async (t) => {
  const f = writeFiles(t.testdir(), {
    'cross.yaml': `frontends:
  - listen: 127.0.0.1:7001
    backends:
      - a=127.0.0.1:8001
      - b=127.0.0.1:8002
      - a=127.0.0.1:8003
  - listen: 127.0.0.1:7001
    backends: c=127.0.0.1:8004,backup
`,
  });
  const file = f['cross.yaml']!;
  const r = await runTetherToExit(['check', '--config', file]);
  t.equal(r.code, 2);
  t.same(errorLines(r.stderr), [
    `tether: error: ${file}: frontends[0].backends[2]: duplicate backend name "a"; give each a NAME= prefix`,
    `tether: error: ${file}: frontends[1].backends: every backend is marked backup; at least one must be a primary`,
    `tether: error: ${file}: frontends[1].listen: overlaps frontends[0].listen` /* each file gives one listen, not a list */,
  ]);
  t.same(otherLines(r.stderr), []);
});

t.test('a missing config file exits 2 with a clear message', async (t) => {
  const file = path.join(t.testdir(), 'nope.yaml');
  for (const args of [['check', '--config', file], ['--config', file]]) {
    const r = await runTetherToExit(args);
    t.equal(r.code, 2, args.join(' '));
    t.equal(r.stderr, `tether: error: cannot read config file ${file}: ENOENT\n`);
    t.equal(r.stdout, '');
  }
});

t.test('a YAML syntax error exits 2 naming line and column', async (t) => {
  const f = writeFiles(t.testdir(), {
    // Line 4 is indented by three spaces: neither a key of the frontend (4) nor of the list item (2).
    'syntax.yaml': 'frontends:\n  - listen: 127.0.0.1:7001\n    backends: a=127.0.0.1:8001\n   retries: 1\n',
    'syntax.json': '{"frontends": [{"listen": "127.0.0.1:7001", "backends": ["a=127.0.0.1:8001"]}\n',
  });
  const y = await runTetherToExit(['check', '--config', f['syntax.yaml']!]);
  t.equal(y.code, 2);
  t.match(y.stderr, new RegExp(`^tether: error: cannot parse config file ${escapeRe(f['syntax.yaml']!)} at line 4, column \\d+: [A-Z_]+\\n$`));
  const j = await runTetherToExit(['check', '--config', f['syntax.json']!]);
  t.equal(j.code, 2, 'an unclosed JSON document is a syntax error too');
  t.match(j.stderr, new RegExp(`^tether: error: cannot parse config file ${escapeRe(f['syntax.json']!)} at line \\d+, column \\d+: [A-Z_]+\\n$`));
  t.notMatch(y.stderr + j.stderr, '    at ');
});

t.test('a file that is not a mapping of frontends', async (t) => {
  const f = writeFiles(t.testdir(), { 'list.yaml': '- 127.0.0.1:7001\n', 'empty.yaml': 'log-level: info\n' });
  const l = await runTetherToExit(['check', '--config', f['list.yaml']!]);
  t.equal(l.code, 2);
  t.same(errorLines(l.stderr), [`tether: error: ${f['list.yaml']!}: (top level): expected a mapping with "frontends", got a list`]);
  const e = await runTetherToExit(['check', '--config', f['empty.yaml']!]);
  t.equal(e.code, 2);
  t.same(errorLines(e.stderr), [`tether: error: ${f['empty.yaml']!}: frontends: expected a list of frontends, got nothing`]);
});

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Backends a, b (frontend one) and c, d (frontend two), plus a config file for them on fixed ports. */
async function twoFrontends(t: Test, dir: string, fileLevel: string): Promise<{ file: string; p1: number; p2: number; bs: Record<string, TestBackend> }> {
  const list = await Promise.all(['a', 'b', 'c', 'd'].map((n) => startBackend(n)));
  t.teardown(() => Promise.all(list.map((b) => b.close())));
  const bs = Object.fromEntries(list.map((b) => [b.name, b]));
  const [p1, p2, dead] = [await deadPort(), await deadPort(), await deadPort()];
  const yaml = `log-level: ${fileLevel}
frontends:
  - name: sticky
    listen: 127.0.0.1:${p1}
    backends: [a=127.0.0.1:${bs['a']!.port}, b=127.0.0.1:${bs['b']!.port}]
    affinity: source
  - name: rr
    listen: 127.0.0.1:${p2}
    balance: roundrobin
    hold-down: 30s
    backends:
      - {name: c, host: 127.0.0.1, port: ${bs['c']!.port}}
      - {name: d, host: 127.0.0.1, port: ${bs['d']!.port}}
      - {name: z, host: 127.0.0.1, port: ${dead}}
`;
  const f = writeFiles(dir, { 'two.yaml': yaml });
  return { file: f['two.yaml']!, p1, p2, bs };
}

t.test('a file with two frontends serves both, each from its own pool', async (t) => {
  const { file, p1, p2 } = await twoFrontends(t, t.testdir(), 'info');
  const rt = await runTether(['--config', file], { readyCount: 2 });
  t.teardown(() => rt.stop());
  const ready = rt.lines.filter((l) => l.event === 'listen.ready');
  t.same(ready.map((l) => [l['frontend'], l['port']]), [['sticky', p1], ['rr', p2]], 'one listener per frontend, on the file\'s ports');

  // sticky: source affinity over a and b only.
  const sticky: string[] = [];
  for (let i = 0; i < 5; i++) sticky.push(await whoAnswers(p1));
  t.ok(['a', 'b'].includes(sticky[0]!), `sticky is served by its own pool (got ${sticky[0]!})`);
  t.same(new Set(sticky).size, 1, 'the same source keeps its backend');

  // rr: round robin over c, d and a dead z; every connection is answered by c or d, alternating.
  const rr: string[] = [];
  for (let i = 0; i < 6; i++) rr.push(await whoAnswers(p2));
  t.ok(rr.every((n) => n === 'c' || n === 'd'), `rr is served by its own live backends (${rr.join(' ')})`);
  t.equal(rr.filter((n) => n === 'c').length, 3, 'round robin splits evenly between c and d');

  const closes = await waitForCount(rt, isConnClose(), 11);
  t.same(closes.map((l) => l['frontend']), [...Array<string>(5).fill('sticky'), ...Array<string>(6).fill('rr')], 'conn.close names the frontend');
  t.ok(rt.lines.some((l) => l.event === 'connect.fail' && l['frontend'] === 'rr' && l['backend'] === 'z'), 'the dead z was tried once (connect.fail)');
  t.equal(await rt.stop(), 0, 'SIGTERM stops it with status 0');
});

t.test('--log-level on the command line overrides the file', async (t) => {
  const { file, p1, p2 } = await twoFrontends(t, t.testdir(), 'info');
  // warn hides listen.ready, so wait for the ports to accept instead.
  const rt = await runTether(['--config', file, '--log-level', 'warn'], { readyCount: 0 });
  t.teardown(() => rt.stop());
  await waitAccepting(p1);
  await waitAccepting(p2);
  t.ok(['a', 'b'].includes(await whoAnswers(p1)), 'sticky serves');
  const rr: string[] = [];
  for (let i = 0; i < 4; i++) rr.push(await whoAnswers(p2));
  t.ok(rr.every((n) => n === 'c' || n === 'd'), `rr serves (${rr.join(' ')})`);
  const warn = await rt.waitFor((l) => l.event === 'connect.fail', 5_000);
  t.match(warn, { level: 'warn', frontend: 'rr', backend: 'z', code: 'ECONNREFUSED' }, 'warn lines are still written');
  t.equal(await rt.stop(), 0);
  // After exit every line is flushed: at info there would be listen.ready, conn.close, stop.*.
  const infoOrBelow = rt.lines.filter((l: LogLine) => l['level'] === 'info' || l['level'] === 'debug');
  t.same(infoOrBelow.map((l) => l.event), [], 'no info lines: --log-level warn won over the file\'s info');
  t.equal(rt.stderr(), '');
});
