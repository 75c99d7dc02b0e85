// tap's `after` module (package.json "tap".after): runs once every test file of a tap run has
// finished, and checks that none of the secrets the mail and HTTP tests sent appears in any
// line their tethers logged (log-check.ts). Its TAP goes to tap's stdout; a failure ends the
// runner with exit status 1 (see test/privacy/log-check.test.ts for why that is enough).
import t from 'tap';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { logDir } from '../helpers/tether-logs.js';
import { checkLogs, readLogDir, testFilesOfRun } from './log-check.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const dir = logDir();
const { findings, stats } = checkLogs(readLogDir(dir), testFilesOfRun(ROOT, dir));
for (const f of findings) t.ok(f.ok, f.name, f.detail === undefined ? {} : { detail: f.detail });
t.comment(
  `privacy: ${String(stats.lines)} log lines from ${String(stats.runs)} runs in ${String(stats.testFiles)} test files; ` +
    `${String(stats.scopeFilesRun)} mail/HTTP files (${String(stats.scopeLines)} lines); ${String(stats.secrets)} secrets in ${String(stats.needles)} forms ` +
    `(${String(stats.seenAtBackends)} passwords confirmed at test backends); ${String(stats.leaks)} leaks`,
);
