// Admin, I/O-free. What the admin API shows and does, over a running Tether: frontends, pools,
// backends with state and counters, and the affinity tables (dump, look up, flush, move).
// Key values are shown as keyHash() unless the caller asks to reveal them.
import { formatAddress } from '../accept/port-range.js';
import { storedValue, tableKey } from '../affinity/chain.js';
import { sourceNetwork } from '../affinity/source.js';
import { keyHash } from '../log.js';
import type { Backend, BackendState } from '../place/pool.js';
import type { BackendAdmin } from '../config/types.js';
import type { PoolRuntime, RunningFrontend, Tether } from '../runtime/types.js';

export const BACKEND_STATES = ['up', 'down', 'draining', 'maint'] as const satisfies readonly BackendState[];

/** An admin request that cannot be served: HTTP status, a stable code and a message. */
export class AdminError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'AdminError';
  }
}

export function backendView(pr: PoolRuntime, b: Backend, nowMs: number): Record<string, unknown> {
  const pool = pr.pool;
  return {
    name: b.name,
    address: formatAddress(b.spec.host, b.spec.port ?? 0),
    weight: b.weight,
    backup: b.spec.backup,
    maxConns: b.spec.maxConns ?? null,
    state: pool.state(b, nowMs),
    // A backend without a port: the ports a failed dial holds down (the host itself is up).
    ...(b.spec.port === undefined ? { heldPorts: pool.heldPorts(b, nowMs) } : {}),
    admin: b.admin,
    drainDeadlineInMs: b.drainDeadlineMs === undefined ? null : Math.max(0, b.drainDeadlineMs - nowMs),
    // Removed from the config by a reload: draining until its clients are gone.
    removed: pr.retiring.has(b.name),
    lastCheck: b.lastCheck ? { ok: b.lastCheck.ok, agoMs: nowMs - b.lastCheck.atMs, ...(b.lastCheck.code === undefined ? {} : { code: b.lastCheck.code }) } : null,
    active: b.active,
    total: b.total,
    connectFailures: b.failures,
    bytesIn: b.bytesIn,
    bytesOut: b.bytesOut,
  };
}

export function frontendsView(tether: Tether, nowMs: number): Record<string, unknown>[] {
  return tether.frontends.map((f) => {
    const fe = f.current;
    const s = fe.stats;
    return {
      name: f.name,
      protocol: fe.config.protocol,
      affinity: fe.config.affinity.map((st) => st.kind),
      listeners: f.listeners.map((l) => formatAddress(l.host, l.port)),
      open: fe.open.size,
      accepted: s.accepted,
      retries: s.retries,
      bytesIn: s.bytesIn,
      bytesOut: s.bytesOut,
      pools: [...fe.pools.values()].map((pr) => ({
        name: pr.name,
        balance: pr.balance,
        table: { entries: pr.table.size, maxEntries: pr.table.maxEntries, idleMs: pr.table.idleMs, ...pr.table.stats },
        queue: { waiting: pr.queue.size, capacity: pr.queue.capacity },
        backends: pr.pool.backends.map((b) => backendView(pr, b, nowMs)),
      })),
    };
  });
}

/** The frontend named `name`, or the only one when `name` is absent. */
export function frontendNamed(tether: Tether, name: string | undefined): RunningFrontend {
  if (name === undefined) {
    const only = tether.frontends.length === 1 ? tether.frontends[0] : undefined;
    if (only) return only;
    throw new AdminError(400, 'frontend-required', `several frontends run (${tether.frontends.map((f) => f.name).join(', ')}): say which with frontend=`);
  }
  const f = tether.frontends.find((x) => x.name === name);
  if (!f) throw new AdminError(404, 'no-such-frontend', `no frontend named ${JSON.stringify(name)}`);
  return f;
}

/** The pool named `name` of `f`, or every pool when `name` is absent. */
export function poolsNamed(f: RunningFrontend, name: string | undefined): PoolRuntime[] {
  if (name === undefined) return [...f.current.pools.values()];
  const pr = f.current.pools.get(name);
  if (!pr) throw new AdminError(404, 'no-such-pool', `frontend ${f.name} has no pool named ${JSON.stringify(name)}`);
  return [pr];
}

/** A table key split back into its kind and value. */
export function splitTableKey(key: string): { kind: string; value: string } {
  const nul = key.indexOf('\u0000');
  return nul < 0 ? { kind: '', value: key } : { kind: key.slice(0, nul), value: key.slice(nul + 1) };
}

/**
 * A key value as the table holds it: a bare address for a `source` key gets the frontend's
 * mask (`192.0.2.7` → `192.0.2.0/24`), so operators can name a client by its address.
 */
export function tableValue(f: RunningFrontend, kind: string, value: string): string {
  if (kind !== 'source' || value.includes('/')) return value;
  const step = f.current.config.affinity.find((s) => s.kind === 'source');
  if (step?.kind !== 'source') return value;
  return sourceNetwork(value, step.v4Bits, step.v6Bits) ?? value;
}

/** Which entries an affinity request addresses: a kind and a value or its hash, or filters. */
export interface KeySelector {
  readonly kind?: string;
  readonly value?: string;
  readonly hash?: string;
  readonly backend?: string;
}

function matches(key: string, backend: string, sel: KeySelector): boolean {
  const k = splitTableKey(key);
  if (sel.kind !== undefined && k.kind !== sel.kind) return false;
  if (sel.value !== undefined && k.value !== storedValue(sel.value)) return false;
  if (sel.hash !== undefined && keyHash(k.value) !== sel.hash.toLowerCase()) return false;
  if (sel.backend !== undefined && backend !== sel.backend) return false;
  return true;
}

export interface EntryView {
  readonly pool: string;
  readonly kind: string;
  readonly hash: string;
  readonly value?: string;
  readonly backend: string;
  readonly idleMs: number;
}

/** Live entries matching `sel`, most recently used first, at most `limit`. */
export function dumpEntries(pools: readonly PoolRuntime[], sel: KeySelector, reveal: boolean, limit: number, nowMs: number): { entries: EntryView[]; total: number } {
  const entries: EntryView[] = [];
  let total = 0;
  for (const pr of pools) {
    const live = [...pr.table.list(nowMs)].reverse();
    for (const e of live) {
      if (!matches(e.key, e.backend, sel)) continue;
      total++;
      if (entries.length >= limit) continue;
      const k = splitTableKey(e.key);
      entries.push({ pool: pr.name, kind: k.kind, hash: keyHash(k.value), ...(reveal ? { value: k.value } : {}), backend: e.backend, idleMs: nowMs - e.lastUsedMs });
    }
  }
  return { entries, total };
}

/** Removes the entries matching `sel` (every entry with an empty selector); returns how many. */
export function flushEntries(pools: readonly PoolRuntime[], sel: KeySelector, nowMs: number): number {
  let removed = 0;
  const all = sel.kind === undefined && sel.value === undefined && sel.hash === undefined && sel.backend === undefined;
  for (const pr of pools) {
    if (all) {
      removed += pr.table.clear();
      continue;
    }
    const doomed = [...pr.table.list(nowMs)].filter((e) => matches(e.key, e.backend, sel)).map((e) => e.key);
    for (const k of doomed) if (pr.table.delete(k)) removed++;
  }
  return removed;
}

/**
 * Pins one key to `backend` in the pool. The key is named by kind and value, or by kind/hash of
 * an existing entry. With `close`, that key's open connections on other backends are cut so
 * their clients reconnect to the new one. Returns the key moved and how many were cut.
 */
export function moveEntry(f: RunningFrontend, pr: PoolRuntime, sel: KeySelector, backend: string, close: boolean, nowMs: number): { kind: string; hash: string; from: string | null; closed: number } {
  if (!pr.pool.get(backend)) throw new AdminError(404, 'no-such-backend', `pool ${pr.name} of ${f.name} has no backend named ${JSON.stringify(backend)}`);
  let key: string;
  if (sel.kind !== undefined && sel.value !== undefined) {
    key = tableKey({ kind: sel.kind, value: sel.value });
  } else if (sel.hash !== undefined) {
    const hash = sel.hash;
    const found = [...pr.table.list(nowMs)].filter((e) => matches(e.key, e.backend, { ...(sel.kind === undefined ? {} : { kind: sel.kind }), hash }));
    if (found.length === 0) throw new AdminError(404, 'no-such-entry', `no live entry with hash ${sel.hash} in pool ${pr.name}`);
    if (found.length > 1) throw new AdminError(409, 'ambiguous-hash', `${String(found.length)} entries share hash ${sel.hash}: give kind and value`);
    key = (found[0] as { key: string }).key;
  } else {
    throw new AdminError(400, 'key-required', 'name the key: kind and value, or hash');
  }
  const from = pr.table.peek(key, nowMs) ?? null;
  pr.table.set(key, backend, nowMs);
  let closed = 0;
  if (close) {
    for (const c of [...f.current.open.values()]) {
      if (c.pool === pr.name && c.tableKey === key && c.backend !== backend) {
        c.cut();
        closed++;
      }
    }
  }
  const k = splitTableKey(key);
  return { kind: k.kind, hash: keyHash(k.value), from, closed };
}

/**
 * Sets backend `name`'s operator state in `pools` (every pool of the frontend that has it when
 * no pool was named). `deadlineMs`: for drain, how long pinned clients may still come.
 */
export function setBackendState(f: RunningFrontend, pools: readonly PoolRuntime[], name: string, admin: BackendAdmin, deadlineMs: number | undefined, nowMs: number): { pool: string; changed: boolean; state: BackendState }[] {
  const hits = pools.flatMap((pr) => {
    const b = pr.pool.get(name);
    return b ? [{ pr, b }] : [];
  });
  if (hits.length === 0) throw new AdminError(404, 'no-such-backend', `frontend ${f.name} has no backend named ${JSON.stringify(name)}${pools.length === 1 ? ` in pool ${pools[0]?.name ?? ''}` : ''}`);
  return hits.map(({ pr, b }) => {
    const changed = pr.pool.setAdmin(name, admin, { nowMs, ...(admin === 'drain' && deadlineMs !== undefined ? { deadlineMs: nowMs + deadlineMs } : {}) });
    return { pool: pr.name, changed, state: pr.pool.state(b, nowMs) };
  });
}
