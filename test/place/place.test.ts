import t from 'tap';
import { ManualClock, seededRng } from '../../lib/clock.js';
import type { BackendSpec } from '../../lib/config/types.js';
import { AffinityTable } from '../../lib/place/affinity-table.js';
import { createBalancer } from '../../lib/place/balance.js';
import { place, type Placement } from '../../lib/place/place.js';
import { Pool, type Backend } from '../../lib/place/pool.js';
import { rendezvousPick } from '../../lib/place/rendezvous.js';

const HOLD_DOWN_MS = 10_000;
const NONE: ReadonlySet<string> = new Set();

const spec = (name: string, opts: { weight?: number; backup?: boolean } = {}): BackendSpec => ({
  name,
  host: '127.0.0.1',
  port: 7000 + name.charCodeAt(0),
  weight: opts.weight ?? 1,
  backup: opts.backup ?? false,
});

function setup(specs: readonly BackendSpec[]) {
  const clock = new ManualClock();
  const pool = new Pool(specs);
  const table = new AffinityTable(60_000, 100_000);
  const balancer = createBalancer('hash', seededRng(1));
  const at = (key: string | undefined, exclude: ReadonlySet<string> = NONE): Placement | undefined => {
    const p = place({
      table,
      pool,
      balancer,
      lookups: key === undefined ? [] : [{ kind: 'test', value: key, tableKey: key, learned: false }],
      nowMs: clock.now(),
      exclude,
    });
    if (p === 'full') throw new Error('no backend has max-conns here, so none is ever full');
    return p;
  };
  const backend = (name: string): Backend => pool.get(name)!;
  return { clock, pool, table, at, backend };
}

const names = (bs: readonly Backend[]): string[] => bs.map((x) => x.name);

t.test('a keyed miss is balanced and pinned; the next visit is a table hit', (t) => {
  const { at, table, clock } = setup([spec('a'), spec('b'), spec('c')]);
  const first = at('k')!;
  t.equal(first.via, 'balance');
  t.equal(first.moved, undefined);
  t.equal(first.backend.name, rendezvousPick([spec('a'), spec('b'), spec('c')], 'k')!.name);
  t.equal(table.peek('k', clock.now()), first.backend.name, 'pinned');
  const second = at('k')!;
  t.equal(second.via, 'table');
  t.equal(second.backend, first.backend);
  t.same(table.stats, { hits: 1, misses: 1, evictions: 0, expirations: 0 });
  t.end();
});

t.test('a table hit wins over the balance policy', (t) => {
  const specs = [spec('a'), spec('b'), spec('c')];
  const { at, table, clock } = setup(specs);
  const winner = rendezvousPick(specs, 'k')!.name;
  const pinned = winner === 'a' ? 'b' : 'a';
  table.set('k', pinned, clock.now());
  const p = at('k')!;
  t.equal(p.backend.name, pinned);
  t.equal(p.via, 'table');
  t.end();
});

t.test('an un-keyed client is balanced and nothing is pinned', (t) => {
  const { at, table } = setup([spec('a'), spec('b')]);
  const p = at(undefined)!;
  t.equal(p.via, 'balance');
  t.ok(['a', 'b'].includes(p.backend.name));
  t.equal(table.size, 0);
  t.same(table.stats, { hits: 0, misses: 0, evictions: 0, expirations: 0 }, 'the table is not consulted');
  t.end();
});

t.test('only the keys of a held-down backend move, and they are re-pinned', (t) => {
  const { at, pool, table, clock, backend } = setup([spec('a'), spec('b'), spec('c'), spec('d')]);
  const keys = Array.from({ length: 1_000 }, (_, i) => `key-${String(i)}`);
  const before = new Map(keys.map((k) => [k, at(k)!.backend.name]));
  t.equal(table.size, 1_000);

  t.equal(pool.markDown(backend('c'), clock.now(), HOLD_DOWN_MS), true);
  clock.advance(1);
  let movedCount = 0;
  let onC = 0;
  for (const k of keys) {
    const was = before.get(k)!;
    const p = at(k)!;
    if (was === 'c') {
      onC++;
      if (p.via !== 'balance' || p.moved !== 'c' || p.backend.name === 'c') t.fail(`${k}: not re-placed off c`);
      if (table.peek(k, clock.now()) !== p.backend.name) t.fail(`${k}: not re-pinned`);
    } else if (p.via !== 'table' || p.backend.name !== was) {
      t.fail(`${k}: on healthy ${was} but placed on ${p.backend.name} via ${p.via}`);
    }
    if (p.backend.name !== was) movedCount++;
  }
  t.ok(onC > 150 && onC < 350, `c had ${String(onC)} keys`);
  t.equal(movedCount, onC, 'exactly the keys of c moved');

  // After the hold-down c is a candidate again, but the re-pinned keys stay where they are now.
  clock.advance(HOLD_DOWN_MS);
  t.same(names(pool.candidates(clock.now())), ['a', 'b', 'c', 'd']);
  for (const k of keys) {
    const was = before.get(k)!;
    const p = at(k)!;
    if (p.via !== 'table' || (was !== 'c' && p.backend.name !== was) || p.backend.name === 'c') {
      t.fail(`${k}: moved again after c came back`);
    }
  }
  t.equal(at('a-new-key-that-c-wins-or-not')!.via, 'balance', 'new keys are balanced over all four');
  t.end();
});

t.test('an entry pointing at an excluded backend is re-placed for this client', (t) => {
  const { at, table, clock } = setup([spec('a'), spec('b')]);
  table.set('k', 'a', clock.now());
  const p = at('k', new Set(['a']))!;
  t.equal(p.backend.name, 'b');
  t.equal(p.via, 'balance');
  t.equal(p.moved, 'a');
  t.equal(table.peek('k', clock.now()), 'b');
  t.end();
});

t.test('an entry pointing at a removed backend is re-placed', (t) => {
  const { at, table, clock } = setup([spec('a'), spec('b')]);
  table.set('k', 'gone', clock.now());
  const p = at('k')!;
  t.equal(p.moved, 'gone');
  t.ok(['a', 'b'].includes(p.backend.name));
  t.end();
});

t.test('backups serve only while no primary is up', (t) => {
  const { pool, clock, backend, at } = setup([
    spec('a'),
    spec('b'),
    spec('x', { backup: true }),
    spec('y', { backup: true }),
  ]);
  t.same(names(pool.candidates(clock.now())), ['a', 'b']);
  pool.markDown(backend('a'), clock.now(), HOLD_DOWN_MS);
  t.same(names(pool.candidates(clock.now())), ['b'], 'one primary up: still no backups');
  pool.markDown(backend('b'), clock.now(), HOLD_DOWN_MS);
  t.same(names(pool.candidates(clock.now())), ['x', 'y'], 'no primary up: the backups');
  pool.markDown(backend('x'), clock.now(), HOLD_DOWN_MS);
  t.same(names(pool.candidates(clock.now())), ['y']);
  pool.markDown(backend('y'), clock.now(), HOLD_DOWN_MS);
  t.same(names(pool.candidates(clock.now())), []);
  t.equal(at('k'), undefined);
  t.equal(at(undefined), undefined);
  pool.markUp(backend('b'));
  t.same(names(pool.candidates(clock.now())), ['b'], 'a recovered primary closes the backups');
  t.end();
});

t.test('a key pinned to a backup moves back once a primary is up', (t) => {
  const { pool, clock, backend, at, table } = setup([spec('a'), spec('x', { backup: true })]);
  pool.markDown(backend('a'), clock.now(), HOLD_DOWN_MS);
  const during = at('k')!;
  t.equal(during.backend.name, 'x');
  clock.advance(HOLD_DOWN_MS);
  const after = at('k')!;
  t.equal(after.backend.name, 'a');
  t.equal(after.moved, 'x');
  t.equal(table.peek('k', clock.now()), 'a');
  t.end();
});

t.test('primaries excluded for one client do not open the backups', (t) => {
  const { pool, clock, at, table } = setup([spec('a'), spec('b'), spec('x', { backup: true })]);
  t.same(names(pool.candidates(clock.now(), new Set(['a']))), ['b']);
  t.same(names(pool.candidates(clock.now(), new Set(['a', 'b']))), []);
  t.equal(at('k', new Set(['a', 'b'])), undefined);
  t.equal(at(undefined, new Set(['a', 'b'])), undefined);
  t.equal(table.size, 0, 'nothing pinned');
  t.same(names(pool.candidates(clock.now(), new Set(['a', 'b', 'x']))), []);
  t.end();
});

t.test('a backup already tried is excluded too', (t) => {
  const { pool, clock, backend } = setup([spec('a'), spec('x', { backup: true }), spec('y', { backup: true })]);
  pool.markDown(backend('a'), clock.now(), HOLD_DOWN_MS);
  t.same(names(pool.candidates(clock.now(), new Set(['x']))), ['y']);
  t.end();
});

t.test('hold-down expiry brings a backend back', (t) => {
  const { pool, clock, backend, at } = setup([spec('a')]);
  const a = backend('a');
  const downAt = clock.now();
  pool.markDown(a, downAt, HOLD_DOWN_MS);
  t.equal(a.downUntilMs, downAt + HOLD_DOWN_MS);
  t.equal(pool.isUp(a, downAt), false);
  clock.advance(HOLD_DOWN_MS - 1);
  t.equal(pool.isUp(a, clock.now()), false);
  t.equal(at('k'), undefined, 'no candidate while held down');
  clock.advance(1);
  t.equal(pool.isUp(a, clock.now()), true, 'up exactly at the end of the hold-down');
  t.equal(at('k')!.backend, a);
  t.end();
});

t.test('markDown and markUp report each transition once', (t) => {
  const { pool, clock, backend } = setup([spec('a')]);
  const a = backend('a');
  t.equal(pool.markUp(a), false, 'up → up is no transition');
  t.equal(pool.markDown(a, clock.now(), HOLD_DOWN_MS), true, 'up → down');
  clock.advance(500);
  t.equal(pool.markDown(a, clock.now(), HOLD_DOWN_MS), false, 'down → down is no transition');
  t.equal(a.downUntilMs, clock.now() + HOLD_DOWN_MS, 'but the hold-down is extended');
  t.equal(pool.markUp(a), true, 'down → up');
  t.equal(a.downUntilMs, 0);
  t.equal(pool.markUp(a), false);
  clock.advance(HOLD_DOWN_MS * 2);
  t.equal(pool.markDown(a, clock.now(), HOLD_DOWN_MS), true, 'a later failure is a new transition');
  t.end();
});

t.test('the pool mirrors its specs', (t) => {
  const { pool } = setup([spec('a', { weight: 3 }), spec('b', { backup: true })]);
  t.same(
    pool.backends.map((x) => [x.name, x.weight, x.spec.backup, x.active, x.total, x.downUntilMs, x.down]),
    [
      ['a', 3, false, 0, 0, 0, false],
      ['b', 1, true, 0, 0, 0, false],
    ],
  );
  t.equal(pool.get('zz'), undefined);
  t.end();
});

t.test('no candidates at all gives undefined', (t) => {
  const { at, table } = setup([]);
  t.equal(at('k'), undefined);
  t.equal(at(undefined), undefined);
  t.equal(table.size, 0);
  t.end();
});

t.test('a pool built over a previous one (reload) keeps same-address backends and their state', (t) => {
  const old = new Pool([spec('a'), spec('b'), { ...spec('c'), port: 9999 }]);
  const [a, b, c] = old.backends as [Backend, Backend, Backend];
  a.active = 3;
  a.total = 7;
  old.markDown(b, 0, 10_000);
  const next = new Pool([{ ...spec('a'), weight: 5 }, spec('b'), spec('c'), spec('d')], { carried: old.backends });
  t.equal(next.get('a'), a, 'a is the same object: its open connections still count');
  t.equal(a.weight, 5, 'with the new weight');
  t.equal(a.spec.weight, 5);
  t.equal(next.get('a')?.active, 3);
  t.equal(next.get('b')?.down, true, 'b stays down (health carried)');
  t.not(next.get('c'), c, 'c changed address: a fresh backend');
  t.equal(next.get('c')?.total, 0);
  t.equal(next.get('d')?.total, 0, 'd is new');
  t.end();
});
