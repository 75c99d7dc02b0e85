// Stage 1, I/O. Notice that tether has run out of file descriptors. Node gives no signal when
// accept fails for want of one: libuv keeps a spare fd for exactly this case and, on EMFILE or
// ENFILE, closes it, accepts each pending client on it and closes that client at once
// (uv__emfile_trick), then takes the spare back — and reports nothing, so net.Server emits no
// 'error' (checked on Node 20.20: clients see connect then FIN, the server sees nothing). So
// tether looks for itself: it opens and closes /dev/null after each burst of accepts and every
// FD_CHECK_INTERVAL_MS; EMFILE or ENFILE there means clients are being turned away at accept.
import { closeSync, openSync } from 'node:fs';
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
  stop(): void;
}

/**
 * Runs checkFds() every `intervalMs` (an unref'd timer) and after each burst of accepts
 * (`soon`), and calls `onShortage` with the code each time it fails.
 */
export function watchFds(onShortage: (code: 'EMFILE' | 'ENFILE') => void, intervalMs = FD_CHECK_INTERVAL_MS, minGapMs = FD_CHECK_MIN_GAP_MS): FdWatch {
  let lastMs = -Infinity;
  const check = (): void => {
    lastMs = performance.now();
    const code = checkFds();
    if (code !== undefined) onShortage(code);
  };
  const timer = setInterval(check, intervalMs);
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
    stop() {
      clearInterval(timer);
      if (pending) clearImmediate(pending);
      pending = undefined;
    },
  };
}
