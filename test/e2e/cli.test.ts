// The command line as a user meets it, through `node bin/tether`: usage errors (exit 2, one
// line per problem, no stack trace), --help/--version, `check` with flags, a runtime start
// failure (exit 1), and `tether demo --once`. CLI messages are UI, so they are asserted exactly.
import net from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { OPTIONS } from '../../lib/options/table.js';

const FLAG_TABLE = OPTIONS.flatMap((r) => (r.flags === undefined ? [] : [{ flags: r.flags }]));
import { ROOT, runTetherToExit } from '../helpers/run-tether.js';
import { errorLines, otherLines } from '../helpers/e2e-tools.js';

const LISTEN = ['--listen', '127.0.0.1:0'];
// Port 1 on loopback: nothing dials it here (usage errors stop first), and it cannot loop.
const BACKEND = ['--backend', 'a=127.0.0.1:1'];

const LISTEN_SYNTAX = 'HOST:PORT or HOST:PORT-PORT ([::1]:PORT for IPv6)';
const BACKEND_SYNTAX = '[NAME=]HOST[:PORT][,weight=N][,max-conns=N][,backup][,drain[=DURATION]|,maint]';

interface UsageCase {
  readonly name: string;
  readonly args: readonly string[];
  /** Exactly the `tether: error:` lines expected, in order. */
  readonly errors: readonly string[];
}

const USAGE_CASES: readonly UsageCase[] = [
  { name: 'no flags at all', args: [], errors: [
    'tether: error: --listen: at least one listen address is required',
    'tether: error: --backend: at least one backend is required',
  ] },
  { name: 'missing --listen', args: [...BACKEND], errors: ['tether: error: --listen: at least one listen address is required'] },
  { name: 'missing --backend', args: [...LISTEN], errors: ['tether: error: --backend: at least one backend is required'] },
  { name: 'listen port out of range', args: ['--listen', '127.0.0.1:99999', ...BACKEND], errors: [
    `tether: error: option '--listen <HOST:PORT>' argument '127.0.0.1:99999' is invalid. expected ports 1-65535 in ${LISTEN_SYNTAX}, got "127.0.0.1:99999"`,
  ] },
  { name: 'listen without a port', args: ['--listen', 'nohost', ...BACKEND], errors: [
    `tether: error: option '--listen <HOST:PORT>' argument 'nohost' is invalid. expected ${LISTEN_SYNTAX}, got "nohost"`,
  ] },
  { name: 'backend port 0', args: [...LISTEN, '--backend', 'a=1.2.3.4:0'], errors: [
    `tether: error: option '--backend <SPEC>' argument 'a=1.2.3.4:0' is invalid. expected a port 1-65535 in ${BACKEND_SYNTAX}, got "a=1.2.3.4:0"`,
  ] },
  { name: 'backend weight 0', args: [...LISTEN, '--backend', 'a=x:1,weight=0'], errors: [
    `tether: error: option '--backend <SPEC>' argument 'a=x:1,weight=0' is invalid. expected weight=N with N in 1..1000 in ${BACKEND_SYNTAX}, got "a=x:1,weight=0"`,
  ] },
  { name: 'source mask above 32', args: [...LISTEN, ...BACKEND, '--affinity', 'source/33'], errors: [
    `tether: error: option '--affinity <CHAIN>' argument 'source/33' is invalid. expected V4BITS in 0..32 in source/V4BITS/V6BITS, got "source/33"`,
  ] },
  { name: 'none combined with source', args: [...LISTEN, ...BACKEND, '--affinity', 'none,source'], errors: [
    'tether: error: --affinity: "none" cannot be combined with other key kinds',
  ] },
  { name: 'unknown balance policy', args: [...LISTEN, ...BACKEND, '--balance', 'fastest'], errors: [
    `tether: error: option '--balance <POLICY>' argument 'fastest' is invalid. expected one of hash, roundrobin, leastconn, random2, got "fastest"`,
  ] },
  { name: 'bad duration unit', args: [...LISTEN, ...BACKEND, '--connect-timeout', '10x'], errors: [
    `tether: error: option '--connect-timeout <DURATION>' argument '10x' is invalid. expected a duration such as 500ms, 30s, 10m, 1h (a bare number is milliseconds), got "10x"`,
  ] },
  { name: 'retries above the cap', args: [...LISTEN, ...BACKEND, '--retries', '99'], errors: [
    `tether: error: option '--retries <N>' argument '99' is invalid. expected a whole number from 0 to 16, got "99"`,
  ] },
  { name: 'three bad flags: three messages, and the rules on what did parse', args: ['--listen', '127.0.0.1:99999', '--backend', 'a=127.0.0.1:1', '--backend', 'a=127.0.0.1:2', '--retries', '99', '--grace', '5x'], errors: [
    `tether: error: option '--listen <HOST:PORT>' argument '127.0.0.1:99999' is invalid. expected ports 1-65535 in ${LISTEN_SYNTAX}, got "127.0.0.1:99999"`,
    `tether: error: option '--retries <N>' argument '99' is invalid. expected a whole number from 0 to 16, got "99"`,
    `tether: error: option '--grace <DURATION>' argument '5x' is invalid. expected a duration such as 500ms, 30s, 10m, 1h (a bare number is milliseconds), got "5x"`,
    'tether: error: --backend #2: duplicate backend name "a"; give each a NAME= prefix',
  ] },
  { name: 'a bad item does not shift the names of the items after it', args: [...LISTEN, '--backend', 'a=127.0.0.1:0', '--backend', 'b=127.0.0.1:2', '--backend', 'b=127.0.0.1:3'], errors: [
    `tether: error: option '--backend <SPEC>' argument 'a=127.0.0.1:0' is invalid. expected a port 1-65535 in ${BACKEND_SYNTAX}, got "a=127.0.0.1:0"`,
    'tether: error: --backend #3: duplicate backend name "b"; give each a NAME= prefix',
  ] },
  { name: 'duplicate backend names', args: [...LISTEN, '--backend', 'a=127.0.0.1:1', '--backend', 'a=127.0.0.1:2'], errors: [
    'tether: error: --backend #2: duplicate backend name "a"; give each a NAME= prefix',
  ] },
  { name: 'several problems at once: duplicate names and all backup', args: [
    ...LISTEN, '--backend', 'a=127.0.0.1:1,backup', '--backend', 'b=127.0.0.1:2,backup', '--backend', 'a=127.0.0.1:3,backup',
  ], errors: [
    'tether: error: --backend #3: duplicate backend name "a"; give each a NAME= prefix',
    'tether: error: --backend: every backend is marked backup; at least one must be a primary',
  ] },
  { name: 'unknown flag', args: [...LISTEN, ...BACKEND, '--colour'], errors: ["tether: error: unknown option '--colour'"] },
  { name: 'extra positional argument', args: [...LISTEN, ...BACKEND, 'extra'], errors: [
    'tether: error: too many arguments. Expected 0 arguments but got 1.',
  ] },
  { name: '--config with --listen', args: ['--config', 'tether.yaml', ...LISTEN], errors: [
    'tether: error: --listen cannot be combined with --config (put it in the file)',
  ] },
  { name: '--config with several frontend flags', args: ['--config', 'tether.yaml', ...LISTEN, ...BACKEND, '--retries', '1'], errors: [
    'tether: error: --listen cannot be combined with --config (put it in the file)',
    'tether: error: --backend cannot be combined with --config (put it in the file)',
    'tether: error: --retries cannot be combined with --config (put it in the file)',
  ] },
];

t.test('usage errors exit 2 with one line per problem and no stack trace', async (t) => {
  const results = await Promise.all(USAGE_CASES.map((c) => runTetherToExit(c.args)));
  USAGE_CASES.forEach((c, i) => {
    const r = results[i]!;
    t.test(c.name, (t) => {
      t.equal(r.code, 2, 'exit status 2');
      t.same(errorLines(r.stderr), c.errors, 'one line per problem, exactly');
      t.same(otherLines(r.stderr), [], 'nothing else but the usage hint');
      t.notMatch(r.stderr, '    at ', 'no stack trace');
      t.equal(r.stdout, '', 'nothing on stdout');
      t.end();
    });
  });
});

t.test('the same usage errors from `check`', async (t) => {
  const r = await runTetherToExit(['check', ...LISTEN, '--backend', 'a=127.0.0.1:1', '--backend', 'a=127.0.0.1:2']);
  t.equal(r.code, 2);
  t.same(errorLines(r.stderr), ['tether: error: --backend #2: duplicate backend name "a"; give each a NAME= prefix']);
  t.equal(r.stdout, '');
});

t.test('check with valid flags says so and exits 0', async (t) => {
  const r = await runTetherToExit(['check', ...LISTEN, ...BACKEND, '--backend', 'b=127.0.0.1:2,weight=2', '--affinity', 'source/24', '--balance', 'roundrobin']);
  t.equal(r.code, 0);
  t.equal(r.stdout, 'tether: configuration ok (1 frontend)\n');
  t.equal(r.stderr, '');
});

t.test('--help exits 0 and lists every flag of the flag table', async (t) => {
  const r = await runTetherToExit(['--help']);
  t.equal(r.code, 0);
  t.equal(r.stderr, '');
  t.match(r.stdout, /^Usage: tether \[options\] \[command\]\n/);
  for (const row of FLAG_TABLE) t.ok(r.stdout.includes(row.flags), `mentions ${row.flags}`);
  for (const cmd of ['check', 'demo']) t.match(r.stdout, new RegExp(`^  ${cmd} \\[options\\]`, 'm'), `lists the ${cmd} command`);
  // `check` validates the same flags, so its help lists them too.
  const c = await runTetherToExit(['check', '--help']);
  t.equal(c.code, 0);
  for (const row of FLAG_TABLE) t.ok(c.stdout.includes(row.flags), `check --help mentions ${row.flags}`);
});

t.test('--version exits 0 and prints the package version', async (t) => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const r = await runTetherToExit(['--version']);
  t.equal(r.code, 0);
  t.equal(r.stdout, `${pkg.version}\n`);
  t.equal(r.stderr, '');
});

t.test('a port already in use is a runtime start failure: exit 1 naming EADDRINUSE', async (t) => {
  const busy = net.createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => busy.close(() => { r(); })));
  const port = (busy.address() as net.AddressInfo).port;
  const r = await runTetherToExit(['--listen', `127.0.0.1:${port}`, ...BACKEND]);
  t.equal(r.code, 1, 'exit status 1, not 2: the flags were fine');
  t.equal(r.stderr, `tether: error: cannot listen on 127.0.0.1:${port}: EADDRINUSE\n`);
  t.notMatch(r.stderr, '    at ');
  // A second listener that did bind is released: the run ends instead of serving half a config.
  const r2 = await runTetherToExit(['--listen', '127.0.0.1:0', '--listen', `127.0.0.1:${port}`, ...BACKEND]);
  t.equal(r2.code, 1);
  t.match(r2.stderr, 'EADDRINUSE');
});

t.test('demo --once shows each source sticking to one backend, then exits 0', async (t) => {
  const r = await runTetherToExit(['demo', '--once', '--listen', '127.0.0.1:0']);
  t.equal(r.code, 0);
  t.equal(r.stderr, '');
  const rows = [...r.stdout.matchAll(/^ {2}4 connections from (\S+)\s+→ (.+)$/gm)].map((m) => ({ src: m[1], names: m[2]!.split(' ') }));
  t.same(rows.map((x) => x.src), ['127.0.0.1', '127.0.0.2', '127.0.0.3'], 'one row per demo source');
  for (const row of rows) {
    t.equal(row.names.length, 4, `${String(row.src)}: 4 connections`);
    t.ok(['a', 'b', 'c'].includes(row.names[0]!), `${String(row.src)}: answered by a demo backend (${row.names.join(' ')})`);
    t.same(new Set(row.names).size, 1, `${String(row.src)}: the same backend every time`);
  }
});
