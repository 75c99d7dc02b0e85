// The tether benchmark: direct (client → backend), tether, and a naive socket.pipe() proxy, side
// by side in one run, on loopback. Backends (dist/bench/backend.js), tether (`node bin/tether`)
// and the naive proxy (dist/bench/naive-proxy.js) are child processes; the load runs here.
// Then the sections, which compare variants of tether's flags instead: the cost of peeking (TLS
// and HTTP, against --affinity none; servers in dist/bench/peek-backend.js) and IMAP logins
// (against the servers directly; two dist/bench/imap-server.js processes). Last, "ops" (ops.ts):
// reload cost (SIGHUP → reload.done) by table size and with idle connections held through it,
// /metrics scrapes, and new connections/s with SIGHUPs or a scraped --admin vs without. And
// "slowpeek" (slowpeek.ts): p50/p99 of normal TLS requests through tether without and with
// thousands of slow peekers (dist/bench/slow-peekers.js) held open, A B A B, and the ratio.
// First of all, "peers" (peers.ts): tether next to HAProxy, nginx's stream module, the naive
// proxy and direct on bulk, new-connection, keep-alive, memory and start-up rows (iperf3, wrk,
// an nginx backend; the proxy pinned to CPU 0, the rest to CPU 1), and tether's cost of peeking.
// And "files" (files.ts, not in the default set): a probe's echo latency and tether's RSS while
// tether reads a big user map and big configs, for this build and, with --baseline-dir, another.
//
//   npm run bench                               default run (about 10–12 minutes, 6 of them the peers section)
//   npm run bench -- --quick                    smaller sizes, shorter runs, no repeats (about 2.5 min; noisier)
//   npm run bench -- --rows connect,rt          only some rows (ids: see ROW_IDS)
//   npm run bench -- --rows peek-tls,peek-http,imap-login    only the sections
//   npm run bench -- --rows ops                 only the operations section (about 30 s; --quick about 10 s)
//   npm run bench -- --rows peers               only the peers section (about 6 min; --quick about 1.5 min);
//                                               writes bench/results/peers.json
//   npm run bench -- --rows slowpeek            only the slow-peekers section (about 80 s; --quick about 30 s)
//   npm run bench -- --rows files               big files read by this build (about 55 s; --quick about 20 s)
//   npm run bench -- --rows files --baseline-dir ../wt-fb-old   … and by the build in that tree, e.g.
//                                               a built worktree of 1fbb095 (about 3 min: its 35 MB
//                                               parse runs out the 90 s bound; --quick about 1 min)
//   npm run bench -- --tether-log-level info    tether's log level (default warn)
//   npm run bench -- --repeats 3                measurements per cell; the best one is reported
//
// Prints a table and writes bench/results/latest.json. Only 127.0.0.1 is used; only processes
// started here are stopped (by PID), on every way out.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { killAllNow, spawnNode, stopAll, stopChild, waitForJsonLine, waitForListenPort, type Child } from './children.js';
import { bulkDownload, bulkUpload, connectRate, httpRequestRate, imapLoginRate, MIB, openIdle, roundTrips, tlsHelloRate, type LoopResult } from './load.js';
import { renderOps, runOps, type OpsResult, type OpsSettings } from './ops.js';
import { renderSlowpeek, runSlowpeek, type SlowpeekResult, type SlowpeekSettings } from './slowpeek.js';
import { buildLabel, renderFiles, runFiles, type FilesBuild, type FilesResult, type FilesSettings } from './files.js';
import { PEERS_DEFAULT, PEERS_QUICK, renderPeers, runPeers, type PeersResult, type PeersSettings } from './peers.js';
import { readCpuNs, readMachineCpu, readRssKib } from './proc-stats.js';
import type { Measured, Processes, Sample } from './types.js';
import { errorText, fmt, sleep, table } from './format.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const TETHER_BIN = path.join(ROOT, 'bin', 'tether');
const BACKEND_JS = path.join(HERE, 'backend.js');
const NAIVE_JS = path.join(HERE, 'naive-proxy.js');
const PEEK_BACKEND_JS = path.join(HERE, 'peek-backend.js');
const IMAP_SERVER_JS = path.join(HERE, 'imap-server.js');
const SLOW_PEEKERS_JS = path.join(HERE, 'slow-peekers.js');
const RESULTS_FILE = path.join(ROOT, 'bench', 'results', 'latest.json');
const PEERS_RESULTS_FILE = path.join(ROOT, 'bench', 'results', 'peers.json');

const PATHS = ['direct', 'tether', 'naive'] as const;
type PathName = (typeof PATHS)[number];

/** The sections that compare variants (tether flags) instead of the three paths; also `--rows` ids. */
const SECTION_IDS = ['peek-tls', 'peek-http', 'imap-login'] as const;
type SectionId = (typeof SECTION_IDS)[number];

const ROW_IDS = ['peers', 'upload-1', 'upload-8', 'download-1', 'connect', 'rt', 'idle-rss', ...SECTION_IDS, 'ops', 'slowpeek', 'files'] as const;
type RowId = Exclude<(typeof ROW_IDS)[number], SectionId | 'peers' | 'ops' | 'slowpeek' | 'files'>;
/** Rows run only when --rows names them: "files" writes ~150 MB of files per build and, against 1fbb095, waits out a 35 MB parse. */
const OPT_IN_ROW_IDS: readonly string[] = ['files'];

/** File descriptors a process needs besides its connections (listeners, stdio, libuv, node). */
const FD_HEADROOM = 64;
/** The machine counts as quiet when all processes together use less than this share of it. */
const QUIET_BUSY_SHARE = 0.1;
/** A measurement is flagged when other processes took more than this share of the machine. */
const OTHER_CPU_FLAG_SHARE = 0.1;

interface Settings {
  readonly repeats: number;
  readonly upload1Bytes: number;
  readonly upload8BytesPerStream: number;
  readonly download1Bytes: number;
  readonly bulkTimeLimitMs: number;
  readonly bulkWarmupBytes: number;
  readonly connectLoops: number;
  readonly connectMax: number;
  readonly connectTimeLimitMs: number;
  readonly rtConnections: number;
  readonly rtMax: number;
  readonly rtTimeLimitMs: number;
  readonly warmupMs: number;
  readonly idleConnections: number;
  readonly idleWarmupConnections: number;
  readonly idleConcurrency: number;
  readonly idleTimeLimitMs: number;
  readonly settleMs: number;
  /** Peek sections: concurrent loops, at most this many connections, for this long (each measurement). */
  readonly peekLoops: number;
  readonly peekMax: number;
  readonly peekTimeLimitMs: number;
  /** IMAP logins: concurrent loops, at most this many logins, for this long; distinct user names. */
  readonly imapLoops: number;
  readonly imapMax: number;
  readonly imapTimeLimitMs: number;
  readonly imapUsers: number;
  /** The one-loop latency runs of the sections: at most this many attempts, for this long. */
  readonly singleMax: number;
  readonly singleTimeLimitMs: number;
  /** Longest wait for a quiet machine before one measurement, and in the whole run. */
  readonly quietWaitMs: number;
  readonly quietBudgetMs: number;
  /** The ops section; its rounds (repeats + 1), connect loops and idle-connection pacing come from the fields above. */
  readonly ops: Omit<OpsSettings, 'rounds' | 'connectLoops' | 'idleConcurrency' | 'idleTimeLimitMs'>;
  /** The slowpeek section (its peeker count is cut to what the open-files limit allows). */
  readonly slowpeek: SlowpeekSettings;
  /** The files section. */
  readonly files: FilesSettings;
  /** The peers section. */
  readonly peers: PeersSettings;
}

const DEFAULT_SETTINGS: Settings = {
  repeats: 2,
  upload1Bytes: 1024 * MIB,
  upload8BytesPerStream: 128 * MIB,
  download1Bytes: 1024 * MIB,
  bulkTimeLimitMs: 6_000,
  bulkWarmupBytes: 64 * MIB,
  connectLoops: 20,
  connectMax: 50_000,
  connectTimeLimitMs: 3_000,
  rtConnections: 16,
  rtMax: 2_000_000,
  rtTimeLimitMs: 3_000,
  warmupMs: 500,
  idleConnections: 5_000,
  idleWarmupConnections: 200,
  idleConcurrency: 50,
  idleTimeLimitMs: 30_000,
  settleMs: 1_000,
  peekLoops: 20,
  peekMax: 50_000,
  peekTimeLimitMs: 3_000,
  imapLoops: 20,
  imapMax: 50_000,
  imapTimeLimitMs: 3_000,
  imapUsers: 1_000,
  singleMax: 20_000,
  singleTimeLimitMs: 1_000,
  quietWaitMs: 5_000,
  quietBudgetMs: 30_000,
  ops: {
    tableSizes: [0, 10_000, 100_000],
    pinWindow: 256,
    pinTimeLimitMs: 20_000,
    reloads: 20,
    reloadTimeoutMs: 10_000,
    idleConnections: 1_000,
    scrapes: 20,
    scrapeBackends: 50,
    connectMax: 50_000,
    connectTimeLimitMs: 1_500,
    warmupMs: 1_000,
    hangupIntervalMs: 100,
    scrapeIntervalMs: 1_000,
  },
  slowpeek: {
    peekers: 2_000,
    rounds: 2,
    loops: 4,
    gapMs: 5,
    maxRequests: 100_000,
    phaseMs: 10_000,
    warmupMs: 1_000,
    rampMs: 3_000,
    settleMs: 1_000,
  },
  files: {
    // ≈1.5 M lines, 50 MB: the map that stalled 1fbb095's event loop ~3 s on every change.
    userMapLines: 1_500_000,
    // Under the 4 MiB config limit, so the current build parses it (in a worker).
    reloadConfigBytes: 3 * 1024 * 1024,
    // The 35 MB that took 1fbb095 45 s and 3.9 GB; over the limit, refused now.
    bigConfigBytes: 35_000_000,
    probeLoops: 4,
    probeIntervalMs: 10,
    warmupMs: 1_000,
    baselineMs: 5_000,
    minPhaseMs: 5_000,
    tailMs: 1_000,
    loginGapMs: 200,
    startTimeoutMs: 120_000,
    mapApplyTimeoutMs: 60_000,
    reloadTimeoutMs: 90_000,
  },
  peers: PEERS_DEFAULT,
};

const QUICK_SETTINGS: Settings = {
  ...DEFAULT_SETTINGS,
  repeats: 1,
  upload1Bytes: 128 * MIB,
  upload8BytesPerStream: 16 * MIB,
  download1Bytes: 128 * MIB,
  bulkTimeLimitMs: 2_000,
  bulkWarmupBytes: 16 * MIB,
  connectTimeLimitMs: 1_000,
  rtTimeLimitMs: 1_000,
  warmupMs: 200,
  idleWarmupConnections: 100,
  idleTimeLimitMs: 10_000,
  settleMs: 300,
  peekTimeLimitMs: 1_000,
  imapTimeLimitMs: 1_000,
  singleTimeLimitMs: 500,
  quietWaitMs: 0,
  quietBudgetMs: 0,
  ops: {
    ...DEFAULT_SETTINGS.ops,
    tableSizes: [0, 1_000, 10_000],
    pinTimeLimitMs: 5_000,
    reloads: 5,
    idleConnections: 200,
    scrapes: 5,
    connectTimeLimitMs: 1_000,
    warmupMs: 500,
  },
  slowpeek: { ...DEFAULT_SETTINGS.slowpeek, peekers: 500, phaseMs: 3_000, warmupMs: 500 },
  // Smaller files; the big config still over the 4 MiB limit.
  files: { ...DEFAULT_SETTINGS.files, userMapLines: 150_000, reloadConfigBytes: 1024 * 1024, bigConfigBytes: 5 * 1024 * 1024, baselineMs: 3_000, minPhaseMs: 3_000, reloadTimeoutMs: 30_000, mapApplyTimeoutMs: 30_000 },
  peers: PEERS_QUICK,
};

/** A table cell: the best of its samples (by the row's direction), or an error. */
interface Cell {
  readonly value: number;
  readonly best: Sample | undefined;
  readonly samples: readonly Sample[];
  readonly error?: string;
}

interface Row {
  readonly id: string;
  readonly label: string;
  readonly unit: string;
  readonly higherIsBetter: boolean;
  /** Name of one unit of work, for the CPU table; undefined: no CPU line for this row. */
  readonly workUnit: string | undefined;
  /** For a row that shows another field of another row's samples: that row's id. */
  readonly derivedFrom?: string;
  readonly cells: Partial<Record<PathName, Cell>>;
}

/** The process the load talks to, and the processes behind it. */
interface Target extends Processes {
  readonly port: number;
}

type ServerName = 'sink' | 'source' | 'hello' | 'echo';

interface Backend {
  readonly child: Child;
  readonly ports: Readonly<Record<ServerName, number>>;
}

function isBackendReady(v: unknown): v is { event: 'listen.ready'; ports: Backend['ports'] } {
  return typeof v === 'object' && v !== null && (v as { event?: unknown }).event === 'listen.ready' && typeof (v as { ports?: unknown }).ports === 'object';
}

function isPortReady(v: unknown): v is { event: 'listen.ready'; port: number } {
  return typeof v === 'object' && v !== null && (v as { event?: unknown }).event === 'listen.ready' && typeof (v as { port?: unknown }).port === 'number';
}


async function startBackend(): Promise<Backend> {
  const child = spawnNode('backend', [BACKEND_JS], 'pipe');
  const ready = await waitForJsonLine(child, isBackendReady);
  return { child, ports: ready.ports };
}


function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

interface Context {
  readonly s: Settings;
  readonly logLevel: string;
  readonly backend: Backend;
  readonly log: (line: string) => void;
  /** Quiet-wait time left in this run, ms. */
  quietBudgetMs: number;
}

/** Starts the proxy of path `p` in front of `backendPort` (direct: none) and returns the target. */
async function startPath(p: PathName, backendPort: number, backendPid: number, tetherLogLevel: string): Promise<Target> {
  switch (p) {
    case 'direct':
      return { port: backendPort, proxy: undefined, backendPids: [backendPid] };
    case 'tether': {
      const args = ['--listen', '127.0.0.1:0', '--backend', `b=127.0.0.1:${backendPort}`, '--affinity', 'source'];
      const child = spawnNode('tether', [TETHER_BIN, ...args, '--log-level', tetherLogLevel, '--grace', '1s']);
      return { port: await waitForListenPort(child), proxy: child, backendPids: [backendPid] };
    }
    case 'naive': {
      const child = spawnNode('naive', [NAIVE_JS, '0', String(backendPort)]);
      const ready = await waitForJsonLine(child, isPortReady);
      return { port: ready.port, proxy: child, backendPids: [backendPid] };
    }
  }
}

/**
 * Waits (at most `s.quietWaitMs`, and within the run's budget) until the machine is quiet, so
 * that other work on it — not ours — does not land inside a measurement.
 */
async function waitForQuiet(ctx: Context): Promise<void> {
  const limitMs = Math.min(ctx.s.quietWaitMs, ctx.quietBudgetMs);
  if (limitMs <= 0) return;
  const t0 = performance.now();
  for (;;) {
    const a = readMachineCpu();
    await sleep(200);
    const b = readMachineCpu();
    const share = (b.busyMs - a.busyMs) / Math.max(1, b.totalMs - a.totalMs);
    const waitedMs = performance.now() - t0;
    if (share < QUIET_BUSY_SHARE || waitedMs >= limitMs) {
      ctx.quietBudgetMs = Math.max(0, ctx.quietBudgetMs - waitedMs);
      return;
    }
  }
}

/** Runs `measure` once, with the CPU time of every process of `t` (and this one) during it. */
async function sample(ctx: Context, t: Processes, measure: () => Promise<Measured>): Promise<Sample> {
  gc();
  await waitForQuiet(ctx);
  const cpu = (): { proxy: number; backend: number; load: number } => ({
    proxy: t.proxy ? readCpuNs(t.proxy.pid) : 0,
    backend: t.backendPids.reduce((ns, pid) => ns + readCpuNs(pid), 0),
    load: readCpuNs(process.pid),
  });
  const c0 = cpu();
  const m0 = readMachineCpu();
  const m = await measure();
  const m1 = readMachineCpu();
  const c1 = cpu();
  const ms = (k: 'proxy' | 'backend' | 'load'): number => (c1[k] - c0[k]) / 1e6;
  const ownMs = ms('proxy') + ms('backend') + ms('load');
  const otherCpuShare = Math.max(0, (m1.busyMs - m0.busyMs - ownMs) / Math.max(1, m1.totalMs - m0.totalMs));
  return { ...m, proxyCpuMs: t.proxy ? ms('proxy') : null, backendCpuMs: ms('backend'), loadCpuMs: ms('load'), otherCpuShare };
}

interface RowSpec {
  readonly id: RowId;
  readonly label: string;
  readonly unit: string;
  readonly higherIsBetter: boolean;
  readonly workUnit: string;
  readonly server: ServerName;
  readonly warmUp: (port: number) => Promise<unknown>;
  readonly measure: (port: number) => Promise<Measured>;
}

function bestOf(samples: readonly Sample[], higherIsBetter: boolean): Sample | undefined {
  let best: Sample | undefined;
  for (const x of samples) {
    if (!Number.isFinite(x.value)) continue;
    if (best === undefined || (higherIsBetter ? x.value > best.value : x.value < best.value)) best = x;
  }
  return best;
}

/**
 * One row on the three paths: a fresh proxy per path (sharing the run's backend), a warm-up on
 * each, then `repeats` rounds that take the paths in turn; each cell keeps its best sample. A
 * failure costs only that cell.
 */
async function runRow(ctx: Context, spec: RowSpec): Promise<Row> {
  ctx.log(`- ${spec.label} …`);
  const targets: Partial<Record<PathName, Target>> = {};
  const samples: Record<PathName, Sample[]> = { direct: [], tether: [], naive: [] };
  const errors: Partial<Record<PathName, string>> = {};
  const fail = (p: PathName, e: unknown): void => {
    errors[p] = errorText(e);
    ctx.log(`  ${p}: FAILED: ${errors[p]}`);
  };
  try {
    for (const p of PATHS) {
      try {
        const t = await startPath(p, ctx.backend.ports[spec.server], ctx.backend.child.pid, ctx.logLevel);
        targets[p] = t;
        await spec.warmUp(t.port);
      } catch (e) {
        fail(p, e);
      }
    }
    for (let round = 0; round < ctx.s.repeats; round++) {
      for (const p of PATHS) {
        const t = targets[p];
        if (t === undefined || errors[p] !== undefined) continue;
        try {
          samples[p].push(await sample(ctx, t, () => spec.measure(t.port)));
        } catch (e) {
          fail(p, e);
        }
      }
    }
  } finally {
    const proxies = Object.values(targets).flatMap((t) => (t.proxy ? [t.proxy] : []));
    await Promise.all(proxies.map((c) => stopChild(c)));
  }
  const cells: Partial<Record<PathName, Cell>> = {};
  for (const p of PATHS) {
    const best = bestOf(samples[p], spec.higherIsBetter);
    const error = errors[p];
    cells[p] = error === undefined ? { value: best?.value ?? NaN, best, samples: samples[p] } : { value: NaN, best, samples: samples[p], error };
  }
  return { id: spec.id, label: spec.label, unit: spec.unit, higherIsBetter: spec.higherIsBetter, workUnit: spec.workUnit, cells };
}

/** A row whose values are another field of the same samples (e.g. the p99 of the connect row). */
function derivedRow(from: Row, id: string, label: string, unit: string, field: string): Row {
  const cells: Partial<Record<PathName, Cell>> = {};
  for (const p of PATHS) {
    const c = from.cells[p];
    if (c === undefined) continue;
    const v = c.best?.detail[field];
    cells[p] = { ...c, value: typeof v === 'number' ? v : NaN };
  }
  return { id, label, unit, higherIsBetter: false, workUnit: undefined, derivedFrom: from.id, cells };
}

/**
 * RSS per idle connection: a fresh backend and proxy, a warm-up of a few connections opened and
 * closed (so JIT code and pools are not charged to the connections), then VmRSS of the proxy
 * (direct: of the backend) before and after opening `count` connections that stay idle.
 */
async function measureIdleRss(ctx: Context, p: PathName, count: number): Promise<Sample> {
  const { s } = ctx;
  const backend = await startBackend();
  let t: Target | undefined;
  try {
    t = await startPath(p, backend.ports.hello, backend.child.pid, ctx.logLevel);
    const port = t.port;
    const measuredPid = t.proxy?.pid ?? backend.child.pid;
    const warm = await openIdle(port, s.idleWarmupConnections, s.idleConcurrency, s.idleTimeLimitMs);
    for (const sock of warm.sockets) sock.destroy();
    await sleep(s.settleMs);
    return await sample(ctx, t, async () => {
      const rssBeforeKib = readRssKib(measuredPid);
      const { sockets, errors } = await openIdle(port, count, s.idleConcurrency, s.idleTimeLimitMs);
      try {
        await sleep(s.settleMs);
        const rssAfterKib = readRssKib(measuredPid);
        const opened = sockets.length;
        if (opened === 0) throw new Error(`no connection opened (${errors} errors)`);
        const measured = t?.proxy ? 'proxy' : 'backend';
        return { value: (rssAfterKib - rssBeforeKib) / opened, work: opened, detail: { opened, errors, rssBeforeKib, rssAfterKib, measured } };
      } finally {
        for (const sock of sockets) sock.destroy();
      }
    });
  } finally {
    if (t?.proxy) await stopChild(t.proxy);
    await stopChild(backend.child);
  }
}

async function runIdleRssRow(ctx: Context, count: number): Promise<Row> {
  const label = `RSS per idle connection, ${count} open`;
  ctx.log(`- ${label} …`);
  const cells: Partial<Record<PathName, Cell>> = {};
  for (const p of PATHS) {
    try {
      const x = await measureIdleRss(ctx, p, count);
      cells[p] = { value: x.value, best: x, samples: [x] };
    } catch (e) {
      cells[p] = { value: NaN, best: undefined, samples: [], error: errorText(e) };
      ctx.log(`  ${p}: FAILED: ${errorText(e)}`);
    }
  }
  return { id: 'idle-rss', label, unit: 'KiB', higherIsBetter: false, workUnit: undefined, cells };
}

/** The soft limit on open files of this process (children inherit it). */
function openFilesLimit(): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m?.[1] === undefined || m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
}


function ratioOf(a: number | undefined, b: number | undefined): number {
  return a === undefined || b === undefined || b === 0 ? NaN : a / b;
}

function fmtRatio(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}x` : 'n/a';
}


/** A cell's text: its value, `*` when other processes took a noticeable share of the machine. */
function cellText(c: Cell | undefined): string {
  if (c?.error !== undefined) return 'FAILED';
  const flag = c?.best !== undefined && c.best.otherCpuShare > OTHER_CPU_FLAG_SHARE ? '*' : '';
  return `${fmt(c?.value)}${flag}`;
}

function renderMain(rows: readonly Row[]): string {
  return table(
    ['row', 'direct', 'tether', 'naive', 'tether/direct', 'naive/direct'],
    rows.map((r) => {
      const [d, t, n] = [r.cells.direct, r.cells.tether, r.cells.naive];
      return [
        `${r.label} [${r.unit} ${r.higherIsBetter ? '↑' : '↓'}]`,
        cellText(d),
        cellText(t),
        cellText(n),
        fmtRatio(ratioOf(t?.value, d?.value)),
        fmtRatio(ratioOf(n?.value, d?.value)),
      ];
    }),
  );
}

/** CPU µs per unit of work of the best sample's `which` process. */
function cpuPerUnitUs(c: Cell | undefined, which: 'proxyCpuMs' | 'backendCpuMs' | 'loadCpuMs'): number | undefined {
  const b = c?.best;
  const ms = b?.[which];
  if (b === undefined || ms === null || ms === undefined || b.work === 0) return undefined;
  return (ms * 1000) / b.work;
}

function renderCpu(rows: readonly Row[]): string {
  return table(
    ['proxy process CPU time per unit of work', 'tether', 'naive', 'tether/naive'],
    rows
      .filter((r) => r.workUnit !== undefined)
      .map((r) => {
        const t = cpuPerUnitUs(r.cells.tether, 'proxyCpuMs');
        const n = cpuPerUnitUs(r.cells.naive, 'proxyCpuMs');
        return [`${r.label} [µs per ${r.workUnit ?? ''}]`, fmt(t), fmt(n), fmtRatio(ratioOf(t, n))];
      }),
  );
}

function sizeText(bytes: number): string {
  return bytes >= 1024 * MIB ? `${bytes / (1024 * MIB)} GiB` : `${bytes / MIB} MiB`;
}

function rowSpecs(s: Settings): RowSpec[] {
  const bulk = (id: RowId, kind: 'upload' | 'download', streams: number, bytesPerStream: number): RowSpec => {
    const run = kind === 'upload' ? bulkUpload : bulkDownload;
    const warmBytes = Math.min(bytesPerStream, s.bulkWarmupBytes / streams);
    return {
      id,
      label: `bulk ${kind}, ${streams} stream${streams > 1 ? 's' : ''} × ${sizeText(bytesPerStream)}`,
      unit: 'MiB/s',
      higherIsBetter: true,
      workUnit: 'MiB',
      server: kind === 'upload' ? 'sink' : 'source',
      warmUp: (port) => run(port, streams, warmBytes, s.bulkTimeLimitMs),
      measure: async (port) => {
        const r = await run(port, streams, bytesPerStream, s.bulkTimeLimitMs);
        return { value: r.mibPerS, work: r.bytes / MIB, detail: { ...r } };
      },
    };
  };
  return [
    bulk('upload-1', 'upload', 1, s.upload1Bytes),
    bulk('upload-8', 'upload', 8, s.upload8BytesPerStream),
    bulk('download-1', 'download', 1, s.download1Bytes),
    {
      id: 'connect',
      label: `new connections, ${s.connectLoops} loops`,
      unit: 'conn/s',
      higherIsBetter: true,
      workUnit: 'connection',
      server: 'hello',
      warmUp: (port) => connectRate(port, s.connectLoops, s.connectMax, s.warmupMs),
      measure: async (port) => {
        const r = await connectRate(port, s.connectLoops, s.connectMax, s.connectTimeLimitMs);
        if (r.connections === 0) throw new Error(`no connection completed (${r.errors} errors; first: ${r.firstError ?? '?'})`);
        return { value: r.perSecond, work: r.connections, detail: { ...r } };
      },
    },
    {
      id: 'rt',
      label: `64 B round trips, ${s.rtConnections} connections`,
      unit: 'rt/s',
      higherIsBetter: true,
      workUnit: 'round trip',
      server: 'echo',
      warmUp: (port) => roundTrips(port, s.rtConnections, s.rtMax, s.warmupMs),
      measure: async (port) => {
        const r = await roundTrips(port, s.rtConnections, s.rtMax, s.rtTimeLimitMs);
        return { value: r.perSecond, work: r.roundTrips, detail: { ...r } };
      },
    },
  ];
}

/** The SNI every TLS client of the peek section sends (all variants alike, so only tether's flags differ). */
const BENCH_SNI = 'backend.bench.test';
/** The request of the HTTP peek section, as the issue gives it. */
const HTTP_REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nCookie: SESSION=abc\r\n\r\n', 'latin1');
/** The cookie tether inserts in the insert-cookie variant; the request never carries it. */
const INSERT_COOKIE = 'TETHER';

/** One way through in a section: straight to the servers, or tether with some flags. */
interface Variant {
  readonly id: string;
  readonly label: string;
  /** tether's flags besides --listen, --backend, --log-level and --grace; undefined: direct. */
  readonly tetherArgs: readonly string[] | undefined;
  /** Why a run did not measure what the variant claims (e.g. no rewritten head); undefined: fine. */
  readonly check?: (r: LoopResult) => string | undefined;
}

/** The servers behind a section: their ports (what direct uses), tether's --backend flags, their PIDs. */
interface Servers {
  readonly ports: readonly number[];
  readonly backendArgs: readonly string[];
  readonly pids: readonly number[];
}

interface SectionSpec {
  readonly id: SectionId;
  readonly title: string;
  readonly unit: string;
  readonly workUnit: string;
  /** The variant the ratios divide by. */
  readonly baseline: string;
  /** The tether variant the extra tether CPU (Δ µs) is counted from. */
  readonly cpuBaseline: string;
  readonly variants: readonly Variant[];
  readonly servers: Servers;
  readonly loops: number;
  readonly maxAttempts: number;
  readonly timeLimitMs: number;
  readonly run: (ports: readonly number[], loops: number, maxAttempts: number, timeLimitMs: number) => Promise<LoopResult>;
}

interface VariantResult {
  readonly id: string;
  readonly label: string;
  /** The tether command line (ports as run), or null for direct. */
  readonly command: string | null;
  /** The `loops`-loop runs; the best by rate. Its detail has p50Ms and p99Ms under that load. */
  readonly rate: Cell;
  /** The one-loop runs; the best by p50. Latency without queueing behind other connections. */
  readonly single: Cell;
}

interface Section {
  readonly id: SectionId;
  readonly title: string;
  readonly unit: string;
  readonly workUnit: string;
  readonly baseline: string;
  readonly cpuBaseline: string;
  readonly loops: number;
  readonly variants: readonly VariantResult[];
}

interface VariantTarget extends Processes {
  readonly ports: readonly number[];
  readonly command: string | null;
}

async function startVariant(v: Variant, servers: Servers, tetherLogLevel: string): Promise<VariantTarget> {
  if (v.tetherArgs === undefined) return { ports: servers.ports, proxy: undefined, backendPids: servers.pids, command: null };
  const args = ['--listen', '127.0.0.1:0', ...servers.backendArgs, ...v.tetherArgs, '--log-level', tetherLogLevel, '--grace', '1s'];
  const child = spawnNode(`tether ${v.id}`, [TETHER_BIN, ...args]);
  return { ports: [await waitForListenPort(child)], proxy: child, backendPids: servers.pids, command: `node bin/tether ${args.join(' ')}` };
}

/** The backends of the peek sections: one process with a TLS and an HTTP server. */
interface PeekBackend {
  readonly child: Child;
  readonly ports: { readonly tls: number; readonly http: number };
}

function isPeekBackendReady(v: unknown): v is { event: 'listen.ready'; ports: PeekBackend['ports'] } {
  if (typeof v !== 'object' || v === null || (v as { event?: unknown }).event !== 'listen.ready') return false;
  const ports = (v as { ports?: unknown }).ports;
  return typeof ports === 'object' && ports !== null && typeof (ports as { tls?: unknown }).tls === 'number' && typeof (ports as { http?: unknown }).http === 'number';
}

/** Key generation (RSA 2048) at its start-up takes ~0.5 s on a quiet machine, several on a busy one. */
const PEEK_BACKEND_READY_MS = 60_000;

async function startPeekBackend(): Promise<PeekBackend> {
  const child = spawnNode('peek-backend', [PEEK_BACKEND_JS], 'pipe');
  const ready = await waitForJsonLine(child, isPeekBackendReady, PEEK_BACKEND_READY_MS);
  return { child, ports: ready.ports };
}

async function startImapServer(name: string): Promise<{ child: Child; port: number }> {
  const child = spawnNode(`imap-server ${name}`, [IMAP_SERVER_JS, name], 'pipe');
  const ready = await waitForJsonLine(child, isPortReady);
  return { child, port: ready.port };
}

/** One run of `spec` on a variant, as a measurement: value = rate, or p50 for the one-loop runs. */
async function measureVariant(ctx: Context, spec: SectionSpec, v: Variant, ports: readonly number[], single: boolean): Promise<Measured> {
  const r = single
    ? await spec.run(ports, 1, ctx.s.singleMax, ctx.s.singleTimeLimitMs)
    : await spec.run(ports, spec.loops, spec.maxAttempts, spec.timeLimitMs);
  if (r.completed === 0) throw new Error(`none completed (${r.errors} errors; first: ${r.firstError ?? '?'})`);
  if (r.errors > 0) ctx.log(`  ${v.label}: ${r.errors} of ${r.completed + r.errors} failed (first: ${r.firstError ?? '?'})`);
  const problem = v.check?.(r);
  if (problem !== undefined) throw new Error(problem);
  return { value: single ? r.p50Ms : r.perSecond, work: r.completed, detail: { ...r } };
}

/**
 * One section: a fresh tether per variant (the section's servers shared), a warm-up on each,
 * then `repeats` rounds taking the variants in turn, each with a `loops`-loop run (rate, and
 * latency under that load) and a one-loop run (latency alone). A failure costs only that variant.
 */
async function runSection(ctx: Context, spec: SectionSpec): Promise<Section> {
  ctx.log(`- ${spec.title} …`);
  const targets = new Map<string, VariantTarget>();
  const rateSamples = new Map<string, Sample[]>(spec.variants.map((v) => [v.id, []]));
  const singleSamples = new Map<string, Sample[]>(spec.variants.map((v) => [v.id, []]));
  const errors = new Map<string, string>();
  const fail = (v: Variant, e: unknown): void => {
    errors.set(v.id, errorText(e));
    ctx.log(`  ${v.label}: FAILED: ${errorText(e)}`);
  };
  try {
    for (const v of spec.variants) {
      try {
        const t = await startVariant(v, spec.servers, ctx.logLevel);
        targets.set(v.id, t);
        await spec.run(t.ports, spec.loops, spec.maxAttempts, ctx.s.warmupMs);
      } catch (e) {
        fail(v, e);
      }
    }
    for (let round = 0; round < ctx.s.repeats; round++) {
      for (const v of spec.variants) {
        const t = targets.get(v.id);
        if (t === undefined || errors.has(v.id)) continue;
        try {
          rateSamples.get(v.id)?.push(await sample(ctx, t, () => measureVariant(ctx, spec, v, t.ports, false)));
          singleSamples.get(v.id)?.push(await sample(ctx, t, () => measureVariant(ctx, spec, v, t.ports, true)));
        } catch (e) {
          fail(v, e);
        }
      }
    }
  } finally {
    await Promise.all([...targets.values()].flatMap((t) => (t.proxy ? [stopChild(t.proxy)] : [])));
  }
  const cell = (samples: readonly Sample[], higherIsBetter: boolean, error: string | undefined): Cell => {
    const best = bestOf(samples, higherIsBetter);
    return error === undefined ? { value: best?.value ?? NaN, best, samples } : { value: NaN, best, samples, error };
  };
  return {
    id: spec.id,
    title: spec.title,
    unit: spec.unit,
    workUnit: spec.workUnit,
    baseline: spec.baseline,
    cpuBaseline: spec.cpuBaseline,
    loops: spec.loops,
    variants: spec.variants.map((v) => ({
      id: v.id,
      label: v.label,
      command: targets.get(v.id)?.command ?? null,
      rate: cell(rateSamples.get(v.id) ?? [], true, errors.get(v.id)),
      single: cell(singleSamples.get(v.id) ?? [], false, errors.get(v.id)),
    })),
  };
}

function sectionSpecs(s: Settings, peek: PeekBackend | undefined, imap: readonly { child: Child; port: number }[]): SectionSpec[] {
  const specs: SectionSpec[] = [];
  const tether = (id: string, args: readonly string[], check?: Variant['check']): Variant => ({
    id,
    label: `tether ${args.join(' ')}`,
    tetherArgs: args,
    ...(check === undefined ? {} : { check }),
  });
  const direct: Variant = { id: 'direct', label: 'direct', tetherArgs: undefined };
  if (peek !== undefined) {
    const one = (port: number): Servers => ({ ports: [port], backendArgs: ['--backend', `b=127.0.0.1:${port}`], pids: [peek.child.pid] });
    specs.push({
      id: 'peek-tls',
      title: `cost of peeking, TLS: full handshake (no resumption, SNI ${BENCH_SNI}), 1 byte, close; ${s.peekLoops} loops`,
      unit: 'conn/s',
      workUnit: 'conn',
      baseline: 'none',
      cpuBaseline: 'none',
      variants: [direct, tether('none', ['--affinity', 'none']), tether('tls-session', ['--affinity', 'tls-session,source']), tether('sni', ['--affinity', 'sni,source'])],
      servers: one(peek.ports.tls),
      loops: s.peekLoops,
      maxAttempts: s.peekMax,
      timeLimitMs: s.peekTimeLimitMs,
      run: (ports, loops, max, ms) => tlsHelloRate(ports[0] ?? 0, BENCH_SNI, loops, max, ms),
    });
    const insertCheck = (r: LoopResult): string | undefined =>
      r.marked === r.completed ? undefined : `${r.completed - r.marked} of ${r.completed} responses without Set-Cookie: ${INSERT_COOKIE}=`;
    specs.push({
      id: 'peek-http',
      title: `cost of peeking, HTTP: GET with Cookie: SESSION=abc, 200 + Connection: close; ${s.peekLoops} loops`,
      unit: 'conn/s',
      workUnit: 'conn',
      baseline: 'none',
      cpuBaseline: 'none',
      variants: [
        direct,
        tether('none', ['--affinity', 'none']),
        tether('http-cookie', ['--affinity', 'http-cookie:SESSION,source']),
        tether('insert-cookie', ['--affinity', 'none', '--insert-cookie', INSERT_COOKIE], insertCheck),
      ],
      servers: one(peek.ports.http),
      loops: s.peekLoops,
      maxAttempts: s.peekMax,
      timeLimitMs: s.peekTimeLimitMs,
      run: (ports, loops, max, ms) => httpRequestRate(ports[0] ?? 0, HTTP_REQUEST, `\r\nSet-Cookie: ${INSERT_COOKIE}=`, loops, max, ms),
    });
  }
  if (imap.length > 0) {
    const names = ['a', 'b'];
    specs.push({
      id: 'imap-login',
      title: `IMAP logins: greeting, LOGIN user0..user${s.imapUsers - 1}, LOGOUT, close; ${imap.length} servers; ${s.imapLoops} loops`,
      unit: 'logins/s',
      workUnit: 'login',
      baseline: 'direct',
      cpuBaseline: 'plain',
      // plain: tether as a TCP proxy (no greet; round robin spreads the logins as direct does), to
      // tell the cost of a proxy hop from the cost of greeting and routing by login.
      variants: [direct, tether('plain', ['--affinity', 'none', '--balance', 'roundrobin']), tether('login', ['--protocol', 'imap', '--affinity', 'login'])],
      servers: {
        ports: imap.map((x) => x.port),
        backendArgs: imap.flatMap((x, i) => ['--backend', `${names[i] ?? `s${i}`}=127.0.0.1:${x.port}`]),
        pids: imap.map((x) => x.child.pid),
      },
      loops: s.imapLoops,
      maxAttempts: s.imapMax,
      timeLimitMs: s.imapTimeLimitMs,
      run: (ports, loops, max, ms) => imapLoginRate(ports, s.imapUsers, loops, max, ms),
    });
  }
  return specs;
}

/** Latencies in ms with µs resolution below 1 ms. */
function fmtMs(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return 'n/a';
  return Math.abs(v) < 1 ? v.toFixed(3) : fmt(v);
}

/** A number from a cell's best sample's detail (p50Ms, p99Ms). */
function detailOf(c: Cell, field: string): number | undefined {
  const v = c.best?.detail[field];
  return typeof v === 'number' ? v : undefined;
}

/** `*` when other processes took a noticeable share of the machine during the best sample. */
function flagOf(c: Cell): string {
  return c.best !== undefined && c.best.otherCpuShare > OTHER_CPU_FLAG_SHARE ? '*' : '';
}

interface VariantFigures {
  readonly rate: number;
  readonly p50Ms: number | undefined;
  readonly p99Ms: number | undefined;
  readonly singleP50Ms: number | undefined;
  readonly singleP99Ms: number | undefined;
  readonly proxyCpuUs: number | undefined;
  readonly backendCpuUs: number | undefined;
  readonly loadCpuUs: number | undefined;
}

/**
 * The least CPU µs per unit of the `which` process over `samples`. On the bench machine (a
 * 2-vCPU KVM guest) the CPU time of the same work varies up to 2x between runs with what else
 * the host runs — the backend's, whose work per connection is the same in every variant, too —
 * and that noise only ever adds time; the least of the runs is the steadiest estimate.
 */
function minCpuPerUnitUs(samples: readonly Sample[], which: 'proxyCpuMs' | 'backendCpuMs' | 'loadCpuMs'): number | undefined {
  let least: number | undefined;
  for (const x of samples) {
    const ms = x[which];
    if (ms === null || x.work === 0) continue;
    const us = (ms * 1000) / x.work;
    if (least === undefined || us < least) least = us;
  }
  return least;
}

function figuresOf(v: VariantResult): VariantFigures {
  return {
    rate: v.rate.value,
    p50Ms: detailOf(v.rate, 'p50Ms'),
    p99Ms: detailOf(v.rate, 'p99Ms'),
    singleP50Ms: detailOf(v.single, 'p50Ms'),
    singleP99Ms: detailOf(v.single, 'p99Ms'),
    proxyCpuUs: minCpuPerUnitUs(v.rate.samples, 'proxyCpuMs'),
    backendCpuUs: minCpuPerUnitUs(v.rate.samples, 'backendCpuMs'),
    loadCpuUs: minCpuPerUnitUs(v.rate.samples, 'loadCpuMs'),
  };
}

interface VariantRatios {
  readonly rate: number;
  readonly p50: number;
  readonly p99: number;
  readonly singleP50: number;
  readonly singleP99: number;
  /** tether CPU per unit over the CPU baseline's. */
  readonly proxyCpu: number;
  /** Extra tether CPU µs per unit over the CPU baseline's (NaN for direct). */
  readonly proxyCpuDeltaUs: number;
}

function ratiosOf(v: VariantFigures, base: VariantFigures, cpuBase: VariantFigures | undefined): VariantRatios {
  const cpu = cpuBase?.proxyCpuUs;
  return {
    rate: ratioOf(v.rate, base.rate),
    p50: ratioOf(v.p50Ms, base.p50Ms),
    p99: ratioOf(v.p99Ms, base.p99Ms),
    singleP50: ratioOf(v.singleP50Ms, base.singleP50Ms),
    singleP99: ratioOf(v.singleP99Ms, base.singleP99Ms),
    proxyCpu: ratioOf(v.proxyCpuUs, cpu),
    proxyCpuDeltaUs: v.proxyCpuUs === undefined || cpu === undefined ? NaN : v.proxyCpuUs - cpu,
  };
}

function renderSection(sec: Section): string {
  const w = sec.workUnit;
  const values = table(
    ['variant', sec.unit, 'p50 ms', 'p99 ms', '1-loop p50 ms', '1-loop p99 ms', `tether µs/${w}`, `backend µs/${w}`, `load µs/${w}`],
    sec.variants.map((v) => {
      if (v.rate.error !== undefined) return [v.label, 'FAILED', '', '', '', '', '', '', ''];
      const f = figuresOf(v);
      const [r, s1] = [flagOf(v.rate), flagOf(v.single)];
      return [
        v.label,
        `${fmt(f.rate)}${r}`,
        `${fmtMs(f.p50Ms)}${r}`,
        `${fmtMs(f.p99Ms)}${r}`,
        `${fmtMs(f.singleP50Ms)}${s1}`,
        `${fmtMs(f.singleP99Ms)}${s1}`,
        f.proxyCpuUs === undefined ? '-' : fmt(f.proxyCpuUs),
        fmt(f.backendCpuUs),
        fmt(f.loadCpuUs),
      ];
    }),
  );
  const base = sec.variants.find((v) => v.id === sec.baseline);
  if (base === undefined) return values;
  const baseFigures = figuresOf(base);
  const cpuBase = sec.variants.find((v) => v.id === sec.cpuBaseline);
  const cpuBaseFigures = cpuBase === undefined ? undefined : figuresOf(cpuBase);
  const vsCpu = cpuBase === undefined || cpuBase === base ? '' : ` vs ${cpuBase.id}`;
  const ratios = table(
    [`ratio to ${base.label}`, sec.unit, 'p50', 'p99', '1-loop p50', '1-loop p99', `tether µs/${w}${vsCpu}`, `Δ tether µs/${w}${vsCpu}`],
    sec.variants
      .filter((v) => v !== base)
      .map((v) => {
        const r = ratiosOf(figuresOf(v), baseFigures, cpuBaseFigures);
        const delta = Number.isFinite(r.proxyCpuDeltaUs) ? `${r.proxyCpuDeltaUs >= 0 ? '+' : ''}${fmt(r.proxyCpuDeltaUs)}` : 'n/a';
        return [v.label, fmtRatio(r.rate), fmtRatio(r.p50), fmtRatio(r.p99), fmtRatio(r.singleP50), fmtRatio(r.singleP99), fmtRatio(r.proxyCpu), delta];
      }),
  );
  return `${sec.title}\n${values}\n\n${ratios}`;
}

function sectionJson(sec: Section): unknown {
  const base = sec.variants.find((v) => v.id === sec.baseline);
  const baseFigures = base === undefined ? undefined : figuresOf(base);
  const cpuBase = sec.variants.find((v) => v.id === sec.cpuBaseline);
  const cpuBaseFigures = cpuBase === undefined ? undefined : figuresOf(cpuBase);
  return {
    ...sec,
    variants: sec.variants.map((v) => {
      const f = figuresOf(v);
      // null, not undefined, so that the JSON shows every field (direct has no proxy CPU; the baseline no ratios).
      return {
        ...v,
        figures: { ...f, proxyCpuUs: f.proxyCpuUs ?? null },
        ratiosToBaseline: baseFigures === undefined || v === base ? null : ratiosOf(f, baseFigures, cpuBaseFigures),
      };
    }),
  };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      rows: { type: 'string' },
      repeats: { type: 'string' },
      'tether-log-level': { type: 'string', default: 'warn' },
      'baseline-dir': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`usage: node --expose-gc dist/bench/run.js [--quick] [--rows ${ROW_IDS.join(',')}] [--repeats N] [--tether-log-level LEVEL] [--baseline-dir TREE]\n`);
    return 0;
  }
  const base = values.quick ? QUICK_SETTINGS : DEFAULT_SETTINGS;
  const repeats = values.repeats === undefined ? base.repeats : Number(values.repeats);
  if (!Number.isInteger(repeats) || repeats < 1 || repeats > 10) throw new Error('--repeats: an integer from 1 to 10');
  const s: Settings = { ...base, repeats };
  const wanted = new Set<string>(values.rows === undefined ? ROW_IDS.filter((id) => !OPT_IN_ROW_IDS.includes(id)) : values.rows.split(','));
  for (const w of wanted) if (!(ROW_IDS as readonly string[]).includes(w)) throw new Error(`unknown row ${w}; rows: ${ROW_IDS.join(',')}`);
  const baselineDir = values['baseline-dir'] === undefined ? undefined : path.resolve(values['baseline-dir']);
  if (baselineDir !== undefined) {
    if (!wanted.has('files')) throw new Error('--baseline-dir: only the files section compares builds; add --rows files');
    for (const f of ['bin/tether', 'dist/lib/cli/main.js']) {
      if (!existsSync(path.join(baselineDir, f))) throw new Error(`--baseline-dir ${baselineDir}: no ${f} (a built tree: npm run build there)`);
    }
  }
  const logLevel = values['tether-log-level'];
  const startedMs = Date.now();
  const log = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };

  process.on('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      killAllNow();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }

  const cores = os.availableParallelism();
  const fdLimit = openFilesLimit();
  // The proxy holds two fds per connection (client and backend side), the load one.
  const idleCount = Math.min(s.idleConnections, Math.floor((fdLimit - FD_HEADROOM) / 2));
  const opsIdle = Math.min(s.ops.idleConnections, Math.floor((fdLimit - FD_HEADROOM) / 2));
  // tether holds one fd per slow peeker (no backend side before a verdict), the peekers' process one.
  const slowPeekers = Math.min(s.slowpeek.peekers, fdLimit - FD_HEADROOM);
  const loadBefore = os.loadavg()[0] ?? NaN;
  const notes = [
    `${cores} CPU cores (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}, Linux ${os.release()}; loopback 127.0.0.1 only.`,
    `The load generator (this process), the proxy and the backend are separate processes sharing ${cores} cores:` +
      ` direct keeps 2 processes busy, tether and naive keep 3, so the proxied paths also lose CPU to the load and the backend.`,
    `tether: node bin/tether --listen 127.0.0.1:0 --backend b=127.0.0.1:PORT --affinity source --log-level ${logLevel} --grace 1s (a fresh process per row).`,
    `naive: dist/bench/naive-proxy.js: net.createServer + net.connect, c.pipe(b); b.pipe(c), allowHalfOpen, Node defaults otherwise.`,
    `Each cell is the best of ${s.repeats} measurement${s.repeats > 1 ? 's' : ''} after a warm-up, paths taken in turn;` +
      (s.quietWaitMs > 0 ? ` before each, up to ${s.quietWaitMs / 1000} s wait for a quiet machine.` : ' no wait for a quiet machine.') +
      ` * = other processes used >${OTHER_CPU_FLAG_SHARE * 100}% of the machine during it.`,
    `MiB = 2^20 bytes. Latencies are measured in this process, so they include its own event-loop delay.`,
    `open-files soft limit ${fdLimit} (Node raises its soft limit to the hard one at start-up; children inherit it).` +
      (idleCount < s.idleConnections
        ? ` The idle row opens ${idleCount}, not ${s.idleConnections}, connections (the proxy needs 2 fds each); the value is per connection.`
        : ''),
    `Sections (peek-tls, peek-http, imap-login): variants of tether's flags on the same servers, a fresh tether per variant,` +
      ` the same settings otherwise; per variant, the best of ${s.repeats} ${s.peekLoops}/${s.imapLoops}-loop run${s.repeats > 1 ? 's' : ''} (rate, and latency under that load)` +
      ` and the best of ${s.repeats} one-loop run${s.repeats > 1 ? 's' : ''} (latency alone, ${s.singleTimeLimitMs / 1000} s each). CPU µs are per completed connection or login of the loaded run.`,
    `Peeking waits for the client's first bytes (ClientHello, request head) before dialling: these clients speak first, at once,` +
      ` so the wait is one loopback hop; a server-first client (it waits for a greeting) would sit out --peek-timeout (default 3 s) first. Not measured.`,
    `peek-backend: dist/bench/peek-backend.js (node:tls server, Node defaults: TLS 1.3, session tickets sent; RSA 2048 leaf made at start-up by fixtures/pki;` +
      ` HTTP server: one 200 with Connection: close). TLS clients: tls.connect, rejectUnauthorized false, no session given, servername ${BENCH_SNI} in every variant.`,
    `imap-login: two dist/bench/imap-server.js processes (a, b). Direct: login i goes to server i % 2; tether: --protocol imap --affinity login places it.` +
      ` tether plain (--affinity none --balance roundrobin) is a TCP hop with no greet, to tell the hop from the login routing. Latency: connect → tagged OK of the LOGIN.`,
    `ops: tether's operations features (reload, admin API) with vs without them; tether at log-level info where reload.done lines are counted, at ${logLevel} in the --admin pair.` +
      ` ${opsIdle} idle connections held through reloads; table sizes ${s.ops.tableSizes.map((n) => n.toLocaleString('en-US')).join(', ')}.`,
    `slowpeek: one tether --affinity sni --log-level warn (default --peek-timeout 3 s) in front of peek-backend's TLS server (which echoes after its byte);` +
      ` ${s.slowpeek.rounds}× A (no peekers) then B (${slowPeekers} slow peekers from dist/bench/slow-peekers.js, opened over ${s.slowpeek.rampMs / 1000} s, each cut one replaced), ${s.slowpeek.phaseMs / 1000} s each;` +
      ` normal clients: ${s.slowpeek.loops} loops of tls.connect + 32 B echo + close, ${s.slowpeek.gapMs} ms apart. No CPU pinning (no row of this bench pins).` +
      (slowPeekers < s.slowpeek.peekers ? ` ${slowPeekers}, not ${s.slowpeek.peekers}, peekers: the open-files limit.` : ''),
    `files: one tether --config FILE per build (a TCP frontend to the echo server, an IMAP frontend --affinity login with user-map in front of two imap-servers), log-level info;` +
      ` user map ${s.files.userMapLines.toLocaleString('en-US')} lines, configs ${(s.files.reloadConfigBytes / 1024 / 1024).toFixed(1)} MiB (comments) and ${(s.files.bigConfigBytes / 1e6).toFixed(0)} MB (an allow list);` +
      ` ${s.files.probeLoops} probe connections, 16 B every ${s.files.probeIntervalMs} ms each. Builds: this tree${baselineDir === undefined ? ' only' : ` and ${baselineDir}`}.`,
    `1-minute load average at start: ${loadBefore.toFixed(2)}.`,
  ];
  log(`tether bench${values.quick ? ' (--quick)' : ''}`);
  for (const n of notes) log(`  ${n}`);

  const rows: Row[] = [];
  const sections: Section[] = [];
  let ops: OpsResult | undefined;
  let slowpeek: SlowpeekResult | undefined;
  let slowpeekError: string | undefined;
  let files: FilesResult | undefined;
  let filesError: string | undefined;
  let peers: PeersResult | undefined;
  let peersError: string | undefined;
  if (wanted.has('peers')) {
    // First, before this run's own backend exists: the section pins processes to CPUs itself.
    const startMs = performance.now();
    try {
      peers = await runPeers({ s: s.peers, tetherBin: TETHER_BIN, naiveJs: NAIVE_JS, backendJs: BACKEND_JS, imapServerJs: IMAP_SERVER_JS, log });
    } catch (e) {
      peersError = errorText(e);
      log(`  peers: FAILED: ${peersError}`);
    }
    log(`  (${((performance.now() - startMs) / 1000).toFixed(1)} s)`);
  }
  const backend = await startBackend();
  const ctx: Context = { s, logLevel, backend, log, quietBudgetMs: s.quietBudgetMs };
  try {
    for (const spec of rowSpecs(s)) {
      if (!wanted.has(spec.id)) continue;
      const rowStartMs = performance.now();
      const row = await runRow(ctx, spec);
      rows.push(row);
      log(`  (${((performance.now() - rowStartMs) / 1000).toFixed(1)} s)`);
      if (spec.id === 'connect') {
        rows.push(derivedRow(row, 'connect-p50', '  connect → first byte, p50', 'ms', 'p50Ms'));
        rows.push(derivedRow(row, 'connect-p99', '  connect → first byte, p99', 'ms', 'p99Ms'));
      }
      if (spec.id === 'rt') {
        rows.push(derivedRow(row, 'rt-p50', '  round trip, p50', 'µs', 'p50Us'));
        rows.push(derivedRow(row, 'rt-p99', '  round trip, p99', 'µs', 'p99Us'));
      }
    }
    if (wanted.has('idle-rss')) {
      const rowStartMs = performance.now();
      rows.push(await runIdleRssRow(ctx, idleCount));
      log(`  (${((performance.now() - rowStartMs) / 1000).toFixed(1)} s)`);
    }
    const peekBackend = wanted.has('peek-tls') || wanted.has('peek-http') || wanted.has('slowpeek') ? await startPeekBackend() : undefined;
    const imapServers = wanted.has('imap-login') || wanted.has('files') ? await Promise.all(['a', 'b'].map((n) => startImapServer(n))) : [];
    try {
      for (const spec of sectionSpecs(s, peekBackend, imapServers)) {
        if (!wanted.has(spec.id)) continue;
        const sectionStartMs = performance.now();
        sections.push(await runSection(ctx, spec));
        log(`  (${((performance.now() - sectionStartMs) / 1000).toFixed(1)} s)`);
      }
      if (wanted.has('slowpeek') && peekBackend !== undefined) {
        const startMs = performance.now();
        log(`- slowpeek: normal TLS requests without and with ${slowPeekers} slow peekers …`);
        try {
          slowpeek = await runSlowpeek({
            s: { ...s.slowpeek, peekers: slowPeekers },
            tetherBin: TETHER_BIN,
            peekersJs: SLOW_PEEKERS_JS,
            backend: { pid: peekBackend.child.pid, tlsPort: peekBackend.ports.tls },
            servername: BENCH_SNI,
            log,
            waitForQuiet: () => waitForQuiet(ctx),
          });
        } catch (e) {
          slowpeekError = errorText(e);
          log(`  slowpeek: FAILED: ${slowpeekError}`);
        }
        log(`  (${((performance.now() - startMs) / 1000).toFixed(1)} s)`);
      }
      if (wanted.has('files')) {
        const startMs = performance.now();
        const builds: FilesBuild[] = [
          { id: 'current', label: buildLabel('current', ROOT), dir: ROOT },
          ...(baselineDir === undefined ? [] : [{ id: 'baseline', label: buildLabel('baseline', baselineDir), dir: baselineDir }]),
        ];
        log(`- files: probe latency while tether reads big files (${builds.map((b) => b.label).join(', ')}) …`);
        try {
          files = await runFiles({
            s: s.files,
            builds,
            echo: { port: backend.ports.echo, pid: backend.child.pid },
            imap: imapServers.map((x, i) => ({ name: ['a', 'b'][i] ?? `s${i}`, port: x.port, pid: x.child.pid })),
            log,
          });
        } catch (e) {
          filesError = errorText(e);
          log(`  files: FAILED: ${filesError}`);
        }
        log(`  (${((performance.now() - startMs) / 1000).toFixed(1)} s)`);
      }
    } finally {
      await Promise.all([...(peekBackend ? [peekBackend.child] : []), ...imapServers.map((x) => x.child)].map((c) => stopChild(c)));
    }
    if (wanted.has('ops')) {
      const opsStartMs = performance.now();
      log('- ops: reload, /metrics, connections under SIGHUPs and scrapes …');
      ops = await runOps({
        // One round more than --repeats: the with/without order flips each round.
        s: { ...s.ops, idleConnections: opsIdle, rounds: s.repeats + 1, connectLoops: s.connectLoops, idleConcurrency: s.idleConcurrency, idleTimeLimitMs: s.idleTimeLimitMs },
        tetherBin: TETHER_BIN,
        logLevel,
        backend: { pid: backend.child.pid, hello: backend.ports.hello, echo: backend.ports.echo },
        log,
        sample: (t, measure) => sample(ctx, t, measure),
      });
      log(`  (${((performance.now() - opsStartMs) / 1000).toFixed(1)} s)`);
    }
  } finally {
    await stopAll();
  }

  const failed =
    rows.filter((r) => r.derivedFrom === undefined).reduce((n, r) => n + PATHS.filter((p) => r.cells[p]?.error !== undefined).length, 0) +
    sections.reduce((n, sec) => n + sec.variants.filter((v) => v.rate.error !== undefined).length, 0) +
    (ops?.problems.length ?? 0) +
    (slowpeek?.problems.length ?? 0) +
    (slowpeekError === undefined ? 0 : 1) +
    (files?.builds.reduce((n, b) => n + b.problems.length + (b.error === null ? 0 : 1), 0) ?? 0) +
    (filesError === undefined ? 0 : 1) +
    (peers?.problems.length ?? 0) +
    (peersError === undefined ? 0 : 1);
  const elapsedS = (Date.now() - startedMs) / 1000;
  const loadAfter = os.loadavg()[0] ?? NaN;
  log('');
  if (peers !== undefined) {
    log(renderPeers(peers));
    log('');
  } else if (peersError !== undefined) {
    log(`peers: FAILED: ${peersError}`);
    log('');
  }
  if (rows.length > 0) {
    log(renderMain(rows));
    if (wanted.has('idle-rss')) log('  (idle RSS: VmRSS growth of the proxy process; for direct, of the backend process)');
    log('');
    log(renderCpu(rows));
    log('');
  }
  for (const sec of sections) {
    log(renderSection(sec));
    log('');
  }
  if (sections.length > 0) {
    log('  (sections: rate and p50/p99 from the best loaded run, 1-loop p50/p99 from the best one-loop run; tether/backend/load µs: least CPU time of that process per unit over the loaded runs; backend µs sums both IMAP servers; Δ tether µs: over the CPU baseline variant)');
    log('');
  }
  if (ops !== undefined) {
    log(renderOps(ops, OTHER_CPU_FLAG_SHARE));
    log('');
  }
  if (slowpeek !== undefined) {
    log(renderSlowpeek(slowpeek, OTHER_CPU_FLAG_SHARE));
    log('');
  } else if (slowpeekError !== undefined) {
    log(`slowpeek: FAILED: ${slowpeekError}`);
    log('');
  }
  if (files !== undefined) {
    log(renderFiles(files, OTHER_CPU_FLAG_SHARE));
    log('');
  } else if (filesError !== undefined) {
    log(`files: FAILED: ${filesError}`);
    log('');
  }
  const others = [
    ...rows.filter((r) => r.derivedFrom === undefined).flatMap((r) => PATHS.flatMap((p) => r.cells[p]?.samples ?? [])),
    ...sections.flatMap((sec) => sec.variants.flatMap((v) => [...v.rate.samples, ...v.single.samples])),
    ...(ops?.churn.flatMap((pair) => [...pair.without.samples, ...pair.with.samples]) ?? []),
  ]
    .map((x) => x.otherCpuShare)
    .sort((a, b) => a - b);
  if (others.length > 0) {
    const pct = (v: number | undefined): string => `${((v ?? NaN) * 100).toFixed(0)}%`;
    log(`other processes used ${pct(others[0])}–${pct(others[others.length - 1])} of the machine during the measurements (median ${pct(others[Math.floor(others.length / 2)])})`);
  }
  log(`finished in ${elapsedS.toFixed(1)} s; 1-minute load average at end: ${loadAfter.toFixed(2)}${failed > 0 ? `; ${failed} cell(s) or check(s) FAILED` : ''}`);

  mkdirSync(path.dirname(RESULTS_FILE), { recursive: true });
  const json = {
    date: new Date(startedMs).toISOString(),
    quick: values.quick,
    tetherLogLevel: logLevel,
    node: process.version,
    cores,
    cpuModel: os.cpus()[0]?.model ?? null,
    kernel: os.release(),
    openFilesLimit: fdLimit,
    loadAverage1m: { start: loadBefore, end: loadAfter },
    elapsedS,
    settings: s,
    notes,
    rows: rows.map((r) => ({
      ...r,
      ratios: {
        tetherToDirect: ratioOf(r.cells.tether?.value, r.cells.direct?.value),
        naiveToDirect: ratioOf(r.cells.naive?.value, r.cells.direct?.value),
        tetherToNaive: ratioOf(r.cells.tether?.value, r.cells.naive?.value),
      },
      proxyCpuUsPerUnit:
        r.workUnit === undefined ? undefined : { tether: cpuPerUnitUs(r.cells.tether, 'proxyCpuMs'), naive: cpuPerUnitUs(r.cells.naive, 'proxyCpuMs') },
    })),
    sections: sections.map(sectionJson),
    ops: ops ?? null,
    slowpeek: slowpeek ?? (slowpeekError === undefined ? null : { error: slowpeekError }),
    files: files ?? (filesError === undefined ? null : { error: filesError }),
  };
  const replacer = (_k: string, v: unknown): unknown => (typeof v === 'number' && !Number.isFinite(v) ? null : v);
  writeFileSync(RESULTS_FILE, `${JSON.stringify(json, replacer, 2)}\n`);
  log(`results: ${path.relative(process.cwd(), RESULTS_FILE)}`);
  if (peers !== undefined || peersError !== undefined) {
    const peersJson = { date: new Date(startedMs).toISOString(), quick: values.quick, node: process.version, cores, cpuModel: os.cpus()[0]?.model ?? null, kernel: os.release(), ...(peers ?? { error: peersError }) };
    writeFileSync(PEERS_RESULTS_FILE, `${JSON.stringify(peersJson, replacer, 2)}\n`);
    log(`peers results: ${path.relative(process.cwd(), PEERS_RESULTS_FILE)}`);
  }
  return failed > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    await stopAll();
    process.exitCode = 1;
  },
);
