// Operator states (ready / drain / maint) and active-check health in Pool and place(): draining
// backends keep their pinned clients and get no new ones, maint gets nothing, checks take
// backends down and bring them back, and each transition is reported once.
import fc from 'fast-check';
import t from 'tap';
import { ManualClock, seededRng } from '../../lib/clock.js';
import type { BackendSpec, BalanceKind } from '../../lib/config/types.js';
import { AffinityTable } from '../../lib/place/affinity-table.js';
import { createBalancer } from '../../lib/place/balance.js';
import { place, type Lookup, type Placement } from '../../lib/place/place.js';
import { Pool, type Backend, type PoolOptions } from '../../lib/place/pool.js';

const HOLD_DOWN_MS = 10_000;
const NONE: ReadonlySet<string> = new Set();

const spec = (name: string, more: Partial<BackendSpec> = {}): BackendSpec => ({
  name,
  host: '127.0.0.1',
  port: 7000 + name.charCodeAt(0),
  weight: 1,
  backup: false,
  ...more,
});

function setup(specs: readonly BackendSpec[], opts: { pool?: Omit<PoolOptions, 'nowMs'>; balance?: BalanceKind } = {}) {
  const clock = new ManualClock();
  const pool = new Pool(specs, { nowMs: clock.now(), ...opts.pool });
  const table = new AffinityTable(60_000, 100_000);
  const balancer = createBalancer(opts.balance ?? 'hash', seededRng(1));
  // No backend here has a max-conns: place() never answers 'full'.
  const placeWith = (lookups: readonly Lookup[], extra: { named?: string; exclude?: ReadonlySet<string> } = {}): Placement | undefined => {
    const p = place({ table, pool, balancer, lookups, nowMs: clock.now(), exclude: extra.exclude ?? NONE, ...(extra.named === undefined ? {} : { named: extra.named }) });
    if (p === 'full') throw new Error('unexpected full');
    return p;
  };
  const at = (key: string | undefined, exclude: ReadonlySet<string> = NONE): Placement | undefined =>
    placeWith(key === undefined ? [] : [{ kind: 'test', value: key, tableKey: key, learned: false }], { exclude });
  const backend = (name: string): Backend => pool.get(name)!;
  const drain = (name: string, deadlineMs?: number): boolean =>
    pool.setAdmin(name, 'drain', { nowMs: clock.now(), ...(deadlineMs === undefined ? {} : { deadlineMs }) });
  return { clock, pool, table, at, placeWith, backend, drain };
}

const names = (bs: readonly Backend[]): string[] => bs.map((x) => x.name);
const KEYS = Array.from({ length: 600 }, (_, i) => `key-${String(i)}`);

t.test('drain: pinned keys stay, new keys and un-keyed clients never come', (t) => {
  const { at, pool, clock, table, drain } = setup([spec('a'), spec('b'), spec('c')]);
  const before = new Map(KEYS.map((k) => [k, at(k)!.backend.name]));
  const onB = KEYS.filter((k) => before.get(k) === 'b');
  t.ok(onB.length > 100, `b holds ${String(onB.length)} keys`);

  t.equal(drain('b'), true, 'ready → drain is a change');
  t.same(names(pool.candidates(clock.now())), ['a', 'c'], 'b is no candidate');
  t.equal(pool.state(pool.get('b')!, clock.now()), 'draining');
  clock.advance(1_000);
  for (const k of KEYS) {
    const p = at(k)!;
    if (p.via !== 'table' || p.backend.name !== before.get(k)) t.fail(`${k}: moved from ${before.get(k)!} to ${p.backend.name} via ${p.via}`);
  }
  t.pass('every pinned key stays where it was, b included');
  for (let i = 0; i < 300; i++) {
    const p = at(`new-${String(i)}`)!;
    if (p.backend.name === 'b') t.fail(`new key ${String(i)} placed on draining b`);
    if (at(undefined)!.backend.name === 'b') t.fail('an un-keyed client on draining b');
  }
  t.pass('300 new keys and 300 un-keyed clients: none on b');
  t.equal(table.peek(onB[0]!, clock.now()), 'b', 'the entry still points at b');
  t.end();
});

t.test('drain under every balance policy: un-keyed clients never reach the draining backend', (t) => {
  for (const balance of ['hash', 'roundrobin', 'leastconn', 'random2'] as const) {
    const { at, drain } = setup([spec('a'), spec('b'), spec('c')], { balance });
    drain('a');
    const seen = new Set<string>();
    for (let i = 0; i < 60; i++) seen.add(at(undefined)!.backend.name);
    t.same([...seen].sort(), ['b', 'c'], balance);
  }
  t.end();
});

t.test('drain with a deadline: pinned keys stay until it, then move; the state reads maint', (t) => {
  const { at, pool, clock, drain, backend } = setup([spec('a'), spec('b')]);
  const onA = KEYS.filter((k) => at(k)!.backend.name === 'a');
  const deadline = clock.now() + 5_000;
  drain('a', deadline);
  t.equal(backend('a').drainDeadlineMs, deadline);
  clock.advance(4_999);
  t.equal(at(onA[0])!.backend.name, 'a', 'before the deadline: still a');
  t.equal(pool.state(backend('a'), clock.now()), 'draining');
  clock.advance(1);
  t.equal(pool.state(backend('a'), clock.now()), 'maint', 'at the deadline it takes no clients: maint');
  for (const k of onA) {
    const p = at(k)!;
    if (p.backend.name !== 'b' || p.via !== 'balance' || p.moved !== 'a') t.fail(`${k}: not re-placed off a`);
  }
  t.pass(`all ${String(onA.length)} keys of a re-placed on b`);
  t.end();
});

t.test('maint: nothing goes there, pinned keys move, other keys do not', (t) => {
  const { at, pool, clock, backend } = setup([spec('a'), spec('b'), spec('c')]);
  const before = new Map(KEYS.map((k) => [k, at(k)!.backend.name]));
  t.equal(pool.setAdmin('c', 'maint', { nowMs: clock.now() }), true);
  t.equal(pool.state(backend('c'), clock.now()), 'maint');
  for (const k of KEYS) {
    const p = at(k)!;
    const was = before.get(k)!;
    if (was === 'c' ? p.backend.name === 'c' || p.moved !== 'c' : p.backend.name !== was || p.via !== 'table') t.fail(`${k}: ${was} → ${p.backend.name}`);
  }
  t.pass('only the keys of c moved');
  t.equal(pool.setAdmin('c', 'ready', { nowMs: clock.now() }), true);
  t.same(names(pool.candidates(clock.now())), ['a', 'b', 'c'], 'ready again: a candidate');
  t.end();
});

t.test('routes and the inserted cookie are pinned clients: honoured on drain, not on maint', (t) => {
  const { placeWith, pool, clock, drain } = setup([spec('a'), spec('b')]);
  const route: Lookup = { kind: 'http-cookie:SID', value: 'sid:x', tableKey: 'sid:x', learned: false, names: 'b' };
  drain('b');
  t.match(placeWith([route]), { backend: { name: 'b' }, via: 'named' }, 'a cookie route to draining b');
  t.match(placeWith([], { named: 'b' }), { backend: { name: 'b' }, via: 'named' }, 'TETHER=b to draining b');
  pool.setAdmin('b', 'maint', { nowMs: clock.now() });
  t.match(placeWith([route]), { backend: { name: 'a' }, via: 'balance' }, 'maint: the route falls through to balance');
  t.match(placeWith([], { named: 'b' }), { backend: { name: 'a' }, via: 'balance' });
  t.end();
});

t.test('a draining backend that goes down loses its pinned clients', (t) => {
  const { at, pool, clock, drain, backend } = setup([spec('a'), spec('b')]);
  const onA = KEYS.find((k) => at(k)!.backend.name === 'a')!;
  drain('a');
  pool.markDown(backend('a'), clock.now(), HOLD_DOWN_MS);
  t.equal(pool.state(backend('a'), clock.now()), 'down', 'down wins over draining in the report');
  t.match(at(onA), { backend: { name: 'b' }, via: 'balance', moved: 'a' });
  t.end();
});

t.test('a draining backend already tried for this client is skipped for it', (t) => {
  const { at, drain, table, clock } = setup([spec('a'), spec('b')]);
  table.set('k', 'a', clock.now());
  drain('a');
  t.match(at('k', new Set(['a'])), { backend: { name: 'b' }, via: 'balance', moved: 'a' });
  t.end();
});

t.test('only draining backends left: their pinned clients go, nobody else is placed', (t) => {
  const { at, drain, table, clock } = setup([spec('a'), spec('b')]);
  table.set('pinned', 'a', clock.now());
  drain('a');
  drain('b');
  t.match(at('pinned'), { backend: { name: 'a' }, via: 'table' });
  t.equal(at('fresh'), undefined, 'a new key has nowhere to go');
  t.equal(at(undefined), undefined, 'nor has an un-keyed client');
  t.equal(table.peek('fresh', clock.now()), undefined, 'and is not pinned');
  t.end();
});

t.test('backups: primaries all draining open the backups to new keys; pinned clients stay put', (t) => {
  const { at, pool, clock, drain, table } = setup([spec('a'), spec('b'), spec('x', { backup: true })]);
  table.set('on-a', 'a', clock.now());
  drain('a');
  t.same(names(pool.candidates(clock.now())), ['b'], 'one ready primary: no backups');
  drain('b');
  t.same(names(pool.candidates(clock.now())), ['x'], 'no ready primary: the backup takes new keys');
  t.match(at('on-a'), { backend: { name: 'a' }, via: 'table' }, 'draining a keeps its client');
  t.match(at('new'), { backend: { name: 'x' }, via: 'balance' });
  pool.setAdmin('b', 'ready', { nowMs: clock.now() });
  t.match(at('new'), { backend: { name: 'b' }, via: 'balance', moved: 'x' }, 'a ready primary again: the backup\'s client moves back');
  t.end();
});

t.test('a draining backup keeps its clients only while the backups serve', (t) => {
  const { at, pool, clock, backend, table } = setup([spec('a'), spec('x', { backup: true }), spec('y', { backup: true })]);
  pool.markDown(backend('a'), clock.now(), HOLD_DOWN_MS);
  table.set('on-x', 'x', clock.now());
  pool.setAdmin('x', 'drain', { nowMs: clock.now() });
  t.match(at('on-x'), { backend: { name: 'x' }, via: 'table' });
  t.match(at('new'), { backend: { name: 'y' } });
  clock.advance(HOLD_DOWN_MS);
  t.match(at('on-x'), { backend: { name: 'a' }, moved: 'x' }, 'the primary is back');
  t.end();
});

t.test('setAdmin reports changes; a repeated drain only brings the deadline forward', (t) => {
  const { pool, clock, backend } = setup([spec('a'), spec('b')]);
  t.equal(pool.setAdmin('zz', 'maint', { nowMs: clock.now() }), false, 'unknown name');
  t.equal(pool.setAdmin('a', 'ready', { nowMs: clock.now() }), false, 'ready → ready');
  clock.advance(10);
  const t0 = clock.now();
  t.equal(pool.setAdmin('a', 'drain', { nowMs: t0 }), true);
  t.same([backend('a').admin, backend('a').adminSinceMs, backend('a').drainDeadlineMs], ['drain', t0, undefined]);
  t.equal(pool.setAdmin('a', 'drain', { nowMs: t0 + 1 }), false, 'drain again, no deadline: nothing');
  t.equal(pool.setAdmin('a', 'drain', { nowMs: t0 + 1, deadlineMs: t0 + 60_000 }), true, 'a first deadline');
  t.equal(pool.setAdmin('a', 'drain', { nowMs: t0 + 2, deadlineMs: t0 + 90_000 }), false, 'a later deadline is ignored (a config re-read)');
  t.equal(backend('a').drainDeadlineMs, t0 + 60_000);
  t.equal(pool.setAdmin('a', 'drain', { nowMs: t0 + 3, deadlineMs: t0 + 30_000 }), true, 'an earlier one is taken');
  t.equal(backend('a').drainDeadlineMs, t0 + 30_000);
  t.equal(backend('a').adminSinceMs, t0, 'still draining since the first drain');
  t.equal(pool.setAdmin('a', 'maint', { nowMs: t0 + 4, deadlineMs: 1 }), true);
  t.same([backend('a').admin, backend('a').adminSinceMs, backend('a').drainDeadlineMs], ['maint', t0 + 4, undefined], 'the deadline is for drain only');
  t.equal(pool.setAdmin('a', 'drain', { nowMs: t0 + 5, deadlineMs: t0 + 9 }), true, 'maint → drain');
  t.equal(backend('a').drainDeadlineMs, t0 + 9);
  t.end();
});

t.test('starting states come from the specs; drain=DURATION counts from the pool\'s start', (t) => {
  const pool = new Pool([spec('a'), spec('b', { admin: 'drain', drainMs: 30_000 }), spec('c', { admin: 'maint' }), spec('d', { admin: 'drain' })], { nowMs: 5_000 });
  t.same(
    pool.backends.map((b) => [b.name, b.admin, b.adminSinceMs, b.drainDeadlineMs, pool.state(b, 5_000)]),
    [
      ['a', 'ready', 5_000, undefined, 'up'],
      ['b', 'drain', 5_000, 35_000, 'draining'],
      ['c', 'maint', 5_000, undefined, 'maint'],
      ['d', 'drain', 5_000, undefined, 'draining'],
    ],
  );
  t.same(names(pool.candidates(5_000)), ['a']);
  t.end();
});

t.test('active checks: fall failures take a backend down, rise passes bring it back', (t) => {
  const { pool, clock, backend, at } = setup([spec('a'), spec('b')], { pool: { checks: { rise: 2, fall: 3 } } });
  const a = backend('a');
  const check = (ok: boolean, code?: string) => pool.recordCheck(a, code === undefined ? { atMs: clock.now(), ok } : { atMs: clock.now(), ok, code });
  t.equal(check(true), undefined, 'a first pass');
  t.equal(check(false, 'ECONNREFUSED'), undefined);
  t.equal(check(false, 'ECONNREFUSED'), undefined);
  t.equal(check(false, 'ECONNREFUSED'), 'down', 'the third failure in a row');
  t.same(a.lastCheck, { atMs: clock.now(), ok: false, code: 'ECONNREFUSED' });
  t.equal(pool.state(a, clock.now()), 'down');
  t.same(names(pool.candidates(clock.now())), ['b']);
  t.equal(check(false), undefined, 'down → down is no transition');
  t.equal(check(true), undefined);
  t.equal(pool.state(a, clock.now()), 'down', 'one pass of two');
  t.equal(check(true), 'up');
  t.same(names(pool.candidates(clock.now())), ['a', 'b']);
  t.equal(at('k') !== undefined, true);
  t.end();
});

t.test('active checks: a backend starts up and is out after its first failed check', (t) => {
  const { pool, clock, backend } = setup([spec('a')], { pool: { checks: { rise: 2, fall: 3 } } });
  t.equal(pool.state(backend('a'), clock.now()), 'up');
  t.equal(pool.recordCheck(backend('a'), { atMs: clock.now(), ok: false, code: 'ETIMEDOUT' }), 'down');
  t.end();
});

t.test('active checks and a failed dial: one down; passes end the hold-down early; dial success changes nothing', (t) => {
  const { pool, clock, backend } = setup([spec('a'), spec('b')], { pool: { checks: { rise: 2, fall: 3 } } });
  const a = backend('a');
  t.equal(pool.markDown(a, clock.now(), HOLD_DOWN_MS), true, 'the failed dial reports down');
  t.equal(pool.recordCheck(a, { atMs: clock.now(), ok: false, code: 'ECONNREFUSED' }), undefined, 'the checks agree: no second down');
  t.equal(pool.markUp(a), false, 'a dial success proves nothing with checks on');
  t.equal(pool.isUp(a, clock.now()), false);
  clock.advance(1_000);
  t.equal(pool.recordCheck(a, { atMs: clock.now(), ok: true }), undefined);
  t.equal(pool.recordCheck(a, { atMs: clock.now(), ok: true }), 'up', 'rise passes: up, 9 s before the hold-down ends');
  t.equal(a.downUntilMs, 0);
  t.equal(pool.isUp(a, clock.now()), true);
  clock.advance(1);
  t.equal(pool.markDown(a, clock.now(), HOLD_DOWN_MS), true, 'a new failure is a new transition');
  clock.advance(HOLD_DOWN_MS);
  t.equal(pool.isUp(a, clock.now()), false, 'the hold-down ended, but the checks have not passed: still down');
  t.end();
});

t.test('without checks, recordCheck is ignored and markUp ends a hold-down as before', (t) => {
  const { pool, clock, backend } = setup([spec('a')]);
  const a = backend('a');
  t.equal(pool.checks, undefined);
  t.equal(pool.recordCheck(a, { atMs: clock.now(), ok: false }), undefined);
  t.equal(a.lastCheck, undefined);
  t.equal(pool.isUp(a, clock.now()), true);
  pool.markDown(a, clock.now(), HOLD_DOWN_MS);
  t.same(a.health, { up: true, streak: 0 }, 'the check verdict is untouched');
  t.equal(pool.markUp(a), true);
  t.end();
});

t.test('property: whatever the states, new placements land on ready up backends and ready keys never move', (t) => {
  const admins = fc.constantFrom<'ready' | 'drain' | 'maint'>('ready', 'ready', 'drain', 'maint');
  fc.assert(
    fc.property(fc.array(fc.tuple(admins, fc.boolean()), { minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 1_000 }), (states, seed) => {
      const specs = ['a', 'b', 'c', 'd'].map((n) => spec(n));
      const { at, pool, clock, table } = setup(specs);
      const keys = Array.from({ length: 60 }, (_, i) => `k${String(seed)}-${String(i)}`);
      const before = new Map(keys.map((k) => [k, at(k)!.backend.name]));
      states.forEach(([admin, down], i) => {
        const name = specs[i]!.name;
        pool.setAdmin(name, admin, { nowMs: clock.now() });
        if (down) pool.markDown(pool.get(name)!, clock.now(), HOLD_DOWN_MS);
      });
      clock.advance(1);
      const serving = (name: string): boolean => pool.takesPinned(pool.get(name)!, clock.now());
      for (const k of keys) {
        const was = before.get(k)!;
        const p = at(k);
        if (serving(was)) {
          if (p?.backend.name !== was || p.via !== 'table') return false;
        } else if (p !== undefined && (p.via !== 'balance' || pool.get(p.backend.name)!.admin !== 'ready' || !pool.isUp(p.backend, clock.now()))) {
          return false;
        }
        if (p !== undefined && table.peek(k, clock.now()) !== p.backend.name) return false;
      }
      for (let i = 0; i < 20; i++) {
        const p = at(undefined);
        if (p !== undefined && (pool.get(p.backend.name)!.admin !== 'ready' || !pool.isUp(p.backend, clock.now()))) return false;
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass('300 random pools');
  t.end();
});

t.test('a failed dial with checks on: the first passing check brings the backend back (within one interval)', (t) => {
  const { pool, clock, backend } = setup([spec('a'), spec('b')], { pool: { checks: { rise: 3, fall: 3 } } });
  const a = backend('a');
  t.equal(pool.markDown(a, clock.now(), HOLD_DOWN_MS), true);
  t.equal(pool.state(a, clock.now()), 'down');
  clock.advance(2_000);
  t.equal(pool.recordCheck(a, { atMs: clock.now(), ok: true }), 'up', 'one pass overrules one refused dial, rise 3 or not');
  t.equal(pool.state(a, clock.now()), 'up');
  t.equal(a.downUntilMs, 0, 'the hold-down is over');
  t.end();
});
