// The tether benchmark: direct (client → backend), tether, and a naive socket.pipe() proxy, side
// by side in one run, on loopback. Backends (dist/bench/backend.js), tether (`node bin/tether`)
// and the naive proxy (dist/bench/naive-proxy.js) are child processes; the load runs here.
//
//   npm run bench                               default run (about 1.5–3 minutes)
//   npm run bench -- --quick                    smaller sizes, shorter runs, no repeats (about 20 s; noisier)
//   npm run bench -- --rows connect,rt          only some rows (ids: see ROW_IDS)
//   npm run bench -- --tether-log-level info    tether's log level (default warn)
//   npm run bench -- --repeats 3                measurements per cell; the best one is reported
//
// Prints a table and writes bench/results/latest.json. Only 127.0.0.1 is used; only processes
// started here are stopped (by PID), on every way out.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { killAllNow, spawnNode, stopAll, stopChild, waitForJsonLine, waitForListenPort, type Child } from './children.js';
import { bulkDownload, bulkUpload, connectRate, MIB, openIdle, roundTrips } from './load.js';
import { readCpuNs, readMachineCpu, readRssKib } from './proc-stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const TETHER_BIN = path.join(ROOT, 'bin', 'tether');
const BACKEND_JS = path.join(HERE, 'backend.js');
const NAIVE_JS = path.join(HERE, 'naive-proxy.js');
const RESULTS_FILE = path.join(ROOT, 'bench', 'results', 'latest.json');

const PATHS = ['direct', 'tether', 'naive'] as const;
type PathName = (typeof PATHS)[number];

const ROW_IDS = ['upload-1', 'upload-8', 'download-1', 'connect', 'rt', 'idle-rss'] as const;
type RowId = (typeof ROW_IDS)[number];

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
  /** Longest wait for a quiet machine before one measurement, and in the whole run. */
  readonly quietWaitMs: number;
  readonly quietBudgetMs: number;
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
  quietWaitMs: 5_000,
  quietBudgetMs: 30_000,
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
  quietWaitMs: 0,
  quietBudgetMs: 0,
};

/** What one measurement returns: the headline value, the work done, and what else it saw. */
interface Measured {
  readonly value: number;
  /** Units of work (MiB, connections, round trips), to put CPU times per unit. */
  readonly work: number;
  readonly detail: Readonly<Record<string, unknown>>;
}

/** One measurement and the CPU time each process used during it. */
interface Sample extends Measured {
  /** The proxy process (direct: null), ms. */
  readonly proxyCpuMs: number | null;
  readonly backendCpuMs: number;
  /** This process (the load generator), ms. */
  readonly loadCpuMs: number;
  /** Share of the whole machine (all cores) used by processes other than ours, 0..1. */
  readonly otherCpuShare: number;
}

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
interface Target {
  readonly port: number;
  readonly proxy: Child | undefined;
  readonly backendPid: number;
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

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function startBackend(): Promise<Backend> {
  const child = spawnNode('backend', [BACKEND_JS], 'pipe');
  const ready = await waitForJsonLine(child, isBackendReady);
  return { child, ports: ready.ports };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
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
      return { port: backendPort, proxy: undefined, backendPid };
    case 'tether': {
      const args = ['--listen', '127.0.0.1:0', '--backend', `b=127.0.0.1:${backendPort}`, '--affinity', 'source'];
      const child = spawnNode('tether', [TETHER_BIN, ...args, '--log-level', tetherLogLevel, '--grace', '1s']);
      return { port: await waitForListenPort(child), proxy: child, backendPid };
    }
    case 'naive': {
      const child = spawnNode('naive', [NAIVE_JS, '0', String(backendPort)]);
      const ready = await waitForJsonLine(child, isPortReady);
      return { port: ready.port, proxy: child, backendPid };
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

/** Runs `measure` once on `t`, with the CPU time of every process during it. */
async function sample(ctx: Context, t: Target, measure: (port: number) => Promise<Measured>): Promise<Sample> {
  gc();
  await waitForQuiet(ctx);
  const cpu = (): { proxy: number; backend: number; load: number } => ({
    proxy: t.proxy ? readCpuNs(t.proxy.pid) : 0,
    backend: readCpuNs(t.backendPid),
    load: readCpuNs(process.pid),
  });
  const c0 = cpu();
  const m0 = readMachineCpu();
  const m = await measure(t.port);
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
          samples[p].push(await sample(ctx, t, spec.measure));
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
    const measuredPid = t.proxy?.pid ?? t.backendPid;
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

function fmt(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return 'n/a';
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function ratioOf(a: number | undefined, b: number | undefined): number {
  return a === undefined || b === undefined || b === 0 ? NaN : a / b;
}

function fmtRatio(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}x` : 'n/a';
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
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

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      rows: { type: 'string' },
      repeats: { type: 'string' },
      'tether-log-level': { type: 'string', default: 'warn' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`usage: node --expose-gc dist/bench/run.js [--quick] [--rows ${ROW_IDS.join(',')}] [--repeats N] [--tether-log-level LEVEL]\n`);
    return 0;
  }
  const base = values.quick ? QUICK_SETTINGS : DEFAULT_SETTINGS;
  const repeats = values.repeats === undefined ? base.repeats : Number(values.repeats);
  if (!Number.isInteger(repeats) || repeats < 1 || repeats > 10) throw new Error('--repeats: an integer from 1 to 10');
  const s: Settings = { ...base, repeats };
  const wanted = new Set<string>(values.rows === undefined ? ROW_IDS : values.rows.split(','));
  for (const w of wanted) if (!(ROW_IDS as readonly string[]).includes(w)) throw new Error(`unknown row ${w}; rows: ${ROW_IDS.join(',')}`);
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
    `1-minute load average at start: ${loadBefore.toFixed(2)}.`,
  ];
  log(`tether bench${values.quick ? ' (--quick)' : ''}`);
  for (const n of notes) log(`  ${n}`);

  const rows: Row[] = [];
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
  } finally {
    await stopAll();
  }

  const failed = rows.filter((r) => r.derivedFrom === undefined).reduce((n, r) => n + PATHS.filter((p) => r.cells[p]?.error !== undefined).length, 0);
  const elapsedS = (Date.now() - startedMs) / 1000;
  const loadAfter = os.loadavg()[0] ?? NaN;
  log('');
  log(renderMain(rows));
  if (wanted.has('idle-rss')) log('  (idle RSS: VmRSS growth of the proxy process; for direct, of the backend process)');
  log('');
  log(renderCpu(rows));
  log('');
  const others = rows
    .filter((r) => r.derivedFrom === undefined)
    .flatMap((r) => PATHS.flatMap((p) => r.cells[p]?.samples.map((x) => x.otherCpuShare) ?? []))
    .sort((a, b) => a - b);
  if (others.length > 0) {
    const pct = (v: number | undefined): string => `${((v ?? NaN) * 100).toFixed(0)}%`;
    log(`other processes used ${pct(others[0])}–${pct(others[others.length - 1])} of the machine during the measurements (median ${pct(others[Math.floor(others.length / 2)])})`);
  }
  log(`finished in ${elapsedS.toFixed(1)} s; 1-minute load average at end: ${loadAfter.toFixed(2)}${failed > 0 ? `; ${failed} cell(s) FAILED` : ''}`);

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
  };
  const replacer = (_k: string, v: unknown): unknown => (typeof v === 'number' && !Number.isFinite(v) ? null : v);
  writeFileSync(RESULTS_FILE, `${JSON.stringify(json, replacer, 2)}\n`);
  log(`results: ${path.relative(process.cwd(), RESULTS_FILE)}`);
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
