// The soak: many short connections through one real tether (`node bin/tether`, source affinity,
// an admin port) to three named backends on loopback, then whether tether gave back what they
// took: descriptors, RSS, affinity-table entries and open clients, read before the loop, after
// warm-up and after the loop plus settle time. Each client connects from one of many 127.0.0.0/8
// addresses (so table entries are created, hit and expire), reads the backend's name, sends a
// few bytes, reads the echo and closes; a small share resets mid-stream, closes before sending,
// or stays silent until tether's --idle-timeout cuts it.
//
//   npm run soak                                    200,000 connections, at most 10 minutes
//   npm run soak -- --connections 20000 --concurrency 32
//
// Prints a report and a verdict line; exits 1 when the verdict fails, 2 when the soak could not
// run. The load and the backends run in this process; only 127.0.0.0/8 is used; only the tether
// started here is stopped (by PID), on every way out.
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { greetAndEcho, startBackend, type TestBackend } from '../test/helpers/named-backend.js';
import { adminOk, sourceAddress } from './admin-client.js';
import { killAllNow, spawnNode, stopAll, stopChild, waitForListenPort, waitForPort, type Child } from './children.js';
import { fmt, sleep, table } from './format.js';
import { freePort } from './ops.js';
import { quantile } from './load.js';
import { readCpuNs, readRssKib } from './proc-stats.js';
import { judgeSoak, renderVerdict, type SoakPeak, type SoakReading } from './soak-verdict.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const TETHER_BIN = path.resolve(HERE, '..', '..', 'bin', 'tether');
const HOST = '127.0.0.1';
const BACKEND_NAMES = ['a', 'b', 'c'] as const;

/**
 * Sources: even clients come from one of REGULAR_SOURCES addresses (back within a second or so:
 * table hits), odd ones walk ROTATING_SOURCES others (back only after ~2×that many clients, long
 * expired: misses that insert). At ~1,000 clients/s the table then holds about the regulars
 * plus --affinity-timeout's worth of rotating ones.
 */
const REGULAR_SOURCES = 256;
const ROTATING_SOURCES = 65_280;
/** The abnormal clients' shares, per 400 clients: 8 resets, 8 early closes, 1 silent (2 %, 2 %, 0.25 %). */
const MIX_PERIOD = 400;
/** A client that has not finished by then failed (`timeout`); silent ones get --idle-timeout on top. */
const CLIENT_TIMEOUT_MS = 10_000;
/** /proc is read this often during the loop for the peaks; the admin API every ADMIN_POLL_MS. */
const PROC_POLL_MS = 250;
const ADMIN_POLL_MS = 1_000;
/** After a probe client closed, time for tether to finish closing its sockets before a reading. */
const QUIET_MS = 500;

type ClientKind = 'normal' | 'reset' | 'early-close' | 'silent';

const KIND_LABELS: Record<ClientKind, string> = {
  normal: 'normal (name, echo, close)',
  reset: 'reset mid-stream',
  'early-close': 'close before sending',
  silent: 'silent, cut at --idle-timeout',
};

interface Settings {
  readonly connections: number;
  readonly maxMinutes: number;
  readonly concurrency: number;
  readonly warmup: number;
  readonly affinityTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly settleMs: number;
  readonly fdSlack: number;
  readonly rssSlackMib: number;
  readonly maxFailures: number;
}

/** What one client saw: `failure` names what went wrong (undefined: as expected of its kind). */
interface Outcome {
  readonly kind: ClientKind;
  readonly failure: string | undefined;
  readonly backend: string | undefined;
  readonly ms: number;
}

function kindOf(i: number): ClientKind {
  const r = i % MIX_PERIOD;
  if (r === 0) return 'silent';
  if (r % 50 === 1) return 'reset';
  if (r % 50 === 2) return 'early-close';
  return 'normal';
}

/** Regular sources are 127.1.0.0 … 127.1.0.255, rotating ones follow (see sourceAddress). */
function sourceOf(i: number): { address: string; regular: number | undefined } {
  const j = Math.floor(i / 2);
  return i % 2 === 0 ? { address: sourceAddress(j % REGULAR_SOURCES), regular: j % REGULAR_SOURCES } : { address: sourceAddress(REGULAR_SOURCES + (j % ROTATING_SOURCES)), regular: undefined };
}

function codeOf(e: Error): string {
  const code = (e as NodeJS.ErrnoException).code;
  return typeof code === 'string' ? code : e.message;
}

/**
 * One client of `kind` from `localAddress` (undefined: the default source) to tether on
 * `port`. Resolves once its socket has closed or after its hard timer; never rejects.
 */
function runClient(port: number, kind: ClientKind, localAddress: string | undefined, i: number, idleTimeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const payload = `soak ${i}\n`;
    const socket = net.connect({ host: HOST, port, noDelay: true, ...(localAddress === undefined ? {} : { localAddress }) });
    let connected = false;
    let got = '';
    let name: string | undefined;
    let failure: string | undefined;
    let done = false;
    const settle = (): void => {
      clearTimeout(timer);
      resolve({ kind, failure, backend: name, ms: performance.now() - t0 });
    };
    const fail = (what: string): void => {
      failure ??= what;
      socket.destroy();
    };
    const timer = setTimeout(
      () => {
        fail(kind === 'silent' ? 'silent-not-cut' : `timeout (${connected ? (name === undefined ? 'no name' : 'no echo') : 'no connect'})`);
      },
      kind === 'silent' ? idleTimeoutMs + CLIENT_TIMEOUT_MS : CLIENT_TIMEOUT_MS,
    );
    socket.on('error', (e: Error) => {
      failure ??= `${connected ? 'error' : 'connect'} ${codeOf(e)}`;
    });
    socket.once('connect', () => {
      connected = true;
      if (kind === 'early-close') socket.end();
    });
    socket.on('data', (d: Buffer) => {
      if (kind === 'early-close' || kind === 'silent') return;
      got += d.toString('latin1');
      if (name === undefined) {
        const nl = got.indexOf('\n');
        if (nl < 0) return;
        name = got.slice(0, nl);
        got = got.slice(nl + 1);
        socket.write(payload);
      }
      if (kind === 'reset') {
        // Mid-stream: the payload is on its way back (or some of it is here).
        if (got.length > 0) {
          done = true;
          socket.resetAndDestroy();
        }
        return;
      }
      if (got.length < payload.length) return;
      if (got !== payload) {
        fail('bad-echo');
        return;
      }
      done = true;
      socket.end();
    });
    socket.on('end', () => {
      if ((kind === 'normal' || kind === 'reset') && !done) failure ??= name === undefined ? 'closed before the name' : 'closed before the echo';
    });
    socket.once('close', () => {
      if (failure === undefined && kind === 'silent' && performance.now() - t0 < idleTimeoutMs * 0.9) failure = 'silent-cut-early';
      settle();
    });
  });
}

interface LoopResult {
  readonly started: number;
  readonly elapsedMs: number;
  readonly stoppedBy: 'count' | 'time';
  readonly byKind: Record<ClientKind, number>;
  readonly failures: ReadonlyMap<string, number>;
  readonly latencies: Float64Array;
}

/**
 * Runs clients `from` … `from + count - 1` with `concurrency` in flight, until all are done,
 * no new one may start after `stopAtMs`, or `isTetherUp` says tether is gone. Every failure is
 * counted by kind; an affinity mismatch (a regular source answered by another backend than
 * before) is one too. Never rejects.
 */
async function runLoop(port: number, from: number, count: number, concurrency: number, stopAtMs: number, idleTimeoutMs: number, isTetherUp: () => boolean): Promise<LoopResult> {
  const t0 = performance.now();
  const byKind: Record<ClientKind, number> = { normal: 0, reset: 0, 'early-close': 0, silent: 0 };
  const failures = new Map<string, number>();
  const latencies = new Float64Array(count);
  const pinned = new Map<number, string>();
  let latencyCount = 0;
  let next = from;
  let stoppedBy: 'count' | 'time' = 'count';
  const count1 = (what: string): void => {
    failures.set(what, (failures.get(what) ?? 0) + 1);
  };
  const worker = async (): Promise<void> => {
    for (;;) {
      if (next >= from + count || !isTetherUp()) return;
      if (performance.now() >= stopAtMs) {
        stoppedBy = 'time';
        return;
      }
      const i = next++;
      const kind = kindOf(i);
      const src = sourceOf(i);
      const r = await runClient(port, kind, src.address, i, idleTimeoutMs);
      byKind[kind]++;
      if (r.failure !== undefined) {
        count1(`${kind}: ${r.failure}`);
        continue;
      }
      if (kind !== 'normal') continue;
      latencies[latencyCount++] = r.ms;
      if (src.regular !== undefined && r.backend !== undefined) {
        const before = pinned.get(src.regular);
        if (before === undefined) pinned.set(src.regular, r.backend);
        else if (before !== r.backend) count1(`normal: affinity mismatch (${before} then ${r.backend})`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { started: next - from, elapsedMs: performance.now() - t0, stoppedBy, byKind, failures, latencies: latencies.subarray(0, latencyCount) };
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** One request per connection (Connection: close), so no admin socket outlives a reading. */
const adminAgent = new http.Agent({ keepAlive: false });

async function readAdmin(adminPort: number): Promise<{ tableEntries: number; liveEntries: number; open: number }> {
  const fe = JSON.parse((await adminOk(adminAgent, adminPort, 'GET', '/frontends')).body) as { open?: unknown; pools?: { name?: unknown; table?: { entries?: unknown } }[] }[];
  const first = fe[0];
  const tableEntries = first?.pools?.find((p) => p.name === 'default')?.table?.entries;
  if (typeof first?.open !== 'number' || typeof tableEntries !== 'number') throw new Error('GET /frontends: no open count or table size');
  const live = (JSON.parse((await adminOk(adminAgent, adminPort, 'GET', '/affinity?limit=0')).body) as { total?: unknown }).total;
  if (typeof live !== 'number') throw new Error('GET /affinity: no total');
  return { tableEntries, liveEntries: live, open: first.open };
}

/** /proc first, then the admin API: the admin request's own socket is not counted. */
async function readTether(pid: number, adminPort: number): Promise<SoakReading> {
  const fds = openFds(pid);
  const rssKib = readRssKib(pid);
  return { fds, rssKib, ...(await readAdmin(adminPort)) };
}

/** Polls the admin API until the frontend has no open client; rejects after `timeoutMs`. */
async function waitForNoClients(adminPort: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const { open } = await readAdmin(adminPort);
    if (open === 0) return;
    if (performance.now() > deadline) throw new Error(`tether still has ${open} open clients ${timeoutMs} ms after the last one closed`);
    await sleep(100);
  }
}

interface Settled {
  /** Held / live entries after the settle, before the probe's insert swept the expired ones. */
  readonly heldBeforeProbe: number;
  readonly liveBeforeProbe: number;
  readonly reading: SoakReading;
}

/**
 * Waits until tether has no client, then --affinity-timeout plus `settleMs` so every entry has
 * expired; then one probe client from 127.0.0.1 (tether drops expired entries when it inserts
 * one, not on a timer), and reads tether once its sockets are closed.
 */
async function settleAndRead(s: Settings, tether: Child, port: number, adminPort: number): Promise<Settled> {
  await waitForNoClients(adminPort, s.idleTimeoutMs + CLIENT_TIMEOUT_MS);
  await sleep(s.affinityTimeoutMs + s.settleMs);
  const before = await readAdmin(adminPort);
  const probe = await runClient(port, 'normal', undefined, -1, s.idleTimeoutMs);
  if (probe.failure !== undefined) throw new Error(`the probe client failed: ${probe.failure}`);
  await waitForNoClients(adminPort, CLIENT_TIMEOUT_MS);
  await sleep(QUIET_MS);
  return { heldBeforeProbe: before.tableEntries, liveBeforeProbe: before.liveEntries, reading: await readTether(tether.pid, adminPort) };
}

interface Watched {
  readonly peak: SoakPeak;
  /** The highest RSS (KiB) read in each tenth of the watched time: a leak climbs, heap sizing levels off. */
  readonly rssTenthsKib: readonly number[];
}

/** Tracks the maxima of tether's readings, and its RSS over time, until stopped. */
function watchPeaks(pid: number, adminPort: number): { stop(): Promise<Watched>; add(r: Partial<SoakPeak>): void } {
  const t0 = performance.now();
  const peak = { fds: 0, rssKib: 0, tableEntries: 0, open: 0 };
  const rssSamples: { atMs: number; rssKib: number }[] = [];
  const add = (r: Partial<SoakPeak>): void => {
    peak.fds = Math.max(peak.fds, r.fds ?? 0);
    peak.rssKib = Math.max(peak.rssKib, r.rssKib ?? 0);
    peak.tableEntries = Math.max(peak.tableEntries, r.tableEntries ?? 0);
    peak.open = Math.max(peak.open, r.open ?? 0);
  };
  const proc = setInterval(() => {
    let r: { fds: number; rssKib: number };
    try {
      r = { fds: openFds(pid), rssKib: readRssKib(pid) };
    } catch {
      return; // tether is gone: the loop sees it and the soak ends with that error
    }
    add(r);
    rssSamples.push({ atMs: performance.now() - t0, rssKib: r.rssKib });
  }, PROC_POLL_MS);
  let inFlight: Promise<void> | undefined;
  let firstError: Error | undefined;
  const admin = setInterval(() => {
    inFlight ??= readAdmin(adminPort).then(
      (r) => {
        add(r);
        inFlight = undefined;
      },
      (e: unknown) => {
        firstError ??= e instanceof Error ? e : new Error(String(e));
        inFlight = undefined;
      },
    );
  }, ADMIN_POLL_MS);
  return {
    add,
    async stop() {
      clearInterval(proc);
      clearInterval(admin);
      await inFlight;
      if (firstError !== undefined) throw firstError;
      const spanMs = performance.now() - t0;
      const rssTenthsKib = Array.from({ length: 10 }, (_, k) =>
        rssSamples.filter((x) => x.atMs >= (k * spanMs) / 10 && x.atMs < ((k + 1) * spanMs) / 10).reduce((m, x) => Math.max(m, x.rssKib), 0),
      );
      return { peak: { ...peak }, rssTenthsKib };
    },
  };
}

function parseSettings(): Settings {
  const { values } = parseArgs({
    options: {
      connections: { type: 'string', default: '200000' },
      'max-minutes': { type: 'string', default: '10' },
      concurrency: { type: 'string', default: '64' },
      warmup: { type: 'string', default: '10000' },
      'affinity-timeout-ms': { type: 'string', default: '5000' },
      'idle-timeout-ms': { type: 'string', default: '1000' },
      'settle-ms': { type: 'string', default: '3000' },
      'fd-slack': { type: 'string', default: '2' },
      'rss-slack-mib': { type: 'string', default: '32' },
      'max-failures': { type: 'string', default: '0' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: node --expose-gc dist/bench/soak.js [--connections N] [--max-minutes M] [--concurrency N] [--warmup N]\n' +
        '         [--affinity-timeout-ms MS] [--idle-timeout-ms MS] [--settle-ms MS] [--fd-slack N] [--rss-slack-mib N] [--max-failures N]\n',
    );
    process.exit(0);
  }
  const num = (flag: keyof typeof values, min: number, max: number): number => {
    const v = Number(values[flag]);
    if (!Number.isFinite(v) || v < min || v > max) throw new Error(`--${flag}: a number from ${min} to ${max}`);
    return v;
  };
  return {
    connections: Math.round(num('connections', 1, 10_000_000)),
    maxMinutes: num('max-minutes', 0.01, 24 * 60),
    concurrency: Math.round(num('concurrency', 1, 4_096)),
    warmup: Math.round(num('warmup', 0, 1_000_000)),
    affinityTimeoutMs: Math.round(num('affinity-timeout-ms', 1_000, 3_600_000)),
    idleTimeoutMs: Math.round(num('idle-timeout-ms', 100, 60_000)),
    settleMs: Math.round(num('settle-ms', 0, 600_000)),
    fdSlack: Math.round(num('fd-slack', 0, 1_000)),
    rssSlackMib: num('rss-slack-mib', 0, 100_000),
    maxFailures: Math.round(num('max-failures', 0, 10_000_000)),
  };
}

function mib(kib: number): string {
  return (kib / 1024).toFixed(1);
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

async function main(): Promise<number> {
  const s = parseSettings();
  process.on('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      killAllNow();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
  const log = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };

  const backends: TestBackend[] = [];
  let tether: Child | undefined;
  try {
    for (const name of BACKEND_NAMES) backends.push(await startBackend(name, { behaviour: greetAndEcho }));
    const adminPort = await freePort();
    const args = [
      '--listen', `${HOST}:0`,
      ...backends.flatMap((b) => ['--backend', `${b.name}=${HOST}:${b.port}`]),
      '--affinity', 'source',
      '--affinity-timeout', `${s.affinityTimeoutMs}ms`,
      '--idle-timeout', `${s.idleTimeoutMs}ms`,
      '--admin', `${HOST}:${adminPort}`,
      '--log-level', 'warn',
      '--grace', '1s',
    ];
    const t = spawnNode('tether soak', [TETHER_BIN, ...args]);
    tether = t;
    const tetherLines = new Map<string, number>();
    t.onLine((line) => {
      let event = 'other';
      try {
        const v = JSON.parse(line) as { event?: unknown };
        if (typeof v.event === 'string') event = v.event;
      } catch {
        // not a JSON line: counted as 'other'
      }
      tetherLines.set(event, (tetherLines.get(event) ?? 0) + 1);
    });
    await waitForPort(t, adminPort);
    const port = await waitForListenPort(t, 10_000, [adminPort]);
    const alive = (): boolean => t.proc.exitCode === null && t.proc.signalCode === null;
    const start = await readTether(t.pid, adminPort);

    log(`soak: up to ${count(s.connections)} connections (at most ${s.maxMinutes} min), ${s.concurrency} at a time, after ${count(s.warmup)} warm-up ones; tether pid ${t.pid}`);
    log(`  node bin/tether ${args.join(' ')}`);
    const warm = s.warmup === 0 ? undefined : await runLoop(port, 0, s.warmup, s.concurrency, Infinity, s.idleTimeoutMs, alive);
    if (!alive()) throw new Error(`tether exited during the warm-up: ${t.stderr().slice(0, 2_000)}`);
    const warmFailures = warm === undefined ? 0 : [...warm.failures.values()].reduce((a, b) => a + b, 0);
    log(`  warm-up done${warm === undefined ? '' : ` (${count(warm.started)} in ${(warm.elapsedMs / 1000).toFixed(1)} s, ${warmFailures} failures)`}; settling ${((s.affinityTimeoutMs + s.settleMs) / 1000).toFixed(1)} s …`);
    const base = await settleAndRead(s, t, port, adminPort);

    log(`  loop …`);
    const peaks = watchPeaks(t.pid, adminPort);
    const cpu0 = { tetherNs: readCpuNs(t.pid), self: process.cpuUsage() };
    const loop = await runLoop(port, s.warmup, s.connections, s.concurrency, performance.now() + s.maxMinutes * 60_000, s.idleTimeoutMs, alive);
    if (!alive()) throw new Error(`tether exited during the loop: ${t.stderr().slice(0, 2_000)}`);
    const tetherCpuS = (readCpuNs(t.pid) - cpu0.tetherNs) / 1e9;
    const selfCpu = process.cpuUsage(cpu0.self);
    const selfCpuS = (selfCpu.user + selfCpu.system) / 1e6;
    const atEnd = await readAdmin(adminPort);
    peaks.add(atEnd);
    const { peak, rssTenthsKib } = await peaks.stop();
    log(`  loop done; settling ${((s.affinityTimeoutMs + s.settleMs) / 1000).toFixed(1)} s …`);
    const after = await settleAndRead(s, t, port, adminPort);

    const stopT0 = performance.now();
    await stopChild(t);
    const stopMs = performance.now() - stopT0;
    const failures = [...loop.failures.values()].reduce((a, b) => a + b, 0) + warmFailures;
    const verdict = judgeSoak(
      { baseline: base.reading, peak, after: after.reading, failures, fatal: (tetherLines.get('process.fatal') ?? 0) > 0 },
      { fdSlack: s.fdSlack, rssSlackKib: s.rssSlackMib * 1024, maxFailures: s.maxFailures },
    );

    const secs = loop.elapsedMs / 1000;
    log('');
    log(`connections  ${count(loop.started)} of ${count(s.connections)} in ${secs.toFixed(1)} s: ${fmt(loop.started / secs)} conn/s (${loop.stoppedBy === 'count' ? 'all done' : `stopped by --max-minutes ${s.maxMinutes}`})`);
    log(`  by kind    ${(Object.keys(KIND_LABELS) as ClientKind[]).map((k) => `${KIND_LABELS[k]} ${count(loop.byKind[k])}`).join(' · ')}`);
    const allFailures = new Map(loop.failures);
    if (warm !== undefined) for (const [k, n] of warm.failures) allFailures.set(`warm-up ${k}`, (allFailures.get(`warm-up ${k}`) ?? 0) + n);
    log(`  failures   ${allFailures.size === 0 ? 'none' : [...allFailures].sort((x, y) => y[1] - x[1]).map(([k, n]) => `${k} ${count(n)}`).join(' · ')}`);
    log(`  normal     p50 ${fmt(quantile(loop.latencies, 0.5))} ms · p99 ${fmt(quantile(loop.latencies, 0.99))} ms · max ${fmt(quantile(loop.latencies, 1))} ms (connect to close)`);
    log(`  CPU        tether ${secs > 0 ? fmt((tetherCpuS / secs) * 100) : 'n/a'} % of a core (${fmt((tetherCpuS * 1e6) / Math.max(1, loop.started))} µs a connection) · this process (clients and backends) ${secs > 0 ? fmt((selfCpuS / secs) * 100) : 'n/a'} % · load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    const row = (what: string, f: (r: SoakReading | SoakPeak) => string): string[] => [what, f(start), f(base.reading), f(peak), f(after.reading)];
    log('');
    log(
      table(
        ['tether', 'start', 'after warm-up', 'peak', 'after'],
        [
          row('open fds', (r) => count(r.fds)),
          row('RSS MiB', (r) => mib(r.rssKib)),
          row('affinity table', (r) => count(r.tableEntries)),
          row('open clients', (r) => count(r.open)),
        ],
      ),
    );
    log(`  RSS MiB, highest in each tenth of the loop: ${rssTenthsKib.map((k) => (k === 0 ? '-' : mib(k))).join(' ')}`);
    log(
      `  table: ${count(atEnd.liveEntries)} live at the loop's end; after the settle ${count(after.heldBeforeProbe)} held, ${count(after.liveBeforeProbe)} live` +
        ` (expired entries go when tether next inserts one: the probe client's insert dropped them; "after" is read after it, as is "after warm-up")`,
    );
    const lines = [...tetherLines].map(([e, n]) => `${e} ${count(n)}`).join(' · ');
    log(`  tether's warn+ lines: ${lines === '' ? 'none' : lines}; on SIGTERM it exited in ${fmt(stopMs)} ms (${t.proc.signalCode ?? `code ${String(t.proc.exitCode)}`})`);
    log('');
    log(renderVerdict(verdict));
    return verdict.ok ? 0 : 1;
  } finally {
    if (tether !== undefined) await stopChild(tether);
    await Promise.all(backends.map((b) => b.close()));
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (e: unknown) => {
    process.stderr.write(`soak failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    await stopAll();
    // A reading's poll timers may still be armed: leave now.
    process.exit(2);
  },
);
