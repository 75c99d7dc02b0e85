// The bench's "files" section: what a client sees while tether reads big files, A/B between
// builds (the current tree, and with --baseline-dir another one, e.g. a worktree of 1fbb095,
// before reads were bounded and big files parsed in a worker). One tether per build with
// --config FILE: a TCP frontend in front of the bench's echo server (the probe's path) and an
// IMAP frontend (--affinity login, user-map) in front of two dist/bench/imap-server.js (a, b).
// A steady probe (LOOPS connections, a 16-byte message every INTERVAL ms on each, pipelined:
// latency = send → its echo, so a stall shows in every message sent during it, not in one)
// runs through four phases: baseline; the user map replaced by a big one (rename over it, then
// LOGINs until the probe user lands on the map's new backend); SIGHUP with a comment-padded
// config under the 4 MiB limit; SIGHUP with a config over it (a long allow list: structure, as a
// generated config would be). Per phase: probe p50/p99/max, tether's peak RSS, the outcome.
// Loopback only; every loop is bounded in count and time; only the processes started here are
// stopped, by PID; the files live in one os.tmpdir() directory, removed at the end.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawnNode, stopChild, waitForPort, type Child } from './children.js';
import { quantile } from './load.js';
import { freePort } from './ops.js';
import { readCpuNs, readMachineCpu, readRssKib } from './proc-stats.js';
import { errorText, fmt, sleep, table } from './format.js';

const HOST = '127.0.0.1';
/** The probe's message: a u32 sequence number, then padding. */
const MESSAGE_BYTES = 16;
/** How often tether's RSS is read. */
const RSS_POLL_MS = 100;
/** One IMAP login (greeting → LOGIN → LOGOUT → BYE) with no answer within this long fails. */
const LOGIN_TIMEOUT_MS = 30_000;
/** The user whose map line moves from backend a to b; the last line of the map, so the whole file is read first. */
const PROBE_USER = 'probe@mail.example.org';
/** After the probe stops sending: how long it waits for the echoes still on their way. */
const DRAIN_MS = 3_000;
/** SIGTERM, then SIGKILL after this long (a tether stuck in a synchronous parse runs no signal handler). */
const STOP_GRACE_MS = 3_000;
const MIB = 1024 * 1024;

export interface FilesSettings {
  /** Lines of the big user map (33 bytes each). */
  readonly userMapLines: number;
  /** The SIGHUP config under the 4 MiB limit: padded with comments to this size. */
  readonly reloadConfigBytes: number;
  /** The SIGHUP config over the limit: an allow list this long in bytes. */
  readonly bigConfigBytes: number;
  readonly probeLoops: number;
  readonly probeIntervalMs: number;
  /** Probe messages before the first phase (JIT, connections). */
  readonly warmupMs: number;
  readonly baselineMs: number;
  /** A phase lasts at least this long from its trigger, and at least `tailMs` past its outcome. */
  readonly minPhaseMs: number;
  readonly tailMs: number;
  readonly loginGapMs: number;
  /** Bounds: tether's start (it reads the big map), the map change taking effect, a reload. */
  readonly startTimeoutMs: number;
  readonly mapApplyTimeoutMs: number;
  readonly reloadTimeoutMs: number;
}

export interface FilesBuild {
  /** `current`, or `baseline`. */
  readonly id: string;
  /** What the table calls it (the commit). */
  readonly label: string;
  /** The tree: its bin/tether runs dist/lib/cli/main.js of that tree. */
  readonly dir: string;
}

export interface FilesEnv {
  readonly s: FilesSettings;
  readonly builds: readonly FilesBuild[];
  readonly echo: { readonly port: number; readonly pid: number };
  /** The IMAP servers a and b (their BYE line names them). */
  readonly imap: readonly { readonly name: string; readonly port: number; readonly pid: number }[];
  readonly log: (line: string) => void;
}

export type FilesOutcome = 'none' | 'applied' | 'refused' | 'timed-out';

/** As the table and the log show an outcome. */
const OUTCOME_TEXT: Readonly<Record<FilesOutcome, string>> = { none: '-', applied: 'applied', refused: 'refused', 'timed-out': 'did not finish' };

export interface FilesPhase {
  readonly id: string;
  readonly label: string;
  readonly outcome: FilesOutcome;
  /** Trigger → outcome, ms; null for the baseline. */
  readonly outcomeAfterMs: number | null;
  /** The reload.failed / directory.error text, the backend the last login reached, or why it timed out. */
  readonly detail: string | null;
  readonly elapsedMs: number;
  readonly sent: number;
  /** Messages sent in the phase and never echoed (tether killed, or the run's drain ran out). */
  readonly unanswered: number;
  /** Over all messages sent in the phase; an unanswered one counts at its wait so far (a lower bound). */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly tetherRssPeakKib: number;
  readonly tetherCpuPct: number;
  /** Share of the machine (all cores) used by processes other than tether, the servers and the bench, 0..1. */
  readonly otherCpuShare: number;
}

/** A phase's figures but the probe's (those are taken after the run's drain). */
type PhaseFigures = Omit<FilesPhase, 'sent' | 'unanswered' | 'p50Ms' | 'p99Ms' | 'maxMs'>;

export interface FilesBuildResult {
  readonly id: string;
  readonly label: string;
  readonly dir: string;
  readonly command: string;
  /** Start → both listeners up (the big map read at start), ms. */
  readonly startMs: number;
  readonly tetherRssAfterStartKib: number;
  readonly phases: readonly FilesPhase[];
  readonly problems: readonly string[];
  readonly error: string | null;
}

export interface FilesResult {
  readonly settings: FilesSettings;
  readonly files: { readonly userMapBytes: number; readonly reloadConfigBytes: number; readonly bigConfigBytes: number; readonly allowEntries: number };
  readonly builds: readonly FilesBuildResult[];
}

/** A file size for labels: MiB below 10 MiB, else MB (10^6, as `ls -l --si` and the issue give them). */
function sizeText(bytes: number): string {
  return bytes >= 10 * MIB ? `${(bytes / 1e6).toFixed(0)} MB` : `${(bytes / MIB).toFixed(1)} MiB`;
}

/** The map: `userNNNNNNNNN@mail.example.org a|b` lines (33 bytes), then PROBE_USER → `probeBackend`; `extra` lines more change the size. */
function writeUserMap(file: string, lines: number, probeBackend: string, extra: number): number {
  const chunks: Buffer[] = [];
  const batch = 10_000;
  for (let i = 0; i < lines + extra; i += batch) {
    let text = '';
    for (let j = i; j < Math.min(lines + extra, i + batch); j++) text += `user${String(j).padStart(9, '0')}@mail.example.org ${j % 2 === 0 ? 'a' : 'b'}\n`;
    chunks.push(Buffer.from(text, 'latin1'));
  }
  chunks.push(Buffer.from(`${PROBE_USER} ${probeBackend}\n`, 'latin1'));
  const bytes = Buffer.concat(chunks);
  writeFileSync(file, bytes);
  return bytes.length;
}

interface Ports {
  readonly probe: number;
  readonly mail: number;
}

/** The config: the probe's TCP frontend (with `allow` entries, if any) and the IMAP frontend, then `commentBytes` of comments. */
function configText(env: FilesEnv, ports: Ports, userMap: string, allow: readonly string[], commentBytes: number): string {
  const lines = [
    '# tether bench "files": the probe frontend (TCP, echo) and a mail frontend (IMAP, login affinity, user map)',
    'log-level: info',
    'grace: 1s',
    'frontends:',
    '  - name: probe',
    `    listen: ${HOST}:${ports.probe}`,
    `    backends: e=${HOST}:${env.echo.port}`,
    '    affinity: none',
    ...(allow.length === 0 ? [] : ['    allow:', ...allow.map((a) => `      - ${a}`)]),
    '  - name: mail',
    `    listen: ${HOST}:${ports.mail}`,
    '    protocol: imap',
    '    affinity: login',
    `    user-map: ${JSON.stringify(userMap)}`,
    '    backends:',
    ...env.imap.map((x) => `      - ${x.name}=${HOST}:${x.port}`),
  ];
  const comment = `# padding: ${'x'.repeat(58)}\n`;
  return `${lines.join('\n')}\n${commentBytes <= 0 ? '' : comment.repeat(Math.ceil(commentBytes / comment.length))}`;
}

/**
 * Distinct /32s of 10.0.0.0/8 until the list's YAML reaches `bytes`; 127.0.0.1/32 first, so that
 * were the big config applied, the probe would still be let in.
 */
function allowList(bytes: number): string[] {
  const out = [`${HOST}/32`];
  let n = 0;
  for (let i = 0; n < bytes && i < 1 << 24; i++) {
    const a = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`;
    out.push(a);
    n += a.length + 9; // "      - " and the newline
  }
  return out;
}

/** The files of one build's run, written fresh into `dir` (the phases rename them over the live ones). */
interface RunFiles {
  readonly config: string;
  readonly userMap: string;
  readonly userMapNext: string;
  readonly userMapSmall: string;
  readonly reloadConfig: string;
  readonly bigConfig: string;
}

/** Sources written once per bench run, copied per build. */
interface SourceFiles {
  readonly dir: string;
  readonly userMapBytes: number;
}

function writeSources(env: FilesEnv, root: string): SourceFiles {
  const dir = path.join(root, 'src');
  mkdirSync(dir);
  const userMapBytes = writeUserMap(path.join(dir, 'users.map'), env.s.userMapLines, 'a', 0);
  writeUserMap(path.join(dir, 'users-next.map'), env.s.userMapLines, 'b', 1);
  writeUserMap(path.join(dir, 'users-small.map'), 1, 'a', 0);
  return { dir, userMapBytes };
}

/** Copies the maps and writes the configs (they name this build's ports and map path). */
function writeRunFiles(env: FilesEnv, src: SourceFiles, dir: string, ports: Ports): { files: RunFiles; sizes: { reloadConfigBytes: number; bigConfigBytes: number; allowEntries: number } } {
  mkdirSync(dir);
  const files: RunFiles = {
    config: path.join(dir, 'tether.yaml'),
    userMap: path.join(dir, 'users.map'),
    userMapNext: path.join(dir, 'users-next.map'),
    userMapSmall: path.join(dir, 'users-small.map'),
    reloadConfig: path.join(dir, 'tether-reload.yaml'),
    bigConfig: path.join(dir, 'tether-big.yaml'),
  };
  copyFileSync(path.join(src.dir, 'users.map'), files.userMap);
  copyFileSync(path.join(src.dir, 'users-next.map'), files.userMapNext);
  copyFileSync(path.join(src.dir, 'users-small.map'), files.userMapSmall);
  const base = configText(env, ports, files.userMap, [], 0);
  writeFileSync(files.config, base);
  writeFileSync(files.reloadConfig, configText(env, ports, files.userMap, [], env.s.reloadConfigBytes - Buffer.byteLength(base)));
  const allow = allowList(env.s.bigConfigBytes);
  writeFileSync(files.bigConfig, configText(env, ports, files.userMap, allow, 0));
  return { files, sizes: { reloadConfigBytes: statSync(files.reloadConfig).size, bigConfigBytes: statSync(files.bigConfig).size, allowEntries: allow.length } };
}

interface ProbeLoop {
  readonly socket: net.Socket;
  readonly sentAtMs: Float64Array;
  readonly rttMs: Float64Array;
  sent: number;
  answered: number;
  /** When this loop stopped waiting (closed, or the drain ended); unanswered messages waited until then. */
  endMs: number;
  error: string | undefined;
}

interface Probe {
  /** Every message sent in [t0, t1): latencies (unanswered ones at their wait so far) and the count unanswered. */
  window(t0: number, t1: number): { latencies: Float64Array; sent: number; unanswered: number };
  /** Stops sending, waits at most `drainMs` for the echoes on their way, closes the connections. */
  stop(drainMs: number): Promise<void>;
  errors(): string[];
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`probe connect to ${port}: no answer within ${LOGIN_TIMEOUT_MS} ms`));
    }, LOGIN_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** `loops` connections through `port` to the echo server, each sending a message every `intervalMs`, at most `maxPerLoop` each. */
async function startProbe(port: number, loops: number, intervalMs: number, maxPerLoop: number): Promise<Probe> {
  const sockets = await Promise.all(Array.from({ length: loops }, () => connect(port)));
  const state: ProbeLoop[] = sockets.map((socket) => ({ socket, sentAtMs: new Float64Array(maxPerLoop), rttMs: new Float64Array(maxPerLoop).fill(NaN), sent: 0, answered: 0, endMs: Infinity, error: undefined }));
  const timers: NodeJS.Timeout[] = [];
  const starts: NodeJS.Timeout[] = [];
  for (const [i, loop] of state.entries()) {
    let pending: Buffer = Buffer.alloc(0);
    const close = (why: string | undefined): void => {
      loop.endMs = Math.min(loop.endMs, performance.now());
      if (why !== undefined) loop.error ??= why;
    };
    loop.socket.on('data', (d: Buffer) => {
      const now = performance.now();
      pending = pending.length === 0 ? d : Buffer.concat([pending, d]);
      let at = 0;
      while (pending.length - at >= MESSAGE_BYTES) {
        const seq = pending.readUInt32BE(at);
        if (seq !== loop.answered) {
          close(`probe: echo out of order (got ${seq}, expected ${loop.answered})`);
          loop.socket.destroy();
          return;
        }
        loop.rttMs[seq] = now - (loop.sentAtMs[seq] ?? now);
        loop.answered++;
        at += MESSAGE_BYTES;
      }
      pending = pending.subarray(at);
    });
    loop.socket.on('error', (e) => {
      close(errorText(e));
    });
    loop.socket.on('close', () => {
      close(loop.answered < loop.sent ? `probe: connection closed with ${loop.sent - loop.answered} messages unanswered` : undefined);
    });
    const send = (): void => {
      if (loop.sent >= maxPerLoop || loop.socket.destroyed || loop.endMs !== Infinity) return;
      const m = Buffer.alloc(MESSAGE_BYTES, 0x70);
      m.writeUInt32BE(loop.sent, 0);
      loop.sentAtMs[loop.sent] = performance.now();
      loop.sent++;
      loop.socket.write(m);
    };
    // Staggered, so the loops' messages are spread over the interval.
    starts.push(
      setTimeout(() => {
        timers.push(setInterval(send, intervalMs));
      }, (intervalMs * i) / loops),
    );
  }
  const stopSending = (): void => {
    for (const t of starts) clearTimeout(t);
    for (const t of timers) clearInterval(t);
  };
  return {
    window(t0, t1) {
      const lat: number[] = [];
      let unanswered = 0;
      for (const loop of state) {
        const waitedUntil = Math.min(loop.endMs, performance.now());
        for (let k = 0; k < loop.sent; k++) {
          const at = loop.sentAtMs[k] ?? NaN;
          if (!(at >= t0 && at < t1)) continue;
          const rtt = loop.rttMs[k] ?? NaN;
          if (Number.isNaN(rtt)) {
            unanswered++;
            lat.push(waitedUntil - at);
          } else lat.push(rtt);
        }
      }
      return { latencies: Float64Array.from(lat), sent: lat.length, unanswered };
    },
    async stop(drainMs) {
      stopSending();
      const deadline = performance.now() + drainMs;
      while (performance.now() < deadline && state.some((l) => l.answered < l.sent && !l.socket.destroyed)) await sleep(20);
      const now = performance.now();
      for (const loop of state) {
        loop.endMs = Math.min(loop.endMs, now);
        loop.socket.destroy();
      }
    },
    errors: () => state.flatMap((l) => (l.error === undefined ? [] : [l.error])),
  };
}

/** One IMAP session through tether: greeting, LOGIN `user`, LOGOUT; resolves with the backend's name from its BYE line. */
function loginOnce(port: number, user: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port, noDelay: true });
    let buf = '';
    let step: 'greeting' | 'login' | 'bye' = 'greeting';
    let settled = false;
    const settle = (err: Error | undefined, name?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err === undefined) resolve(name ?? '');
      else reject(err);
    };
    const timer = setTimeout(() => {
      settle(new Error(`IMAP login through ${port}: no ${step} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('error', (e) => {
      settle(e);
    });
    socket.on('close', () => {
      settle(new Error(`IMAP login through ${port}: closed before the ${step}`));
    });
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (buf.length > 64 * 1024) settle(new Error('IMAP login: answer too long'));
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        if (step === 'greeting' && line.startsWith('* OK')) {
          step = 'login';
          socket.write(`a1 LOGIN ${user} pw\r\n`);
        } else if (step === 'login' && line.startsWith('a1 ')) {
          if (!line.startsWith('a1 OK')) {
            settle(new Error(`IMAP login refused: ${line}`));
            return;
          }
          step = 'bye';
          socket.write('a2 LOGOUT\r\n');
        } else if (step === 'bye' && line.startsWith('* BYE ')) {
          settle(undefined, line.split(' ')[2] ?? '');
          return;
        }
      }
    });
  });
}

function parseJson(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined; // not a JSON line
  }
}

/** Waits for tether's next reload.done / reload.failed line; 'timed-out' after `timeoutMs` or when it exits. */
function awaitReload(child: Child, timeoutMs: number): Promise<{ outcome: FilesOutcome; detail: string | null }> {
  return new Promise((resolve) => {
    const finish = (outcome: FilesOutcome, detail: string | null): void => {
      stop();
      clearTimeout(timer);
      resolve({ outcome, detail });
    };
    const stop = child.onLine((line) => {
      const v = parseJson(line);
      if (v?.['event'] === 'reload.done') finish('applied', null);
      else if (v?.['event'] === 'reload.failed') finish('refused', Array.isArray(v['errors']) ? v['errors'].map(String).join('; ') : JSON.stringify(v['reason'] ?? null));
    });
    const timer = setTimeout(() => {
      finish('timed-out', `no reload.done or reload.failed within ${timeoutMs / 1000} s`);
    }, timeoutMs);
    void child.exited.then(() => {
      finish('timed-out', 'tether exited');
    });
  });
}

/** Logins as PROBE_USER until one lands on `want` (the map change applied), a directory.error arrives, or `timeoutMs`. */
async function awaitMapApplied(env: FilesEnv, child: Child, port: number, want: string): Promise<{ outcome: FilesOutcome; detail: string | null }> {
  let refused: string | undefined;
  const off = child.onLine((line) => {
    const v = parseJson(line);
    if (v?.['event'] === 'directory.error') refused ??= typeof v['err'] === 'string' ? v['err'] : 'directory.error';
  });
  const deadline = performance.now() + env.s.mapApplyTimeoutMs;
  let last = 'none';
  try {
    for (let attempt = 0; attempt < 10_000 && performance.now() < deadline; attempt++) {
      try {
        last = await loginOnce(port, PROBE_USER, Math.max(1, Math.min(LOGIN_TIMEOUT_MS, deadline - performance.now())));
      } catch (e) {
        last = `error: ${errorText(e)}`;
      }
      if (last === want) return { outcome: 'applied', detail: `login on ${want}` };
      if (refused !== undefined) return { outcome: 'refused', detail: refused };
      await sleep(env.s.loginGapMs);
    }
    return { outcome: 'timed-out', detail: `no login on ${want} within ${env.s.mapApplyTimeoutMs / 1000} s (last: ${last})` };
  } finally {
    off();
  }
}

function gitLabel(dir: string): string {
  try {
    return execFileSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', timeout: 5_000 }).trim();
  } catch {
    return path.basename(dir); // not a git tree: the folder's name will do
  }
}

/** The table label of a tree: its commit. */
export function buildLabel(id: string, dir: string): string {
  return `${id} ${gitLabel(dir)}`;
}

async function runBuild(env: FilesEnv, build: FilesBuild, src: SourceFiles, root: string, sizes: { value: FilesResult['files'] | undefined }): Promise<FilesBuildResult> {
  const s = env.s;
  const problems: string[] = [];
  // The probe's figures of a phase are taken at the end of the run, after the drain: a message
  // sent just before a phase ended is still on its way then, and is not unanswered.
  const measured: { readonly figures: PhaseFigures; readonly start: number; readonly end: number }[] = [];
  const phasesOf = (p: Probe | undefined): FilesPhase[] =>
    measured.map((m) => {
      const w = p?.window(m.start, m.end) ?? { latencies: new Float64Array(0), sent: 0, unanswered: 0 };
      return { ...m.figures, sent: w.sent, unanswered: w.unanswered, p50Ms: quantile(w.latencies, 0.5), p99Ms: quantile(w.latencies, 0.99), maxMs: quantile(w.latencies, 1) };
    });
  const ports: Ports = { probe: await freePort(), mail: await freePort() };
  const written = writeRunFiles(env, src, path.join(root, build.id), ports);
  const files = written.files;
  sizes.value = { userMapBytes: src.userMapBytes, ...written.sizes };
  const bin = path.join(build.dir, 'bin', 'tether');
  const command = `node ${bin} --config ${files.config}`;
  const t0 = performance.now();
  const tether = spawnNode(`tether ${build.id}`, [bin, '--config', files.config]);
  let probe: Probe | undefined;
  let poll: NodeJS.Timeout | undefined;
  const rss: { atMs: number; kib: number }[] = [];
  try {
    await waitForPort(tether, ports.probe, s.startTimeoutMs);
    await waitForPort(tether, ports.mail, s.startTimeoutMs);
    const startMs = performance.now() - t0;
    const rssAfterStart = readRssKib(tether.pid);
    const first = await loginOnce(ports.mail, PROBE_USER, LOGIN_TIMEOUT_MS);
    if (first !== 'a') problems.push(`the first login reached ${first}, not a (the map at start names a)`);
    const sample = (): void => {
      try {
        rss.push({ atMs: performance.now(), kib: readRssKib(tether.pid) });
      } catch {
        clearInterval(poll); // tether is gone
      }
    };
    poll = setInterval(sample, RSS_POLL_MS);
    const maxPerLoop = Math.ceil((s.warmupMs + s.baselineMs + 2 * s.mapApplyTimeoutMs + 3 * s.reloadTimeoutMs + 4 * s.minPhaseMs + 60_000) / s.probeIntervalMs);
    const p = await startProbe(ports.probe, s.probeLoops, s.probeIntervalMs, maxPerLoop);
    probe = p;
    await sleep(s.warmupMs);

    const cpuNow = (): { tether: number; own: number; machine: ReturnType<typeof readMachineCpu> } => {
      let t = NaN;
      try {
        t = readCpuNs(tether.pid);
      } catch {
        // tether is gone; its CPU share of this phase is unknown
      }
      const others = [process.pid, env.echo.pid, ...env.imap.map((x) => x.pid)].reduce((n, pid) => n + readCpuNs(pid), 0);
      return { tether: t, own: others, machine: readMachineCpu() };
    };
    const phase = async (id: string, label: string, trigger: () => Promise<{ outcome: FilesOutcome; detail: string | null }>): Promise<void> => {
      env.log(`  ${build.id}: ${label} …`);
      sample();
      const c0 = cpuNow();
      const start = performance.now();
      const r = await trigger();
      const outcomeAt = performance.now();
      if (r.outcome !== 'timed-out') await sleep(Math.max(start + s.minPhaseMs - outcomeAt, s.tailMs));
      const end = performance.now();
      sample();
      const c1 = cpuNow();
      const peak = rss.filter((x) => x.atMs >= start && x.atMs <= end).reduce((m, x) => Math.max(m, x.kib), 0);
      const wallMs = end - start;
      const tetherMs = (c1.tether - c0.tether) / 1e6;
      const ownMs = (c1.own - c0.own) / 1e6 + (Number.isFinite(tetherMs) ? tetherMs : 0);
      const machineMs = Math.max(1, c1.machine.totalMs - c0.machine.totalMs);
      const ph: PhaseFigures = {
        id,
        label,
        outcome: r.outcome,
        outcomeAfterMs: id === 'baseline' ? null : outcomeAt - start,
        detail: r.detail,
        elapsedMs: wallMs,
        tetherRssPeakKib: peak,
        tetherCpuPct: (tetherMs / wallMs) * 100,
        otherCpuShare: Math.max(0, (c1.machine.busyMs - c0.machine.busyMs - ownMs) / machineMs),
      };
      env.log(
        `    ${OUTCOME_TEXT[ph.outcome]}${ph.outcomeAfterMs === null ? '' : ` after ${(ph.outcomeAfterMs / 1000).toFixed(2)} s`}${ph.detail === null ? '' : ` (${ph.detail.slice(0, 160)})`};` +
          ` RSS peak ${fmt(peak / 1024)} MiB`,
      );
      measured.push({ figures: ph, start, end });
    };

    await phase('baseline', 'baseline', async () => {
        await sleep(s.baselineMs);
        return { outcome: 'none', detail: null };
      });
    await phase('user-map', `user map replaced: ${sizeText(src.userMapBytes)}, ${(s.userMapLines + 2).toLocaleString('en-US')} lines; LOGINs until applied`, () => {
        renameSync(files.userMapNext, files.userMap);
        return awaitMapApplied(env, tether, ports.mail, 'b');
      });
    // Back to a 2-line map: a reload re-reads the user map too (a fresh directory per frontend
    // build), and the reload phases are to measure the config alone.
    renameSync(files.userMapSmall, files.userMap);
    await sleep(s.tailMs);
    await phase('reload', `SIGHUP, ${sizeText(written.sizes.reloadConfigBytes)} config (comments)`, () => {
        renameSync(files.reloadConfig, files.config);
        const line = awaitReload(tether, s.reloadTimeoutMs);
        tether.proc.kill('SIGHUP');
        return line;
      });
    await phase('reload-big', `SIGHUP, ${sizeText(written.sizes.bigConfigBytes)} config (${written.sizes.allowEntries.toLocaleString('en-US')} allow entries)`, () => {
        renameSync(files.bigConfig, files.config);
        const line = awaitReload(tether, s.reloadTimeoutMs);
        tether.proc.kill('SIGHUP');
        return line;
      });
    // Stuck (in a synchronous parse): stopped here, after the phase's figures, so the drain does not wait on it.
    const stuck = measured.some((x) => x.figures.outcome === 'timed-out');
    if (stuck) await stopChild(tether, STOP_GRACE_MS);
    await p.stop(DRAIN_MS);
    // A killed tether closes the probe's connections with messages unanswered: counted in the phase, not a problem.
    if (!stuck) for (const e of p.errors()) problems.push(e);
    return { id: build.id, label: build.label, dir: build.dir, command, startMs, tetherRssAfterStartKib: rssAfterStart, phases: phasesOf(p), problems, error: null };
  } catch (e) {
    await probe?.stop(0);
    return { id: build.id, label: build.label, dir: build.dir, command, startMs: NaN, tetherRssAfterStartKib: NaN, phases: phasesOf(probe), problems, error: errorText(e) };
  } finally {
    clearInterval(poll);
    await probe?.stop(0);
    await stopChild(tether, STOP_GRACE_MS);
  }
}

/** Runs every build in turn (see the file comment); the temp directory is removed on every way out. */
export async function runFiles(env: FilesEnv): Promise<FilesResult> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'tether-bench-files-'));
  const sizes: { value: FilesResult['files'] | undefined } = { value: undefined };
  try {
    env.log(`  writing the user maps (${env.s.userMapLines.toLocaleString('en-US')} lines) and configs under ${root} …`);
    const src = writeSources(env, root);
    const builds: FilesBuildResult[] = [];
    for (const b of env.builds) {
      builds.push(await runBuild(env, b, src, root, sizes));
      rmSync(path.join(root, b.id), { recursive: true, force: true });
    }
    return { settings: env.s, files: sizes.value ?? { userMapBytes: src.userMapBytes, reloadConfigBytes: NaN, bigConfigBytes: NaN, allowEntries: NaN }, builds };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function fmtMs(v: number): string {
  return Number.isFinite(v) ? (Math.abs(v) < 1 ? v.toFixed(3) : fmt(v)) : 'n/a';
}

function fmtRatio(a: number, b: number): string {
  const r = b === 0 || !Number.isFinite(a) || !Number.isFinite(b) ? NaN : a / b;
  if (!Number.isFinite(r)) return 'n/a';
  return r >= 100 ? `${fmt(r)}x` : `${r.toFixed(2)}x`;
}

export function renderFiles(r: FilesResult, otherFlagShare: number): string {
  const s = r.settings;
  const out: string[] = [];
  out.push(
    `files: a probe of ${s.probeLoops} TCP connections through tether (16 B echoed, one every ${s.probeIntervalMs} ms on each, pipelined; latency = send → echo)` +
      ` while the same tether reads big files; user map ${sizeText(r.files.userMapBytes)}, configs ${sizeText(r.files.reloadConfigBytes)} and ${sizeText(r.files.bigConfigBytes)}`,
  );
  const rows: string[][] = [];
  const blank = (first: string): string[] => [first, ...Array.from({ length: 13 }, () => '')];
  for (const b of r.builds) {
    const base = b.phases.find((p) => p.id === 'baseline');
    rows.push(blank(b.label));
    for (const p of b.phases) {
      const lb = p.unanswered > 0 ? '≥' : '';
      const flag = p.otherCpuShare > otherFlagShare ? '*' : '';
      const x = (v: number, w: number): string => (p === base || base === undefined ? '' : fmtRatio(v, w));
      rows.push([
        `  ${p.label}`,
        OUTCOME_TEXT[p.outcome],
        p.outcomeAfterMs === null ? '' : (p.outcomeAfterMs / 1000).toFixed(2),
        p.sent.toLocaleString('en-US'),
        p.unanswered.toLocaleString('en-US'),
        `${lb}${fmtMs(p.p50Ms)}${flag}`,
        `${lb}${fmtMs(p.p99Ms)}${flag}`,
        `${lb}${fmtMs(p.maxMs)}${flag}`,
        x(p.p50Ms, base?.p50Ms ?? NaN),
        x(p.p99Ms, base?.p99Ms ?? NaN),
        x(p.maxMs, base?.maxMs ?? NaN),
        fmt(p.tetherRssPeakKib / 1024),
        fmt(p.tetherCpuPct),
        fmt(p.otherCpuShare * 100),
      ]);
    }
    if (b.error !== null) rows.push(blank(`  FAILED: ${b.error.slice(0, 160)}`));
  }
  out.push(
    table(
      ['build / phase', 'outcome', 'after s', 'sent', 'unanswered', 'p50 ms', 'p99 ms', 'max ms', 'p50 ×base', 'p99 ×base', 'max ×base', 'RSS peak MiB', 'tether CPU %', 'other CPU %'],
      rows,
    ),
  );
  const [cur, old] = [r.builds[0], r.builds[1]];
  if (cur !== undefined && old !== undefined) {
    // Old over current: how many times longer (bigger) each figure was before.
    out.push('');
    out.push(
      table(
        [`${old.label} ÷ ${cur.label}`, 'p50', 'p99', 'max', 'RSS peak'],
        cur.phases.map((p) => {
          const q = old.phases.find((x) => x.id === p.id);
          return [p.label, fmtRatio(q?.p50Ms ?? NaN, p.p50Ms), fmtRatio(q?.p99Ms ?? NaN, p.p99Ms), fmtRatio(q?.maxMs ?? NaN, p.maxMs), fmtRatio(q?.tetherRssPeakKib ?? NaN, p.tetherRssPeakKib)];
        }),
      ),
    );
  }
  for (const b of r.builds) out.push(`  ${b.label}: ${b.command}; started (big map read) in ${(b.startMs / 1000).toFixed(1)} s, RSS ${fmt(b.tetherRssAfterStartKib / 1024)} MiB`);
  out.push(
    `  (after s: trigger → outcome (the LOGIN that reached the map's new backend; reload.done / reload.failed); a phase lasts ≥ ${s.minPhaseMs / 1000} s and ${s.tailMs / 1000} s past its outcome;` +
      ` "did not finish": no outcome within ${s.reloadTimeoutMs / 1000} s, tether killed; ≥ = some messages never echoed, counted at their wait so far (a lower bound);` +
      ` between the map phase and the reloads the map goes back to 2 lines, as a reload re-reads it; * = other processes used >${otherFlagShare * 100}% of the machine)`,
  );
  for (const b of r.builds) for (const p of b.problems) out.push(`  PROBLEM ${b.label}: ${p}`);
  return out.join('\n');
}
