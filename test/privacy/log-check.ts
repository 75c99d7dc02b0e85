// The privacy check over a tap run's tether logs (read by logs-after.ts, tested by
// log-check.test.ts): no secret of the registry (test/helpers/secrets.ts) in any log line, in
// any form (leak-scanner.ts); and, so that it cannot pass by reading nothing, the mail and HTTP
// test files that ran must have left log lines, the events they exist to produce, and the
// secrets they sent.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { catalogueSecrets, type BackendSighting, type Secret, type SecretKind } from '../helpers/secrets.js';
import { LeakScanner } from '../helpers/leak-scanner.js';
import { RUN_STAMP, type RunMeta } from '../helpers/tether-logs.js';

/** The output of one tether child (or one process's in-process logger). */
export interface RunLog {
  readonly id: string;
  readonly meta: RunMeta;
  readonly stdout: string;
  readonly stderr: string;
}

/** What one test file left in the log dir. */
export interface TestFileLogs {
  readonly testFile: string;
  readonly runs: RunLog[];
  readonly secrets: Secret[];
  /** Passwords its IMAP/POP3 test backends received: from the registry (`seen`) or not (`stray`). */
  readonly sightings: BackendSighting[];
}

const readIf = (file: string): string => {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof Error && 'code' in e && e.code === 'ENOENT') return ''; // a stream that wrote nothing
    throw e;
  }
};

/** Reads the log dir: one entry per test file folder (a folder holding meta or secrets files). */
export function readLogDir(dir: string): Map<string, TestFileLogs> {
  const out = new Map<string, TestFileLogs>();
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch (e) {
      if (e instanceof Error && 'code' in e && e.code === 'ENOENT') return;
      throw e;
    }
    const testFile = path.relative(dir, d).split(path.sep).join('/');
    const entry = (): TestFileLogs => {
      let e = out.get(testFile);
      if (!e) {
        e = { testFile, runs: [], secrets: [], sightings: [] };
        out.set(testFile, e);
      }
      return e;
    };
    for (const name of names.sort()) {
      const full = path.join(d, name);
      if (name.endsWith('.meta.json')) {
        const id = name.slice(0, -'.meta.json'.length);
        const meta = JSON.parse(readFileSync(full, 'utf8')) as RunMeta;
        entry().runs.push({ id, meta, stdout: readIf(path.join(d, `${id}.stdout.log`)), stderr: readIf(path.join(d, `${id}.stderr.log`)) });
      } else if (/^secrets-\d+\.jsonl$/.test(name)) {
        for (const line of readFileSync(full, 'utf8').split('\n')) {
          if (line === '') continue;
          const v = JSON.parse(line) as Secret | BackendSighting;
          if ('value' in v) entry().secrets.push(v);
          else entry().sightings.push(v);
        }
      } else if (statSync(full).isDirectory()) {
        walk(full);
      }
    }
  };
  walk(dir);
  return out;
}

/**
 * The test files of this tap run: tap writes each one's TAP to .tap/test-results/FILE.tap as
 * it runs; those written since the before module's stamp ran now. Undefined without a stamp.
 */
export function testFilesOfRun(root: string, dir: string): Set<string> | undefined {
  let since: number;
  try {
    since = statSync(path.join(dir, RUN_STAMP)).mtimeMs;
  } catch {
    return undefined; // no stamp: the before module did not run (the check says so)
  }
  const results = path.join(root, '.tap', 'test-results');
  const ran = new Set<string>();
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return; // no results at all: the check reports an empty run
    }
    for (const name of names) {
      const full = path.join(d, name);
      const st = statSync(full);
      if (st.isDirectory()) walk(full);
      else if (name.endsWith('.tap') && st.mtimeMs >= since) ran.add(path.relative(results, full).slice(0, -'.tap'.length).split(path.sep).join('/'));
    }
  };
  walk(results);
  return ran;
}

/** Something a test file's logs must show. */
export type Need =
  /** a conn.close line naming a mail user */
  | 'mail-login'
  /** any conn.close line */
  | 'conn.close'
  /** a line on tether's stderr (start-up errors) */
  | 'stderr'
  /** a line from an in-process logger */
  | 'in-process'
  /** a conn.close line whose key kind starts with this */
  | `key:${string}`;

/** What a mail or HTTP test file must leave in the log dir whenever it runs. */
export interface Expectation {
  readonly file: string;
  /** Log lines (stdout and stderr of all its tethers) at least. */
  readonly minLines: number;
  readonly needs: readonly Need[];
  /** Whether it records secrets in the registry. */
  readonly secrets: boolean;
  /** Whether one of its tethers runs at --log-level trace. */
  readonly trace?: boolean;
}

/**
 * The mail (IMAP, POP3) and HTTP (cookie, header, url-param affinity) test files, and the
 * in-process logger of the state-file test (it logs about affinity keys). The line floors are
 * about half of what each file logged when they were set (imap 168, pop3 112, http-affinity
 * 210, fault-matrix 427, …): they catch a file whose tether output stopped reaching the log
 * dir, not a test that changed a little. test/greet/* is absent: its dialogues are pure, with
 * no logger, so there is no log line to read.
 */
export const SCOPE: readonly Expectation[] = [
  { file: 'test/e2e/imap.test.ts', minLines: 100, needs: ['mail-login'], secrets: true, trace: true },
  { file: 'test/e2e/imap-tls.test.ts', minLines: 25, needs: ['mail-login'], secrets: true },
  { file: 'test/e2e/imap-flood.test.ts', minLines: 4, needs: ['conn.close'], secrets: true },
  { file: 'test/e2e/pop3.test.ts', minLines: 60, needs: ['mail-login'], secrets: true, trace: true },
  { file: 'test/e2e/mail-start.test.ts', minLines: 3, needs: ['stderr'], secrets: false },
  { file: 'test/e2e/mail-unavailable.test.ts', minLines: 20, needs: ['mail-login'], secrets: true },
  { file: 'test/e2e/proxy-protocol.test.ts', minLines: 20, needs: ['mail-login'], secrets: true },
  { file: 'test/e2e/splice-resets.test.ts', minLines: 20, needs: ['mail-login'], secrets: true },
  { file: 'test/e2e/fault-matrix.test.ts', minLines: 200, needs: ['mail-login'], secrets: true },
  { file: 'test/e2e/health.test.ts', minLines: 150, needs: ['mail-login', 'conn.close'], secrets: true },
  { file: 'test/e2e/http-affinity.test.ts', minLines: 120, needs: ['key:http-cookie:', 'key:url-param:', 'key:http-header:'], secrets: true, trace: true },
  { file: 'test/e2e/key-module.test.ts', minLines: 20, needs: ['key:key-module'], secrets: true },
  { file: 'test/admin/admin-api.test.ts', minLines: 100, needs: ['key:http-cookie:'], secrets: true },
  { file: 'test/state/state-file.test.ts', minLines: 4, needs: ['in-process'], secrets: true },
];

/** In a run of every SCOPE file: lines from all of them together, at least (about 1,660 when set). */
export const FULL_RUN_MIN_LINES = 1_000;

/** Leaks reported one by one; the rest are only counted. */
const MAX_LEAKS_SHOWN = 20;

const SECRET_KINDS: readonly SecretKind[] = ['password', 'sasl', 'cookie', 'header', 'url-param', 'token'];

/** One assertion of the check. */
export interface Finding {
  readonly ok: boolean;
  readonly name: string;
  readonly detail?: string;
}

export interface CheckStats {
  readonly testFiles: number;
  readonly runs: number;
  readonly lines: number;
  readonly scopeFilesRun: number;
  readonly scopeLines: number;
  readonly secrets: number;
  readonly needles: number;
  readonly leaks: number;
  /** Registry passwords a test backend received (so they went through tether). */
  readonly seenAtBackends: number;
}

const linesOf = (text: string): string[] => text.split('\n').filter((l) => l !== '');

function parsed(line: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined; // not a JSON line (stderr text): no event
  }
}

function meets(need: Need, runs: readonly RunLog[]): boolean {
  if (need === 'stderr') return runs.some((r) => r.meta.kind === 'spawn' && r.stderr.trim() !== '');
  if (need === 'in-process') return runs.some((r) => r.meta.kind === 'in-process' && r.stdout.trim() !== '');
  const closes = runs.flatMap((r) => linesOf(r.stdout).map(parsed)).filter((l) => l?.['event'] === 'conn.close');
  if (need === 'conn.close') return closes.length > 0;
  if (need === 'mail-login') return closes.some((l) => typeof l?.['user'] === 'string');
  const prefix = need.slice('key:'.length);
  return closes.some((l) => {
    const kind = (l?.['key'] as { kind?: unknown } | null | undefined)?.kind;
    return typeof kind === 'string' && kind.startsWith(prefix);
  });
}

/** A log line quoted in a finding: at most 300 characters. */
const excerpt = (line: string): string => (line.length > 300 ? `${line.slice(0, 300)}…` : line);

/**
 * Checks the logs of one tap run. `ran`: the test files of the run (undefined when unknown).
 * Returns every finding (failed ones first in importance: leaks, then coverage) and counts.
 */
export function checkLogs(
  logs: ReadonlyMap<string, TestFileLogs>,
  ran: ReadonlySet<string> | undefined,
  opts: { scope?: readonly Expectation[]; catalogue?: readonly Secret[]; kinds?: readonly SecretKind[]; fullRunMinLines?: number } = {},
): { findings: Finding[]; stats: CheckStats } {
  const scope = opts.scope ?? SCOPE;
  const catalogue = opts.catalogue ?? catalogueSecrets();
  const findings: Finding[] = [];
  const add = (ok: boolean, name: string, detail?: string): void => {
    findings.push(detail === undefined ? { ok, name } : { ok, name, detail });
  };

  if (!ran) {
    add(false, 'the run is known', 'no run stamp in the log dir: is test/privacy/logs-before.ts the tap "before" module?');
    return { findings, stats: { testFiles: 0, runs: 0, lines: 0, scopeFilesRun: 0, scopeLines: 0, secrets: 0, needles: 0, leaks: 0, seenAtBackends: 0 } };
  }
  add(ran.size > 0, 'tap recorded the test files of this run', ran.size > 0 ? `${String(ran.size)} files` : 'nothing new in .tap/test-results');
  const stale = [...logs.keys()].filter((f) => !ran.has(f));
  add(stale.length === 0, 'every log folder belongs to a test file of this run', stale.length === 0 ? undefined : `not run now: ${stale.join(', ')}`);

  // Every secret anyone recorded, and the whole catalogue (a secret a test forgot to record
  // is still searched for).
  const secrets = new Map<string, Secret>();
  for (const s of catalogue) secrets.set(s.value, s);
  for (const f of logs.values()) for (const s of f.secrets) secrets.set(s.value, s);
  const scanner = new LeakScanner(secrets.values());

  let lines = 0;
  let runs = 0;
  let leaks = 0;
  for (const f of logs.values()) {
    for (const r of f.runs) {
      runs++;
      for (const [stream, text] of [['stdout', r.stdout], ['stderr', r.stderr]] as const) {
        const ls = linesOf(text);
        lines += ls.length;
        for (const [i, line] of ls.entries()) {
          for (const leak of scanner.scan(line)) {
            if (++leaks > MAX_LEAKS_SHOWN) continue;
            add(false, `no secret in ${f.testFile} ${r.id} ${stream} line ${String(i + 1)}`, `${leak.secret.kind} ${leak.secret.name} (${leak.form}): ${excerpt(line)}`);
          }
        }
      }
    }
  }
  add(leaks === 0, `no secret in ${String(lines)} log lines of ${String(runs)} tether runs`, `${String(secrets.size)} secrets, ${String(scanner.needles)} forms; ${String(leaks)} leaks`);

  const strays = [...logs.values()].flatMap((f) => f.sightings.flatMap((g) => ('stray' in g ? [`${f.testFile}: ${JSON.stringify(g.stray)} at ${g.where}`] : [])));
  add(strays.length === 0, 'every password the test backends received came from test/helpers/secrets.ts', strays.length === 0 ? undefined : strays.slice(0, MAX_LEAKS_SHOWN).join('; '));

  const ranScope = scope.filter((e) => ran.has(e.file));
  let scopeLines = 0;
  for (const e of ranScope) {
    const f = logs.get(e.file);
    const fileRuns = f?.runs ?? [];
    const n = fileRuns.reduce((k, r) => k + linesOf(r.stdout).length + linesOf(r.stderr).length, 0);
    scopeLines += n;
    add(n >= e.minLines, `${e.file}: at least ${String(e.minLines)} log lines`, `${String(n)} lines from ${String(fileRuns.length)} runs`);
    for (const need of e.needs) add(meets(need, fileRuns), `${e.file}: logs show ${need}`);
    if (e.secrets) add((f?.secrets.length ?? 0) > 0, `${e.file}: recorded the secrets it sent`, `${String(f?.secrets.length ?? 0)} secrets`);
    if (e.trace) add(fileRuns.some((r) => r.meta.logLevel === 'trace'), `${e.file}: a tether at --log-level trace`);
  }
  if (ranScope.length === 0) add(true, 'no mail or HTTP test file ran: only the leak scan applies');

  if (scope.length > 0 && ranScope.length === scope.length) {
    // The whole suite: every catalogue secret was sent by some test, every kind is covered.
    const recorded = new Set([...logs.values()].flatMap((f) => f.secrets.map((s) => s.value)));
    const unused = catalogue.filter((s) => !recorded.has(s.value)).map((s) => s.name);
    add(unused.length === 0, 'every catalogue secret was sent by a test', unused.length === 0 ? undefined : `never recorded: ${unused.join(', ')}`);
    for (const kind of opts.kinds ?? SECRET_KINDS) add([...secrets.values()].some((s) => s.kind === kind && recorded.has(s.value)), `secrets of kind ${kind} were sent`);
    const min = opts.fullRunMinLines ?? FULL_RUN_MIN_LINES;
    add(scopeLines >= min, `at least ${String(min)} log lines from the ${String(scope.length)} mail and HTTP test files`, `${String(scopeLines)} lines`);
  }

  return {
    findings,
    stats: {
      testFiles: logs.size,
      runs,
      lines,
      scopeFilesRun: ranScope.length,
      scopeLines,
      secrets: secrets.size,
      needles: scanner.needles,
      leaks,
      seenAtBackends: new Set([...logs.values()].flatMap((f) => f.sightings.flatMap((g) => ('seen' in g ? [g.seen] : [])))).size,
    },
  };
}
