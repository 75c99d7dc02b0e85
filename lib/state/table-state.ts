// The affinity tables as a state file, pure: encode them, parse a file back (garbage gives a
// reason, never a throw), and choose which saved entries a table may take back.
//
// Layout (JSON, version 1):
//   { "version": 1, "savedAt": <epoch ms>,
//     "frontends": { <frontend>: { "pools": { <pool>: [[key, backend, lastUsedEpochMs], …] } } } }
// Each pool's list is least recently used first, so reading it in order rebuilds the LRU order.
// Times are epoch milliseconds: the tables keep times on the injected Clock, whose real form
// (realClock) is Date.now, so a file saved by one process means the same to the next.

/** The file format version this module writes and reads. */
export const STATE_VERSION = 1;

/** One saved affinity-table entry. */
export interface SavedEntry {
  readonly key: string;
  readonly backend: string;
  readonly lastUsedMs: number;
}

/** Saved entries by frontend name, then pool name; each list least recently used first. */
export type SavedTables = ReadonlyMap<string, ReadonlyMap<string, readonly SavedEntry[]>>;

/** A parsed state file. `malformed` counts entries that were not `[string, string, number]`. */
export interface SavedState {
  readonly savedAtMs: number;
  readonly tables: SavedTables;
  readonly malformed: number;
}

/** What a table restores into: its limits and the backends its pool has now. */
export interface RestoreTarget {
  readonly idleMs: number;
  readonly maxEntries: number;
  readonly backendNames: ReadonlySet<string>;
}

/** Encodes `tables` as a version-1 state file saved at `savedAtMs`. */
export function encodeState(tables: SavedTables, savedAtMs: number): string {
  const frontends: Record<string, { pools: Record<string, [string, string, number][]> }> = {};
  for (const [fe, pools] of tables) {
    const out: Record<string, [string, string, number][]> = {};
    // defineProperty, not assignment: a name such as `__proto__` must stay an own key.
    for (const [pool, entries] of pools) define(out, pool, entries.map((e) => [e.key, e.backend, e.lastUsedMs]));
    define(frontends, fe, { pools: out });
  }
  return `${JSON.stringify({ version: STATE_VERSION, savedAt: savedAtMs, frontends })}\n`;
}

function define(o: object, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function savedEntry(v: unknown): SavedEntry | undefined {
  if (!Array.isArray(v) || v.length !== 3) return undefined;
  const [key, backend, lastUsedMs] = v as unknown[];
  if (typeof key !== 'string' || key === '' || typeof backend !== 'string' || backend === '') return undefined;
  if (typeof lastUsedMs !== 'number' || !Number.isFinite(lastUsedMs)) return undefined;
  return { key, backend, lastUsedMs };
}

/**
 * Parses a state file. Refuses (with a reason) anything that is not JSON, another version, or
 * not shaped as the layout above; inside a well-shaped file, a malformed entry is skipped and
 * counted. Never throws.
 */
export function parseState(text: string): { ok: true; state: SavedState } | { ok: false; reason: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (!isRecord(doc)) return { ok: false, reason: 'not a JSON object' };
  if (doc['version'] !== STATE_VERSION) {
    const v = doc['version'];
    return { ok: false, reason: `unsupported version ${typeof v === 'number' ? String(v) : typeof v}` };
  }
  const savedAt = doc['savedAt'];
  if (typeof savedAt !== 'number' || !Number.isFinite(savedAt)) return { ok: false, reason: 'savedAt is not a number' };
  const frontends = doc['frontends'];
  if (!isRecord(frontends)) return { ok: false, reason: 'frontends is not an object' };
  let malformed = 0;
  const tables = new Map<string, Map<string, SavedEntry[]>>();
  // Object.entries reads own keys only, so names such as `constructor` cannot reach prototypes.
  for (const [fe, f] of Object.entries(frontends)) {
    const pools = isRecord(f) ? f['pools'] : undefined;
    if (!isRecord(pools)) return { ok: false, reason: 'a frontend without a pools object' };
    const byPool = new Map<string, SavedEntry[]>();
    for (const [pool, list] of Object.entries(pools)) {
      if (!Array.isArray(list)) return { ok: false, reason: 'a pool that is not a list' };
      const entries: SavedEntry[] = [];
      for (const item of list as unknown[]) {
        const e = savedEntry(item);
        if (e) entries.push(e);
        else malformed++;
      }
      byPool.set(pool, entries);
    }
    tables.set(fe, byPool);
  }
  return { ok: true, state: { savedAtMs: savedAt, tables, malformed } };
}

/**
 * Picks the saved entries a table may take back at `nowMs`: not idle for `idleMs` or more, on a
 * backend the pool still has, one per key (the latest use wins), and at most `maxEntries` (the
 * most recently used). A last use after `nowMs` (the clock stepped back) counts as `nowMs`.
 * Returns them least recently used first, and how many were dropped.
 */
export function entriesToRestore(saved: readonly SavedEntry[], target: RestoreTarget, nowMs: number): { keep: SavedEntry[]; dropped: number } {
  const latest = new Map<string, SavedEntry>();
  for (const e of saved) {
    const lastUsedMs = Math.min(e.lastUsedMs, nowMs);
    if (!target.backendNames.has(e.backend) || nowMs - lastUsedMs >= target.idleMs) continue;
    const had = latest.get(e.key);
    if (had === undefined || had.lastUsedMs <= lastUsedMs) {
      // Re-inserted so the Map's order is that of the kept (latest) use.
      latest.delete(e.key);
      latest.set(e.key, { key: e.key, backend: e.backend, lastUsedMs });
    }
  }
  // Stable sort: entries used at the same millisecond keep their saved order.
  const alive = [...latest.values()].sort((a, b) => a.lastUsedMs - b.lastUsedMs);
  const keep = alive.slice(Math.max(0, alive.length - target.maxEntries));
  return { keep, dropped: saved.length - keep.length };
}
