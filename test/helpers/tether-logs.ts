// The tests' tether output on disk, for the privacy check (test/privacy/): every raw byte a
// tether child writes to stdout or stderr, and every line of a test's in-process logger, is
// appended to a file under the tether log dir, in a folder named after the test file. tap's
// `before` module (test/privacy/logs-before.ts) empties the dir at the start of a run; its
// `after` module (test/privacy/logs-after.ts) reads it once every test file has finished.
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { Buffer } from 'node:buffer';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The environment variable that moves the log dir (default `.tap/tether-logs`, gitignored). */
export const LOG_DIR_ENV = 'TETHER_TEST_LOG_DIR';

/** Written by the before module: its mtime is when this tap run started. */
export const RUN_STAMP = 'run-started';

/** The tether log dir of this checkout. */
export function logDir(): string {
  return process.env[LOG_DIR_ENV] ?? path.join(ROOT, '.tap', 'tether-logs');
}

/** The running test file relative to the checkout (`test/e2e/imap.test.ts`); 'unknown' outside one. */
export function testFileOfProcess(): string {
  const main = process.argv[1];
  if (main === undefined) return 'unknown';
  const rel = path.relative(ROOT, main).split(path.sep).join('/');
  return rel.startsWith('..') || path.isAbsolute(rel) ? 'unknown' : rel;
}

/** This test file's folder under `dir`, created when missing. */
export function testFileDir(dir = logDir()): string {
  const d = path.join(dir, testFileOfProcess());
  mkdirSync(d, { recursive: true });
  return d;
}

/** What the check knows about one source of log lines. */
export interface RunMeta {
  /** `spawn`: a tether child (`args` as given to bin/tether); `in-process`: a test's own logger. */
  readonly kind: 'spawn' | 'in-process';
  readonly testFile: string;
  readonly args: readonly string[];
  /** The --log-level given on the command line ('info' without one; 'config' when a --config file decides). */
  readonly logLevel: string;
}

/** The level a tether started with `args` logs at, as far as the command line says. */
export function logLevelOf(args: readonly string[]): string {
  const at = args.lastIndexOf('--log-level');
  if (at >= 0) return args[at + 1] ?? 'info';
  return args.includes('--config') ? 'config' : 'info';
}

let seq = 0;

/** Appends bytes to one file, keeping the fd open until `close`; a file is opened on first write. */
class Appender {
  private fd: number | undefined;
  constructor(private readonly file: string) {}
  write(chunk: Buffer | string): void {
    this.fd ??= openSync(this.file, 'a');
    const b = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    for (let at = 0; at < b.length; ) at += writeSync(this.fd, b, at);
  }
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Where one tether child's output goes; `close` once the child has exited. */
export interface TetherLogTee {
  stdout(chunk: Buffer): void;
  stderr(chunk: Buffer): void;
  close(): void;
}

/** Starts recording the output of a tether child started with `args` (`pid` names its files). */
export function teeTetherOutput(pid: number | undefined, args: readonly string[]): TetherLogTee {
  const d = testFileDir();
  const id = `tether-${String(pid ?? `x${String(process.pid)}-${String(++seq)}`)}`;
  const meta: RunMeta = { kind: 'spawn', testFile: testFileOfProcess(), args, logLevel: logLevelOf(args) };
  writeFileSync(path.join(d, `${id}.meta.json`), JSON.stringify(meta) + '\n');
  const out = new Appender(path.join(d, `${id}.stdout.log`));
  const err = new Appender(path.join(d, `${id}.stderr.log`));
  return {
    stdout: (chunk) => {
      out.write(chunk);
    },
    stderr: (chunk) => {
      err.write(chunk);
    },
    close: () => {
      out.close();
      err.close();
    },
  };
}

let inProcess: Appender | undefined;

/** Appends one line of a test's in-process logger (a memory sink) to this process's file. */
export function recordLoggerLine(line: string): void {
  if (!inProcess) {
    const d = testFileDir();
    const id = `in-process-${String(process.pid)}`;
    const meta: RunMeta = { kind: 'in-process', testFile: testFileOfProcess(), args: [], logLevel: 'debug' };
    writeFileSync(path.join(d, `${id}.meta.json`), JSON.stringify(meta) + '\n');
    inProcess = new Appender(path.join(d, `${id}.stdout.log`));
  }
  inProcess.write(line.endsWith('\n') ? line : `${line}\n`);
}

/** Empties `dir` and stamps the start of a run (the before module). */
export function startRun(dir = logDir()): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, RUN_STAMP), `${new Date().toISOString()}\n`);
}
