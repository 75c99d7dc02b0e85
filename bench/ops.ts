// The bench's "ops" section: what the operations features cost. Each figure is compared within
// one run with the same tether without the feature, not with a lone absolute time.
//   reload   SIGHUP → `reload.done` line (tether --config FILE), with an affinity table of 0 …
//            N entries, then with idle connections held open through the reloads (they must all
//            still carry bytes afterwards);
//   scrape   GET /metrics: time per scrape and body size, 1 vs many backends, empty vs full table;
//   churn    new connections/s with a SIGHUP every 100 ms vs none (failed connections must be 0),
//            and with --admin plus a scraper every 1 s vs without --admin.
// The table is filled by POST /affinity/move (pipelined on one connection): a `source` entry per
// address 127.1.x.y, the entry a client from there would leave; a connection per entry through
// tether would take ~10x longer. Loopback only; every loop is bounded in count and time; only
// the processes started here are stopped, by PID.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { adminAgent, adminOk, adminRequest, pinSources, tableEntries } from './admin-client.js';
import { spawnNode, stopChild, waitForListenPort, waitForNextJsonLine, waitForPort, type Child } from './children.js';
import { connectRate, echoAll, openEchoIdle, quantile } from './load.js';
import { readCpuNs } from './proc-stats.js';
import type { Measured, Processes, Sample } from './types.js';
import { errorText, fmt, sleep, table } from './format.js';

export interface OpsSettings {
  /** Rounds of the with/without connection-rate runs (each round runs both, in alternating order). */
  readonly rounds: number;
  /** Affinity table sizes the reload is timed at, ascending; the largest is also scraped. */
  readonly tableSizes: readonly number[];
  /** Unanswered pipelined POST /affinity/move requests at most, and the time limit of one fill. */
  readonly pinWindow: number;
  readonly pinTimeLimitMs: number;
  /** Timed SIGHUPs per table size (after one untimed). */
  readonly reloads: number;
  readonly reloadTimeoutMs: number;
  /** Idle connections held open through the reloads at the largest table size. */
  readonly idleConnections: number;
  readonly idleConcurrency: number;
  readonly idleTimeLimitMs: number;
  /** Timed scrapes per case (after two untimed), and the backend count of the "many" case. */
  readonly scrapes: number;
  readonly scrapeBackends: number;
  /** The connection-rate runs: loops, at most this many connections, for this long. */
  readonly connectLoops: number;
  readonly connectMax: number;
  readonly connectTimeLimitMs: number;
  /** Connection loops on each tether before its first measured run (JIT, pools, heap growth). */
  readonly warmupMs: number;
  readonly hangupIntervalMs: number;
  readonly scrapeIntervalMs: number;
}

export interface OpsEnv {
  readonly s: OpsSettings;
  readonly tetherBin: string;
  /** tether's log level where the section does not need `info` (the --admin rows). */
  readonly logLevel: string;
  readonly backend: { readonly pid: number; readonly hello: number; readonly echo: number };
  readonly log: (line: string) => void;
  /** Runs `measure` once and records the CPU time of the processes of `t` during it. */
  readonly sample: (t: Processes, measure: () => Promise<Measured>) => Promise<Sample>;
}

/** Reload timings at one table size. */
export interface ReloadRow {
  readonly entries: number;
  readonly openConnections: number;
  /** Of the open connections, how many echoed a byte after the reloads (null: none were open). */
  readonly survived: number | null;
  readonly reloads: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly maxMs: number;
  /** tether's CPU time over the timed reloads, per reload. */
  readonly cpuMsPerReload: number;
}

export interface ScrapeRow {
  readonly backends: number;
  readonly entries: number;
  readonly scrapes: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly bytes: number;
  readonly cpuMsPerScrape: number;
}

/** One side of a with/without comparison of new connections per second. */
export interface ChurnVariant {
  readonly id: string;
  readonly label: string;
  readonly samples: readonly Sample[];
  readonly best: Sample | undefined;
  readonly error?: string;
}

export interface ChurnPair {
  readonly id: 'hangup' | 'admin';
  readonly title: string;
  readonly without: ChurnVariant;
  readonly with: ChurnVariant;
}

export interface OpsResult {
  readonly settings: OpsSettings;
  readonly fill: { readonly entries: number; readonly perSecond: number; readonly firstHealthMsAfter: number } | undefined;
  readonly reload: readonly ReloadRow[];
  readonly scrape: readonly ScrapeRow[];
  readonly churn: readonly ChurnPair[];
  /** Checks that failed (lost connections, failed reloads, errors); each makes the run fail. */
  readonly problems: readonly string[];
  readonly notes: readonly string[];
}

const HOST = '127.0.0.1';



/**
 * A free loopback port (bound to 0, then closed): for --admin (tether then says nothing at warn
 * that would tell which port is which), and for listen addresses a reload must keep.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host: HOST, port: 0 }, () => {
      const a = server.address();
      const port = a !== null && typeof a === 'object' ? a.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

interface ReloadLine {
  readonly event: 'reload.done' | 'reload.failed';
  readonly errors?: unknown;
}

function isReloadLine(v: unknown): v is ReloadLine {
  const e = typeof v === 'object' && v !== null ? (v as { event?: unknown }).event : undefined;
  return e === 'reload.done' || e === 'reload.failed';
}

/** The names of `n` backends on one address: b, b1, b2, … (b first, so a reload to more keeps it). */
function backendNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => (i === 0 ? 'b' : `b${i}`));
}

/** A tether run with --config FILE; the file is rewritten and reloaded to change its settings. */
interface ConfigTether {
  readonly child: Child;
  readonly port: number;
  readonly adminPort: number | undefined;
  readonly file: string;
  readonly agent: http.Agent;
  /** Rewrites the file and applies it with POST /reload (needs the admin API). */
  reconfigure(logLevel: string, backends: number): Promise<void>;
}

async function startConfigTether(env: OpsEnv, dir: string, name: string, backendPort: number, logLevel: string, withAdmin: boolean): Promise<ConfigTether> {
  const file = path.join(dir, `${name}.json`);
  const adminPort = withAdmin ? await freePort() : undefined;
  const write = (level: string, backends: number): void => {
    // JSON is YAML: the config file as an operator would write it.
    const doc = {
      'log-level': level,
      grace: '1s',
      ...(adminPort === undefined ? {} : { admin: `${HOST}:${adminPort}` }),
      frontends: [{ name: 'ops', listen: [`${HOST}:0`], backends: backendNames(backends).map((b) => `${b}=${HOST}:${backendPort}`), affinity: 'source' }],
    };
    writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
  };
  write(logLevel, 1);
  const child = spawnNode(`tether ${name}`, [env.tetherBin, '--config', file]);
  if (adminPort !== undefined) await waitForPort(child, adminPort);
  const port = await waitForListenPort(child, 10_000, adminPort === undefined ? [] : [adminPort]);
  const agent = adminAgent();
  return {
    child,
    port,
    adminPort,
    file,
    agent,
    async reconfigure(level, backends) {
      if (adminPort === undefined) throw new Error('reconfigure needs the admin API');
      write(level, backends);
      await adminOk(agent, adminPort, 'POST', '/reload');
    },
  };
}

/** Sends SIGHUP and resolves with the ms until the `reload.done` line; a `reload.failed` rejects. */
async function timedHangup(t: ConfigTether, timeoutMs: number): Promise<number> {
  const line = waitForNextJsonLine(t.child, isReloadLine, timeoutMs);
  const t0 = performance.now();
  t.child.proc.kill('SIGHUP');
  const l = await line;
  const ms = performance.now() - t0;
  if (l.event === 'reload.failed') throw new Error(`reload failed: ${JSON.stringify(l.errors)}`);
  return ms;
}

/**
 * Untimed reloads and scrapes when the tether has started: a reload runs its code (config parse
 * and validation, frontend build) once, so it takes dozens of them before V8 has optimized it
 * and the first row stops paying for what the later rows get warm.
 */
const START_WARMUPS = 50;

/** Untimed reloads before the timed ones of each row. */
const RELOAD_WARMUPS = 5;

/** RELOAD_WARMUPS untimed reloads, then `n` timed ones in a row. */
async function timeReloads(env: OpsEnv, t: ConfigTether): Promise<{ ms: Float64Array; cpuMsPerReload: number }> {
  for (let i = 0; i < RELOAD_WARMUPS; i++) await timedHangup(t, env.s.reloadTimeoutMs);
  const ms = new Float64Array(env.s.reloads);
  const cpu0 = readCpuNs(t.child.pid);
  for (let i = 0; i < env.s.reloads; i++) ms[i] = await timedHangup(t, env.s.reloadTimeoutMs);
  const cpuMsPerReload = (readCpuNs(t.child.pid) - cpu0) / 1e6 / env.s.reloads;
  return { ms, cpuMsPerReload };
}

/** Untimed scrapes before the timed ones of each case (the first scrapes of a process run cold code). */
const SCRAPE_WARMUPS = 10;

/** SCRAPE_WARMUPS untimed scrapes, then `n` timed ones over one keep-alive connection. */
async function timeScrapes(env: OpsEnv, t: ConfigTether, backends: number, entries: number): Promise<ScrapeRow> {
  const port = t.adminPort ?? 0;
  for (let i = 0; i < SCRAPE_WARMUPS; i++) await adminOk(t.agent, port, 'GET', '/metrics');
  const ms = new Float64Array(env.s.scrapes);
  let bytes = 0;
  const cpu0 = readCpuNs(t.child.pid);
  for (let i = 0; i < env.s.scrapes; i++) {
    const r = await adminOk(t.agent, port, 'GET', '/metrics');
    ms[i] = r.ms;
    bytes = r.bytes;
  }
  const cpuMsPerScrape = (readCpuNs(t.child.pid) - cpu0) / 1e6 / env.s.scrapes;
  return { backends, entries, scrapes: env.s.scrapes, p50Ms: quantile(ms, 0.5), p90Ms: quantile(ms, 0.9), bytes, cpuMsPerScrape };
}

/** GET /health until it answers within 50 ms (at most 100 tries); returns the first answer's ms. */
async function settleAdmin(t: ConfigTether): Promise<number> {
  const port = t.adminPort ?? 0;
  const first = (await adminOk(t.agent, port, 'GET', '/health', 60_000)).ms;
  let last = first;
  for (let i = 0; i < 100 && last > 50; i++) {
    await sleep(50);
    last = (await adminOk(t.agent, port, 'GET', '/health', 60_000)).ms;
  }
  return first;
}

/** Open connections of tether's only frontend (GET /frontends). */
async function openConnections(t: ConfigTether): Promise<number> {
  const r = await adminOk(t.agent, t.adminPort ?? 0, 'GET', '/frontends');
  const doc = JSON.parse(r.body) as { open?: unknown }[];
  const n = doc[0]?.open;
  return typeof n === 'number' ? n : NaN;
}

/**
 * Reload cost and scrapes on one tether (--config, echo backend, --admin). Fills the table
 * step by step at warn, switches to info for the timed SIGHUPs (reload.done is an info line),
 * then scrapes with the full table and after a flush, with 1 and with many backends.
 *
 * The fill runs at warn: two info lines per move (admin.request, affinity.moved) would only
 * measure logging. (It once had to: every move flushed the log, and sonic-boom's listeners piled
 * up while a write was pending — 50,000 moves stalled tether for minutes. flushSoon() now keeps
 * one flush in flight per logger: 50,000 moves at info take ~3 s.)
 */
async function reloadAndScrape(env: OpsEnv, dir: string, problems: string[]): Promise<Pick<OpsResult, 'fill' | 'reload' | 'scrape'>> {
  const { s } = env;
  const reload: ReloadRow[] = [];
  const scrape: ScrapeRow[] = [];
  let fill: OpsResult['fill'];
  const t = await startConfigTether(env, dir, 'reload', env.backend.echo, 'warn', true);
  const adminPort = t.adminPort ?? 0;
  let idle: net.Socket[] = [];
  try {
    let entries = 0;
    let pinnedMs = 0;
    let pinned = 0;
    await t.reconfigure('info', 1);
    for (let i = 0; i < START_WARMUPS; i++) await timedHangup(t, s.reloadTimeoutMs);
    await t.reconfigure('warn', 1);
    for (let i = 0; i < START_WARMUPS; i++) await adminOk(t.agent, adminPort, 'GET', '/metrics');
    for (const size of s.tableSizes) {
      if (size > entries) {
        env.log(`  pinning ${entries}…${size} …`);
        const r = await pinSources(adminPort, entries, size, ['b'], s.pinWindow, s.pinTimeLimitMs);
        pinnedMs += r.elapsedMs;
        pinned += r.pinned;
        const firstHealthMsAfter = await settleAdmin(t);
        entries = await tableEntries(t.agent, adminPort);
        fill = { entries, perSecond: pinned / (pinnedMs / 1000), firstHealthMsAfter: Math.max(fill?.firstHealthMsAfter ?? 0, firstHealthMsAfter) };
        if (entries < size) env.log(`  (table at ${entries}, not ${size}: the fill's time limit)`);
      }
      await t.reconfigure('info', 1);
      const r = await timeReloads(env, t);
      reload.push({ entries, openConnections: 0, survived: null, reloads: s.reloads, p50Ms: quantile(r.ms, 0.5), p90Ms: quantile(r.ms, 0.9), maxMs: quantile(r.ms, 1), cpuMsPerReload: r.cpuMsPerReload });
      await t.reconfigure('warn', 1);
    }
    // Idle connections held through the reloads: each must still echo afterwards.
    const opened = await openEchoIdle(t.port, s.idleConnections, s.idleConcurrency, s.idleTimeLimitMs);
    idle = opened.sockets;
    if (opened.errors > 0 || idle.length < s.idleConnections) problems.push(`reload: opened ${idle.length} of ${s.idleConnections} idle connections (${opened.errors} errors)`);
    await t.reconfigure('info', 1);
    const r = await timeReloads(env, t);
    // The connections lived through the POST /reload above, the untimed SIGHUPs and the timed ones.
    const reloadsLived = 1 + RELOAD_WARMUPS + s.reloads;
    const survived = await echoAll(idle, 10_000);
    const open = await openConnections(t);
    if (survived < idle.length) problems.push(`reload: ${idle.length - survived} of ${idle.length} idle connections did not survive ${reloadsLived} reloads`);
    if (open !== idle.length) problems.push(`reload: tether counts ${open} open connections after the reloads, the bench holds ${idle.length}`);
    entries = await tableEntries(t.agent, adminPort);
    reload.push({ entries, openConnections: idle.length, survived, reloads: s.reloads, p50Ms: quantile(r.ms, 0.5), p90Ms: quantile(r.ms, 0.9), maxMs: quantile(r.ms, 1), cpuMsPerReload: r.cpuMsPerReload });
    for (const sock of idle) sock.destroy();
    idle = [];
    // Scrapes last, the full table first: the fill's many admin requests have warmed the HTTP
    // server's code by then, which the empty-table case would otherwise not get. Many backends:
    // the same table (a reload keeps it), then emptied; then back to one backend.
    await t.reconfigure('warn', 1);
    scrape.push(await timeScrapes(env, t, 1, await tableEntries(t.agent, adminPort)));
    await t.reconfigure('warn', s.scrapeBackends);
    scrape.push(await timeScrapes(env, t, s.scrapeBackends, await tableEntries(t.agent, adminPort)));
    await adminOk(t.agent, adminPort, 'DELETE', '/affinity');
    scrape.push(await timeScrapes(env, t, s.scrapeBackends, await tableEntries(t.agent, adminPort)));
    await t.reconfigure('warn', 1);
    scrape.push(await timeScrapes(env, t, 1, await tableEntries(t.agent, adminPort)));
  } finally {
    for (const sock of idle) sock.destroy();
    t.agent.destroy();
    await stopChild(t.child);
  }
  return { fill, reload, scrape };
}

/** Counts the reload outcome lines of `child` from now on. */
function countReloads(child: Child): { done: () => number; failed: () => number; stop: () => void } {
  let done = 0;
  let failed = 0;
  const stop = child.onLine((line) => {
    // Cheap test first: at info every connection logs a line.
    if (!line.includes('"reload.')) return;
    if (line.includes('"event":"reload.done"')) done++;
    else if (line.includes('"event":"reload.failed"')) failed++;
  });
  return { done: () => done, failed: () => failed, stop };
}

/** What the feature side of a churn pair does while the connection loops run; returns its counts. */
type Alongside = () => { stop: () => Promise<Record<string, number>> };

/**
 * `rounds` rounds of a connection-rate run on the tether without the feature and one with it
 * (the `alongside` activity running during the run), after a warm-up of each; the order flips
 * every round, so that a drift of the machine's other load does not always favour one side.
 * Keeps every sample.
 */
async function churnPair(env: OpsEnv, without: { t: Processes; port: number }, withF: { t: Processes; port: number }, alongside: Alongside): Promise<{ without: Sample[]; with: Sample[] }> {
  const { s } = env;
  const run = async (port: number): Promise<Measured> => {
    const r = await connectRate(port, s.connectLoops, s.connectMax, s.connectTimeLimitMs);
    if (r.connections === 0) throw new Error(`no connection completed (${r.errors} errors; first: ${r.firstError ?? '?'})`);
    return { value: r.perSecond, work: r.connections, detail: { ...r } };
  };
  await connectRate(without.port, s.connectLoops, s.connectMax, s.warmupMs);
  await connectRate(withF.port, s.connectLoops, s.connectMax, s.warmupMs);
  const out = { without: [] as Sample[], with: [] as Sample[] };
  const runWithout = async (): Promise<void> => {
    out.without.push(await env.sample(without.t, () => run(without.port)));
  };
  const runWith = async (): Promise<void> => {
    out.with.push(
      await env.sample(withF.t, async () => {
        const a = alongside();
        let m: Measured;
        try {
          m = await run(withF.port);
        } catch (e) {
          await a.stop(); // no timer may outlive the run
          throw e;
        }
        const counts = await a.stop();
        return { ...m, detail: { ...m.detail, ...counts } };
      }),
    );
  };
  for (let round = 0; round < s.rounds; round++) {
    if (round % 2 === 0) {
      await runWithout();
      await runWith();
    } else {
      await runWith();
      await runWithout();
    }
  }
  return out;
}

function bestByRate(samples: readonly Sample[]): Sample | undefined {
  let best: Sample | undefined;
  for (const x of samples) if (Number.isFinite(x.value) && (best === undefined || x.value > best.value)) best = x;
  return best;
}

function failedConnections(samples: readonly Sample[]): number {
  return samples.reduce((n, x) => n + (typeof x.detail['errors'] === 'number' ? x.detail['errors'] : 0), 0);
}

/** New connections/s with a SIGHUP every `hangupIntervalMs` vs none, on one tether (--config, info). */
async function hangupChurn(env: OpsEnv, dir: string, problems: string[]): Promise<ChurnPair> {
  const { s } = env;
  const title = `new connections/s, ${s.connectLoops} loops, tether --config FILE (log-level info): SIGHUP every ${s.hangupIntervalMs} ms vs none`;
  const without = { id: 'no-reload', label: 'no reloads' };
  const withF = { id: 'sighup', label: `SIGHUP every ${s.hangupIntervalMs} ms` };
  let t: ConfigTether | undefined;
  try {
    t = await startConfigTether(env, dir, 'churn', env.backend.hello, 'info', false);
    const child = t.child;
    const target = { t: { proxy: child, backendPids: [env.backend.pid] }, port: t.port };
    const alongside: Alongside = () => {
      const counter = countReloads(child);
      let sent = 0;
      const timer = setInterval(() => {
        sent++;
        child.proc.kill('SIGHUP');
      }, s.hangupIntervalMs);
      return {
        stop: async () => {
          clearInterval(timer);
          // Let the last reload finish (bounded), so it neither lands in the next run nor goes uncounted.
          for (let i = 0; i < 40 && counter.done() + counter.failed() < sent; i++) await sleep(50);
          counter.stop();
          return { reloadsSent: sent, reloadsDone: counter.done(), reloadsFailed: counter.failed() };
        },
      };
    };
    const r = await churnPair(env, target, target, alongside);
    const failed = failedConnections(r.with) + failedConnections(r.without);
    if (failed > 0) problems.push(`churn: ${failed} connections failed during the SIGHUP runs`);
    const reloadsFailed = r.with.reduce((n, x) => n + (typeof x.detail['reloadsFailed'] === 'number' ? x.detail['reloadsFailed'] : 0), 0);
    if (reloadsFailed > 0) problems.push(`churn: ${reloadsFailed} reloads failed`);
    const reloadsDone = r.with.reduce((n, x) => n + (typeof x.detail['reloadsDone'] === 'number' ? x.detail['reloadsDone'] : 0), 0);
    if (reloadsDone === 0) problems.push('churn: no reload.done line during the SIGHUP runs');
    return { id: 'hangup', title, without: { ...without, samples: r.without, best: bestByRate(r.without) }, with: { ...withF, samples: r.with, best: bestByRate(r.with) } };
  } catch (e) {
    const error = errorText(e);
    env.log(`  FAILED: ${error}`);
    return { id: 'hangup', title, without: { ...without, samples: [], best: undefined, error }, with: { ...withF, samples: [], best: undefined, error } };
  } finally {
    if (t !== undefined) {
      t.agent.destroy();
      await stopChild(t.child);
    }
  }
}

/** New connections/s through tether with --admin and a /metrics scraper every second vs without --admin. */
async function adminChurn(env: OpsEnv, problems: string[]): Promise<ChurnPair> {
  const { s } = env;
  const title = `new connections/s, ${s.connectLoops} loops, tether --affinity source (log-level ${env.logLevel}): --admin + GET /metrics every ${s.scrapeIntervalMs / 1000} s vs no --admin`;
  const without = { id: 'no-admin', label: 'no --admin' };
  const withF = { id: 'admin-scraped', label: `--admin, scraped every ${s.scrapeIntervalMs / 1000} s` };
  const children: Child[] = [];
  const agent = adminAgent();
  try {
    const base = ['--listen', `${HOST}:0`, '--backend', `b=${HOST}:${env.backend.hello}`, '--affinity', 'source', '--log-level', env.logLevel, '--grace', '1s'];
    const plain = spawnNode('tether no-admin', [env.tetherBin, ...base]);
    children.push(plain);
    const adminPort = await freePort();
    const admin = spawnNode('tether admin', [env.tetherBin, ...base, '--admin', `${HOST}:${adminPort}`]);
    children.push(admin);
    const plainPort = await waitForListenPort(plain);
    await waitForPort(admin, adminPort);
    const adminTetherPort = await waitForListenPort(admin, 10_000, [adminPort]);
    const alongside: Alongside = () => {
      const times: number[] = [];
      let errors = 0;
      let busy: Promise<void> | undefined;
      const scrape = (): void => {
        if (busy !== undefined) return; // one scrape at a time, as Prometheus does per target
        busy = adminRequest(agent, adminPort, 'GET', '/metrics')
          .then((r) => {
            if (r.status === 200) times.push(r.ms);
            else errors++;
          })
          .catch(() => {
            errors++;
          })
          .finally(() => {
            busy = undefined;
          });
      };
      scrape();
      const timer = setInterval(scrape, s.scrapeIntervalMs);
      return {
        stop: async () => {
          clearInterval(timer);
          await busy;
          const sorted = [...times].sort((a, b) => a - b);
          return { scrapes: times.length, scrapeErrors: errors, scrapeMaxMs: sorted[sorted.length - 1] ?? NaN };
        },
      };
    };
    const r = await churnPair(
      env,
      { t: { proxy: plain, backendPids: [env.backend.pid] }, port: plainPort },
      { t: { proxy: admin, backendPids: [env.backend.pid] }, port: adminTetherPort },
      alongside,
    );
    const failed = failedConnections(r.with) + failedConnections(r.without);
    if (failed > 0) problems.push(`admin: ${failed} connections failed`);
    const scrapeErrors = r.with.reduce((n, x) => n + (typeof x.detail['scrapeErrors'] === 'number' ? x.detail['scrapeErrors'] : 0), 0);
    if (scrapeErrors > 0) problems.push(`admin: ${scrapeErrors} scrapes failed`);
    return { id: 'admin', title, without: { ...without, samples: r.without, best: bestByRate(r.without) }, with: { ...withF, samples: r.with, best: bestByRate(r.with) } };
  } catch (e) {
    const error = errorText(e);
    env.log(`  FAILED: ${error}`);
    return { id: 'admin', title, without: { ...without, samples: [], best: undefined, error }, with: { ...withF, samples: [], best: undefined, error } };
  } finally {
    agent.destroy();
    await Promise.all(children.map((c) => stopChild(c)));
  }
}

/** Runs the whole section. A failure in one part costs that part only (it is listed in `problems`). */
export async function runOps(env: OpsEnv): Promise<OpsResult> {
  const problems: string[] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tether-bench-ops-'));
  let part: Pick<OpsResult, 'fill' | 'reload' | 'scrape'> = { fill: undefined, reload: [], scrape: [] };
  const churn: ChurnPair[] = [];
  let t0 = performance.now();
  const lap = (): string => {
    const t = performance.now();
    const text = `${((t - t0) / 1000).toFixed(1)} s`;
    t0 = t;
    return text;
  };
  try {
    env.log('  reload cost and scrapes …');
    try {
      part = await reloadAndScrape(env, dir, problems);
    } catch (e) {
      problems.push(`reload/scrape: ${errorText(e)}`);
      env.log(`  FAILED: ${errorText(e)}`);
    }
    env.log(`  (${lap()}) connections under SIGHUPs …`);
    churn.push(await hangupChurn(env, dir, problems));
    env.log(`  (${lap()}) connections with --admin scraped …`);
    churn.push(await adminChurn(env, problems));
    env.log(`  (${lap()})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  for (const pair of churn) for (const v of [pair.without, pair.with]) if (v.error !== undefined) problems.push(`${pair.id} ${v.id}: ${v.error}`);
  const s = env.s;
  const notes = [
    `reload: node bin/tether --config FILE (one frontend, --affinity source, 1 backend: the echo server) --admin; the table filled with POST /affinity/move` +
      ` (source keys 127.1.x.y, pipelined, ${s.pinWindow} in flight) at log-level warn (two info lines per move would measure logging), then log-level info for the reloads; per size ${RELOAD_WARMUPS} untimed + ${s.reloads} timed SIGHUPs,` +
      ` time = kill(SIGHUP) → the reload.done line read here (includes the pipe and this process's event loop); tether ms/reload = its CPU time over the timed reloads.`,
    `idle connections: opened through tether to the echo server (1 byte echoed each), held through ${1 + RELOAD_WARMUPS + s.reloads} reloads, then each must echo 1 byte again; tether's open count (GET /frontends) must match.`,
    `scrape: GET /metrics on one keep-alive connection, ${SCRAPE_WARMUPS} untimed + ${s.scrapes} timed (and ${START_WARMUPS} untimed reloads and scrapes when the tether has started); ${s.scrapeBackends} backends = the same tether reloaded to ${s.scrapeBackends} backends on one address (the table survives the reload), then emptied with DELETE /affinity.`,
    `churn: best of ${s.rounds} ${s.connectTimeLimitMs / 1000} s connect-rate runs per variant after ${s.warmupMs / 1000} s of warm-up, the order flipping every round;` +
      ` on one tether (SIGHUP pair) or two (admin pair, so process-to-process variance is in its ratio too).` +
      ` The conn/s ratio's noise on a shared machine is larger than a few-% cost: read the cost from the CPU lines (reload and scrape CPU ms × their rate).`,
  ];
  return { settings: s, ...part, churn, problems, notes };
}


function fmtRatio(a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? 'n/a' : `${(a / b).toFixed(2)}x`;
}


function detailNumber(x: Sample | undefined, field: string): number | undefined {
  const v = x?.detail[field];
  return typeof v === 'number' ? v : undefined;
}

function sumDetail(samples: readonly Sample[], field: string): number {
  return samples.reduce((n, x) => n + (detailNumber(x, field) ?? 0), 0);
}

/** The least tether CPU µs per connection over the samples (noise only adds time; see run.ts). */
function minProxyUsPerConn(samples: readonly Sample[]): number | undefined {
  let least: number | undefined;
  for (const x of samples) {
    if (x.proxyCpuMs === null || x.work === 0) continue;
    const us = (x.proxyCpuMs * 1000) / x.work;
    if (least === undefined || us < least) least = us;
  }
  return least;
}

export function renderOps(r: OpsResult, otherFlagShare: number): string {
  const out: string[] = [];
  const base = r.reload[0];
  out.push('ops: reload, SIGHUP → reload.done line');
  out.push(
    table(
      ['table entries', 'open conns', 'survived', 'reloads', 'p50 ms', 'p90 ms', 'max ms', 'tether CPU ms/reload', 'p50 / empty table'],
      r.reload.map((x) => [
        x.entries.toLocaleString('en-US'),
        x.openConnections.toLocaleString('en-US'),
        x.survived === null ? '-' : `${x.survived.toLocaleString('en-US')}${x.survived < x.openConnections ? ' LOST' : ''}`,
        String(x.reloads),
        fmt(x.p50Ms),
        fmt(x.p90Ms),
        fmt(x.maxMs),
        fmt(x.cpuMsPerReload),
        x === base ? '-' : fmtRatio(x.p50Ms, base?.p50Ms),
      ]),
    ),
  );
  const reloadCpu = Math.max(...r.reload.map((x) => x.cpuMsPerReload));
  if (Number.isFinite(reloadCpu)) {
    const perS = (reloadCpu * 1000) / r.settings.hangupIntervalMs;
    out.push(`  (a reload every ${r.settings.hangupIntervalMs} ms at the costliest row's CPU ms/reload: ${fmt(perS)} ms of tether CPU per s = ${fmt(perS / 10)}% of one core)`);
  }
  if (r.fill !== undefined) {
    out.push(`  (table filled at ${fmt(r.fill.perSecond)} POST /affinity/move per s; first GET /health after a fill took ${fmt(r.fill.firstHealthMsAfter)} ms)`);
  }
  out.push('');
  const sbase = r.scrape.find((x) => x.backends === 1 && x.entries === 0);
  out.push('ops: GET /metrics');
  out.push(
    table(
      ['backends', 'table entries', 'scrapes', 'p50 ms', 'p90 ms', 'bytes', 'tether CPU ms/scrape', 'p50 / 1 backend, empty'],
      r.scrape.map((x) => [
        String(x.backends),
        x.entries.toLocaleString('en-US'),
        String(x.scrapes),
        fmt(x.p50Ms),
        fmt(x.p90Ms),
        x.bytes.toLocaleString('en-US'),
        fmt(x.cpuMsPerScrape),
        x === sbase ? '-' : fmtRatio(x.p50Ms, sbase?.p50Ms),
      ]),
    ),
  );
  const scrapeCpu = Math.max(...r.scrape.map((x) => x.cpuMsPerScrape));
  if (Number.isFinite(scrapeCpu)) {
    const perS = (scrapeCpu * 1000) / r.settings.scrapeIntervalMs;
    out.push(`  (a scrape every ${r.settings.scrapeIntervalMs / 1000} s at the costliest row's CPU ms/scrape: ${fmt(perS)} ms of tether CPU per s = ${fmt(perS / 10)}% of one core)`);
  }
  out.push('');
  for (const pair of r.churn) {
    out.push(`ops: ${pair.title}`);
    const row = (v: ChurnVariant, extra: string): string[] => {
      if (v.error !== undefined) return [v.label, 'FAILED', '', '', '', '', '', extra];
      const b = v.best;
      const flag = b !== undefined && b.otherCpuShare > otherFlagShare ? '*' : '';
      return [
        v.label,
        `${fmt(b?.value)}${flag}`,
        fmt(detailNumber(b, 'p50Ms')),
        fmt(detailNumber(b, 'p99Ms')),
        String(failedConnections(v.samples)),
        fmt(minProxyUsPerConn(v.samples)),
        v === pair.with ? fmtRatio(b?.value, pair.without.best?.value) : '-',
        extra,
      ];
    };
    const w = pair.with.samples;
    const extra =
      pair.id === 'hangup'
        ? `${sumDetail(w, 'reloadsDone')} reloads done of ${sumDetail(w, 'reloadsSent')} SIGHUPs`
        : `${sumDetail(w, 'scrapes')} scrapes, slowest ${fmt(Math.max(...w.map((x) => detailNumber(x, 'scrapeMaxMs') ?? NaN)))} ms`;
    out.push(table(['variant', 'conn/s', 'p50 ms', 'p99 ms', 'failed', 'tether µs/conn', 'conn/s ratio', 'alongside'], [row(pair.without, ''), row(pair.with, extra)]));
    out.push('');
  }
  for (const n of r.notes) out.push(`  (${n})`);
  if (r.problems.length > 0) {
    out.push('');
    for (const p of r.problems) out.push(`  PROBLEM: ${p}`);
  }
  return out.join('\n');
}
