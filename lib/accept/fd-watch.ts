// Stage 1, I/O. Notice that tether has run out of file descriptors. Node gives no signal when
// accept fails for want of one: libuv keeps a spare fd for exactly this case and, on EMFILE or
// ENFILE, closes it, accepts each pending client on it and closes that client at once
// (uv__emfile_trick), then takes the spare back — and reports nothing, so net.Server emits no
// 'error' (checked on Node 20.20: clients see connect then FIN, the server sees nothing). So
// tether looks for itself, two ways:
// - The fd of each accepted client and each backend socket. The kernel hands out the lowest
//   free fd, so a socket given the last fd below the limit (RLIMIT_NOFILE, read from
//   /proc/self/limits) means none is left: the next accept fails. This costs no system call,
//   and it sees the moment the fds run out, which is gone a turn later (a storm's clients that
//   reset give theirs back while libuv turns the backlog away with no callback to look in).
// - A probe: it opens and closes /dev/null after each burst of accepts and every
//   FD_CHECK_INTERVAL_MS; EMFILE or ENFILE there means clients are being turned away.
import { closeSync, openSync, readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { errorCode } from '../errors.js';

/** How often the fd check runs: accept.error is logged at most this often anyway. */
export const FD_CHECK_INTERVAL_MS = 1_000;

/** Whether `code` (a Node error code) says tether itself is out of file descriptors. */
export function isFdShortage(code: string | undefined): code is 'EMFILE' | 'ENFILE' {
  return code === 'EMFILE' || code === 'ENFILE';
}

/** Opens and closes one fd; returns EMFILE/ENFILE when that fails for want of one. */
export function checkFds(): 'EMFILE' | 'ENFILE' | undefined {
  try {
    closeSync(openSync('/dev/null', 'r'));
    return undefined;
  } catch (e) {
    const code = errorCode(e);
    // Any other failure (no /dev/null in a chroot) says nothing about fds: not a shortage.
    return isFdShortage(code) ? code : undefined;
  }
}

/**
 * The soft limit on open files from the text of /proc/PID/limits ("Max open files  1024  4096
 * files"); undefined when there is no such line or it says "unlimited".
 */
export function parseFdLimit(limits: string): number | undefined {
  const m = /^Max open files\s+(\d+)\s/m.exec(limits);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** This process's soft fd limit, or undefined where /proc/self/limits cannot be read. */
export function readFdLimit(): number | undefined {
  try {
    return parseFdLimit(readFileSync('/proc/self/limits', 'latin1'));
  } catch {
    return undefined;
  }
}

/** The fd behind a socket, read off Node's handle (undocumented but stable); undefined if none. */
export function socketFd(s: Socket): number | undefined {
  const fd = (s as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * After a burst of one accept, the least time since the last check for another. A storm comes
 * as bursts of many accepts, each checked at once; steady traffic (one accept a turn) costs an
 * open and a close per this interval instead of per connection.
 */
export const FD_CHECK_MIN_GAP_MS = 50;

/** A running fd watch. */
export interface FdWatch {
  /**
   * Checks once more after the current burst of accepts (setImmediate, coalesced; a burst of
   * one only FD_CHECK_MIN_GAP_MS after the last check): a storm
   * fills the fds in one burst and libuv turns the rest of the backlog away at once, so the
   * moment right after a burst is when a shortage shows.
   */
  soon(): void;
  /**
   * Told the fd of a socket just opened (an accepted client, a backend socket): the last fd
   * below the limit means none is left, a shortage.
   */
  sawFd(fd: number | undefined): void;
  stop(): void;
}

/**
 * Runs checkFds() every `intervalMs` (an unref'd timer) and after each burst of accepts
 * (`soon`), and calls `onShortage` with the code each time it fails or a socket got the last
 * fd (`sawFd`). The limit is read at the start and again on each interval (prlimit can change
 * it); `readLimit` is for tests.
 */
export function watchFds(
  onShortage: (code: 'EMFILE' | 'ENFILE') => void,
  intervalMs = FD_CHECK_INTERVAL_MS,
  minGapMs = FD_CHECK_MIN_GAP_MS,
  readLimit: () => number | undefined = readFdLimit,
): FdWatch {
  let lastMs = -Infinity;
  let limit = readLimit();
  const check = (): void => {
    lastMs = performance.now();
    const code = checkFds();
    if (code !== undefined) onShortage(code);
  };
  const tick = (): void => {
    // Out of fds the limits file cannot be opened either: the last limit read stands.
    limit = readLimit() ?? limit;
    check();
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  let pending: NodeJS.Immediate | undefined;
  let burst = 0;
  const run = (): void => {
    pending = undefined;
    const many = burst > 1;
    burst = 0;
    if (many || performance.now() - lastMs >= minGapMs) check();
  };
  return {
    soon() {
      burst++;
      pending ??= setImmediate(run);
    },
    sawFd(fd) {
      if (fd !== undefined && limit !== undefined && fd >= limit - 1) onShortage('EMFILE');
    },
    stop() {
      clearInterval(timer);
      if (pending) clearImmediate(pending);
      pending = undefined;
    },
  };
}
