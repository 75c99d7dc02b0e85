// Stage 4, pure (time is passed in). Place a client: an affinity-table hit whose backend may
// still take clients wins; otherwise the balance policy chooses and the key is pinned.
import type { AffinityTable } from './affinity-table.js';
import type { Balancer } from './balance.js';
import type { Backend, Pool } from './pool.js';

export interface PlaceRequest {
  readonly table: AffinityTable;
  readonly pool: Pool;
  readonly balancer: Balancer;
  /** The affinity table's form of the key (see affinity/chain.ts tableKey), or undefined. */
  readonly key: string | undefined;
  readonly nowMs: number;
  /** Backends already tried for this client. */
  readonly exclude: ReadonlySet<string>;
}

export interface Placement {
  readonly backend: Backend;
  /** `table`: an existing entry; `balance`: a new choice (pinned if keyed). */
  readonly via: 'table' | 'balance';
  /** For `balance` on a keyed client: the backend the stale entry pointed at, if any. */
  readonly moved?: string;
}

/**
 * Returns where the client goes, or undefined when no backend can take it. An entry pointing at
 * a backend that is down, removed, excluded, or a backup while a primary is up is re-placed;
 * entries on healthy backends are never touched, so only such keys move.
 */
export function place(req: PlaceRequest): Placement | undefined {
  const candidates = req.pool.candidates(req.nowMs, req.exclude);
  if (candidates.length === 0) return undefined;
  let moved: string | undefined;
  if (req.key !== undefined) {
    const pinned = req.table.get(req.key, req.nowMs);
    if (pinned !== undefined) {
      const backend = candidates.find((b) => b.name === pinned);
      if (backend) return { backend, via: 'table' };
      moved = pinned;
    }
  }
  const backend = req.balancer.pick(candidates, req.key);
  if (backend === undefined) return undefined;
  if (req.key !== undefined) req.table.set(req.key, backend.name, req.nowMs);
  return moved === undefined ? { backend, via: 'balance' } : { backend, via: 'balance', moved };
}
