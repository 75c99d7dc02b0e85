// The bench's "slowpeek" section: do slow peekers cost normal clients their latency? tether
// cuts a client that starts a TLS record and then trickles (a byte a second) at --peek-timeout
// (default 3 s; peek.slow lines at warn). Normal TLS requests go through one tether
// (--affinity sni) in phases A (nothing else) and B (COUNT slow peekers held open by
// dist/bench/slow-peekers.js, a cut one replaced at once), interleaved A B A B so that noise
// on the machine hits both; reported: p50/p99 of each phase and of all A vs all B, the ratio
// B/A, the peekers cut per second (counted by the peekers and by tether's peek.slow lines), and
// tether's CPU, RSS and open fds during each phase.
// A normal request: tls.connect (full handshake, SNI, no session, rejectUnauthorized false) to
// the peek backend's TLS server, its one byte, a 32-byte request echoed back, close. Latency:
// tls.connect() to the last byte of the echo, measured in this process (not the peekers').
// Loopback only; every loop is bounded in count and time; only the processes started here are
// stopped, by PID.
import { readdirSync } from 'node:fs';
import tls from 'node:tls';
import { spawnNode, stopChild, waitForJsonLine, waitForListenPort, type Child } from './children.js';
import { quantile } from './load.js';
import { readCpuNs, readMachineCpu, readRssKib } from './proc-stats.js';
import { errorText, fmt, sleep, table } from './format.js';

const HOST = '127.0.0.1';
const REQUEST = Buffer.alloc(32, 0x71);
/** The peek backend's TLS server writes this one byte first. */
const HELLO_BYTES = 1;
/** A normal request with no answer within this long fails (and ends its loop's wait). */
const REQUEST_TIMEOUT_MS = 10_000;
/** How often tether's RSS and open fds are read during a phase. */
const PROC_POLL_MS = 250;

export interface SlowpeekSettings {
  /** Slow peekers held open during the B phases. */
  readonly peekers: number;
  /** Rounds of A then B. */
  readonly rounds: number;
  /** Normal clients: concurrent loops, a pause between one loop's requests, at most this many requests, for this long (each phase). */
  readonly loops: number;
  readonly gapMs: number;
  readonly maxRequests: number;
  readonly phaseMs: number;
  /** Normal requests before the first phase (JIT, pools, session caches). */
  readonly warmupMs: number;
  /** The peekers open their first COUNT over this long: tether's peek timeout, so the cuts spread evenly. */
  readonly rampMs: number;
  /** After the ramp before measuring (cuts and replacements running), and after a phase. */
  readonly settleMs: number;
}

export interface SlowpeekEnv {
  readonly s: SlowpeekSettings;
  readonly tetherBin: string;
  readonly peekersJs: string;
  readonly backend: { readonly pid: number; readonly tlsPort: number };
  readonly servername: string;
  readonly log: (line: string) => void;
  /** Waits (bounded) for a quiet machine; called before each phase, before any peeker is started. */
  readonly waitForQuiet: () => Promise<void>;
}

export interface SlowpeekPhase {
  readonly id: string;
  readonly withPeekers: boolean;
  readonly requests: number;
  readonly errors: number;
  readonly firstError: string | null;
  readonly elapsedMs: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Peekers open (their own count), mean of the once-a-second readings in the phase; null in A. */
  readonly peekersOpen: number | null;
  /** Peekers closed by tether per second, counted by the peekers; null in A. */
  readonly peekersCutPerS: number | null;
  /** Cuts per second from the `cut` of tether's peek.slow lines that arrived in the phase (over their span). */
  readonly peekSlowCutPerS: number;
  /** Median life of a cut peeker, connect → close, ms (the peekers' latest ones); null in A. */
  readonly cutLifeP50Ms: number | null;
  /** Peeker connects that failed during the phase; null in A. */
  readonly peekersFailed: number | null;
  /** CPU in % of one core over the phase. */
  readonly tetherCpuPct: number;
  readonly backendCpuPct: number;
  readonly peekersCpuPct: number | null;
  readonly loadCpuPct: number;
  /** Share of the machine (all cores) used by processes other than these, 0..1. */
  readonly otherCpuShare: number;
  readonly tetherRssMaxKib: number;
  readonly tetherFdsMax: number;
}

export interface SlowpeekResult {
  readonly settings: SlowpeekSettings;
  readonly command: string;
  readonly phases: readonly SlowpeekPhase[];
  /** All A requests together vs all B requests together. */
  readonly all: {
    readonly a: { readonly requests: number; readonly p50Ms: number; readonly p99Ms: number };
    readonly b: { readonly requests: number; readonly p50Ms: number; readonly p99Ms: number };
  };
  readonly ratios: { readonly p50: number; readonly p99: number };
  /** B_i / A_i of each round. */
  readonly roundRatios: readonly { readonly round: number; readonly p50: number; readonly p99: number }[];
  /** peek.slow lines seen, and the other warn/error lines of tether (by event). */
  readonly tetherLines: Readonly<Record<string, number>>;
  readonly problems: readonly string[];
}

interface PeekersStats {
  readonly atMs: number;
  readonly open: number;
  readonly connecting: number;
  readonly opened: number;
  readonly cut: number;
  readonly failed: number;
  readonly firstError: string | null;
  readonly cutLifeP50Ms: number | null;
}

function isPeekersLine(v: unknown, event: string): v is PeekersStats & { event: string } {
  return typeof v === 'object' && v !== null && (v as { event?: unknown }).event === event && typeof (v as { cut?: unknown }).cut === 'number';
}

function parseJson(line: string): unknown {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line);
  } catch {
    return undefined; // not a JSON line
  }
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN; // the process is gone
  }
}

/** One normal request (see the file comment); resolves with its latency in ms. */
function requestOnce(port: number, servername: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const socket = tls.connect({ host: HOST, port, servername, rejectUnauthorized: false });
    let received = 0;
    let settled = false;
    const timer = setTimeout(() => {
      settle(new Error(`TLS request to port ${port}: no answer within ${REQUEST_TIMEOUT_MS} ms`));
    }, REQUEST_TIMEOUT_MS);
    socket.on('error', (e: Error) => {
      settle(e);
    });
    function settle(err: Error | undefined): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err === undefined) resolve(performance.now() - t);
      else reject(err);
    }
    socket.on('data', (d: Buffer) => {
      const before = received;
      received += d.length;
      if (before < HELLO_BYTES && received >= HELLO_BYTES) socket.write(REQUEST);
      if (received >= HELLO_BYTES + REQUEST.length) settle(undefined);
    });
    socket.once('end', () => {
      settle(new Error(`TLS request to port ${port}: closed after ${received} of ${HELLO_BYTES + REQUEST.length} bytes`));
    });
  });
}

interface LoopRun {
  readonly latencies: Float64Array;
  readonly errors: number;
  readonly firstError: string | undefined;
  readonly elapsedMs: number;
}

/** `loops` loops of requestOnce with `gapMs` between one loop's requests, until `max` started or `timeLimitMs` passed. */
async function requestLoops(port: number, servername: string, loops: number, gapMs: number, max: number, timeLimitMs: number): Promise<LoopRun> {
  const latencies = new Float64Array(max);
  let started = 0;
  let done = 0;
  let errors = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const stopAtMs = t0 + timeLimitMs;
  const loop = async (): Promise<void> => {
    while (started < max && performance.now() < stopAtMs) {
      started++;
      try {
        const ms = await requestOnce(port, servername);
        latencies[done++] = ms;
      } catch (e) {
        errors++;
        firstError ??= errorText(e);
      }
      if (gapMs > 0) await sleep(gapMs);
    }
  };
  await Promise.all(Array.from({ length: loops }, loop));
  return { latencies: latencies.slice(0, done), errors, firstError, elapsedMs: performance.now() - t0 };
}

interface Peekers {
  readonly child: Child;
  /** The latest peekers.stats (or ready) line. */
  latest(): PeekersStats;
  /** `open` of every stats line since the last call. */
  takeOpen(): number[];
}

async function startPeekers(env: SlowpeekEnv, port: number): Promise<Peekers> {
  const s = env.s;
  // Its own bound: the ramp, settling, the phase, a request's timeout, and some margin.
  const maxMs = s.rampMs + 2 * s.settleMs + s.phaseMs + REQUEST_TIMEOUT_MS + 30_000;
  const child = spawnNode('slow-peekers', [env.peekersJs, String(port), String(s.peekers), String(s.rampMs), String(maxMs)], 'pipe');
  const ready = await waitForJsonLine(child, (v): v is PeekersStats & { event: string } => isPeekersLine(v, 'peekers.ready'), s.rampMs + 30_000);
  let latest: PeekersStats = ready;
  let opens: number[] = [];
  child.onLine((line) => {
    const v = parseJson(line);
    if (isPeekersLine(v, 'peekers.stats')) {
      latest = v;
      opens.push(v.open);
    }
  });
  return {
    child,
    latest: () => latest,
    takeOpen: () => {
      const o = opens;
      opens = [];
      return o;
    },
  };
}

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

function ratioOf(a: number, b: number): number {
  return b === 0 || !Number.isFinite(a) || !Number.isFinite(b) ? NaN : a / b;
}

export async function runSlowpeek(env: SlowpeekEnv): Promise<SlowpeekResult> {
  const s = env.s;
  const problems: string[] = [];
  const phases: SlowpeekPhase[] = [];
  const latA: Float64Array[] = [];
  const latB: Float64Array[] = [];
  const tetherLines: Record<string, number> = {};
  const cuts: { atMs: number; cut: number }[] = [];
  const args = ['--listen', '127.0.0.1:0', '--backend', `b=127.0.0.1:${env.backend.tlsPort}`, '--affinity', 'sni', '--log-level', 'warn', '--grace', '1s'];
  const tether = spawnNode('tether slowpeek', [env.tetherBin, ...args]);
  tether.onLine((line) => {
    const v = parseJson(line) as { event?: unknown; cut?: unknown } | undefined;
    const event = typeof v?.event === 'string' ? v.event : 'other';
    tetherLines[event] = (tetherLines[event] ?? 0) + 1;
    if (event === 'peek.slow' && typeof v?.cut === 'number') cuts.push({ atMs: performance.now(), cut: v.cut });
  });
  let peekers: Peekers | undefined;
  try {
    const port = await waitForListenPort(tether);
    await requestLoops(port, env.servername, s.loops, s.gapMs, s.maxRequests, s.warmupMs);

    const measure = async (id: string, p: Peekers | undefined): Promise<SlowpeekPhase> => {
      gc();
      const cpu = (): { tether: number; backend: number; peekers: number; load: number } => ({
        tether: readCpuNs(tether.pid),
        backend: readCpuNs(env.backend.pid),
        peekers: p === undefined ? 0 : readCpuNs(p.child.pid),
        load: readCpuNs(process.pid),
      });
      let rssMax = readRssKib(tether.pid);
      let fdsMax = openFds(tether.pid);
      const poll = setInterval(() => {
        rssMax = Math.max(rssMax, readRssKib(tether.pid));
        fdsMax = Math.max(fdsMax, openFds(tether.pid));
      }, PROC_POLL_MS);
      p?.takeOpen();
      const s0 = p?.latest();
      const c0 = cpu();
      const m0 = readMachineCpu();
      const t0 = performance.now();
      let r: LoopRun;
      try {
        r = await requestLoops(port, env.servername, s.loops, s.gapMs, s.maxRequests, s.phaseMs);
      } finally {
        clearInterval(poll);
      }
      const t1 = performance.now();
      const m1 = readMachineCpu();
      const c1 = cpu();
      const s1 = p?.latest();
      const opens = p?.takeOpen() ?? [];
      const wallMs = t1 - t0;
      const pct = (k: 'tether' | 'backend' | 'peekers' | 'load'): number => ((c1[k] - c0[k]) / 1e6 / wallMs) * 100;
      const ownMs = ((c1.tether - c0.tether + c1.backend - c0.backend + c1.peekers - c0.peekers + c1.load - c0.load) / 1e6);
      const otherCpuShare = Math.max(0, (m1.busyMs - m0.busyMs - ownMs) / Math.max(1, m1.totalMs - m0.totalMs));
      // The peekers' counters are read once a second: the cut rate is over the span of those readings.
      const peekSpanS = s0 === undefined || s1 === undefined ? NaN : (s1.atMs - s0.atMs) / 1000;
      // A peek.slow line's cut counts the cuts since the line before it (one line a second at
      // most): the rate is over the span from the phase's first line to its last.
      const lines = cuts.filter((c) => c.atMs >= t0 && c.atMs < t1);
      const first = lines[0];
      const last = lines[lines.length - 1];
      const peekSlowCutPerS =
        first === undefined || last === undefined || last === first ? 0 : (lines.slice(1).reduce((n, c) => n + c.cut, 0) * 1000) / (last.atMs - first.atMs);
      if (r.errors > 0) problems.push(`${id}: ${r.errors} of ${r.latencies.length + r.errors} normal requests failed (first: ${r.firstError ?? '?'})`);
      if (r.latencies.length === 0) throw new Error(`${id}: no normal request completed (${r.errors} errors; first: ${r.firstError ?? '?'})`);
      (p === undefined ? latA : latB).push(r.latencies);
      return {
        id,
        withPeekers: p !== undefined,
        requests: r.latencies.length,
        errors: r.errors,
        firstError: r.firstError ?? null,
        elapsedMs: r.elapsedMs,
        perSecond: r.latencies.length / (r.elapsedMs / 1000),
        p50Ms: quantile(r.latencies, 0.5),
        p99Ms: quantile(r.latencies, 0.99),
        maxMs: quantile(r.latencies, 1),
        peekersOpen: p === undefined ? null : mean(opens),
        peekersCutPerS: s0 === undefined || s1 === undefined || !(peekSpanS > 0) ? null : (s1.cut - s0.cut) / peekSpanS,
        peekSlowCutPerS,
        cutLifeP50Ms: s1?.cutLifeP50Ms ?? null,
        peekersFailed: s0 === undefined || s1 === undefined ? null : s1.failed - s0.failed,
        tetherCpuPct: pct('tether'),
        backendCpuPct: pct('backend'),
        peekersCpuPct: p === undefined ? null : pct('peekers'),
        loadCpuPct: pct('load'),
        otherCpuShare,
        tetherRssMaxKib: rssMax,
        tetherFdsMax: fdsMax,
      };
    };

    for (let round = 1; round <= s.rounds; round++) {
      await env.waitForQuiet();
      env.log(`  A${round}: no peekers …`);
      phases.push(await measure(`A${round}`, undefined));
      await sleep(s.settleMs);
      await env.waitForQuiet();
      env.log(`  B${round}: ${s.peekers} slow peekers …`);
      peekers = await startPeekers(env, port);
      await sleep(s.settleMs);
      const phase = await measure(`B${round}`, peekers);
      phases.push(phase);
      if (phase.peekersFailed !== null && phase.peekersFailed > 0) problems.push(`B${round}: ${phase.peekersFailed} peeker connects failed (first: ${peekers.latest().firstError ?? '?'})`);
      await stopChild(peekers.child);
      peekers = undefined;
      await sleep(s.settleMs);
    }
  } finally {
    await Promise.all([...(peekers ? [stopChild(peekers.child)] : []), stopChild(tether)]);
  }
  const pooled = (xs: readonly Float64Array[]): { requests: number; p50Ms: number; p99Ms: number } => {
    const all = new Float64Array(xs.reduce((n, x) => n + x.length, 0));
    let at = 0;
    for (const x of xs) {
      all.set(x, at);
      at += x.length;
    }
    return { requests: all.length, p50Ms: quantile(all, 0.5), p99Ms: quantile(all, 0.99) };
  };
  const a = pooled(latA);
  const b = pooled(latB);
  if ((tetherLines['peek.slow'] ?? 0) === 0) problems.push('tether logged no peek.slow line: no peeker was cut');
  return {
    settings: s,
    command: `node bin/tether ${args.join(' ')}`,
    phases,
    all: { a, b },
    ratios: { p50: ratioOf(b.p50Ms, a.p50Ms), p99: ratioOf(b.p99Ms, a.p99Ms) },
    roundRatios: Array.from({ length: s.rounds }, (_, i) => {
      const [pa, pb] = [phases.find((p) => p.id === `A${i + 1}`), phases.find((p) => p.id === `B${i + 1}`)];
      return { round: i + 1, p50: ratioOf(pb?.p50Ms ?? NaN, pa?.p50Ms ?? NaN), p99: ratioOf(pb?.p99Ms ?? NaN, pa?.p99Ms ?? NaN) };
    }),
    tetherLines,
    problems,
  };
}

function fmtMs(v: number): string {
  return Number.isFinite(v) ? (Math.abs(v) < 1 ? v.toFixed(3) : fmt(v)) : 'n/a';
}

function fmtRatio(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}x` : 'n/a';
}

export function renderSlowpeek(r: SlowpeekResult, otherFlagShare: number): string {
  const s = r.settings;
  const out: string[] = [];
  out.push(
    `slowpeek: normal TLS requests (full handshake, SNI, 32 B echo, close; ${s.loops} loops, ${s.gapMs} ms between a loop's requests)` +
      ` without (A) and with (B) ${s.peekers.toLocaleString('en-US')} slow peekers (TLS record start, then 1 byte/s; cut at tether's --peek-timeout, replaced at once)`,
  );
  const num = (v: number | null, f: (x: number) => string = fmt): string => (v === null ? '-' : f(v));
  out.push(
    table(
      ['phase', 'peekers open', 'requests', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'cut/s (peekers)', 'cut/s (peek.slow)', 'cut life p50 s', 'tether CPU %', 'tether RSS MiB', 'tether fds', 'peekers CPU %', 'other CPU %'],
      r.phases.map((p) => {
        const flag = p.otherCpuShare > otherFlagShare ? '*' : '';
        return [
          p.id,
          num(p.peekersOpen, (x) => Math.round(x).toLocaleString('en-US')),
          p.requests.toLocaleString('en-US'),
          fmt(p.perSecond),
          `${fmtMs(p.p50Ms)}${flag}`,
          `${fmtMs(p.p99Ms)}${flag}`,
          fmtMs(p.maxMs),
          num(p.peekersCutPerS),
          fmt(p.peekSlowCutPerS),
          num(p.cutLifeP50Ms, (x) => (x / 1000).toFixed(2)),
          fmt(p.tetherCpuPct),
          fmt(p.tetherRssMaxKib / 1024),
          p.tetherFdsMax.toLocaleString('en-US'),
          num(p.peekersCpuPct),
          fmt(p.otherCpuShare * 100),
        ];
      }),
    ),
  );
  out.push('');
  out.push(
    table(
      ['pooled', 'requests', 'p50 ms', 'p99 ms'],
      [
        ['all A (no peekers)', r.all.a.requests.toLocaleString('en-US'), fmtMs(r.all.a.p50Ms), fmtMs(r.all.a.p99Ms)],
        [`all B (${s.peekers.toLocaleString('en-US')} peekers)`, r.all.b.requests.toLocaleString('en-US'), fmtMs(r.all.b.p50Ms), fmtMs(r.all.b.p99Ms)],
        ['ratio B/A', '', fmtRatio(r.ratios.p50), fmtRatio(r.ratios.p99)],
        ...r.roundRatios.map((x) => [`  round ${x.round}: B${x.round}/A${x.round}`, '', fmtRatio(x.p50), fmtRatio(x.p99)]),
      ],
    ),
  );
  out.push(
    `  (goal: p99 B/A ≤ 2x — ${Number.isFinite(r.ratios.p99) ? (r.ratios.p99 <= 2 ? 'met' : 'NOT met') : 'n/a'}; tether CPU % of one core and RSS/fds maxima over each phase;` +
      ` cut/s (peekers) from the peekers' own once-a-second counts, (peek.slow) from the cut fields of tether's lines in the phase; * = other processes used >${otherFlagShare * 100}% of the machine)`,
  );
  for (const p of r.problems) out.push(`  PROBLEM: ${p}`);
  return out.join('\n');
}
