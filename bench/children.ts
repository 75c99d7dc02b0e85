// The bench's child processes: spawn, wait until ready (a JSON line, or a listening socket seen
// in /proc), and stop. Every child is remembered until it has exited, so the bench can
// kill exactly the processes it started (by PID) on any way out, errors and signals included.
import { spawn, type ChildProcess } from 'node:child_process';
import { listeningPorts } from './proc-stats.js';

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly proc: ChildProcess;
  /** Resolves once the process has exited (never rejects). */
  readonly exited: Promise<void>;
  /** Complete stdout lines seen so far (at most MAX_KEPT_LINES). */
  readonly lines: string[];
  stderr(): string;
  /** Calls `listener` with every later complete stdout line (kept or not); returns how to stop. */
  onLine(listener: (line: string) => void): () => void;
}

/** Output kept per child: enough for a ready line and an error message, bounded for chatty ones. */
const MAX_KEPT_LINES = 1_000;
const MAX_KEPT_STDERR_CHARS = 16_000;

const live = new Set<Child>();

/**
 * Starts `process.execPath args…` (a Node script) with stdout/stderr piped and kept. `stdin`
 * 'pipe' lets a bench-owned child notice that the bench is gone (stdin ends) and exit.
 */
export function spawnNode(name: string, args: readonly string[], stdin: 'pipe' | 'ignore' = 'ignore'): Child {
  return spawnProgram(name, process.execPath, args, stdin);
}

/**
 * Starts `file args…` (any program: HAProxy, nginx, wrk, iperf3, taskset …) with stdout/stderr
 * piped and kept, tracked like spawnNode's children. `file` is looked up in PATH.
 */
export function spawnProgram(name: string, file: string, args: readonly string[], stdin: 'pipe' | 'ignore' = 'ignore'): Child {
  const proc = spawn(file, [...args], { stdio: [stdin, 'pipe', 'pipe'] });
  // A program that cannot be started (ENOENT, EACCES) reports it as an 'error' event after the
  // pid check below has already thrown; without a listener that event would end the bench.
  proc.once('error', () => undefined);
  if (proc.pid === undefined) throw new Error(`${name}: spawn of ${file} failed`);
  const lines: string[] = [];
  const listeners = new Set<(line: string) => void>();
  let pending = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => {
    pending += d.toString();
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      if (lines.length < MAX_KEPT_LINES) lines.push(line);
      for (const l of listeners) l(line);
      pending = pending.slice(nl + 1);
    }
  });
  proc.stderr?.on('data', (d: Buffer) => {
    if (err.length < MAX_KEPT_STDERR_CHARS) err += d.toString();
  });
  const exited = new Promise<void>((resolve) => {
    proc.once('exit', () => {
      resolve();
    });
  });
  const onLine = (listener: (line: string) => void): (() => void) => {
    listeners.add(listener);
    return () => listeners.delete(listener);
  };
  const child: Child = { name, pid: proc.pid, proc, exited, lines, stderr: () => err, onLine };
  live.add(child);
  void exited.then(() => live.delete(child));
  return child;
}

function isRunning(child: Child): boolean {
  return child.proc.exitCode === null && child.proc.signalCode === null;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `probe` every 20 ms until it returns a value; rejects when `child` exits or after `timeoutMs`. */
async function pollChild<T>(child: Child, what: string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (!isRunning(child)) throw new Error(`${child.name} (pid ${child.pid}) exited before ${what}: ${child.stderr()}`);
    if (performance.now() > deadline) throw new Error(`${child.name} (pid ${child.pid}): no ${what} within ${timeoutMs} ms: ${child.stderr()}`);
    await sleep(20);
  }
}

/** Resolves with the first stdout line of `child` that parses as JSON and satisfies `pred`. */
export function waitForJsonLine<T>(child: Child, pred: (v: unknown) => v is T, timeoutMs = 10_000): Promise<T> {
  return pollChild(child, 'ready line', timeoutMs, () => {
    for (const line of child.lines) {
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch {
        continue; // not a JSON line: not the one we wait for
      }
      if (pred(v)) return v;
    }
    return undefined;
  });
}

/**
 * Resolves with the first stdout line of `child` from now on (lines already seen do not count)
 * that parses as JSON and satisfies `pred`; rejects when `child` exits or after `timeoutMs`.
 * For lines past MAX_KEPT_LINES, such as the n-th reload of a chatty process.
 */
export function waitForNextJsonLine<T>(child: Child, pred: (v: unknown) => v is T, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const finish = (err: Error | undefined, value?: T): void => {
      stop();
      clearTimeout(timer);
      if (err !== undefined) reject(err);
      else resolve(value as T);
    };
    const stop = child.onLine((line) => {
      if (!line.startsWith('{')) return;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch {
        return; // not a JSON line: not the one we wait for
      }
      if (pred(v)) finish(undefined, v);
    });
    const timer = setTimeout(() => {
      finish(new Error(`${child.name} (pid ${child.pid}): no such line within ${timeoutMs} ms: ${child.stderr().slice(0, 500)}`));
    }, timeoutMs);
    void child.exited.then(() => {
      finish(new Error(`${child.name} (pid ${child.pid}) exited while a line was awaited: ${child.stderr().slice(0, 500)}`));
    });
  });
}

/** Waits until `child` listens on a TCP port other than those in `except`, and returns it. */
export function waitForListenPort(child: Child, timeoutMs = 10_000, except: readonly number[] = []): Promise<number> {
  return pollChild(child, 'listening socket', timeoutMs, () => listeningPorts(child.pid).find((p) => !except.includes(p)));
}

/** Waits until `child` listens on `port`. */
export async function waitForPort(child: Child, port: number, timeoutMs = 10_000): Promise<void> {
  await pollChild(child, `listening socket on port ${port}`, timeoutMs, () => (listeningPorts(child.pid).includes(port) ? true : undefined));
}

/** SIGTERM `child` (by PID), wait up to `graceMs`, then SIGKILL and wait. Never rejects. */
export async function stopChild(child: Child, graceMs = 3_000): Promise<void> {
  if (!isRunning(child)) return child.exited;
  child.proc.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (isRunning(child)) child.proc.kill('SIGKILL');
  }, graceMs);
  await child.exited;
  clearTimeout(timer);
}

/** Stops every child still running (in parallel). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((c) => stopChild(c)));
}

/** Synchronous last resort for process 'exit' and signals: SIGKILL each child still running. */
export function killAllNow(): void {
  for (const c of live) {
    if (isRunning(c)) c.proc.kill('SIGKILL');
  }
}

/** What a finished command printed, and how it ended. */
export interface ProgramRun {
  /** Exit code; null when a signal ended it (e.g. the timeout's). */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

/**
 * Runs `file args…` to its end (a load generator: wrk, iperf3, openssl) and resolves with its
 * whole stdout once its pipes have closed; past `timeoutMs` it is stopped (SIGTERM, then
 * SIGKILL after 1 s) and `timedOut` is set. Never rejects once started.
 */
export async function runProgram(name: string, file: string, args: readonly string[], timeoutMs: number): Promise<ProgramRun> {
  const child = spawnProgram(name, file, args);
  let stdout = '';
  child.proc.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  const closed = new Promise<void>((resolve) => {
    child.proc.once('close', () => {
      resolve();
    });
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void stopChild(child, 1_000);
  }, timeoutMs);
  await Promise.race([closed, child.exited.then(() => sleep(1_000))]);
  clearTimeout(timer);
  return { code: child.proc.exitCode, stdout, stderr: child.stderr(), timedOut };
}
