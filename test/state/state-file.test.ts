// The state file's I/O on a real file system (a tap testdir): start checks, atomic 0600 writes,
// reading missing/corrupt/valid files, and the saver's periodic and final saves.
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import t, { type Test } from 'tap';
import { ManualClock } from '../../lib/clock.js';
import { TetherError } from '../../lib/errors.js';
import { createLogger, type Logger } from '../../lib/log.js';
import { AffinityTable } from '../../lib/place/affinity-table.js';
import { checkStateFile, readStateFile, startStateSaver, writeStateFile, type TableRef } from '../../lib/state/state-file.js';
import { parseState } from '../../lib/state/table-state.js';
import { recordLoggerLine } from '../helpers/tether-logs.js';
import { secret } from '../helpers/secrets.js';

const IDLE_MS = 60_000;

/** A logger whose lines land in `lines` (parsed), synchronously, and in the privacy check's log dir. */
function memoryLogger(level: 'info' | 'debug' = 'debug'): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger(level, {
    write: (s: string) => {
      recordLoggerLine(s);
      lines.push(JSON.parse(s) as Record<string, unknown>);
    },
  });
  return { logger, lines };
}

const events = (lines: Record<string, unknown>[], event: string) => lines.filter((l) => l['event'] === event);

async function rejectsWithConfig(t: Test, p: Promise<unknown>, message: string): Promise<void> {
  try {
    await p;
    t.fail('accepted');
  } catch (e) {
    t.ok(e instanceof TetherError && e.code === 'TETHER_ERR_CONFIG', 'TETHER_ERR_CONFIG');
    t.equal((e as Error).message, message);
  }
}

t.test('the start check accepts a new or existing file in a writable folder', async (t) => {
  const dir = t.testdir({ 'tether.state': '{}' });
  await checkStateFile(path.join(dir, 'tether.state'));
  await checkStateFile(path.join(dir, 'new.state'));
  t.pass('no error');
});

t.test('the start check refuses a missing folder, a folder as the file, and a file as the folder', async (t) => {
  const dir = t.testdir({ file: 'x', sub: {} });
  await rejectsWithConfig(t, checkStateFile(path.join(dir, 'nope', 'tether.state')), `cannot use --state-file ${path.join(dir, 'nope', 'tether.state')}: folder ${path.join(dir, 'nope')} does not exist`);
  await rejectsWithConfig(t, checkStateFile(path.join(dir, 'sub')), `cannot use --state-file ${path.join(dir, 'sub')}: not a regular file`);
  await rejectsWithConfig(t, checkStateFile(path.join(dir, 'file', 'tether.state')), `cannot use --state-file ${path.join(dir, 'file', 'tether.state')}: ${path.join(dir, 'file')} is not a folder`);
});

const table = (entries: [string, string, number][]): AffinityTable => {
  const tb = new AffinityTable(IDLE_MS, 100);
  for (const [k, b, ms] of entries) tb.set(k, b, ms);
  return tb;
};

t.test('a save writes every live entry, mode 0600, and leaves no temporary file', async (t) => {
  const dir = t.testdir({});
  const file = path.join(dir, 'tether.state');
  // An existing file readable by others is replaced by a 0600 one.
  await writeFile(file, 'old', { mode: 0o644 });
  await chmod(file, 0o644);
  const refs: TableRef[] = [
    { frontend: 'web', pool: 'default', table: table([['k1', 'a', 1_000], ['k2', 'b', 2_000], ['gone', 'a', 1_000 - IDLE_MS]]) },
    { frontend: 'web', pool: 'api', table: table([]) },
    { frontend: 'mail', pool: 'default', table: table([['login:bob', 'c', 1_500]]) },
  ];
  t.equal(await writeStateFile(file, refs, 2_000), 3, 'the expired entry is not written');
  t.equal((await stat(file)).mode & 0o777, 0o600);
  t.same(await readdir(dir), ['tether.state']);
  t.same(JSON.parse(await readFile(file, 'utf8')), {
    version: 1,
    savedAt: 2_000,
    frontends: { web: { pools: { default: [['k1', 'a', 1_000], ['k2', 'b', 2_000]], api: [] } }, mail: { pools: { default: [['login:bob', 'c', 1_500]] } } },
  });
});

t.test('a failed save rejects and leaves the previous file whole', async (t) => {
  const dir = t.testdir({ 'tether.state': 'previous' });
  const file = path.join(dir, 'tether.state');
  await mkdir(path.join(dir, '.tether.state.' + String(process.pid) + '.tmp', 'blocker'), { recursive: true });
  // The temporary name is a non-empty folder: unlink fails, then open('wx') fails.
  await t.rejects(writeStateFile(file, [], 0));
  t.equal(await readFile(file, 'utf8'), 'previous');
});

t.test('a missing file is a first start: logged at info, tables empty', async (t) => {
  const dir = t.testdir({});
  const { logger, lines } = memoryLogger();
  const loader = await readStateFile(path.join(dir, 'tether.state'), logger, new ManualClock(0));
  const tb = new AffinityTable(IDLE_MS, 10);
  loader.restore('web', 'default', tb, new Set(['a']));
  loader.report(logger);
  t.equal(tb.size, 0);
  t.match(events(lines, 'state.loaded'), [{ level: 'info', entries: 0, dropped: 0, missing: true }]);
  t.equal(lines.length, 1, 'one line');
});

t.test('a corrupt, wrong-version or unreadable file is a warning, and tables start empty', async (t) => {
  const dir = t.testdir({ corrupt: '{"version":1,', v2: '{"version":2,"savedAt":0,"frontends":{}}', folder: {} });
  // A FIFO (one that appeared after the start's check) is refused, not waited on for a writer.
  execFileSync('mkfifo', [path.join(dir, 'fifo')]);
  const cases: [string, string][] = [['corrupt', 'not JSON'], ['v2', 'unsupported version 2'], ['folder', 'is a directory, not a regular file'], ['fifo', 'is a FIFO, not a regular file']];
  for (const [name, reason] of cases) {
    const { logger, lines } = memoryLogger();
    const loader = await readStateFile(path.join(dir, name), logger, new ManualClock(0));
    const tb = new AffinityTable(IDLE_MS, 10);
    loader.restore('web', 'default', tb, new Set(['a']));
    loader.report(logger);
    t.equal(tb.size, 0, name);
    t.match(lines, [{ level: 'warn', event: 'state.error', op: 'load', reason }], name);
    t.equal(lines.length, 1, `${name}: one line`);
  }
});

t.test('a valid file fills the tables it names; the log counts entries and drops, never keys', async (t) => {
  const dir = t.testdir({});
  const file = path.join(dir, 'tether.state');
  const now = 10 * IDLE_MS;
  const cookie = secret('state-cookie');
  await writeStateFile(
    file,
    [
      { frontend: 'web', pool: 'default', table: table([[cookie, 'a', now - 10], ['k-old', 'a', now - IDLE_MS + 5], ['k-removed-backend', 'x', now - 5]]) },
      { frontend: 'web', pool: 'renamed', table: table([['k-pool-gone', 'a', now]]) },
      { frontend: 'gone', pool: 'default', table: table([['k-frontend-gone', 'a', now]]) },
    ],
    now,
  );
  const later = now + 100;
  const { logger, lines } = memoryLogger();
  const loader = await readStateFile(file, logger, new ManualClock(later));
  const tb = new AffinityTable(IDLE_MS, 10);
  loader.restore('web', 'default', tb, new Set(['a', 'b']));
  loader.restore('web', 'other', new AffinityTable(IDLE_MS, 10), new Set(['a']));
  loader.report(logger);
  t.same([...tb.list(later)], [{ key: cookie, backend: 'a', lastUsedMs: now - 10 }]);
  t.match(events(lines, 'state.loaded'), [{ level: 'info', entries: 1, dropped: 4, file }]);
  t.notOk(JSON.stringify(lines).includes(cookie), 'no key value in the log');
});

t.test('the saver saves every interval (debug) and once more on stop (info)', async (t) => {
  const dir = t.testdir({});
  const file = path.join(dir, 'tether.state');
  const clock = new ManualClock(1_000);
  const tb = new AffinityTable(IDLE_MS, 10);
  const { logger, lines } = memoryLogger();
  const saver = startStateSaver(file, () => [{ frontend: 'web', pool: 'default', table: tb }], 100, logger, clock);
  tb.set('k1', 'a', clock.now());
  const deadline = Date.now() + 10_000;
  while (events(lines, 'state.saved').length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.match(events(lines, 'state.saved')[0], { level: 'debug', entries: 1 }, 'a periodic save');
  tb.set('k2', 'b', clock.now());
  await saver.stop();
  const last = events(lines, 'state.saved').at(-1);
  t.match(last, { level: 'info', entries: 2 }, 'the save on stop');
  const r = parseState(await readFile(file, 'utf8'));
  t.ok(r.ok && r.state.tables.get('web')?.get('default')?.length === 2);
  const count = events(lines, 'state.saved').length;
  await new Promise((r) => setTimeout(r, 300));
  t.equal(events(lines, 'state.saved').length, count, 'no save after stop');
});

t.test('with interval 0 the saver saves only on stop; a failed save is a warning', async (t) => {
  const dir = t.testdir({ sub: {} });
  const file = path.join(dir, 'sub', 'tether.state');
  const { logger, lines } = memoryLogger();
  const saver = startStateSaver(file, () => [], 0, logger, new ManualClock(0));
  await new Promise((r) => setTimeout(r, 200));
  t.same(lines, [], 'nothing saved while running');
  await rm(path.join(dir, 'sub'), { recursive: true });
  await saver.stop();
  t.match(lines, [{ level: 'warn', event: 'state.error', op: 'save', reason: 'ENOENT' }]);
});
