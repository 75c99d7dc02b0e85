// The bench's "peers" section: tether side by side with the L4 proxies people would otherwise
// run — HAProxy (mode tcp, one thread) and nginx's stream module (one worker) — and with the
// naive socket.pipe() proxy and no proxy at all (direct, the limit), on the same backends and
// load generators in one run. Paths: direct, tether --affinity none, tether --affinity source
// --balance hash, haproxy, nginx (stream), naive.
// Load: iperf3 (bulk, 1 and 8 streams, against iperf3 -s) and wrk (new connections with
// Connection: close, and keep-alive requests, against an nginx HTTP backend); proxy CPU per
// request from /proc; RSS per idle connection (2,000 held open to the hello server of
// dist/bench/backend.js), RSS once listening and start → listening (fresh processes). And the
// cost of peeking, tether only: tls-session (https through tether), http-cookie, IMAP login,
// against tether --affinity none in the same run.
// Pinning: the proxy under test on CPU 0, everything else (backends, wrk, iperf3, this process)
// on CPU 1 (taskset); unpinned, and said so, without taskset or with fewer than 2 CPUs.
// Method: every long-lived process started once, each proxy warmed up, then R rounds; in each
// round every row takes one measurement of every path, the paths in an order rotated per
// round. Per cell: median, spread (max − min) / median, and ratios to direct and to HAProxy.
// Loopback only; each command has a hard timeout; only processes started here are stopped, by
// PID (bench/children.ts), on every way out.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { runProgram, spawnProgram, stopChild, waitForJsonLine, waitForPort, type Child } from './children.js';
import { errorText, fmt, sleep, table } from './format.js';
import { imapLoginRate, openIdle } from './load.js';
import { freePort } from './ops.js';
import { findTools, haproxyConfig, nginxBackendConfig, nginxStreamConfig, nginxTempKinds, type Tools } from './peers-configs.js';
import { readCpuNs, readRssKib } from './proc-stats.js';

export interface PeersSettings {
  /** Rounds of the load rows (each takes one measurement per path per row). */
  readonly rounds: number;
  /** Rounds of the fresh-process rows (RSS, start time): at most `rounds`. */
  readonly processRounds: number;
  /** Length of one wrk / iperf3 run, whole seconds (both tools take whole seconds). */
  readonly loadSeconds: number;
  /** Warm-up of each long-lived proxy: wrk for this long; iperf3 too when `bulkWarmup`. */
  readonly warmupSeconds: number;
  readonly bulkWarmup: boolean;
  /** wrk connections: new-connection row (Connection: close) and keep-alive row. */
  readonly closeConnections: number;
  readonly keepAliveConnections: number;
  /** The idle-RSS row: connections held open, connections opened and closed first, pace. */
  readonly idleConnections: number;
  readonly idleWarmup: number;
  readonly idleConcurrency: number;
  readonly idleTimeLimitMs: number;
  /** Pause before each RSS reading (sockets closed, timers run). */
  readonly settleMs: number;
  /** IMAP logins: concurrent loops, distinct users, length of one run. */
  readonly imapLoops: number;
  readonly imapUsers: number;
  readonly imapMs: number;
}

export const PEERS_DEFAULT: PeersSettings = {
  rounds: 5,
  processRounds: 3,
  loadSeconds: 2,
  warmupSeconds: 1,
  bulkWarmup: true,
  closeConnections: 20,
  keepAliveConnections: 16,
  idleConnections: 2_000,
  idleWarmup: 100,
  idleConcurrency: 50,
  idleTimeLimitMs: 15_000,
  settleMs: 300,
  imapLoops: 20,
  imapUsers: 1_000,
  imapMs: 1_000,
};

export const PEERS_QUICK: PeersSettings = {
  ...PEERS_DEFAULT,
  rounds: 2,
  processRounds: 1,
  loadSeconds: 1,
  bulkWarmup: false,
  idleConnections: 500,
  settleMs: 200,
  imapMs: 1_000,
};

export interface PeersEnv {
  readonly s: PeersSettings;
  readonly tetherBin: string;
  readonly naiveJs: string;
  readonly backendJs: string;
  readonly imapServerJs: string;
  readonly log: (line: string) => void;
}

export const PEER_PATHS = ['direct', 'tether-none', 'tether-hash', 'haproxy', 'nginx', 'naive'] as const;
export type PeerPath = (typeof PEER_PATHS)[number];
type ProxyPath = Exclude<PeerPath, 'direct'>;

const PATH_LABELS: Readonly<Record<PeerPath, string>> = {
  direct: 'direct',
  'tether-none': 'tether none',
  'tether-hash': 'tether hash',
  haproxy: 'haproxy',
  nginx: 'nginx',
  naive: 'naive',
};

type MetricId = 'bulk-1' | 'bulk-8' | 'conn-rate' | 'conn-cpu' | 'ka-rate' | 'ka-cpu' | 'conn-p99' | 'ka-p99' | 'idle-rss' | 'rss0' | 'start';

interface MetricDef {
  readonly id: MetricId;
  readonly label: string;
  readonly unit: string;
  readonly higherIsBetter: boolean;
  /** A figure of the proxy process: none for direct. */
  readonly proxyOnly: boolean;
}

/** The rows of the main table, in the issue's order. */
const METRICS: readonly MetricDef[] = [
  { id: 'bulk-1', label: 'bulk, 1 stream', unit: 'Gbit/s', higherIsBetter: true, proxyOnly: false },
  { id: 'bulk-8', label: 'bulk, 8 streams', unit: 'Gbit/s', higherIsBetter: true, proxyOnly: false },
  { id: 'conn-rate', label: 'new connections', unit: 'req/s', higherIsBetter: true, proxyOnly: false },
  { id: 'conn-cpu', label: 'proxy CPU per new connection', unit: 'µs', higherIsBetter: false, proxyOnly: true },
  { id: 'ka-rate', label: 'keep-alive requests', unit: 'req/s', higherIsBetter: true, proxyOnly: false },
  { id: 'ka-cpu', label: 'proxy CPU per keep-alive request', unit: 'µs', higherIsBetter: false, proxyOnly: true },
  { id: 'conn-p99', label: 'p99 latency, new connections', unit: 'ms', higherIsBetter: false, proxyOnly: false },
  { id: 'ka-p99', label: 'p99 latency, keep-alive', unit: 'ms', higherIsBetter: false, proxyOnly: false },
  { id: 'idle-rss', label: 'RSS per idle connection', unit: 'KiB', higherIsBetter: false, proxyOnly: true },
  { id: 'rss0', label: 'RSS before the first connection', unit: 'MiB', higherIsBetter: false, proxyOnly: true },
  { id: 'start', label: 'start → listening', unit: 'ms', higherIsBetter: false, proxyOnly: true },
];

type PeekId = 'tls-none' | 'tls-session' | 'http-none' | 'http-cookie' | 'imap-none' | 'imap-source' | 'imap-login';

interface PeekDef {
  readonly id: PeekId;
  readonly group: 'TLS' | 'HTTP' | 'IMAP';
  /** tether's flags besides --listen, --backend, --log-level, --grace. */
  readonly args: readonly string[];
  /** The variant of the same group the ratios divide by. */
  readonly baseline: PeekId;
  readonly unit: string;
}

/**
 * The peek-cost variants. http-none is not run on its own: it is the main table's tether none
 * new-connection cell (same backend, same wrk, the request only without the cookie).
 */
const PEEKS: readonly PeekDef[] = [
  { id: 'tls-none', group: 'TLS', args: ['--affinity', 'none'], baseline: 'tls-none', unit: 'conn/s' },
  { id: 'tls-session', group: 'TLS', args: ['--affinity', 'tls-session,source'], baseline: 'tls-none', unit: 'conn/s' },
  { id: 'http-none', group: 'HTTP', args: ['--affinity', 'none'], baseline: 'http-none', unit: 'conn/s' },
  { id: 'http-cookie', group: 'HTTP', args: ['--affinity', 'http-cookie:SRV'], baseline: 'http-none', unit: 'conn/s' },
  { id: 'imap-none', group: 'IMAP', args: ['--affinity', 'none', '--balance', 'roundrobin'], baseline: 'imap-none', unit: 'logins/s' },
  { id: 'imap-source', group: 'IMAP', args: ['--affinity', 'source', '--balance', 'hash'], baseline: 'imap-none', unit: 'logins/s' },
  { id: 'imap-login', group: 'IMAP', args: ['--protocol', 'imap', '--affinity', 'login'], baseline: 'imap-none', unit: 'logins/s' },
];

/** The cookie of the http-cookie variant's requests. */
const COOKIE_HEADER = 'Cookie: SRV=abc123';

/** Per cell: every sample in measurement order, and what they sum up to. */
export interface CellStats {
  readonly samples: readonly number[];
  readonly median: number;
  /** (max − min) / median, in %. */
  readonly spreadPct: number;
  readonly toDirect: number;
  readonly toHaproxy: number;
  /** The first failure of this cell, if any (the other samples still count). */
  readonly error: string | null;
}

export interface MetricResult {
  readonly id: MetricId;
  readonly label: string;
  readonly unit: string;
  readonly higherIsBetter: boolean;
  /** null: not measured on that path (not applicable, or the path is missing). */
  readonly cells: Readonly<Record<PeerPath, CellStats | null>>;
}

export interface PeekResult {
  readonly id: PeekId;
  readonly group: string;
  readonly label: string;
  readonly baseline: PeekId;
  readonly unit: string;
  readonly rate: CellStats | null;
  readonly cpuUs: CellStats | null;
  /** Median rate and median CPU over the baseline's. */
  readonly rateRatio: number;
  readonly cpuRatio: number;
  /** Median CPU µs minus the baseline's. */
  readonly cpuDeltaUs: number;
}

/** One measurement as taken. */
export interface RawSample {
  readonly round: number;
  readonly job: string;
  readonly path: string;
  readonly values: Readonly<Record<string, number>>;
  readonly detail: Readonly<Record<string, unknown>>;
}

export interface PeersResult {
  readonly settings: PeersSettings;
  readonly pinned: boolean;
  readonly notes: readonly string[];
  readonly tools: Tools;
  readonly commands: Readonly<Record<string, string>>;
  readonly metrics: readonly MetricResult[];
  readonly peek: readonly PeekResult[];
  readonly raw: readonly RawSample[];
  readonly problems: readonly string[];
  readonly elapsedS: number;
}

const HOST = '127.0.0.1';
/** Extra time a wrk / iperf3 run gets over its own length before it is killed. */
const COMMAND_GRACE_MS = 5_000;
/** Longest wait for a process to listen. */
const LISTEN_TIMEOUT_MS = 10_000;
/** The start row polls connect() this often. */
const START_POLL_MS = 2;
/** Fds besides connections (listeners, stdio, libuv): kept out of HAProxy's and nginx's maxconn. */
const FD_HEADROOM = 100;
/** HAProxy's and nginx's connection limits: well above the idle row's 2 × 2,100 sockets. */
const MAX_PEER_CONNECTIONS = 8_000;

function median(xs: readonly number[]): number {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? (v[mid] ?? NaN) : ((v[mid - 1] ?? NaN) + (v[mid] ?? NaN)) / 2;
}

function ratio(a: number | undefined, b: number | undefined): number {
  return a === undefined || b === undefined || b === 0 ? NaN : a / b;
}

function rotate<T>(xs: readonly T[], by: number): T[] {
  const k = xs.length === 0 ? 0 : by % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

/** The soft limit on open files of this process (children inherit it). */
function openFilesLimit(): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m?.[1] === undefined || m[1] === 'unlimited' ? 1_048_576 : Number(m[1]);
}

/** Pinning: `cpu` for `file args…` through taskset, or the command as it is when unpinned. */
interface Pinner {
  readonly pinned: boolean;
  cmd(cpu: 0 | 1, file: string, args: readonly string[]): [string, string[]];
}

function makePinner(tools: Tools): Pinner {
  const taskset = os.availableParallelism() >= 2 ? tools.taskset : null;
  return {
    pinned: taskset !== null,
    cmd: (cpu, file, args) => (taskset !== null ? [taskset, ['-c', String(cpu), file, ...args]] : [file, [...args]]),
  };
}

/**
 * Moves every thread of this process (the load of the IMAP and idle rows runs here) onto `cpu`
 * and returns how to undo it; a no-op when unpinned.
 */
function pinSelf(pinner: Pinner, tools: Tools, cpu: number): () => void {
  if (!pinner.pinned || tools.taskset === null) return () => undefined;
  const taskset = tools.taskset;
  const before = spawnSync(taskset, ['-p', String(process.pid)], { encoding: 'utf8', timeout: 5_000 });
  const mask = /:\s*([0-9a-f,]+)\s*$/i.exec(before.stdout.trim())?.[1];
  spawnSync(taskset, ['-a', '-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore', timeout: 5_000 });
  return () => {
    if (mask !== undefined) spawnSync(taskset, ['-a', '-p', mask, String(process.pid)], { stdio: 'ignore', timeout: 5_000 });
  };
}

function isRunning(c: Child): boolean {
  return c.proc.exitCode === null && c.proc.signalCode === null;
}

/** Resolves true once a TCP connect to `port` succeeds (the socket is closed at once). */
function connectsOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** ms from `t0` until a connect to `port` succeeds, polling every START_POLL_MS; rejects if `child` exits first. */
async function msUntilConnects(child: Child, port: number, t0: number): Promise<number> {
  for (;;) {
    if (await connectsOnce(port)) return performance.now() - t0;
    if (!isRunning(child)) throw new Error(`${child.name} (pid ${child.pid}) exited before listening: ${child.stderr().slice(0, 300)}`);
    if (performance.now() - t0 > LISTEN_TIMEOUT_MS) throw new Error(`${child.name}: not listening within ${LISTEN_TIMEOUT_MS} ms`);
    await sleep(START_POLL_MS);
  }
}

/** The section's machinery: tools, pinning, temp dir, and how to start each path's proxy. */
interface Rig {
  readonly env: PeersEnv;
  readonly tools: Tools;
  readonly pinner: Pinner;
  readonly dir: string;
  readonly fdLimit: number;
  readonly peerConnections: number;
  /** The first command line of each path (ports as run), for the notes and the JSON. */
  readonly commands: Record<string, string>;
  seq: number;
}

/** The paths this machine can run (direct, tether and naive always; haproxy and nginx when found). */
function availablePaths(tools: Tools): PeerPath[] {
  return PEER_PATHS.filter((p) => (p === 'haproxy' ? tools.haproxy !== null : p === 'nginx' ? tools.nginxStream !== null : true));
}

/** Starts the proxy of path `p` on `listenPort` in front of `backendPort`, pinned to CPU 0 (not yet waited for). */
function spawnProxy(rig: Rig, p: ProxyPath, listenPort: number, backendPort: number, extraTetherArgs?: readonly string[]): Child {
  const { env, tools, dir } = rig;
  const n = rig.seq++;
  let file: string;
  let args: string[];
  switch (p) {
    case 'tether-none':
    case 'tether-hash': {
      const affinity = extraTetherArgs ?? (p === 'tether-none' ? ['--affinity', 'none'] : ['--affinity', 'source', '--balance', 'hash']);
      file = process.execPath;
      args = [env.tetherBin, '--listen', `${HOST}:${listenPort}`, '--backend', `b=${HOST}:${backendPort}`, ...affinity, '--log-level', 'warn', '--grace', '1s'];
      break;
    }
    case 'haproxy': {
      const cfg = path.join(dir, `haproxy-${n}.cfg`);
      writeFileSync(cfg, haproxyConfig(listenPort, backendPort, rig.peerConnections));
      file = tools.haproxy ?? 'haproxy';
      args = ['-db', '-f', cfg];
      break;
    }
    case 'nginx': {
      const cfg = path.join(dir, `nginx-stream-${n}.conf`);
      writeFileSync(cfg, nginxStreamConfig(dir, `nginx-stream-${n}`, listenPort, backendPort, rig.peerConnections, rig.fdLimit));
      file = tools.nginx ?? 'nginx';
      args = ['-p', dir, '-c', cfg, '-e', 'stderr'];
      break;
    }
    case 'naive':
      file = process.execPath;
      args = [env.naiveJs, String(listenPort), String(backendPort)];
      break;
  }
  const [f, a] = rig.pinner.cmd(0, file, args);
  const key = extraTetherArgs === undefined ? p : `tether ${extraTetherArgs.join(' ')}`;
  rig.commands[key] ??= [f, ...a].join(' ');
  return spawnProgram(`${p}#${n}`, f, a);
}

/** A long-lived proxy (or direct: none) and the port the load talks to. */
interface Target {
  readonly port: number;
  readonly proxy: Child | undefined;
}

async function startTarget(rig: Rig, p: PeerPath, backendPort: number, extraTetherArgs?: readonly string[]): Promise<Target> {
  if (p === 'direct') return { port: backendPort, proxy: undefined };
  const port = await freePort();
  const child = spawnProxy(rig, p, port, backendPort, extraTetherArgs);
  await waitForPort(child, port, LISTEN_TIMEOUT_MS);
  return { port, proxy: child };
}

// ---- load: wrk and iperf3 --------------------------------------------------------------------

interface WrkResult {
  readonly requests: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly socketErrors: number;
  readonly non2xx: number;
}

function durationMs(v: string, unit: string): number {
  const n = Number(v);
  switch (unit) {
    case 'us':
      return n / 1000;
    case 'ms':
      return n;
    case 's':
      return n * 1000;
    case 'm':
      return n * 60_000;
    default:
      return NaN;
  }
}

/** wrk's summary (with --latency) → numbers; throws on a run with no request completed. */
export function parseWrk(out: string): WrkResult {
  const done = /(\d+) requests in ([\d.]+)(us|ms|s|m)\b/.exec(out);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const pct = (p: string): number => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    return m?.[1] === undefined || m[2] === undefined ? NaN : durationMs(m[1], m[2]);
  };
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (done?.[1] === undefined || done[2] === undefined || done[3] === undefined || rps?.[1] === undefined) throw new Error(`wrk: no summary in its output: ${out.slice(0, 300)}`);
  const requests = Number(done[1]);
  if (requests === 0) throw new Error(`wrk: no request completed: ${out.slice(0, 300)}`);
  return {
    requests,
    seconds: durationMs(done[2], done[3]) / 1000,
    perSecond: Number(rps[1]),
    p50Ms: pct('50'),
    p99Ms: pct('99'),
    socketErrors: errs === null ? 0 : errs.slice(1, 5).reduce((a, b) => a + Number(b), 0),
    non2xx: non2xx?.[1] === undefined ? 0 : Number(non2xx[1]),
  };
}

async function runWrk(rig: Rig, url: string, connections: number, seconds: number, headers: readonly string[]): Promise<WrkResult> {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '--timeout', '2s', ...headers.flatMap((h) => ['-H', h]), url];
  const [f, a] = rig.pinner.cmd(1, rig.tools.wrk ?? 'wrk', args);
  const r = await runProgram('wrk', f, a, seconds * 1000 + COMMAND_GRACE_MS);
  if (r.timedOut) throw new Error(`wrk: killed after ${seconds * 1000 + COMMAND_GRACE_MS} ms`);
  const w = parseWrk(r.stdout);
  // Errors on a few sockets are loopback noise; a run where most requests failed measured nothing.
  if (w.non2xx > w.requests / 100) throw new Error(`wrk: ${w.non2xx} of ${w.requests} responses not 2xx/3xx`);
  return w;
}

interface IperfResult {
  readonly gbitPerS: number;
  readonly bytes: number;
  readonly seconds: number;
}

async function runIperf(rig: Rig, port: number, streams: number, seconds: number): Promise<IperfResult> {
  const args = ['-c', HOST, '-p', String(port), '-t', String(seconds), '-P', String(streams), '-J'];
  const [f, a] = rig.pinner.cmd(1, rig.tools.iperf3 ?? 'iperf3', args);
  const r = await runProgram('iperf3', f, a, seconds * 1000 + COMMAND_GRACE_MS);
  if (r.timedOut) throw new Error(`iperf3: killed after ${seconds * 1000 + COMMAND_GRACE_MS} ms`);
  let j: { error?: string; end?: { sum_received?: { bits_per_second?: number; bytes?: number; seconds?: number } } };
  try {
    j = JSON.parse(r.stdout) as typeof j;
  } catch {
    throw new Error(`iperf3: no JSON (exit ${r.code}): ${r.stdout.slice(0, 200)} ${r.stderr.slice(0, 200)}`);
  }
  if (j.error !== undefined) throw new Error(`iperf3: ${j.error}`);
  const sum = j.end?.sum_received;
  if (sum?.bits_per_second === undefined) throw new Error('iperf3: no end.sum_received.bits_per_second');
  return { gbitPerS: sum.bits_per_second / 1e9, bytes: sum.bytes ?? NaN, seconds: sum.seconds ?? NaN };
}

/** CPU ns of `proxy` (0 for direct) while `run` runs. */
async function withCpu<T>(proxy: Child | undefined, run: () => Promise<T>): Promise<{ r: T; cpuNs: number | undefined }> {
  const c0 = proxy === undefined ? 0 : readCpuNs(proxy.pid);
  const r = await run();
  const cpuNs = proxy === undefined ? undefined : readCpuNs(proxy.pid) - c0;
  return { r, cpuNs };
}

// ---- the section -----------------------------------------------------------------------------

/** Samples per metric per path (or peek variant), as taken. */
class Samples {
  readonly values = new Map<string, number[]>();
  readonly errors = new Map<string, string>();
  readonly raw: RawSample[] = [];

  add(metric: string, key: string, v: number | undefined): void {
    if (v === undefined || !Number.isFinite(v)) return;
    const k = `${metric}|${key}`;
    const xs = this.values.get(k) ?? [];
    xs.push(v);
    this.values.set(k, xs);
  }

  fail(metric: string, key: string, e: string): void {
    const k = `${metric}|${key}`;
    if (!this.errors.has(k)) this.errors.set(k, e);
  }

  get(metric: string, key: string): number[] {
    return this.values.get(`${metric}|${key}`) ?? [];
  }

  error(metric: string, key: string): string | null {
    return this.errors.get(`${metric}|${key}`) ?? null;
  }
}

/** One measurement job: a row (or a few rows from one run) on one path or peek variant. */
interface Job {
  readonly id: string;
  /** Metrics this job fills (their failure is recorded on each). */
  readonly metrics: readonly string[];
  readonly keys: readonly string[];
  /** Rounds it runs in (0-based): the process rows run in fewer. */
  readonly rounds: number;
  readonly measure: (key: string) => Promise<{ values: Record<string, number | undefined>; detail: Record<string, unknown> }>;
}

export async function runPeers(env: PeersEnv): Promise<PeersResult> {
  const { s, log } = env;
  const startedMs = performance.now();
  const tools = findTools();
  const pinner = makePinner(tools);
  const fdLimit = openFilesLimit();
  const peerConnections = Math.max(1_000, Math.min(MAX_PEER_CONNECTIONS, Math.floor((fdLimit - FD_HEADROOM) / 2)));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tether-peers-'));
  const rig: Rig = { env, tools, pinner, dir, fdLimit, peerConnections, commands: {}, seq: 0 };
  const problems: string[] = [];
  const problem = (line: string): void => {
    problems.push(line);
    log(`  ${line}`);
  };
  const notes: string[] = [];
  const note = (line: string): void => {
    notes.push(line);
    log(`  ${line}`);
  };
  const paths = availablePaths(tools);
  log(`- peers: ${paths.map((p) => PATH_LABELS[p]).join(', ')} side by side …`);
  if (tools.haproxy === null) note('haproxy: not found in PATH (bench/setup-peers.sh installs it); its column is skipped, and so are the ratios to it.');
  if (tools.nginx === null) note('nginx: not found in PATH (bench/setup-peers.sh installs it); the nginx column, the HTTP backend and the rows using it are skipped.');
  else if (tools.nginxStream === null) note('nginx: no stream module (libnginx-mod-stream); the nginx column is skipped.');
  if (tools.wrk === null) note('wrk: not found in PATH; the request rows and the HTTP/TLS peek rows are skipped.');
  if (tools.iperf3 === null) note('iperf3: not found in PATH; the bulk rows are skipped.');
  if (tools.openssl === null) note('openssl: not found in PATH; no certificate, so the TLS peek rows are skipped.');
  note(
    pinner.pinned
      ? 'pinned: the proxy under test on CPU 0 (taskset -c 0); backends, wrk, iperf3 and this process (IMAP and idle-connection load) on CPU 1.'
      : `UNPINNED: ${tools.taskset === null ? 'no taskset' : `${os.availableParallelism()} CPU(s)`}; every process shares every core.`,
  );
  const unpin = pinSelf(pinner, tools, 1);
  const longLived: Child[] = [];
  const samples = new Samples();
  try {
    // The backends, all on CPU 1.
    const httpOk = tools.nginx !== null && tools.wrk !== null;
    let tls: { cert: string; key: string } | undefined;
    if (httpOk && tools.openssl !== null) {
      const cert = path.join(dir, 'cert.pem');
      const key = path.join(dir, 'key.pem');
      const r = await runProgram('openssl', tools.openssl, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=backend.bench.test'], 60_000);
      if (r.code === 0) tls = { cert, key };
      else problem(`openssl req failed (exit ${r.code}): ${r.stderr.slice(0, 300)}; the TLS peek rows are skipped`);
    }
    let http: { port: number; httpsPort: number | undefined } | undefined;
    if (httpOk) {
      try {
        const version = spawnSync(tools.nginx, ['-V'], { encoding: 'utf8', timeout: 5_000 });
        const ports = { http: await freePort(), https: tls === undefined ? undefined : await freePort() };
        const cfg = path.join(dir, 'nginx-backend.conf');
        writeFileSync(cfg, nginxBackendConfig(dir, ports, tls, nginxTempKinds(`${version.stderr}${version.stdout}`), peerConnections, fdLimit));
        const [f, a] = pinner.cmd(1, tools.nginx, ['-p', dir, '-c', cfg, '-e', 'stderr']);
        const child = spawnProgram('nginx-backend', f, a);
        longLived.push(child);
        await waitForPort(child, ports.http, LISTEN_TIMEOUT_MS);
        if (ports.https !== undefined) await waitForPort(child, ports.https, LISTEN_TIMEOUT_MS);
        http = { port: ports.http, httpsPort: ports.https };
        rig.commands['nginx-backend'] = [f, ...a].join(' ');
      } catch (e) {
        problem(`nginx HTTP backend: FAILED: ${errorText(e)}; the request rows are skipped`);
      }
    }
    let iperfPort: number | undefined;
    if (tools.iperf3 !== null) {
      try {
        const port = await freePort();
        const [f, a] = pinner.cmd(1, tools.iperf3, ['-s', '-p', String(port)]);
        const child = spawnProgram('iperf3-server', f, a);
        longLived.push(child);
        await waitForPort(child, port, LISTEN_TIMEOUT_MS);
        iperfPort = port;
      } catch (e) {
        problem(`iperf3 -s: FAILED: ${errorText(e)}; the bulk rows are skipped`);
      }
    }
    const helloBackend = await (async (): Promise<{ port: number; child: Child } | undefined> => {
      try {
        const [f, a] = pinner.cmd(1, process.execPath, [env.backendJs]);
        const child = spawnProgram('hello-backend', f, a, 'pipe');
        longLived.push(child);
        const ready = await waitForJsonLine(child, (v): v is { ports: { hello: number } } => typeof (v as { ports?: { hello?: unknown } } | null)?.ports?.hello === 'number');
        return { port: ready.ports.hello, child };
      } catch (e) {
        problem(`hello backend (idle-RSS row): FAILED: ${errorText(e)}; that row is skipped`);
        return undefined;
      }
    })();
    const imapPorts: number[] = [];
    try {
      for (const name of ['a', 'b']) {
        const [f, a] = pinner.cmd(1, process.execPath, [env.imapServerJs, name]);
        const child = spawnProgram(`imap-server ${name}`, f, a, 'pipe');
        longLived.push(child);
        const ready = await waitForJsonLine(child, (v): v is { port: number } => typeof (v as { port?: unknown } | null)?.port === 'number');
        imapPorts.push(ready.port);
      }
    } catch (e) {
      problem(`IMAP servers: FAILED: ${errorText(e)}; the IMAP peek rows are skipped`);
      imapPorts.length = 0;
    }

    // The long-lived proxies: one per path per backend (and per peek variant), warmed up.
    const httpTargets = new Map<PeerPath, Target>();
    const bulkTargets = new Map<PeerPath, Target>();
    const peekTargets = new Map<PeekId, Target>();
    const dead = new Set<string>();
    const startAll = async (): Promise<void> => {
      for (const p of paths) {
        if (http !== undefined) {
          try {
            httpTargets.set(p, await startTarget(rig, p, http.port));
          } catch (e) {
            dead.add(`http|${p}`);
            problem(`${PATH_LABELS[p]} → nginx backend: FAILED to start: ${errorText(e)}`);
          }
        }
        if (iperfPort !== undefined) {
          try {
            bulkTargets.set(p, await startTarget(rig, p, iperfPort));
          } catch (e) {
            dead.add(`bulk|${p}`);
            problem(`${PATH_LABELS[p]} → iperf3 -s: FAILED to start: ${errorText(e)}`);
          }
        }
      }
      for (const v of PEEKS) {
        if (v.id === 'http-none') continue;
        const backendPort = v.group === 'TLS' ? http?.httpsPort : v.group === 'HTTP' ? http?.port : undefined;
        try {
          if (v.group === 'IMAP') {
            if (imapPorts.length === 0) continue;
            const port = await freePort();
            const args = [env.tetherBin, '--listen', `${HOST}:${port}`, ...imapPorts.flatMap((x, i) => ['--backend', `${['a', 'b'][i] ?? `s${i}`}=${HOST}:${x}`]), ...v.args, '--log-level', 'warn', '--grace', '1s'];
            const [f, a] = pinner.cmd(0, process.execPath, args);
            rig.commands[`tether ${v.args.join(' ')} (IMAP)`] = [f, ...a].join(' ');
            const child = spawnProgram(`tether ${v.id}`, f, a);
            await waitForPort(child, port, LISTEN_TIMEOUT_MS);
            peekTargets.set(v.id, { port, proxy: child });
          } else {
            if (backendPort === undefined) continue;
            peekTargets.set(v.id, await startTarget(rig, 'tether-none', backendPort, v.args));
          }
        } catch (e) {
          problem(`tether ${v.id}: FAILED to start: ${errorText(e)}`);
        }
      }
    };
    await startAll();
    for (const t of [...httpTargets.values(), ...bulkTargets.values(), ...peekTargets.values()]) if (t.proxy !== undefined) longLived.push(t.proxy);

    const warmStartMs = performance.now();
    const warm = async (what: string, run: () => Promise<unknown>): Promise<void> => {
      try {
        await run();
      } catch (e) {
        problem(`warm-up ${what}: ${errorText(e)}`);
      }
    };
    for (const [p, t] of httpTargets) {
      await warm(`${p} (wrk)`, () => runWrk(rig, `http://${HOST}:${t.port}/`, s.closeConnections, s.warmupSeconds, ['Connection: close']));
    }
    if (s.bulkWarmup) for (const [p, t] of bulkTargets) await warm(`${p} (iperf3)`, () => runIperf(rig, t.port, 1, s.warmupSeconds));
    for (const v of PEEKS) {
      const t = peekTargets.get(v.id);
      if (t === undefined) continue;
      if (v.group === 'IMAP') await warm(v.id, () => imapLoginRate([t.port], s.imapUsers, s.imapLoops, 1_000_000, s.warmupSeconds * 1000));
      else
        await warm(v.id, () =>
          runWrk(rig, `${v.group === 'TLS' ? 'https' : 'http'}://${HOST}:${t.port}/`, s.closeConnections, s.warmupSeconds, ['Connection: close', ...(v.id === 'http-cookie' ? [COOKIE_HEADER] : [])]),
        );
    }
    log(`  processes started and warmed up in ${((performance.now() - warmStartMs) / 1000).toFixed(1)} s`);

    // The jobs, in row order; each measures one path (or variant) once per call.
    const jobs: Job[] = [];
    const proxyPaths = paths.filter((p): p is ProxyPath => p !== 'direct');
    if (iperfPort !== undefined) {
      for (const streams of [1, 8]) {
        const metric = `bulk-${streams}`;
        jobs.push({
          id: metric,
          metrics: [metric],
          keys: paths.filter((p) => bulkTargets.has(p)),
          rounds: s.rounds,
          measure: async (p) => {
            const t = bulkTargets.get(p as PeerPath);
            if (t === undefined) throw new Error('not started');
            const { r, cpuNs } = await withCpu(t.proxy, () => runIperf(rig, t.port, streams, s.loadSeconds));
            return { values: { [metric]: r.gbitPerS }, detail: { ...r, proxyCpuMs: cpuNs === undefined ? null : cpuNs / 1e6 } };
          },
        });
      }
    }
    if (http !== undefined) {
      for (const kind of ['conn', 'ka'] as const) {
        jobs.push({
          id: kind,
          metrics: [`${kind}-rate`, `${kind}-cpu`, `${kind}-p99`],
          keys: paths.filter((p) => httpTargets.has(p)),
          rounds: s.rounds,
          measure: async (p) => {
            const t = httpTargets.get(p as PeerPath);
            if (t === undefined) throw new Error('not started');
            const { r, cpuNs } = await withCpu(t.proxy, () =>
              kind === 'conn'
                ? runWrk(rig, `http://${HOST}:${t.port}/`, s.closeConnections, s.loadSeconds, ['Connection: close'])
                : runWrk(rig, `http://${HOST}:${t.port}/`, s.keepAliveConnections, s.loadSeconds, []),
            );
            const cpuUs = cpuNs === undefined ? undefined : cpuNs / 1000 / r.requests;
            return { values: { [`${kind}-rate`]: r.perSecond, [`${kind}-cpu`]: cpuUs, [`${kind}-p99`]: r.p99Ms }, detail: { ...r, proxyCpuMs: cpuNs === undefined ? null : cpuNs / 1e6 } };
          },
        });
      }
    }
    const peekKeys = PEEKS.filter((v) => peekTargets.has(v.id)).map((v) => v.id);
    if (peekKeys.length > 0) {
      jobs.push({
        id: 'peek',
        metrics: ['peek-rate', 'peek-cpu'],
        keys: peekKeys,
        rounds: s.rounds,
        measure: async (id) => {
          const v = PEEKS.find((x) => x.id === id);
          const t = peekTargets.get(id as PeekId);
          if (v === undefined || t === undefined) throw new Error('not started');
          if (v.group === 'IMAP') {
            const { r, cpuNs } = await withCpu(t.proxy, () => imapLoginRate([t.port], s.imapUsers, s.imapLoops, 1_000_000, s.imapMs));
            if (r.completed === 0) throw new Error(`no login completed (${r.errors} errors; first: ${r.firstError ?? '?'})`);
            return { values: { 'peek-rate': r.perSecond, 'peek-cpu': cpuNs === undefined ? undefined : cpuNs / 1000 / r.completed }, detail: { ...r, proxyCpuMs: (cpuNs ?? NaN) / 1e6 } };
          }
          const url = `${v.group === 'TLS' ? 'https' : 'http'}://${HOST}:${t.port}/`;
          const { r, cpuNs } = await withCpu(t.proxy, () => runWrk(rig, url, s.closeConnections, s.loadSeconds, ['Connection: close', ...(v.id === 'http-cookie' ? [COOKIE_HEADER] : [])]));
          return { values: { 'peek-rate': r.perSecond, 'peek-cpu': cpuNs === undefined ? undefined : cpuNs / 1000 / r.requests }, detail: { ...r, proxyCpuMs: (cpuNs ?? NaN) / 1e6 } };
        },
      });
    }
    if (helloBackend !== undefined) {
      jobs.push({
        id: 'memory',
        metrics: ['rss0', 'idle-rss'],
        keys: proxyPaths,
        rounds: Math.min(s.rounds, s.processRounds),
        measure: (p) => measureMemory(rig, p as ProxyPath, helloBackend.port),
      });
    }
    if (http !== undefined) {
      const backendPort = http.port;
      jobs.push({
        id: 'start',
        metrics: ['start'],
        keys: proxyPaths,
        rounds: Math.min(s.rounds, s.processRounds),
        measure: (p) => measureStart(rig, p as ProxyPath, backendPort),
      });
    }

    for (let round = 0; round < s.rounds; round++) {
      const roundStartMs = performance.now();
      for (const job of jobs) {
        if (round >= job.rounds) continue;
        for (const key of rotate(job.keys, round)) {
          const target = job.id === 'peek' ? peekTargets.get(key as PeekId) : job.id === 'conn' || job.id === 'ka' ? httpTargets.get(key as PeerPath) : job.id.startsWith('bulk') ? bulkTargets.get(key as PeerPath) : undefined;
          const deadKey = `${job.id}|${key}`;
          if (dead.has(deadKey)) continue;
          if (target?.proxy !== undefined && !isRunning(target.proxy)) {
            dead.add(deadKey);
            const e = `${target.proxy.name} (pid ${target.proxy.pid}) has exited: ${target.proxy.stderr().slice(0, 300)}`;
            for (const m of job.metrics) samples.fail(m, key, e);
            problem(`${job.id} ${key}: FAILED: ${e}`);
            continue;
          }
          try {
            const { values, detail } = await job.measure(key);
            for (const [m, v] of Object.entries(values)) samples.add(m, key, v);
            const finite: Record<string, number> = {};
            for (const [m, v] of Object.entries(values)) if (v !== undefined) finite[m] = v;
            samples.raw.push({ round, job: job.id, path: key, values: finite, detail });
          } catch (e) {
            for (const m of job.metrics) samples.fail(m, key, errorText(e));
            problem(`${job.id} ${key} (round ${round + 1}): FAILED: ${errorText(e)}`);
          }
        }
      }
      log(`  round ${round + 1}/${s.rounds} (${((performance.now() - roundStartMs) / 1000).toFixed(1)} s)`);
    }
  } finally {
    await Promise.all(longLived.map((c) => stopChild(c)));
    unpin();
    rmSync(dir, { recursive: true, force: true });
  }

  const stats = (xs: readonly number[], error: string | null, direct: number | undefined, haproxy: number | undefined): CellStats => {
    const m = median(xs);
    const finite = xs.filter(Number.isFinite);
    const spreadPct = finite.length === 0 ? NaN : ((Math.max(...finite) - Math.min(...finite)) / m) * 100;
    return { samples: xs, median: m, spreadPct, toDirect: ratio(m, direct), toHaproxy: ratio(m, haproxy), error };
  };
  const metrics: MetricResult[] = METRICS.map((d) => {
    const med = (p: PeerPath): number | undefined => {
      const xs = samples.get(d.id, p);
      return xs.length === 0 ? undefined : median(xs);
    };
    const [direct, haproxy] = [med('direct'), med('haproxy')];
    const cells = {} as Record<PeerPath, CellStats | null>;
    for (const p of PEER_PATHS) {
      const xs = samples.get(d.id, p);
      const err = samples.error(d.id, p);
      cells[p] = (d.proxyOnly && p === 'direct') || (xs.length === 0 && err === null) ? null : stats(xs, err, direct, haproxy);
    }
    return { id: d.id, label: d.label, unit: d.unit, higherIsBetter: d.higherIsBetter, cells };
  });
  const peekSamples = (metric: 'rate' | 'cpu', id: PeekId): number[] =>
    id === 'http-none' ? samples.get(metric === 'rate' ? 'conn-rate' : 'conn-cpu', 'tether-none') : samples.get(`peek-${metric}`, id);
  const peek: PeekResult[] = PEEKS.map((v) => {
    const rateXs = peekSamples('rate', v.id);
    const cpuXs = peekSamples('cpu', v.id);
    const err = v.id === 'http-none' ? samples.error('conn-rate', 'tether-none') : samples.error('peek-rate', v.id);
    const baseRate = median(peekSamples('rate', v.baseline));
    const baseCpu = median(peekSamples('cpu', v.baseline));
    const rate = rateXs.length === 0 && err === null ? null : stats(rateXs, err, undefined, undefined);
    const cpuUs = cpuXs.length === 0 ? null : stats(cpuXs, null, undefined, undefined);
    return {
      id: v.id,
      group: v.group,
      label: `tether ${v.args.join(' ')}`,
      baseline: v.baseline,
      unit: v.unit,
      rate,
      cpuUs,
      rateRatio: ratio(rate?.median, baseRate),
      cpuRatio: ratio(cpuUs?.median, baseCpu),
      cpuDeltaUs: (cpuUs?.median ?? NaN) - baseCpu,
    };
  });
  return {
    settings: s,
    pinned: pinner.pinned,
    notes,
    tools,
    commands: rig.commands,
    metrics,
    peek,
    raw: samples.raw,
    problems,
    elapsedS: (performance.now() - startedMs) / 1000,
  };
}

/**
 * The fresh-process rows, one sample: start the proxy of `p` in front of the hello server,
 * wait (in /proc, no connection) until it listens; RSS then is "before the first connection";
 * then `idleWarmup` connections opened and closed, RSS, `idleConnections` opened (each proven
 * spliced by the hello byte) and held, RSS again. The growth per connection is the row.
 */
async function measureMemory(rig: Rig, p: ProxyPath, helloPort: number): Promise<{ values: Record<string, number>; detail: Record<string, unknown> }> {
  const { s } = rig.env;
  const port = await freePort();
  const child = spawnProxy(rig, p, port, helloPort);
  try {
    await waitForPort(child, port, LISTEN_TIMEOUT_MS);
    await sleep(s.settleMs);
    const rss0Kib = readRssKib(child.pid);
    const warm = await openIdle(port, s.idleWarmup, s.idleConcurrency, s.idleTimeLimitMs);
    for (const sock of warm.sockets) sock.destroy();
    await sleep(s.settleMs);
    const beforeKib = readRssKib(child.pid);
    const { sockets, errors } = await openIdle(port, s.idleConnections, s.idleConcurrency, s.idleTimeLimitMs);
    try {
      await sleep(s.settleMs);
      const afterKib = readRssKib(child.pid);
      if (sockets.length === 0) throw new Error(`no idle connection opened (${errors} errors)`);
      if (!isRunning(child)) throw new Error(`${child.name} exited while connections were held: ${child.stderr().slice(0, 300)}`);
      return {
        values: { rss0: rss0Kib / 1024, 'idle-rss': (afterKib - beforeKib) / sockets.length },
        detail: { rss0Kib, warmOpened: warm.sockets.length, beforeKib, afterKib, opened: sockets.length, errors },
      };
    } finally {
      for (const sock of sockets) sock.destroy();
    }
  } finally {
    await stopChild(child);
  }
}

/** The start row, one sample: spawn → the first connect that succeeds, polled every 2 ms. */
async function measureStart(rig: Rig, p: ProxyPath, backendPort: number): Promise<{ values: Record<string, number>; detail: Record<string, unknown> }> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawnProxy(rig, p, port, backendPort);
  try {
    const ms = await msUntilConnects(child, port, t0);
    return { values: { start: ms }, detail: { ms, port } };
  } finally {
    await stopChild(child);
  }
}

// ---- rendering -------------------------------------------------------------------------------

function fmtRatio(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}x` : 'n/a';
}

function fmtValue(v: number | undefined, unit: string): string {
  if (v === undefined || !Number.isFinite(v)) return 'n/a';
  return unit === 'ms' && Math.abs(v) < 10 ? v.toFixed(2) : fmt(v);
}

function cellText(c: CellStats | null, unit: string): string {
  if (c === null) return '-';
  if (c.samples.length === 0) return 'FAILED';
  const spread = Number.isFinite(c.spreadPct) ? ` ±${c.spreadPct.toFixed(0)}%` : '';
  return `${fmtValue(c.median, unit)}${spread}${c.error === null ? '' : '!'}`;
}

function rowLabel(m: MetricResult): string {
  return `${m.label} [${m.unit} ${m.higherIsBetter ? '↑' : '↓'}]`;
}

export function renderPeers(r: PeersResult): string {
  const shown = PEER_PATHS.filter((p) => r.metrics.some((m) => m.cells[p] !== null));
  const measured = r.metrics.filter((m) => shown.some((p) => m.cells[p] !== null));
  const n = Math.max(0, ...r.raw.map((x) => x.round + 1));
  const values = table(
    ['peers: median ±spread', ...shown.map((p) => PATH_LABELS[p])],
    measured.map((m) => [rowLabel(m), ...shown.map((p) => cellText(m.cells[p], m.unit))]),
  );
  // Against direct, only the rows direct has (the proxy's own CPU, memory and start-up it has not).
  const ratios = (title: string, pick: (c: CellStats) => number, skip: PeerPath): string =>
    !shown.includes(skip) ? `${title}: none (no ${PATH_LABELS[skip]} figures in this run)` : table(
      [title, ...shown.filter((p) => p !== skip).map((p) => PATH_LABELS[p])],
      measured.filter((m) => m.cells[skip] !== null).map((m) => [rowLabel(m), ...shown.filter((p) => p !== skip).map((p) => {
        const c = m.cells[p];
        return c === null ? '-' : fmtRatio(pick(c));
      })]),
    );
  const peekRows = r.peek.filter((v) => v.rate !== null);
  const peek = table(
    ['cost of peeking (tether only)', 'rate', 'CPU µs/conn', 'rate ÷ none', 'CPU ÷ none', 'Δ CPU µs'],
    peekRows.map((v) => [
      `${v.group}: ${v.label}${v.id === 'http-none' ? ' (= main table)' : ''}`,
      `${cellText(v.rate, v.unit)} ${v.unit}`,
      cellText(v.cpuUs, 'µs'),
      v.id === v.baseline ? '' : fmtRatio(v.rateRatio),
      v.id === v.baseline ? '' : fmtRatio(v.cpuRatio),
      v.id === v.baseline || !Number.isFinite(v.cpuDeltaUs) ? '' : `${v.cpuDeltaUs >= 0 ? '+' : ''}${fmt(v.cpuDeltaUs)}`,
    ]),
  );
  const legend =
    `  (median of ${n} round(s) (RSS and start rows: ${Math.min(r.settings.rounds, r.settings.processRounds)}); ±spread = (max − min) / median;` +
    ` ! = at least one sample failed; - = not applicable or not run; ↑/↓ = higher/lower is better; ratios are plain value ratios;` +
    ` ${r.pinned ? 'proxy pinned to CPU 0, the rest to CPU 1' : 'UNPINNED'})`;
  return [values, legend, '', ratios('ratio to direct', (c) => c.toDirect, 'direct'), '', ratios('ratio to haproxy', (c) => c.toHaproxy, 'haproxy'), '', peek, '', renderPeersMarkdown(r)].join('\n');
}

/**
 * The README table: rows × [tether none, tether hash, naive, nginx] as ratios to HAProxy, and
 * HAProxy's own value.
 */
export function renderPeersMarkdown(r: PeersResult): string {
  const cols: PeerPath[] = ['tether-none', 'tether-hash', 'naive', 'nginx'];
  const head = `| row | HAProxy | ${cols.map((p) => `${PATH_LABELS[p]} ÷ HAProxy`).join(' | ')} |`;
  const sep = `|---|---:|${cols.map(() => '---:').join('|')}|`;
  const lines = r.metrics
    .filter((m) => m.cells.haproxy !== null)
    .map((m) => {
      const h = m.cells.haproxy;
      return `| ${m.label} (${m.unit}, ${m.higherIsBetter ? 'higher' : 'lower'} is better) | ${h === null ? 'n/a' : `${fmtValue(h.median, m.unit)} ${m.unit}`} | ${cols
        .map((p) => {
          const c = m.cells[p];
          return c === null ? 'n/a' : fmtRatio(c.toHaproxy).replace(/x$/, '×');
        })
        .join(' | ')} |`;
    });
  if (lines.length === 0) return 'README table (markdown): none, no HAProxy figures in this run (see the notes above).';
  return ['README table (markdown):', '', head, sep, ...lines].join('\n');
}
