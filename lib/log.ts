// The pino root logger and the event names tether logs. I/O (writes JSON lines to stdout).
// Payload bytes are never logged. Affinity key values are logged as a short hash (keyHash),
// because some kinds carry personal data (addresses now; logins and cookies later).
import { createHash } from 'node:crypto';
import { pino, type Logger, type DestinationStream } from 'pino';
import { raceTimeout, realClock } from './clock.js';
import { BatchWriter, LOG_DROPPED_EVENT } from './log-batch.js';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Event names (the `event` field of every line). */
export const EVENTS = {
  listenReady: 'listen.ready',
  connClose: 'conn.close',
  connectFail: 'connect.fail',
  backendDown: 'backend.down',
  backendUp: 'backend.up',
  healthCheck: 'health.check',
  acceptError: 'accept.error',
  limitReached: 'limit.reached',
  peekSlow: 'peek.slow',
  queueWait: 'queue.wait',
  internalError: 'internal.error',
  fatal: 'process.fatal',
  keyModuleError: 'key-module.error',
  ticketKey: 'tls-ticket.learned',
  directoryError: 'directory.error',
  stopBegin: 'stop.begin',
  stopDone: 'stop.done',
  started: 'tether.started',
  reloadDone: 'reload.done',
  reloadFailed: 'reload.failed',
  adminReady: 'admin.ready',
  adminRequest: 'admin.request',
  adminMove: 'affinity.moved',
  adminFlush: 'affinity.flushed',
  adminState: 'backend.state',
  stateLoaded: 'state.loaded',
  stateSaved: 'state.saved',
  stateError: 'state.error',
  activationIgnored: 'activation.ignored',
  notifyError: 'notify.error',
  /** Written by log-batch.ts itself, not through pino. */
  logDropped: LOG_DROPPED_EVENT,
} as const;

/** Longest a log line waits in the batch. Start-up lines are flushed at once (see flushSoon). */
const LOG_FLUSH_MS = 100;

/** Longest flushLog waits: a stdout nobody reads must not hold a stop or an exit for ever. */
export const LOG_FLUSH_WAIT_MS = 2_000;

let isoMs = -1;
let isoPart = '';
/**
 * pino's isoTime (`,"time":"…"`), made once per millisecond: under load several lines share a
 * millisecond, and toISOString() was ~2.5 µs of each conn.close line.
 */
function cachedIsoTime(): string {
  const ms = realClock.now();
  if (ms !== isoMs) {
    isoMs = ms;
    isoPart = `,"time":"${new Date(ms).toISOString()}"`;
  }
  return isoPart;
}

/** Loggers with a flushSoon() in flight. */
const flushing = new WeakSet<Logger>();

/** Writes out batched lines now (after start-up events that tests and operators wait for). */
export function flushSoon(logger: Logger): void {
  // One flush in flight per logger: each flush() call adds drain/error listeners to the stream
  // until the write ends, so a burst (thousands of admin calls) piled them up, and removing
  // them took the event loop for seconds (bench ops). A flush writes all that is buffered;
  // a line logged while one is in flight goes out with the next one, or the timer's.
  if (flushing.has(logger)) return;
  flushing.add(logger);
  try {
    logger.flush(() => {
      flushing.delete(logger);
    });
  } catch {
    // Nothing to flush into (a closed stdout): the lines are lost either way.
    flushing.delete(logger);
  }
}


/**
 * Builds the root logger. Writes to `dest` (stdout by default) asynchronously;
 * call `flushLog` before exiting so no line is lost.
 */
export function createLogger(level: LogLevel, dest?: DestinationStream): Logger {
  // Lines are batched (log-batch.ts, flushed every LOG_FLUSH_MS): one write per conn.close
  // line cost ~70 µs of CPU per connection in the bench (a futex + write each).
  let stream: DestinationStream;
  if (dest) stream = dest;
  else {
    const writer = new BatchWriter(1);
    setInterval(() => {
      writer.flush();
    }, LOG_FLUSH_MS).unref();
    stream = writer;
  }
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: cachedIsoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
}

/**
 * Logs at fatal level and writes the batch out synchronously: for the last line before an
 * exit, when no callback would ever run.
 */
export function logFatalSync(logger: Logger, fields: Record<string, unknown>, msg: string): void {
  logger.fatal(fields, msg);
  flushLogSync(logger);
}

/** Writes the gathered lines out synchronously (at exit); a failure loses them, never throws. */
export function flushLogSync(logger: Logger): void {
  const stream = (logger as unknown as Record<symbol, { flushSync?: () => void } | undefined>)[pino.symbols.streamSym];
  try {
    stream?.flushSync?.();
  } catch {
    // A closed or full stdout: those lines are lost (a fatal exit also writes to stderr).
  }
}

/** Flushes pending log lines; resolves even when the stream cannot flush, at most LOG_FLUSH_WAIT_MS later. */
export function flushLog(logger: Logger): Promise<void> {
  const flushed = new Promise<void>((resolve) => {
    try {
      logger.flush(() => {
        resolve();
      });
    } catch {
      // A destination that cannot flush (e.g. a closed stdout) has nothing left to write.
      resolve();
    }
  });
  return raceTimeout(flushed, LOG_FLUSH_WAIT_MS, () => undefined);
}

/** A short, stable, non-reversible-at-a-glance tag for an affinity key value (12 hex of SHA-256). */
export function keyHash(value: string): string {
  return createHash('sha256').update(value).digest('hex').slice(0, 12);
}
