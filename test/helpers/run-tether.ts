// Spawns the real `node bin/tether` as a user would, collects its pino JSON lines, and waits
// for events. Teardown sends SIGTERM to the child (by PID) and waits for it to exit. Every byte
// of its stdout and stderr is also kept on disk for the privacy check (tether-logs.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { teeTetherOutput } from './tether-logs.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(ROOT, 'bin', 'tether');

export interface LogLine {
  readonly event?: string;
  readonly [field: string]: unknown;
}

export interface RunningTether {
  readonly child: ChildProcess;
  readonly lines: LogLine[];
  stderr(): string;
  stdout(): string;
  /** Ports bound, in listen.ready order. */
  readonly ports: number[];
  /** Resolves with the first line (already seen or future) matching `pred`; rejects after `ms`. */
  waitFor(pred: (l: LogLine) => boolean, ms?: number): Promise<LogLine>;
  /** Resolves with the exit code once the process exits. */
  readonly exited: Promise<number | null>;
  /** SIGTERM (if still running) and wait for exit; rejects if tether logged `process.fatal`. */
  stop(): Promise<number | null>;
}

/**
 * Starts tether with `args`. Resolves once `readyCount` listen.ready lines have been seen
 * (0: do not wait — for runs expected to fail). Rejects when the process exits first.
 * `launcher` runs first and is given `node bin/tether ARGS` to exec (a wrapper that passes
 * listening sockets, for example).
 */
export async function runTether(
  args: readonly string[],
  opts: { readyCount?: number; env?: NodeJS.ProcessEnv; launcher?: readonly [string, ...string[]] } = {},
): Promise<RunningTether> {
  const argv = [process.execPath, BIN, ...args];
  const [file, ...rest] = opts.launcher ? [...opts.launcher, ...argv] : argv;
  const child = spawn(file ?? process.execPath, rest, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
  const tee = teeTetherOutput(child.pid, args);
  const lines: LogLine[] = [];
  const ports: number[] = [];
  let out = '';
  let err = '';
  let pending = '';
  const waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  child.stdout.on('data', (d: Buffer) => {
    tee.stdout(d);
    out += d.toString();
    pending += d.toString();
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const text = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        continue; // not a log line (e.g. the demo's text)
      }
      lines.push(line);
      if (line.event === 'listen.ready' && typeof line['port'] === 'number') ports.push(line['port']);
      for (const w of [...waiters]) {
        if (w.pred(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr.on('data', (d: Buffer) => {
    tee.stderr(d);
    err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      resolve(code);
    });
  });
  // 'close' comes after the last stdout/stderr data, 'exit' may come before it.
  child.on('close', () => {
    tee.close();
  });
  const waitFor = (pred: (l: LogLine) => boolean, ms = 10_000): Promise<LogLine> => {
    const seen = lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        reject(new Error(`timed out waiting for a log line; stderr: ${err}`));
      }, ms);
      waiters.push({
        pred,
        resolve: (l) => {
          clearTimeout(t);
          resolve(l);
        },
      });
    });
  };
  const rt: RunningTether = {
    child,
    lines,
    ports,
    stderr: () => err,
    stdout: () => out,
    waitFor,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const code = await exited;
      // Every e2e test must pass without tether ever reaching its last-resort guard (a bug).
      const fatal = lines.find((l) => l.event === 'process.fatal');
      if (fatal) throw new Error(`tether hit an unhandled error (exit ${String(code)}): ${String(fatal['err'])}`);
      return code;
    },
  };
  const ready = opts.readyCount ?? 1;
  if (ready > 0) {
    const readyP = (async () => {
      const deadline = Date.now() + 10_000;
      while (ports.length < ready) {
        if (Date.now() > deadline) throw new Error(`tether did not listen within 10s; stderr: ${err}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    try {
      await Promise.race([
        readyP,
        exited.then((code) => {
          throw new Error(`tether exited with ${String(code)} before listening: ${err}`);
        }),
      ]);
    } catch (e) {
      // Nobody gets a handle on a tether that never listened: stop it here, or it outlives the test.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      throw e;
    }
  }
  return rt;
}

/** Runs tether to completion (for usage errors and `check`); resolves with status and output. */
export async function runTetherToExit(args: readonly string[], timeoutMs = 15_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const rt = await runTether(args, { readyCount: 0 });
  const t = setTimeout(() => rt.child.kill('SIGKILL'), timeoutMs);
  const code = await rt.exited;
  clearTimeout(t);
  return { code, stdout: rt.stdout(), stderr: rt.stderr() };
}
