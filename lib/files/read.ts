// I/O. Every file tether reads (config, user map, key module, state file, certificates, admin
// token) comes through here: it must be a regular file, no bigger than its limit, and read
// within a time bound. A FIFO put where a map was would otherwise block a libuv pool thread for
// ever on open() (four of those and every file read, DNS lookup and log flush waits); /dev/zero
// would be read until memory runs out; a 35 MB config took 45 s and 3.9 GB to parse.
import { constants, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { raceTimeout } from '../clock.js';

/**
 * Why a file was refused: `ENOTREG` (not a regular file), `EFBIG` (over its limit), `ETIMEDOUT`
 * (not read in time), or the file system's own code (ENOENT, EACCES, EISDIR…). The message is
 * a short phrase for an operator ("is a FIFO, not a regular file").
 */
export class FileError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'FileError';
  }
}

export interface FileLimits {
  /** Refuse a file bigger than this (checked on the open descriptor, and again while reading). */
  readonly maxBytes: number;
  /** Give up when opening and reading take longer than this. */
  readonly timeoutMs?: number;
}

/**
 * How long one file may take to open and read. A local file of the largest allowed size (the
 * user map, 256 MiB) reads in well under a second from a cold disk; 10 s covers a busy or
 * network file system, while a hung mount is reported instead of waited on for ever.
 */
export const FILE_READ_TIMEOUT_MS = 10_000;

/**
 * The largest PEM file read (certificate chain, key, CA bundle): Debian's whole CA bundle is
 * about 220 KiB; 1 MiB leaves room and refuses a wrong file (an archive, a log) at once.
 */
export const MAX_PEM_BYTES = 1024 * 1024;

/** What a stat says a non-regular file is, for the message. */
function kind(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a plain file';
}

/** "1.5 MiB", "35.0 MiB", "900 bytes": sizes in messages. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${String(n)} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** The phrase for an error from here or from the file system ("ENOENT" when it has only a code). */
export function describeFileError(e: unknown): string {
  if (e instanceof FileError) return e.message;
  if (e instanceof Error && 'code' in e && typeof e.code === 'string') return e.code;
  return e instanceof Error ? e.message : String(e);
}

/** Refuses `st` unless it is a regular file within `maxBytes`. */
function check(st: Stats, maxBytes: number): void {
  if (!st.isFile()) throw new FileError('ENOTREG', `is ${kind(st)}, not a regular file`);
  if (st.size > maxBytes) throw new FileError('EFBIG', `is ${formatBytes(st.size)}; the limit is ${formatBytes(maxBytes)}`);
}

/**
 * Opens `file` without blocking: O_NONBLOCK makes open() of a FIFO return at once (instead of
 * waiting for a writer), and fstat on the descriptor — not a stat of the name, which a rename
 * could change in between — decides whether it is read at all.
 */
async function openChecked(file: string, maxBytes: number): Promise<{ fh: FileHandle; st: Stats }> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const st = await fh.stat();
    check(st, maxBytes);
    return { fh, st };
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e;
  }
}

/** Rejects with ETIMEDOUT after `ms`; the work it races goes on and cleans up after itself. */
function bounded<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  return raceTimeout(work, ms, (): never => {
    throw new FileError('ETIMEDOUT', `was not ${what} within ${String(ms / 1000)} s`);
  });
}

/**
 * Reads all of `file`: a regular file of at most `maxBytes`, within `timeoutMs`. The result
 * owns its memory (not a slice of Node's shared pool), so it can be transferred to a worker.
 * Rejects with FileError or the file system's error.
 */
export async function readFileBounded(file: string, limits: FileLimits): Promise<Buffer> {
  const work = (async () => {
    const { fh, st } = await openChecked(file, limits.maxBytes);
    try {
      // One byte more than the limit: a file that grew after fstat is caught, not cut short.
      const cap = Math.min(limits.maxBytes + 1, Math.max(st.size, 0) + 64 * 1024);
      let buf = Buffer.allocUnsafeSlow(Math.max(cap, 1));
      let length = 0;
      for (;;) {
        if (length === buf.length) {
          if (buf.length > limits.maxBytes) break;
          const bigger = Buffer.allocUnsafeSlow(Math.min(limits.maxBytes + 1, buf.length * 2));
          buf.copy(bigger, 0, 0, length);
          buf = bigger;
        }
        const { bytesRead } = await fh.read(buf, length, buf.length - length, null);
        if (bytesRead === 0) break;
        length += bytesRead;
      }
      if (length > limits.maxBytes) throw new FileError('EFBIG', `grew past the limit of ${formatBytes(limits.maxBytes)} while being read`);
      return length === buf.length ? buf : buf.subarray(0, length);
    } finally {
      await fh.close().catch(() => undefined);
    }
  })();
  // A read that loses the race still settles later; its rejection must not go unhandled.
  work.catch(() => undefined);
  return bounded(work, limits.timeoutMs ?? FILE_READ_TIMEOUT_MS, 'read');
}

/**
 * Checks `file` as readFileBounded would, without reading it (for a file another part opens,
 * such as a key module that the worker imports). Resolves with its stat.
 */
export async function checkFile(file: string, limits: FileLimits): Promise<Stats> {
  const work = (async () => {
    const { fh, st } = await openChecked(file, limits.maxBytes);
    await fh.close().catch(() => undefined);
    return st;
  })();
  work.catch(() => undefined);
  return bounded(work, limits.timeoutMs ?? FILE_READ_TIMEOUT_MS, 'opened');
}
