// Files that are not what they seem, through `node bin/tether`: a FIFO, a device, a directory
// or an oversized file where tether expects a config, a user map, a key module, a certificate,
// a token or a state file. Each is refused at once with its reason (at start: exit 2; at run
// time: the last good version keeps serving), never waited on. Before lib/files/read.ts, a FIFO
// blocked a libuv pool thread for ever (logins, SIGHUP and log flushes waited with it).
import { execFileSync } from 'node:child_process';
import { renameSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { runTether, runTetherToExit, type LogLine, type RunningTether } from '../helpers/run-tether.js';
import { startBackend, whoAnswers, type TestBackend } from '../helpers/named-backend.js';
import { errorLines, pkiFiles, waitForCount, within } from '../helpers/e2e-tools.js';
import { userPassword } from '../helpers/secrets.js';
import { loginWinner, rawLogin, startImapBackend, type ImapBackend } from '../helpers/imap-backend.js';

/** Bound on anything that used to hang: a refusal is immediate, so 5 s is all slack. */
const REFUSE_MS = 5_000;

function mkfifo(file: string): string {
  execFileSync('mkfifo', [file]);
  return file;
}

/** Sends SIGHUP and resolves with the `n`th reload.done or reload.failed line. */
async function hangup(rt: RunningTether, n: number): Promise<LogLine> {
  rt.child.kill('SIGHUP');
  const lines = await waitForCount(rt, (l) => l.event === 'reload.done' || l.event === 'reload.failed', n, 10_000);
  return lines[n - 1]!;
}

async function namedBackends(t: Test, names: readonly string[]): Promise<TestBackend[]> {
  const bs = await Promise.all(names.map((n) => startBackend(n)));
  t.teardown(() => Promise.all(bs.map((b) => b.close())));
  return bs;
}

t.test('at start, each file tether reads is refused at once when it is a FIFO, a device, a directory or too big', async (t) => {
  const dir = t.testdir();
  const { cert, key } = await pkiFiles(dir);
  const fifo = mkfifo(path.join(dir, 'fifo'));
  const big = path.join(dir, 'big');
  writeFileSync(big, '');
  truncateSync(big, 5 * 1024 * 1024);
  const mail = ['--listen', '127.0.0.1:0', '--protocol', 'imap', '--affinity', 'login', '--backend', 'a=127.0.0.1:1'];
  const cases: { name: string; args: string[]; error: RegExp }[] = [
    { name: '--config a FIFO', args: ['--config', fifo], error: /^tether: error: cannot read config file .*fifo: is a FIFO, not a regular file$/ },
    { name: '--config /dev/zero', args: ['--config', '/dev/zero'], error: /^tether: error: cannot read config file \/dev\/zero: is a character device, not a regular file$/ },
    { name: '--config a directory', args: ['--config', dir], error: /: is a directory, not a regular file$/ },
    { name: '--config of 5 MiB', args: ['--config', big], error: /^tether: error: cannot read config file .*big: is 5\.0 MiB; the limit is 4\.0 MiB$/ },
    { name: '--user-map a FIFO', args: [...mail, '--user-map', fifo], error: /^tether: error: cannot read --user-map .*fifo: is a FIFO, not a regular file$/ },
    { name: '--tls-cert a FIFO', args: [...mail, '--tls', 'starttls', '--tls-cert', fifo, '--tls-key', key], error: /^tether: error: cannot read --tls-cert .*fifo: is a FIFO, not a regular file$/ },
    { name: '--tls-key /dev/zero', args: [...mail, '--tls', 'starttls', '--tls-cert', cert, '--tls-key', '/dev/zero'], error: /^tether: error: cannot read --tls-key \/dev\/zero: is a character device/ },
    { name: '--tls-cert of 5 MiB', args: [...mail, '--tls', 'starttls', '--tls-cert', big, '--tls-key', key], error: /: is 5\.0 MiB; the limit is 1\.0 MiB$/ },
    { name: '--key-module a FIFO', args: ['--listen', '127.0.0.1:0', '--backend', 'a=127.0.0.1:1', '--key-module', fifo], error: /^tether: error: cannot load key module .*fifo: is a FIFO, not a regular file$/ },
    {
      name: '--admin-token-file a FIFO',
      args: ['--listen', '127.0.0.1:0', '--backend', 'a=127.0.0.1:1', '--admin', '127.0.0.1:0', '--admin-token-file', fifo],
      error: /^tether: error: cannot read --admin-token-file .*fifo: is a FIFO, not a regular file$/,
    },
  ];
  for (const c of cases) {
    const r = await within(runTetherToExit(c.args, REFUSE_MS), REFUSE_MS + 1_000, c.name);
    t.equal(r.code, 2, `${c.name}: exit status 2`);
    t.match(errorLines(r.stderr)[0] ?? r.stderr, c.error, `${c.name}: says why`);
  }
});

t.test('--user-map replaced by a FIFO at run time: logins go on from the last good map; SIGHUP is refused, not hung', async (t) => {
  const names = ['a', 'b', 'c'] as const;
  const bs: ImapBackend[] = await Promise.all(names.map((n) => startImapBackend(n)));
  t.teardown(() => Promise.all(bs.map((b) => b.close())));
  const dir = t.testdir();
  const map = path.join(dir, 'users.map');
  const h = loginWinner('alice', names);
  const first = names.find((n) => n !== h)!;
  const second = names.find((n) => n !== h && n !== first)!;
  writeFileSync(map, `alice ${first}\n`);
  const rt = await runTether(['--listen', '127.0.0.1:0', '--protocol', 'imap', '--affinity', 'login', ...bs.flatMap((b) => ['--backend', `${b.name}=127.0.0.1:${b.port}`]), '--user-map', map]);
  t.teardown(() => rt.stop());
  const port = rt.ports[0]!;
  const login = async (what: string): Promise<string> => {
    const r = await within(rawLogin(port, `a1 LOGIN alice ${userPassword('alice')}\r\n`, 'a1'), REFUSE_MS, what);
    r.wire.close();
    return r.who;
  };
  t.equal(await login('first login'), first, `the map sends alice to ${first}`);

  renameSync(mkfifo(path.join(dir, 'new.map')), map);
  // The map is looked at once a second at most: log in until the check has seen the FIFO.
  const seen = rt.waitFor((l) => l.event === 'directory.error', 10_000);
  for (let i = 0; i < 30 && !rt.lines.some((l) => l.event === 'directory.error'); i++) {
    t.equal(await login(`login ${String(i)} after the swap`), first, 'answered from the last good map');
    await new Promise((r) => setTimeout(r, 100));
  }
  t.match(await seen, { level: 'warn', source: 'user-map', err: 'is a FIFO, not a regular file' }, 'the FIFO is reported');
  t.equal(await login('login after the report'), first, 'still the last good map');
  t.equal(rt.lines.filter((l) => l.event === 'directory.error').length, 1, 'reported once: the same FIFO is not looked at again');

  const refused = await hangup(rt, 1);
  t.match(refused, { event: 'reload.failed', errors: [/^cannot read --user-map .*users\.map: is a FIFO, not a regular file$/] }, 'SIGHUP: the reload is refused with the reason');
  t.equal(await login('login after the refused reload'), first, 'the running configuration stays');

  writeFileSync(path.join(dir, 'good.map'), `alice ${second}\n`);
  renameSync(path.join(dir, 'good.map'), map);
  t.match(await hangup(rt, 2), { event: 'reload.done' }, 'a good map again: the reload goes through');
  t.equal(await login('login after the good reload'), second, `alice now goes to ${second}`);
});

t.test('--config replaced by a FIFO, /dev/zero or a 5 MiB file: SIGHUP is refused at once and traffic goes on; a 600 KiB config reloads', async (t) => {
  const [a, b] = await namedBackends(t, ['a', 'b']);
  const dir = t.testdir();
  const config = path.join(dir, 'tether.yaml');
  const yaml = (backend: TestBackend, padding = 0): string =>
    `frontends:\n  - name: web\n    listen: 127.0.0.1:0\n    backends: [${backend.name}=127.0.0.1:${String(backend.port)}]\n` + `# ${'x'.repeat(78)}\n`.repeat(padding);
  writeFileSync(config, yaml(a!));
  const rt = await runTether(['--config', config]);
  t.teardown(() => rt.stop());
  const port = rt.ports[0]!;
  t.equal(await whoAnswers(port), 'a');

  let n = 0;
  const swaps: { name: string; put: () => void; error: RegExp }[] = [
    { name: 'a FIFO', put: () => {
        renameSync(mkfifo(path.join(dir, 'fifo')), config);
      },
      error: /: is a FIFO, not a regular file$/ },
    {
      name: 'a symlink to /dev/zero',
      put: () => {
        symlinkSync('/dev/zero', path.join(dir, 'zero'));
        renameSync(path.join(dir, 'zero'), config);
      },
      error: /: is a character device, not a regular file$/,
    },
    {
      name: 'a 5 MiB file',
      put: () => {
        writeFileSync(path.join(dir, 'big'), yaml(b!, 5 * 1024 * 1024 / 80 + 100));
        renameSync(path.join(dir, 'big'), config);
      },
      error: /: is 5\.\d MiB; the limit is 4\.0 MiB$/,
    },
  ];
  for (const s of swaps) {
    s.put();
    const r = await hangup(rt, ++n);
    t.match(r, { event: 'reload.failed', code: 'TETHER_ERR_CONFIG_FILE', errors: [s.error] }, `${s.name}: refused with the reason`);
    t.equal(await within(whoAnswers(port), REFUSE_MS, `traffic after ${s.name}`), 'a', `${s.name}: the running configuration keeps serving`);
  }
  // Over 16 KiB (CONFIG_INLINE_BELOW): parsed in a worker, and applied like any other.
  writeFileSync(path.join(dir, 'padded'), yaml(b!, 600 * 1024 / 80));
  renameSync(path.join(dir, 'padded'), config);
  t.match(await hangup(rt, n + 1), { event: 'reload.done' }, 'a 600 KiB config reloads');
  t.equal(await whoAnswers(port), 'b', 'and its backend serves');
});

t.test('--state-file that is a FIFO: refused at start, at once', async (t) => {
  const [a] = await namedBackends(t, ['a']);
  const dir = t.testdir();
  const state = path.join(dir, 'tether.state');
  // The reader's own refusal (a FIFO that appears after this check) is in test/state/state-file.test.ts.
  mkfifo(state);
  const r = await within(runTetherToExit(['--listen', '127.0.0.1:0', '--backend', `a=127.0.0.1:${String(a!.port)}`, '--state-file', state], REFUSE_MS), REFUSE_MS + 1_000, 'state FIFO');
  t.equal(r.code, 2, 'exit status 2');
  t.match(errorLines(r.stderr)[0], /^tether: error: cannot use --state-file .*tether\.state: /, 'says why');
});
