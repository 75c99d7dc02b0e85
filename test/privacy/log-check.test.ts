// The privacy check can fail: log lines with a secret in any form are flagged (as pino writes
// them), a short hash is not; the check fails on a leak, on a stray password, on a mail or HTTP
// test file that ran without leaving the logs, events and secrets it should, and on an unknown
// run; and the helpers' real output (a spawned tether, the registry) reaches the log dir.
//
// Why tap's `after` module (package.json "tap".after = logs-after.ts) and not a test file: tap
// runs test files in parallel, so only a module run after all of them sees every log line. It
// runs on every tap invocation (single files too), so what it demands depends on which mail and
// HTTP files ran (.tap/test-results since the before module's stamp). When it fails, tap 21
// (foreground-child) ends the runner at once with the module's exit status, 1: `npm test` fails
// and .ci/run counts a failure (its `# { total, pass }` line then lacks `fail`, and a non-zero
// status with fail 0 is counted as 1 failed).
import { Buffer } from 'node:buffer';
import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { createLogger, keyHash } from '../../lib/log.js';
import { runTetherToExit } from '../helpers/run-tether.js';
import { base64Needles, formsOf, LeakScanner } from '../helpers/leak-scanner.js';
import { catalogueSecrets, CATALOGUE, MIN_SECRET_LENGTH, register, receivedAtBackend, secret, type Secret } from '../helpers/secrets.js';
import { LOG_DIR_ENV, logDir, RUN_STAMP, startRun, teeTetherOutput, testFileOfProcess, type RunMeta } from '../helpers/tether-logs.js';
import { checkLogs, readLogDir, testFilesOfRun, type Expectation, type TestFileLogs } from './log-check.js';

const PASSWORD: Secret = { kind: 'password', value: CATALOGUE['imap-quoted'].value, name: 'imap-quoted' };
const COOKIE: Secret = { kind: 'cookie', value: CATALOGUE['http-routed-session'].value, name: 'http-routed-session' };

/** One line as tether's pino logger writes it, with `fields`. */
function pinoLine(fields: Record<string, unknown>): string {
  let out = '';
  const logger = createLogger('trace', { write: (s: string) => (out += s) });
  logger.info({ event: 'conn.close', conn: 7, ...fields }, 'connection closed');
  return out.trimEnd();
}

t.test('the scanner flags a secret in every form a log line could carry it', (t) => {
  const scanner = new LeakScanner([PASSWORD, COOKIE]);
  const flagged = (line: string): string[] => scanner.scan(line).map((l) => `${l.secret.name}:${l.form}`);

  t.same(flagged(pinoLine({ user: 'alice' })), [], 'a clean conn.close line');
  t.same(flagged(pinoLine({ key: { kind: 'http-cookie:JSESSIONID', hash: keyHash(COOKIE.value) } })), [], 'the short hash of a cookie is allowed');
  t.same(flagged(pinoLine({ cookie: COOKIE.value })), ['http-routed-session:raw'], 'a cookie value');
  t.same(flagged(pinoLine({ password: PASSWORD.value })), ['imap-quoted:json'], 'a password as pino escapes it');
  t.same(flagged(pinoLine({ line: `a1 LOGIN alice "pa\\"ss\\\\ w0rd-q1"` })), ['imap-quoted:imap-quoted-json'], 'the LOGIN line imaplib sent');
  t.same(flagged(`raw stderr: ${PASSWORD.value}`), ['imap-quoted:raw'], 'a password on stderr');
  t.same(flagged(pinoLine({ b64: Buffer.from(PASSWORD.value).toString('base64') })), ['imap-quoted:base64@0'], 'base64');
  t.same(flagged(pinoLine({ hex: Buffer.from(COOKIE.value).toString('hex') })), ['http-routed-session:hex'], 'hex');
  t.same(flagged(pinoLine({ replay: Buffer.from(`PASS ${PASSWORD.value}\r\n`) })), ['imap-quoted:buffer-json'], 'a Buffer of replay bytes');
  t.match(flagged(pinoLine({ url: `/app?sid=${encodeURIComponent(PASSWORD.value)}` })), ['imap-quoted:percent-encoded'], 'percent-encoded');
  const utf8 = { kind: 'password', value: CATALOGUE['imap-literal-utf8'].value, name: 'utf8' } as const;
  t.match(new LeakScanner([utf8]).scan(pinoLine({ latin1: Buffer.from(utf8.value, 'utf8').toString('latin1') })).map((l) => l.form), ['utf8-as-latin1-json'], 'UTF-8 bytes read as latin1');
  t.ok(flagged(pinoLine({ digest: keyHash(COOKIE.value) + 'x' })).length === 0, 'a 12-hex hash is not the full SHA-256');
  t.ok(formsOf(COOKIE).some((f) => f.form === 'sha256'), 'the full SHA-256 is a form');
  t.same(new LeakScanner([]).scan(pinoLine({ user: 'x' })), [], 'no secrets, no findings');
  t.end();
});

t.test('a password inside any SASL PLAIN response is found, whatever precedes it', (t) => {
  const scanner = new LeakScanner([PASSWORD]);
  for (const authzid of ['', 'admin']) {
    for (const user of ['', 'a', 'bo', 'eve', 'dave', 'frank']) {
      const blob = Buffer.from(`${authzid}\0${user}\0${PASSWORD.value}`, 'utf8').toString('base64');
      const leaks = scanner.scan(pinoLine({ response: blob }));
      t.equal(leaks.length, 1, `authzid ${JSON.stringify(authzid)}, user ${JSON.stringify(user)}: flagged`);
    }
  }
  // The needles are exactly the characters fixed by the secret's bytes, at each offset mod 3.
  const bytes = Buffer.from(PASSWORD.value);
  for (let pre = 0; pre < 6; pre++) {
    for (let post = 0; post < 3; post++) {
      const enc = Buffer.concat([Buffer.alloc(pre, 0xff), bytes, Buffer.alloc(post, 0x01)]).toString('base64');
      t.ok(base64Needles(bytes).some((n) => enc.includes(n)), `${String(pre)} bytes before, ${String(post)} after`);
    }
  }
  t.end();
});

t.test('the registry holds only searchable secrets', (t) => {
  for (const s of catalogueSecrets()) {
    t.ok(s.value.length >= MIN_SECRET_LENGTH, `${s.name} is at least ${String(MIN_SECRET_LENGTH)} characters`);
  }
  t.doesNotThrow(() => new LeakScanner(catalogueSecrets()), 'every form of every catalogue secret can be searched for');
  t.throws(() => register('password', 'pw'), /shorter than 8/, 'a short password is refused');
  t.end();
});

const meta = (logLevel = 'info'): RunMeta => ({ kind: 'spawn', testFile: 'test/e2e/x.test.ts', args: [], logLevel });
const SCOPE: readonly Expectation[] = [{ file: 'test/e2e/x.test.ts', minLines: 2, needs: ['mail-login'], secrets: true, trace: true }];
const good = (): TestFileLogs => ({
  testFile: 'test/e2e/x.test.ts',
  runs: [{ id: 'tether-1', meta: meta('trace'), stdout: `${pinoLine({ user: 'alice' })}\n${pinoLine({ user: 'bob' })}\n`, stderr: '' }],
  secrets: [PASSWORD, COOKIE],
  sightings: [{ seen: PASSWORD.value, where: 'imap backend a' }],
});
const failed = (r: ReturnType<typeof checkLogs>): string[] => r.findings.filter((f) => !f.ok).map((f) => f.name);
const opts = { scope: SCOPE, catalogue: [PASSWORD, COOKIE], kinds: ['password', 'cookie'] as const, fullRunMinLines: 2 };

t.test('the check passes a clean run and fails on a leak, a stray, missing logs or an unknown run', (t) => {
  const ran = new Set(['test/e2e/x.test.ts']);
  const clean = checkLogs(new Map([['test/e2e/x.test.ts', good()]]), ran, opts);
  t.same(failed(clean), [], 'a clean run passes');
  t.match(clean.stats, { lines: 2, scopeFilesRun: 1, secrets: 2, leaks: 0, seenAtBackends: 1 });

  const leaky = good();
  leaky.runs.push({ id: 'tether-2', meta: meta(), stdout: `${pinoLine({ user: 'alice', cookie: COOKIE.value })}\n`, stderr: '' });
  const r = checkLogs(new Map([['test/e2e/x.test.ts', leaky]]), ran, opts);
  t.same(failed(r), ['no secret in test/e2e/x.test.ts tether-2 stdout line 1', 'no secret in 3 log lines of 2 tether runs'], 'a cookie in a line fails it');
  t.match(r.findings.find((f) => !f.ok)?.detail, /^cookie http-routed-session \(raw\): \{.*"event":"conn.close"/);

  const stray = good();
  stray.sightings.push({ stray: 'pw', where: 'imap backend b' });
  t.same(failed(checkLogs(new Map([['test/e2e/x.test.ts', stray]]), ran, opts)), ['every password the test backends received came from test/helpers/secrets.ts'], 'a password not from the registry fails');

  t.same(
    failed(checkLogs(new Map(), ran, opts)),
    [
      'test/e2e/x.test.ts: at least 2 log lines',
      'test/e2e/x.test.ts: logs show mail-login',
      'test/e2e/x.test.ts: recorded the secrets it sent',
      'test/e2e/x.test.ts: a tether at --log-level trace',
      'every catalogue secret was sent by a test',
      'secrets of kind password were sent',
      'secrets of kind cookie were sent',
      'at least 2 log lines from the 1 mail and HTTP test files',
    ],
    'a mail test file that ran but left nothing fails',
  );

  const quiet = good();
  quiet.runs[0] = { ...quiet.runs[0]!, stdout: `${pinoLine({ user: null })}\n${pinoLine({ user: null })}\n` };
  t.same(failed(checkLogs(new Map([['test/e2e/x.test.ts', quiet]]), ran, opts)), ['test/e2e/x.test.ts: logs show mail-login'], 'no login in its logs fails');

  t.same(failed(checkLogs(new Map(), undefined, opts)), ['the run is known'], 'no run stamp fails');
  t.same(failed(checkLogs(new Map(), new Set(), opts)), ['tap recorded the test files of this run'], 'an empty run fails');
  t.same(failed(checkLogs(new Map([['test/e2e/old.test.ts', { ...good(), testFile: 'test/e2e/old.test.ts' }]]), ran, opts)).slice(0, 1), ['every log folder belongs to a test file of this run'], 'stale logs fail');
  t.same(failed(checkLogs(new Map(), new Set(['test/wire/x.test.ts']), opts)), [], 'a run without mail or HTTP files: only the scan');
  t.end();
});

t.test('the helpers write what the check reads: a spawned tether, the registry, the run stamp', async (t) => {
  const dir = path.join(t.testdir(), 'logs');
  const root = t.testdir();
  const before = process.env[LOG_DIR_ENV];
  process.env[LOG_DIR_ENV] = dir;
  t.teardown(() => {
    if (before === undefined) Reflect.deleteProperty(process.env, LOG_DIR_ENV);
    else process.env[LOG_DIR_ENV] = before;
  });
  t.equal(logDir(), dir, 'this test writes to its own dir, never to the real one');
  startRun(dir);

  const usage = await runTetherToExit(['--listen', '127.0.0.1:0', '--backend', 'a=127.0.0.1:1', '--log-level', 'trace', '--frobnicate']);
  t.equal(usage.code, 2, 'a usage error');
  const tee = teeTetherOutput(4242, ['--protocol', 'imap']);
  tee.stdout(Buffer.from(`${pinoLine({ user: 'alice' })}\n${pinoLine({ user: 'alice', pass: CATALOGUE['mail-atom'].value })}\n`));
  tee.close();
  secret('mail-atom');
  receivedAtBackend(CATALOGUE['mail-atom'].value, 'imap backend a');
  receivedAtBackend('pw', 'imap backend b');

  const me = testFileOfProcess();
  t.equal(me, 'test/privacy/log-check.test.ts');
  const results = path.join(root, '.tap', 'test-results', 'test', 'privacy');
  mkdirSync(results, { recursive: true });
  writeFileSync(path.join(results, 'log-check.test.ts.tap'), 'TAP version 14\n');
  writeFileSync(path.join(results, 'earlier.test.ts.tap'), 'TAP version 14\n');
  const old = new Date(Date.now() - 3_600_000);
  utimesSync(path.join(results, 'earlier.test.ts.tap'), old, old);
  t.same(testFilesOfRun(root, dir), new Set([me]), 'the files tap wrote results for since the stamp');
  t.equal(testFilesOfRun(root, path.join(dir, 'nothing')), undefined, 'no stamp: unknown');
  t.ok(existsSync(path.join(dir, RUN_STAMP)), 'the run stamp');

  const logs = readLogDir(dir);
  const mine = logs.get(me);
  t.ok(mine, 'one folder for this test file');
  const spawned = mine!.runs.find((r) => r.meta.args.includes('--frobnicate'));
  t.match(spawned, { meta: { kind: 'spawn', logLevel: 'trace' } }, 'the spawned tether, with its level');
  t.match(spawned?.stderr, /unknown option '--frobnicate'/, 'and its stderr');
  t.ok(mine!.secrets.some((s) => s.name === 'mail-atom'), 'the secret it took');
  t.same(mine!.sightings, [{ seen: CATALOGUE['mail-atom'].value, where: 'imap backend a' }, { stray: 'pw', where: 'imap backend b' }], 'what the backends received');
  const r = checkLogs(logs, testFilesOfRun(root, dir), { scope: [] });
  t.match(
    failed(r),
    ['no secret in test/privacy/log-check.test.ts tether-4242 stdout line 2', /^no secret in \d+ log lines of 2 tether runs$/, 'every password the test backends received came from test/helpers/secrets.ts'],
    'the leak and the stray are found',
  );
  t.equal(failed(r).length, 3, 'and nothing else');
});
