// Builds a frontend's pools at run time; across a reload, tables, queues, balancers and
// same-named backends carry over, and removed backends that still have clients drain.
import type { BackendSpec, FrontendConfig } from '../config/types.js';
import { realTimers } from '../clock.js';
import { AffinityTable } from '../place/affinity-table.js';
import { createBalancer } from '../place/balance.js';
import { Pool } from '../place/pool.js';
import { WaitQueue } from '../place/queue.js';
import type { Deps, PoolRuntime } from './types.js';

/** A pool's runtime; with `prev` (a reload) its table and same-address backends carry over. */
export function poolRuntime(name: string, backends: FrontendConfig['backends'], balance: FrontendConfig['balance'], config: FrontendConfig, deps: Deps, prev?: PoolRuntime): PoolRuntime {
  const backendNames = new Set(backends.map((b) => b.name));
  const h = config.health;
  // Waiting clients stay queued across a reload; the new size and timeout apply from now.
  const queue = prev?.queue ?? new WaitQueue(config.queueSize, config.queueTimeoutMs, deps.timers ?? realTimers);
  queue.capacity = config.queueSize;
  queue.timeoutMs = config.queueTimeoutMs;
  const nowMs = deps.clock.now();
  let table = prev?.table;
  if (table) {
    table.resize(config.affinityTimeoutMs, config.affinityMaxEntries, nowMs);
  } else {
    table = new AffinityTable(config.affinityTimeoutMs, config.affinityMaxEntries);
    deps.restore?.(config.name, name, table, backendNames);
  }
  const retiring = prev ? retiringSpecs(prev, backendNames, table, config.affinityTimeoutMs, nowMs) : [];
  return {
    name,
    pool: new Pool([...backends, ...retiring], { nowMs, ...(h.check === 'none' ? {} : { checks: { rise: h.rise, fall: h.fall } }), ...(prev ? { carried: prev.pool.backends } : {}) }),
    table,
    balancer: prev?.balance === balance ? prev.balancer : createBalancer(balance, deps.rng),
    balance,
    backendNames,
    queue,
    retiring: new Set(retiring.map((b) => b.name)),
  };
}

/**
 * Backends a reload removed from a pool but that still have clients: open connections, or live
 * affinity entries. They stay in the pool draining — no new keys, pinned clients still come —
 * for at most one affinity timeout, after which no entry can still name them; a later reload
 * drops them once nothing uses them.
 */
function retiringSpecs(prev: PoolRuntime, keep: ReadonlySet<string>, table: AffinityTable, affinityTimeoutMs: number, nowMs: number): BackendSpec[] {
  const gone = prev.pool.backends.filter((b) => !keep.has(b.name));
  if (gone.length === 0) return [];
  const pinned = new Set<string>();
  for (const e of table.list(nowMs)) pinned.add(e.backend);
  return gone
    .filter((b) => b.active > 0 || pinned.has(b.name))
    .map((b) => {
      // Already retiring: keep its deadline (setAdmin only ever brings a drain deadline forward).
      const drainMs = b.spec.admin === 'drain' && b.spec.drainMs !== undefined ? b.spec.drainMs : affinityTimeoutMs;
      return { ...b.spec, admin: 'drain' as const, drainMs };
    });
}
