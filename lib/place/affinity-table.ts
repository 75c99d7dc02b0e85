// Stage 4, pure (time is passed in). The affinity table: affinity key → backend name, with an
// idle timeout and a size bound. A Map keeps insertion order, and every use re-inserts its
// entry, so the Map's first entry is always the least recently used — and, since every entry
// shares one idle timeout, also the first to expire. Eviction and expiry therefore both work
// from the front in O(1) per entry, with no timers and no scan.

interface Entry {
  backend: string;
  lastUsedMs: number;
}

/** Counters kept by the table (exposed for logs and, later, metrics). */
export interface AffinityTableStats {
  hits: number;
  misses: number;
  evictions: number;
  expirations: number;
}

export class AffinityTable {
  private readonly entries = new Map<string, Entry>();
  readonly stats: AffinityTableStats = { hits: 0, misses: 0, evictions: 0, expirations: 0 };

  /** `idleMs` ≥ 1: idle life of an entry; `maxEntries` ≥ 1: size bound. */
  constructor(
    private idleMsValue: number,
    private maxEntriesValue: number,
  ) {}

  get idleMs(): number {
    return this.idleMsValue;
  }

  get maxEntries(): number {
    return this.maxEntriesValue;
  }

  /** New limits (a reload): expired entries go now, then the least recently used over the bound. */
  resize(idleMs: number, maxEntries: number, nowMs: number): void {
    this.idleMsValue = idleMs;
    this.maxEntriesValue = maxEntries;
    this.sweep(nowMs);
    this.evictOverflow();
  }

  /** Removes every entry; returns how many. */
  clear(): number {
    const n = this.entries.size;
    this.entries.clear();
    return n;
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Returns the backend pinned for `key` and marks the entry used at `nowMs`; undefined when
   * absent or idle longer than `idleMs` (the stale entry is dropped). Counts a hit or a miss.
   */
  get(key: string, nowMs: number): string | undefined {
    const e = this.entries.get(key);
    if (e === undefined) {
      this.stats.misses++;
      return undefined;
    }
    this.entries.delete(key);
    if (nowMs - e.lastUsedMs >= this.idleMs) {
      this.stats.expirations++;
      this.stats.misses++;
      return undefined;
    }
    e.lastUsedMs = nowMs;
    this.entries.set(key, e);
    this.stats.hits++;
    return e.backend;
  }

  /** Looks at an entry without touching it or counting (for inspection and tests). */
  peek(key: string, nowMs: number): string | undefined {
    const e = this.entries.get(key);
    return e && nowMs - e.lastUsedMs < this.idleMs ? e.backend : undefined;
  }

  /** Pins `key` to `backend` as used at `nowMs`; drops expired entries, then evicts LRU ones. */
  set(key: string, backend: string, nowMs: number): void {
    this.entries.delete(key);
    this.entries.set(key, { backend, lastUsedMs: nowMs });
    this.sweep(nowMs);
    this.evictOverflow();
  }

  private evictOverflow(): void {
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
      this.stats.evictions++;
    }
  }

  /**
   * Adds saved entries (from a state file) with their own last-use times, keeping the Map in
   * last-use order so the front stays the least recently used. Entries already present win
   * over saved ones with the same key; entries idle for `idleMs` or more at `nowMs` are
   * skipped; a last use later than `nowMs` (a clock that stepped back) counts as `nowMs`.
   * Beyond `maxEntries` the least recently used go first, uncounted (they were never live
   * here). Returns how many saved entries were kept.
   */
  load(saved: Iterable<{ key: string; backend: string; lastUsedMs: number }>, nowMs: number): number {
    const merged: [string, Entry][] = [...this.entries];
    const added = new Set<string>();
    for (const s of saved) {
      const lastUsedMs = Math.min(s.lastUsedMs, nowMs);
      if (this.entries.has(s.key) || added.has(s.key) || !(nowMs - lastUsedMs < this.idleMs)) continue;
      added.add(s.key);
      merged.push([s.key, { backend: s.backend, lastUsedMs }]);
    }
    // Array.prototype.sort is stable: equal times keep their saved (LRU) order.
    merged.sort((x, y) => x[1].lastUsedMs - y[1].lastUsedMs);
    this.entries.clear();
    for (const [key, e] of merged.slice(Math.max(0, merged.length - this.maxEntries))) this.entries.set(key, e);
    let kept = 0;
    for (const key of added) if (this.entries.has(key)) kept++;
    return kept;
  }

  delete(key: string): boolean {
    return this.entries.delete(key);
  }

  /** Drops every entry idle for `idleMs` or more; returns how many. */
  sweep(nowMs: number): number {
    let dropped = 0;
    for (const [key, e] of this.entries) {
      if (nowMs - e.lastUsedMs < this.idleMs) break;
      this.entries.delete(key);
      dropped++;
    }
    this.stats.expirations += dropped;
    return dropped;
  }

  /** Live entries, least recently used first. */
  *list(nowMs: number): IterableIterator<{ key: string; backend: string; lastUsedMs: number }> {
    for (const [key, e] of this.entries) {
      if (nowMs - e.lastUsedMs < this.idleMs) yield { key, backend: e.backend, lastUsedMs: e.lastUsedMs };
    }
  }
}
