// What the flow reports: each closed connection's counters and its one `conn.close` line, and
// the warnings a flood of clients could repeat (a limit reached, a slow peek, a failing key
// module), each let through at most once a second per frontend.
import { formatAddress } from '../accept/port-range.js';
import type { LimitName } from '../accept/limits.js';
import { storedValue } from '../affinity/chain.js';
import type { Ended } from '../conn/connection.js';
import { EVENTS, flushSoon, keyHash } from '../log.js';
import type { Deps, Frontend, FrontendStats } from './types.js';

/** Logs `limit.reached` for `limit` (at most once a second per frontend, limit and pool). */
export function noteLimit(fe: Frontend, limit: LimitName, max: number, deps: Deps, pool?: string): void {
  const held = fe.limitLog.pass(pool === undefined ? limit : `${limit} ${pool}`, deps.clock.now());
  if (held === undefined) return;
  deps.logger.warn(
    { event: EVENTS.limitReached, frontend: fe.config.name, ...(pool === undefined ? {} : { pool }), limit, max, refused: held + 1 },
    'limit reached; client refused',
  );
  flushSoon(deps.logger);
}

/** Logs `peek.slow` for clients cut at the peek deadline (at most once a second per frontend). */
export function notePeekSlow(fe: Frontend, deps: Deps): void {
  const held = fe.limitLog.pass('peek-slow', deps.clock.now());
  if (held === undefined) return;
  deps.logger.warn({ event: EVENTS.peekSlow, frontend: fe.config.name, timeoutMs: fe.config.peekTimeoutMs, cut: held + 1 }, 'unfinished prelude at the peek deadline; client cut');
  flushSoon(deps.logger);
}

/** Logs `key-module.error` (a module failing on every connection would otherwise log every connection). */
export function noteKeyModuleProblem(fe: Frontend, problem: string, deps: Deps): void {
  const held = fe.limitLog.pass(EVENTS.keyModuleError, deps.clock.now());
  if (held !== undefined) deps.logger.warn({ event: EVENTS.keyModuleError, frontend: fe.config.name, err: problem, held }, 'key module failed');
}

/** Adds one closed connection to the frontend's counters. */
function count(stats: FrontendStats, e: Ended, peekOutcome: string | undefined): void {
  const t = e.termination;
  const close = `${t.cause}|${t.stage}|${t.code ?? ''}`;
  stats.closes.set(close, (stats.closes.get(close) ?? 0) + 1);
  if (peekOutcome !== undefined) stats.peeks.set(peekOutcome, (stats.peeks.get(peekOutcome) ?? 0) + 1);
  if (e.tries > 1) stats.retries += e.tries - 1;
  stats.bytesIn += e.bytesIn;
  stats.bytesOut += e.bytesOut;
}

/** Counts a closed connection and writes its one conn.close line. */
export function reportClose(fe: Frontend, e: Ended, deps: Deps): void {
  const { facts, peekStop } = e.conn;
  count(fe.stats, e, peekStop === undefined ? undefined : `${facts.peek?.protocol ?? 'unknown'}|${peekStop}`);
  const placed = e.placed;
  if (placed) {
    placed.backend.bytesIn += e.bytesIn;
    placed.backend.bytesOut += e.bytesOut;
  }
  const log = deps.logger;
  if (!log.isLevelEnabled('info')) return;
  log.info(
    {
      event: EVENTS.connClose,
      conn: e.conn.id,
      frontend: fe.config.name,
      client: formatAddress(facts.source, facts.sourcePort),
      port: facts.localPort,
      protocol: facts.peek?.protocol ?? null,
      peek: peekStop ?? null,
      pool: e.pool ?? null,
      // The login name is what mail operators search logs by; the password never leaves the
      // replay buffers (see greet/).
      user: facts.login?.key ?? null,
      backend: placed?.backend.name ?? null,
      // The hash of the stored form, as the admin API shows it (the same for any key ≤ 128 bytes).
      key: placed?.lookup ? { kind: placed.lookup.kind, hash: keyHash(storedValue(placed.lookup.value)) } : null,
      via: placed?.via ?? null,
      tries: e.tries,
      bytesIn: e.bytesIn,
      bytesOut: e.bytesOut,
      durationMs: deps.clock.now() - e.conn.startedMs,
      termination: e.termination,
    },
    'connection closed',
  );
}
