// place() with backends at their max-conns: new keys and un-keyed clients go to a backend with
// room; clients bound to a full backend (table hit, route, inserted cookie), or with every
// candidate full, are told to wait ('full'); a full backend keeps its keys.
import t from 'tap';
import { ManualClock, seededRng } from '../../lib/clock.js';
import type { BackendSpec, BalanceKind } from '../../lib/config/types.js';
import { AffinityTable } from '../../lib/place/affinity-table.js';
import { createBalancer } from '../../lib/place/balance.js';
import { place, type Lookup } from '../../lib/place/place.js';
import { Pool } from '../../lib/place/pool.js';
import { rendezvousPick } from '../../lib/place/rendezvous.js';

const spec = (name: string, maxConns?: number, backup = false): BackendSpec => ({
  name,
  host: '127.0.0.1',
  port: 7000 + name.charCodeAt(0),
  weight: 1,
  backup,
  ...(maxConns === undefined ? {} : { maxConns }),
});

function setup(specs: readonly BackendSpec[], balance: BalanceKind = 'hash') {
  const clock = new ManualClock();
  const pool = new Pool(specs);
  const table = new AffinityTable(60_000, 1_000);
  const balancer = createBalancer(balance, seededRng(3));
  const at = (lookups: readonly Lookup[], opts: { named?: string; exclude?: ReadonlySet<string> } = {}) =>
    place({ table, pool, balancer, lookups, nowMs: clock.now(), exclude: opts.exclude ?? new Set(), ...(opts.named === undefined ? {} : { named: opts.named }) });
  /** Places like proxy.ts does: a placement reserves a slot. */
  const take = (lookups: readonly Lookup[] = []): string => {
    const p = at(lookups);
    if (p === undefined || p === 'full') return String(p);
    p.backend.active++;
    return p.backend.name;
  };
  const fill = (name: string, n: number): void => {
    pool.get(name)!.active += n;
  };
  return { clock, pool, table, at, take, fill };
}

const key = (tableKey: string): Lookup => ({ kind: 'test', value: tableKey, tableKey, learned: false });
const name = (p: ReturnType<ReturnType<typeof setup>['at']>): string => (p === undefined || p === 'full' ? String(p) : p.backend.name);

t.test('hasRoom: below max-conns, or no max-conns at all', (t) => {
  const { pool, fill } = setup([spec('a', 2), spec('b')]);
  const a = pool.get('a')!;
  t.ok(pool.hasRoom(a));
  fill('a', 1);
  t.ok(pool.hasRoom(a));
  fill('a', 1);
  t.notOk(pool.hasRoom(a), 'at 2 of 2');
  fill('b', 1_000_000);
  t.ok(pool.hasRoom(pool.get('b')!), 'no limit');
  t.end();
});

t.test('un-keyed clients fill a max-conns=1 pair one each, then wait', (t) => {
  for (const balance of ['hash', 'roundrobin', 'leastconn', 'random2'] as const) {
    const { take } = setup([spec('a', 1), spec('b', 1)], balance);
    const first = take();
    const second = take();
    t.same([first, second].sort(), ['a', 'b'], `${balance}: the second goes to the other backend`);
    t.equal(take(), 'full', `${balance}: both full → wait`);
  }
  t.end();
});

t.test('a new key whose hash winner is full is pinned to its next-best backend with room', (t) => {
  const specs = [spec('a', 1), spec('b', 1), spec('c', 1)];
  const { at, fill, table, clock } = setup(specs);
  const winner = rendezvousPick(specs, 'k')!.name;
  fill(winner, 1);
  const p = at([key('k')]);
  const others = specs.filter((s) => s.name !== winner);
  t.equal(name(p), rendezvousPick(others, 'k')!.name, 'the rendezvous winner among the rest');
  t.equal(table.peek('k', clock.now()), name(p), 'and pinned there');
  t.end();
});

t.test('a key pinned to a full backend waits; it is neither moved nor re-pinned', (t) => {
  const { at, fill, table, clock, pool } = setup([spec('a', 1), spec('b')]);
  table.set('k', 'a', clock.now());
  fill('a', 1);
  t.equal(at([key('k')]), 'full');
  t.equal(table.peek('k', clock.now()), 'a', 'still pinned to a');
  pool.get('a')!.active--;
  t.equal(name(at([key('k')])), 'a', 'a freed a slot: the key goes back to a');
  t.end();
});

t.test('a key pinned to a backend that is down moves even if the others are limited', (t) => {
  const { at, fill, table, clock, pool } = setup([spec('a', 1), spec('b', 1)]);
  table.set('k', 'a', clock.now());
  fill('a', 1);
  pool.markDown(pool.get('a')!, clock.now(), 10_000);
  const p = at([key('k')]);
  t.equal(name(p), 'b', 'down wins over full: re-placed on b');
  t.equal(table.peek('k', clock.now()), 'b');
  fill('b', 1);
  t.equal(at([key('other')]), 'full', 'a new key with a down a and a full b waits');
  t.end();
});

t.test('routes and the inserted cookie to a full backend wait too', (t) => {
  const { at, fill } = setup([spec('a', 1), spec('b')]);
  fill('a', 1);
  t.equal(at([{ kind: 'http-cookie:SID', value: 'r', tableKey: 'r', learned: false, names: 'a' }]), 'full', 'a cookie route suffix');
  t.equal(at([], { named: 'a' }), 'full', 'the inserted cookie');
  t.equal(name(at([], { named: 'b' })), 'b', 'a named backend with room');
  t.end();
});

t.test('every backend full: new keys and un-keyed clients wait, nothing is pinned', (t) => {
  const { at, fill, table } = setup([spec('a', 2), spec('b', 1)]);
  fill('a', 2);
  fill('b', 1);
  t.equal(at([]), 'full');
  t.equal(at([key('new')]), 'full');
  t.equal(table.size, 0, 'a waiting key is pinned only once it is placed');
  t.end();
});

t.test('a learned lookup with no entry falls through to the next lookup, limits included', (t) => {
  const { at, fill } = setup([spec('a', 1), spec('b', 1)]);
  fill('a', 1);
  const p = at([{ kind: 'tls-session', value: 'sess', tableKey: 'sess', learned: true }, key('k')]);
  t.equal(name(p), 'b');
  t.end();
});

t.test('backups still serve only while no primary is up, not while primaries are full', (t) => {
  const { at, fill, pool, clock } = setup([spec('a', 1), spec('x', undefined, true)]);
  fill('a', 1);
  t.equal(at([]), 'full', 'a full primary does not open the backup');
  pool.markDown(pool.get('a')!, clock.now(), 10_000);
  t.equal(name(at([])), 'x', 'a down primary does');
  t.end();
});

t.test('excluded (already tried) backends are not waited for', (t) => {
  const { at, fill } = setup([spec('a', 1), spec('b', 1)]);
  fill('b', 1);
  t.equal(at([], { exclude: new Set(['a']) }), 'full', 'only b is left, and it is full');
  t.equal(at([], { exclude: new Set(['a', 'b']) }), undefined, 'nothing left at all: no backend, not a wait');
  t.end();
});
