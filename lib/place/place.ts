// Stage 4, pure (time is passed in). Place a client by walking the chain's lookups in order:
// a key naming a backend, then an affinity-table hit whose backend may still take clients,
// then (for a plain key) the balance policy, pinning the key. No decisive lookup: un-keyed.
// Backends at their max-conns are skipped by the balance policy; a client bound to one (by a
// key's name or a table hit), or with every candidate full, is told to wait ('full').
// Routes and table hits may land on a draining backend (its clients stay); balance never does.
import type { AffinityTable } from './affinity-table.js';
import type { Balancer } from './balance.js';
import type { Backend, Pool } from './pool.js';

/** One lookup for placement, derived from one affinity chain step (affinity/chain.ts makes them). */
export interface Lookup {
  /** The key's kind as spelled in `--affinity`. */
  readonly kind: string;
  /** The key's value as the client sent it (or as tether derived it). */
  readonly value: string;
  /** The affinity table's key string (kind and value; kinds never collide). */
  readonly tableKey: string;
  /** Counts only on a table hit (tls-session, tls-ticket). */
  readonly learned: boolean;
  /** A backend named by the key itself (`JSESSIONID=abc.node1` → node1, a backend of the pool). */
  readonly names?: string;
}

export interface PlaceRequest {
  /** Only get and set are used: explain passes a read-only view. */
  readonly table: Pick<AffinityTable, 'get' | 'set'>;
  readonly pool: Pool;
  readonly balancer: Balancer;
  readonly lookups: readonly Lookup[];
  readonly nowMs: number;
  /** Backends already tried for this client. */
  readonly exclude: ReadonlySet<string>;
  /** A backend the client named itself (tether's inserted cookie), tried first. */
  readonly named?: string;
  /** The port the client connected to: a backend without a port is judged on it (Pool.isUp). */
  readonly port?: number;
}

export interface Placement {
  readonly backend: Backend;
  /** `named`: named by the client (a cookie's backend suffix or tether's inserted cookie); `table`: an existing entry; `balance`: a new choice. */
  readonly via: 'named' | 'table' | 'balance';
  /** The lookup that decided (undefined: un-keyed, or named by the inserted cookie). */
  readonly lookup?: Lookup;
  /** For `balance` on a key: the backend its stale entry pointed at, if any. */
  readonly moved?: string;
}

/**
 * Returns where the client goes; 'full' when it must wait for a slot (the backend its key names or
 * table entry names is at its max-conns, or every candidate is); undefined when no backend can
 * take it. An entry pointing at a backend that is down, in maint, past its drain deadline,
 * removed, excluded, or a backup while a primary is up is re-placed; entries on healthy backends
 * (draining ones included) are never touched, so only such keys move — a full backend is
 * healthy, so its keys wait rather than move. New keys and un-keyed clients go to candidates only.
 */
export function place(req: PlaceRequest): Placement | 'full' | undefined {
  const { pool, nowMs, exclude, port } = req;
  const candidates = pool.candidates(nowMs, exclude, port);
  const usable = (name: string): Backend | undefined => {
    const b = pool.get(name);
    return b && pool.takesPinned(b, nowMs, exclude, port) ? b : undefined;
  };
  if (candidates.length === 0 && !pool.backends.some((b) => pool.takesPinned(b, nowMs, exclude, port))) return undefined;
  const bound = (b: Backend, p: Placement): Placement | 'full' => (pool.hasRoom(b) ? p : 'full');
  // Only backends with room are offered to the balancer, so a new key is pinned where it can
  // be served now (for hash: its next-best backend), and roundrobin's turn is not spent on a
  // client that waits.
  const roomy = candidates.filter((b) => pool.hasRoom(b));
  if (req.named !== undefined) {
    const b = usable(req.named);
    if (b) return bound(b, { backend: b, via: 'named' });
  }
  for (const lookup of req.lookups) {
    if (lookup.names !== undefined) {
      const b = usable(lookup.names);
      if (b) return bound(b, { backend: b, via: 'named', lookup });
    }
    const pinned = req.table.get(lookup.tableKey, req.nowMs);
    const hit = pinned === undefined ? undefined : usable(pinned);
    if (hit) return bound(hit, { backend: hit, via: 'table', lookup });
    if (lookup.learned) continue;
    // Only draining backends left: they keep their own clients, and this one is not theirs.
    if (candidates.length === 0) return undefined;
    if (roomy.length === 0) return 'full';
    const backend = req.balancer.pick(roomy, lookup.tableKey);
    if (backend === undefined) return undefined;
    req.table.set(lookup.tableKey, backend.name, req.nowMs);
    return pinned === undefined ? { backend, via: 'balance', lookup } : { backend, via: 'balance', lookup, moved: pinned };
  }
  if (candidates.length === 0) return undefined;
  if (roomy.length === 0) return 'full';
  const backend = req.balancer.pick(roomy, undefined);
  return backend === undefined ? undefined : { backend, via: 'balance' };
}
