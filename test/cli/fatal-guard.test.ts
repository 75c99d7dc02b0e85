// The last-resort guard (lib/cli/main.ts exitOnEscapedErrors): an exception or rejection that
// escapes every handler logs one `process.fatal` line and exits 70, so systemd restarts a clean
// process. Run in a child so the exit is real; the fault tests elsewhere never reach it.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import t from 'tap';
import { ROOT } from '../helpers/run-tether.js';

const MAIN = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');
const LOG = path.join(ROOT, 'dist', 'lib', 'log.js');

function escape(how: string): { status: number | null; stdout: string; stderr: string } {
  const script = `
    const { exitOnEscapedErrors } = await import(${JSON.stringify(MAIN)});
    const { createLogger } = await import(${JSON.stringify(LOG)});
    exitOnEscapedErrors(createLogger('info'));
    ${how}
    setTimeout(() => process.exit(0), 2000);
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

for (const [kind, how] of [
  ['uncaughtException', "setTimeout(() => { throw new Error('escaped boom'); }, 10);"],
  ['unhandledRejection', "void Promise.reject(new Error('escaped boom'));"],
] as const) {
  t.test(`${kind}: one process.fatal line, exit 70`, (t) => {
    const r = escape(how);
    t.equal(r.status, 70);
    const fatal = r.stdout.split('\n').filter((l) => l.includes('"process.fatal"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    t.equal(fatal.length, 1, 'exactly one fatal line, written before the exit');
    t.equal(fatal[0]?.['kind'], kind);
    t.equal(fatal[0]?.['level'], 'fatal');
    t.match(String(fatal[0]?.['err']), /escaped boom/);
    t.match(r.stderr, new RegExp(`tether: fatal: ${kind}: Error: escaped boom`));
    t.end();
  });
}

t.test('a process with nothing escaping exits normally (the guard changes nothing else)', (t) => {
  const r = escape('');
  t.equal(r.status, 0);
  t.notMatch(r.stdout, /process\.fatal/);
  t.end();
});
