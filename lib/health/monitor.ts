// Active health checks, I/O: one timer per backend address of a frontend runs the probe
// (connect/health-probe.ts) every --health-interval and hands the result to every pool holding
// that address (Pool.recordCheck counts it). Each transition is logged once, as backend.down or
// backend.up with `reason: 'check'` and, for down, the failing check's code.
import { Buffer } from 'node:buffer';
import type { Clock } from '../clock.js';
import { HEALTH_READ_MAX_BYTES } from '../config/defaults.js';
import type { FrontendConfig } from '../config/types.js';
import { probe, type ProbeOptions } from '../connect/health-probe.js';
import { formatAddress } from '../accept/port-range.js';
import { EVENTS, flushSoon, type Logger } from '../log.js';
import type { Backend, Pool } from '../place/pool.js';
import { encodeProxyV1, encodeProxyV2 } from '../wire/proxy/header.js';
import { compileExpect } from './check.js';

/** A pool whose backends are checked, named as in the logs. */
export interface CheckedPool {
  readonly name: string;
  readonly pool: Pool;
}

/** One address checked, and every (pool, backend) it stands for. */
interface Target {
  readonly host: string;
  readonly port: number;
  readonly members: { readonly pool: string; readonly p: Pool; readonly backend: Backend }[];
}

/** The probe options for `config.health`: a PROXY header first when backends expect one. */
function probeOptions(config: FrontendConfig): ProbeOptions {
  const h = config.health;
  // The PROXY spec's LOCAL command (v1: UNKNOWN) is meant for exactly this: a connection the
  // proxy opens itself, such as a health check; Dovecot and Postfix refuse one without a header.
  const unknown = { family: 'unknown', source: '', sourcePort: 0, dest: '', destPort: 0 } as const;
  const pp = config.proxyProtocol;
  const preamble = pp === undefined ? undefined : pp === 'v1' ? encodeProxyV1(unknown) : encodeProxyV2(unknown);
  return {
    timeoutMs: h.timeoutMs,
    maxBytes: HEALTH_READ_MAX_BYTES,
    ...(preamble === undefined ? {} : { preamble }),
    ...(h.check === 'send' && h.send !== undefined ? { send: Buffer.from(h.send, 'latin1') } : {}),
    ...(h.check !== 'tcp' && h.expect !== undefined ? { expect: compileExpect(h.expect) } : {}),
  };
}

/**
 * Starts checking every backend of `pools` (already built with `checks` set) per
 * `config.health`; the first round runs at once. A backend without a port is checked on the
 * frontend's first listen port, and the verdict is the host's (every port); a client's failed
 * dial holds down only the port it dialled (Pool.markDown). Returns a stop function: clears the (unref'd) timers and
 * aborts checks in flight; nothing is logged after it.
 */
export function startHealthChecks(
  config: FrontendConfig,
  pools: Iterable<CheckedPool>,
  deps: { readonly logger: Logger; readonly clock: Clock },
): () => void {
  const log = deps.logger;
  const opts = probeOptions(config);
  const aborter = new AbortController();
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;
  const targets = new Map<string, Target>();
  for (const cp of pools) {
    for (const b of cp.pool.backends) {
      const port = b.spec.port ?? config.listen[0]?.portLow;
      if (port === undefined || port === 0) continue;
      const id = formatAddress(b.spec.host, port);
      let target = targets.get(id);
      if (!target) {
        target = { host: b.spec.host, port, members: [] };
        targets.set(id, target);
      }
      target.members.push({ pool: cp.name, p: cp.pool, backend: b });
    }
  }

  const report = (t: Target, ok: boolean, code: string | undefined): void => {
    const atMs = deps.clock.now();
    let changed = false;
    for (const m of t.members) {
      const transition = m.p.recordCheck(m.backend, code === undefined ? { atMs, ok } : { atMs, ok, code });
      const fields = { frontend: config.name, pool: m.pool, backend: m.backend.name, address: formatAddress(t.host, t.port), reason: 'check' };
      if (transition === 'down') log.warn({ event: EVENTS.backendDown, ...fields, code }, 'backend down');
      if (transition === 'up') log.info({ event: EVENTS.backendUp, ...fields }, 'backend up');
      changed ||= transition !== undefined;
    }
    if (log.isLevelEnabled('debug')) {
      log.debug({ event: EVENTS.healthCheck, frontend: config.name, address: formatAddress(t.host, t.port), ok, code: code ?? null }, 'health check');
    }
    // Health events are rare and operators act on them: write them out now, not batched.
    if (changed) flushSoon(log);
  };

  const run = async (t: Target): Promise<void> => {
    const startedMs = deps.clock.now();
    const r = await probe(t.host, t.port, { ...opts, signal: aborter.signal });
    if (stopped) return;
    report(t, r.ok, r.ok ? undefined : r.code);
    schedule(t, Math.max(0, config.health.intervalMs - (deps.clock.now() - startedMs)));
  };

  const schedule = (t: Target, ms: number): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      run(t).catch((err: unknown) => {
        // A bug: this address is no longer checked; say so rather than die or stay silent.
        log.error({ event: EVENTS.internalError, frontend: config.name, code: 'TETHER_ERR_INTERNAL', err: err instanceof Error ? err.stack : String(err) }, 'health check failed');
      });
    }, ms);
    timer.unref();
    timers.add(timer);
  };

  for (const t of targets.values()) schedule(t, 0);
  return () => {
    stopped = true;
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
    aborter.abort();
  };
}
