import fc from 'fast-check';
import t from 'tap';
import { AffinityTable } from '../../lib/place/affinity-table.js';
import { STATE_VERSION, encodeState, entriesToRestore, parseState, type SavedEntry, type SavedTables } from '../../lib/state/table-state.js';

const NOW = 1_700_000_000_000;
const IDLE_MS = 60_000;
const target = (backendNames: string[], maxEntries = 100, idleMs = IDLE_MS) => ({ idleMs, maxEntries, backendNames: new Set(backendNames) });
const e = (key: string, backend: string, lastUsedMs: number): SavedEntry => ({ key, backend, lastUsedMs });
const tables = (fe: string, pool: string, entries: SavedEntry[]): SavedTables => new Map([[fe, new Map([[pool, entries]])]]);

/** Parses and asserts success. */
function parsed(text: string) {
  const r = parseState(text);
  if (!r.ok) throw new Error(`refused: ${r.reason}`);
  return r.state;
}

t.test('the file is versioned JSON, one [key, backend, lastUsed] triple per entry, LRU first', (t) => {
  const text = encodeState(tables('web', 'default', [e('source:10.0.0.1', 'a', NOW - 5), e('http-cookie:SID=x', 'b', NOW)]), NOW);
  t.same(JSON.parse(text), {
    version: 1,
    savedAt: NOW,
    frontends: { web: { pools: { default: [['source:10.0.0.1', 'a', NOW - 5], ['http-cookie:SID=x', 'b', NOW]] } } },
  });
  t.ok(text.endsWith('}\n'), 'one line, newline-terminated');
  t.end();
});

t.test('encode then parse gives back the same tables, each list in the same order', (t) => {
  const entry = fc.record({ key: fc.string({ minLength: 1 }), backend: fc.string({ minLength: 1 }), lastUsedMs: fc.integer({ min: 0, max: 2 ** 50 }) });
  const name = fc.oneof(fc.string(), fc.constantFrom('__proto__', 'constructor', 'toString', 'default'));
  const doc = fc.uniqueArray(fc.tuple(name, fc.uniqueArray(fc.tuple(name, fc.array(entry, { maxLength: 8 })), { selector: (p) => p[0], maxLength: 3 })), {
    selector: (f) => f[0],
    maxLength: 3,
  });
  fc.assert(
    fc.property(doc, fc.integer({ min: 0, max: 2 ** 50 }), (fes, savedAt) => {
      const input: SavedTables = new Map(fes.map(([fe, pools]) => [fe, new Map(pools)]));
      const back = parsed(encodeState(input, savedAt));
      t.equal(back.savedAtMs, savedAt);
      t.equal(back.malformed, 0);
      // Objects list integer-like keys first, so frontends and pools come back sorted that way;
      // only the order inside a list (the LRU order) carries meaning.
      const byName = <T>(a: [string, T], b: [string, T]): number => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
      const norm = (x: [string, Iterable<[string, SavedEntry[]]>][]) => x.map(([fe, pools]) => [fe, [...pools].sort(byName)] as [string, [string, SavedEntry[]][]]).sort(byName);
      t.same(norm([...back.tables].map(([fe, pools]) => [fe, [...pools].map(([p, l]) => [p, [...l]] as [string, SavedEntry[]])])), norm(fes));
    }),
    { numRuns: 200 },
  );
  t.end();
});

t.test('garbage never throws: it is refused with a reason or parsed', (t) => {
  const json = fc.jsonValue().map((v) => JSON.stringify(v));
  const nearly = fc.record({
    version: fc.oneof(fc.constant(STATE_VERSION), fc.jsonValue()),
    savedAt: fc.oneof(fc.integer(), fc.jsonValue()),
    frontends: fc.oneof(fc.dictionary(fc.string(), fc.oneof(fc.jsonValue(), fc.record({ pools: fc.dictionary(fc.string(), fc.array(fc.jsonValue())) })))),
  }).map((v) => JSON.stringify(v));
  fc.assert(
    fc.property(fc.oneof(fc.string(), json, nearly), (text) => {
      const r = parseState(text);
      if (r.ok) t.ok(r.state.malformed >= 0);
      else t.type(r.reason, 'string');
    }),
    { numRuns: 500 },
  );
  t.end();
});

t.test('a file of another shape or version is refused, with why', (t) => {
  const cases: [string, string][] = [
    ['', 'not JSON'],
    ['{"version":1,', 'not JSON'],
    ['[]', 'not a JSON object'],
    ['null', 'not a JSON object'],
    ['{"version":2,"savedAt":0,"frontends":{}}', 'unsupported version 2'],
    ['{"savedAt":0,"frontends":{}}', 'unsupported version undefined'],
    ['{"version":"1","savedAt":0,"frontends":{}}', 'unsupported version string'],
    ['{"version":1,"savedAt":"now","frontends":{}}', 'savedAt is not a number'],
    ['{"version":1,"savedAt":0,"frontends":[]}', 'frontends is not an object'],
    ['{"version":1,"savedAt":0,"frontends":{"web":{}}}', 'a frontend without a pools object'],
    ['{"version":1,"savedAt":0,"frontends":{"web":{"pools":{"default":{}}}}}', 'a pool that is not a list'],
  ];
  for (const [text, reason] of cases) t.same(parseState(text), { ok: false, reason }, text);
  t.end();
});

t.test('a malformed entry is skipped and counted; the rest of the file is kept', (t) => {
  const text = JSON.stringify({
    version: 1,
    savedAt: NOW,
    frontends: { web: { pools: { default: [['k', 'a', NOW], ['k2', 'a'], ['', 'a', NOW], ['k3', 'a', 'x'], ['k4', '', NOW], 'k5', ['k6', 'a', NOW, 1], ['k7', 'b', NOW - 1]] } } },
  });
  const s = parsed(text);
  t.equal(s.malformed, 6);
  t.same(s.tables.get('web')?.get('default'), [e('k', 'a', NOW), e('k7', 'b', NOW - 1)]);
  t.end();
});

t.test('names that are Object.prototype members are plain names, not prototypes', (t) => {
  const s = parsed('{"version":1,"savedAt":0,"frontends":{"__proto__":{"pools":{"constructor":[["k","a",1]]}}}}');
  t.same(s.tables.get('__proto__')?.get('constructor'), [e('k', 'a', 1)]);
  t.equal(parsed('{"version":1,"savedAt":0,"frontends":{}}').tables.get('constructor'), undefined);
  t.end();
});

t.test('restoring drops entries past the idle timeout, at exactly idleMs as the table does', (t) => {
  const saved = [e('old', 'a', NOW - IDLE_MS), e('edge', 'a', NOW - IDLE_MS + 1), e('new', 'a', NOW)];
  const r = entriesToRestore(saved, target(['a']), NOW);
  t.same(r.keep.map((x) => x.key), ['edge', 'new']);
  t.equal(r.dropped, 1);
  const table = new AffinityTable(IDLE_MS, 100);
  table.set('old', 'a', NOW - IDLE_MS);
  t.equal(table.peek('old', NOW), undefined, 'the live table agrees on the boundary');
  t.end();
});

t.test('restoring drops entries on backends the pool no longer has', (t) => {
  const r = entriesToRestore([e('k1', 'a', NOW), e('k2', 'gone', NOW), e('k3', 'b', NOW)], target(['a', 'b']), NOW);
  t.same(r.keep.map((x) => x.key), ['k1', 'k3']);
  t.equal(r.dropped, 1);
  t.end();
});

t.test('restoring keeps the most recently used when the table is smaller than the file', (t) => {
  const saved = [e('k1', 'a', NOW - 4), e('k2', 'a', NOW - 3), e('k3', 'a', NOW - 2), e('k4', 'a', NOW - 1)];
  const r = entriesToRestore(saved, target(['a'], 2), NOW);
  t.same(r.keep.map((x) => x.key), ['k3', 'k4']);
  t.equal(r.dropped, 2);
  t.end();
});

t.test('restoring sorts by last use (a hand-edited file) and keeps the latest use of a repeated key', (t) => {
  const saved = [e('k1', 'a', NOW - 1), e('k2', 'a', NOW - 9), e('k1', 'b', NOW - 5), e('k3', 'a', NOW - 1)];
  const r = entriesToRestore(saved, target(['a', 'b']), NOW);
  t.same(r.keep, [e('k2', 'a', NOW - 9), e('k1', 'a', NOW - 1), e('k3', 'a', NOW - 1)], 'ties keep their saved order');
  t.equal(r.dropped, 1);
  t.end();
});

t.test('a last use in the future (the clock stepped back) counts as now', (t) => {
  const r = entriesToRestore([e('k', 'a', NOW + 10 * IDLE_MS)], target(['a']), NOW);
  t.same(r.keep, [e('k', 'a', NOW)]);
  t.end();
});

t.test('restored entries round-trip through a table: same backends, same LRU order, same expiry', (t) => {
  const entry = fc.record({ key: fc.constantFrom('k1', 'k2', 'k3', 'k4', 'k5', 'k6'), backend: fc.constantFrom('a', 'b', 'c'), ageMs: fc.integer({ min: 0, max: 2 * IDLE_MS }) });
  fc.assert(
    fc.property(fc.array(entry, { maxLength: 20 }), fc.integer({ min: 1, max: 8 }), (ops, maxEntries) => {
      // Build a live table by replaying the uses oldest first, as the proxy would have.
      const before = new AffinityTable(IDLE_MS, maxEntries);
      const uses = [...ops].sort((x, y) => y.ageMs - x.ageMs);
      for (const u of uses) before.set(u.key, u.backend, NOW - u.ageMs);
      const text = encodeState(tables('fe', 'p', [...before.list(NOW)]), NOW);
      const later = NOW + 1_000;
      const s = parsed(text);
      const r = entriesToRestore(s.tables.get('fe')?.get('p') ?? [], target(['a', 'b', 'c'], maxEntries), later);
      const after = new AffinityTable(IDLE_MS, maxEntries);
      t.equal(after.load(r.keep, later), r.keep.length);
      t.same([...after.list(later)], [...before.list(later)]);
    }),
    { numRuns: 200 },
  );
  t.end();
});
