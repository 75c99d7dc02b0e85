import t from 'tap';
import { ManualClock } from '../../lib/clock.js';
import { AffinityTable } from '../../lib/place/affinity-table.js';

const IDLE_MS = 1_000;

const listOf = (table: AffinityTable, nowMs: number): string[] =>
  [...table.list(nowMs)].map((e) => `${e.key}>${e.backend}`);

t.test('an entry used at t is alive at t+idleMs-1 and expired at exactly t+idleMs', (t) => {
  const clock = new ManualClock();
  const table = new AffinityTable(IDLE_MS, 10);
  const t0 = clock.now();
  table.set('k', 'a', t0);
  t.equal(table.peek('k', t0 + IDLE_MS - 1), 'a');
  t.equal(table.peek('k', t0 + IDLE_MS), undefined, 'peek agrees with get on the boundary');
  clock.advance(IDLE_MS - 1);
  t.equal(table.get('k', clock.now()), 'a', 'alive one millisecond before the boundary');

  const other = new AffinityTable(IDLE_MS, 10);
  other.set('k', 'a', t0);
  t.equal(other.get('k', t0 + IDLE_MS), undefined, 'expired exactly at the boundary');
  t.equal(other.size, 0, 'the stale entry is dropped');
  t.same(other.stats, { hits: 0, misses: 1, evictions: 0, expirations: 1 });
  t.equal(other.get('k', t0 + IDLE_MS), undefined);
  t.same(other.stats, { hits: 0, misses: 2, evictions: 0, expirations: 1 }, 'a dropped entry expires only once');
  t.end();
});

t.test('get() touches: each use restarts the idle time', (t) => {
  const clock = new ManualClock();
  const table = new AffinityTable(IDLE_MS, 10);
  table.set('k', 'a', clock.now());
  for (let i = 0; i < 5; i++) {
    clock.advance(IDLE_MS - 1);
    t.equal(table.get('k', clock.now()), 'a', `use ${String(i + 1)} keeps the entry alive`);
  }
  const lastUse = clock.now();
  t.same([...table.list(lastUse)], [{ key: 'k', backend: 'a', lastUsedMs: lastUse }]);
  clock.advance(IDLE_MS);
  t.equal(table.get('k', clock.now()), undefined, 'expires idleMs after the last use');
  t.same(table.stats, { hits: 5, misses: 1, evictions: 0, expirations: 1 });
  t.end();
});

t.test('peek() neither touches nor counts', (t) => {
  const table = new AffinityTable(IDLE_MS, 10);
  table.set('k', 'a', 0);
  t.equal(table.peek('k', IDLE_MS - 1), 'a');
  t.equal(table.peek('absent', 0), undefined);
  t.equal(table.get('k', IDLE_MS), undefined, 'the peek did not extend the entry');
  t.same(table.stats, { hits: 0, misses: 1, evictions: 0, expirations: 1 });
  t.end();
});

t.test('set() re-pins an existing key and restarts its idle time', (t) => {
  const table = new AffinityTable(IDLE_MS, 10);
  table.set('k', 'a', 0);
  table.set('k', 'b', 900);
  t.equal(table.size, 1);
  t.equal(table.get('k', 1_899), 'b');
  t.same(table.stats, { hits: 1, misses: 0, evictions: 0, expirations: 0 });
  t.end();
});

t.test('at maxEntries the least recently used entry is evicted first', (t) => {
  const table = new AffinityTable(IDLE_MS, 3);
  table.set('k1', 'a', 0);
  table.set('k2', 'b', 1);
  table.set('k3', 'c', 2);
  t.equal(table.size, 3);
  table.set('k4', 'a', 3);
  t.same(listOf(table, 3), ['k2>b', 'k3>c', 'k4>a'], 'k1, the oldest, went');
  t.equal(table.stats.evictions, 1);

  t.equal(table.get('k2', 4), 'b', 'touching the oldest entry saves it');
  table.set('k5', 'b', 5);
  t.same(listOf(table, 5), ['k4>a', 'k2>b', 'k5>b'], 'k3 went instead of the touched k2');
  t.equal(table.stats.evictions, 2);

  table.set('k4', 'c', 6);
  t.same(listOf(table, 6), ['k2>b', 'k5>b', 'k4>c'], 're-pinning a present key evicts nothing');
  t.same(table.stats, { hits: 1, misses: 0, evictions: 2, expirations: 0 });
  t.end();
});

t.test('set() drops expired entries before it evicts live ones', (t) => {
  const table = new AffinityTable(IDLE_MS, 2);
  table.set('old', 'a', 0);
  table.set('live', 'b', 500);
  table.set('new', 'c', IDLE_MS);
  t.same(listOf(table, IDLE_MS), ['live>b', 'new>c']);
  t.same(table.stats, { hits: 0, misses: 0, evictions: 0, expirations: 1 });
  t.end();
});

t.test('maxEntries 1 keeps only the newest entry', (t) => {
  const table = new AffinityTable(IDLE_MS, 1);
  table.set('a', 'x', 0);
  table.set('b', 'y', 1);
  t.same(listOf(table, 1), ['b>y']);
  t.equal(table.get('a', 1), undefined);
  t.same(table.stats, { hits: 0, misses: 1, evictions: 1, expirations: 0 });
  t.end();
});

t.test('sweep() drops every entry idle for idleMs or more and counts them', (t) => {
  const clock = new ManualClock(0);
  const table = new AffinityTable(IDLE_MS, 100);
  table.set('k0', 'a', 0);
  table.set('k1', 'a', 100);
  table.set('k2', 'b', 200);
  table.set('k3', 'b', 300);
  t.equal(table.get('k0', 400), 'a', 'k0 is now the most recently used');
  t.equal(table.sweep(IDLE_MS + 99), 0, 'nothing is idle for idleMs yet');
  t.equal(table.sweep(IDLE_MS + 200), 2, 'k1 and k2 are idle for exactly or more than idleMs');
  t.same(listOf(table, IDLE_MS + 200), ['k3>b', 'k0>a']);
  t.equal(table.size, 2);
  clock.advance(10 * IDLE_MS);
  t.equal(table.sweep(clock.now()), 2);
  t.equal(table.size, 0);
  t.equal(table.sweep(clock.now()), 0, 'sweeping an empty table is a no-op');
  t.same(table.stats, { hits: 1, misses: 0, evictions: 0, expirations: 4 });
  t.end();
});

t.test('list() yields live entries, least recently used first, without touching them', (t) => {
  const table = new AffinityTable(IDLE_MS, 10);
  table.set('a', 'x', 0);
  table.set('b', 'y', 10);
  table.set('c', 'z', 20);
  table.get('a', 30);
  t.same(
    [...table.list(30)],
    [
      { key: 'b', backend: 'y', lastUsedMs: 10 },
      { key: 'c', backend: 'z', lastUsedMs: 20 },
      { key: 'a', backend: 'x', lastUsedMs: 30 },
    ],
  );
  t.same(listOf(table, IDLE_MS + 10), ['c>z', 'a>x'], 'an idle entry is not listed');
  t.equal(table.size, 3, 'listing does not drop it either');
  t.same(listOf(table, IDLE_MS + 30), []);
  t.same(table.stats, { hits: 1, misses: 0, evictions: 0, expirations: 0 });
  t.end();
});

t.test('stats count hits, misses, evictions and expirations separately', (t) => {
  const table = new AffinityTable(IDLE_MS, 2);
  t.equal(table.get('nope', 0), undefined);
  table.set('a', 'x', 0);
  table.set('b', 'y', 0);
  table.set('c', 'z', 0);
  t.equal(table.get('a', 1), undefined, 'evicted');
  t.equal(table.get('b', 1), 'y');
  t.equal(table.get('c', 1), 'z');
  t.equal(table.get('b', 1 + IDLE_MS), undefined, 'expired');
  t.same(table.stats, { hits: 2, misses: 3, evictions: 1, expirations: 1 });
  t.end();
});

t.test('delete() removes an entry and reports whether it was there', (t) => {
  const table = new AffinityTable(IDLE_MS, 10);
  table.set('k', 'a', 0);
  t.equal(table.delete('k'), true);
  t.equal(table.delete('k'), false);
  t.equal(table.get('k', 1), undefined);
  t.equal(table.size, 0);
  t.end();
});

t.test('resize() applies new limits at once: expired entries go, then the least recently used', (t) => {
  const table = new AffinityTable(IDLE_MS, 10);
  for (const [k, at] of [['a', 0], ['b', 10], ['c', 20], ['d', 30]] as const) table.set(k, 'x', at);
  table.resize(25, 2, 40);
  t.equal(table.idleMs, 25);
  t.equal(table.maxEntries, 2);
  t.same(listOf(table, 40), ['c>x', 'd>x'], 'a and b idle ≥ 25 ms at 40: expired; two left fit');
  table.resize(1_000, 1, 40);
  t.same(listOf(table, 40), ['d>x'], 'over the new bound: the least recently used goes');
  t.same(table.stats, { hits: 0, misses: 0, evictions: 1, expirations: 2 });
  t.end();
});

t.test('clear() empties the table and says how many went', (t) => {
  const table = new AffinityTable(IDLE_MS, 10);
  table.set('a', 'x', 0);
  table.set('b', 'y', 0);
  t.equal(table.clear(), 2);
  t.equal(table.size, 0);
  t.equal(table.clear(), 0);
  t.end();
});

t.test('load() takes saved entries with their own last use and keeps LRU order', (t) => {
  const table = new AffinityTable(IDLE_MS, 10);
  const kept = table.load(
    [
      { key: 'b', backend: 'y', lastUsedMs: 500 },
      { key: 'a', backend: 'x', lastUsedMs: 100 },
      { key: 'c', backend: 'z', lastUsedMs: 900 },
    ],
    1_000,
  );
  t.equal(kept, 3);
  t.same(listOf(table, 1_000), ['a>x', 'b>y', 'c>z'], 'sorted by last use, oldest first');
  t.equal(table.peek('a', 1_099), 'x', 'an entry keeps its saved last use: alive until lastUsed + idleMs');
  t.equal(table.peek('a', 1_100), undefined);
  t.equal(table.sweep(1_500), 2, 'the sweep from the front still finds every expired entry');
  t.same(table.stats, { hits: 0, misses: 0, evictions: 0, expirations: 2 }, 'loading counts no hit, miss or eviction');
  t.end();
});

t.test('load() skips expired entries, keeps live ones over saved ones, and trims to maxEntries', (t) => {
  const table = new AffinityTable(IDLE_MS, 3);
  table.set('live', 'x', 950);
  const kept = table.load(
    [
      { key: 'expired', backend: 'y', lastUsedMs: 0 },
      { key: 'live', backend: 'saved', lastUsedMs: 990 },
      { key: 'k1', backend: 'y', lastUsedMs: 200 },
      { key: 'k2', backend: 'y', lastUsedMs: 300 },
      { key: 'k3', backend: 'y', lastUsedMs: 400 },
      { key: 'future', backend: 'z', lastUsedMs: 5_000 },
    ],
    1_000,
  );
  t.same(listOf(table, 1_000), ['k3>y', 'live>x', 'future>z'], 'the live pin wins; the oldest go beyond the size bound');
  t.equal(kept, 2, 'counts only the saved entries still in the table');
  t.equal(table.peek('future', 1_999), 'z', 'a last use after now counts as now');
  t.equal(table.peek('future', 2_000), undefined);
  t.end();
});
