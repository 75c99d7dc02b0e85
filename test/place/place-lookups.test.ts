// place() walking the chain's lookups: routes, learned keys, plain keys, and the inserted cookie.
import t from 'tap';
import { ManualClock, seededRng } from '../../lib/clock.js';
import type { BackendSpec } from '../../lib/config/types.js';
import { AffinityTable } from '../../lib/place/affinity-table.js';
import { createBalancer } from '../../lib/place/balance.js';
import { place, type Lookup, type Placement } from '../../lib/place/place.js';
import { Pool } from '../../lib/place/pool.js';
import { rendezvousPick } from '../../lib/place/rendezvous.js';

const HOLD_DOWN_MS = 10_000;
const SPECS: readonly BackendSpec[] = ['a', 'b', 'c'].map((name, i) => ({ name, host: '127.0.0.1', port: 7001 + i, weight: 1, backup: false }));

function setup() {
  const clock = new ManualClock();
  const pool = new Pool(SPECS);
  const table = new AffinityTable(60_000, 1_000);
  const balancer = createBalancer('hash', seededRng(7));
  const at = (lookups: readonly Lookup[], named?: string): Placement | undefined => {
    const p = place({ table, pool, balancer, lookups, nowMs: clock.now(), exclude: new Set(), ...(named === undefined ? {} : { named }) });
    if (p === 'full') throw new Error('no backend has max-conns here, so none is ever full');
    return p;
  };
  const down = (name: string): void => {
    pool.markDown(pool.get(name)!, clock.now(), HOLD_DOWN_MS);
  };
  const pinned = (key: string): string | undefined => table.peek(key, clock.now());
  return { clock, table, at, down, pinned };
}

const plain = (tableKey: string): Lookup => ({ kind: 'test', value: tableKey, tableKey, learned: false });
const learned = (tableKey: string): Lookup => ({ kind: 'tls-session', value: tableKey, tableKey, learned: true });
const routed = (tableKey: string, route: string): Lookup => ({ kind: 'http-cookie:SID', value: tableKey, tableKey, learned: false, names: route });

/** The hash winner among `names` for `key`, and a backend that is not it. */
function winnerAndOther(key: string, names: readonly string[] = ['a', 'b', 'c']): { winner: string; other: string } {
  const winner = rendezvousPick(SPECS.filter((s) => names.includes(s.name)), key)!.name;
  return { winner, other: names.find((n) => n !== winner)! };
}

t.test('a route wins when its backend is usable, over a table entry', (t) => {
  const { at, table, clock } = setup();
  const l = routed('sid:1', 'c');
  table.set('sid:1', 'a', clock.now());
  const p = at([l])!;
  t.equal(p.backend.name, 'c');
  t.equal(p.via, 'named');
  t.equal(p.lookup, l, 'the routing lookup decided');
  t.end();
});

t.test('a route to a backend that is down falls through to the table, then to balance', (t) => {
  const { at, table, clock, down, pinned } = setup();
  down('c');
  table.set('sid:1', 'a', clock.now());
  const hit = at([routed('sid:1', 'c')])!;
  t.equal(hit.backend.name, 'a');
  t.equal(hit.via, 'table');

  const { winner } = winnerAndOther('sid:2', ['a', 'b']);
  const l = routed('sid:2', 'c');
  const miss = at([l])!;
  t.equal(miss.via, 'balance');
  t.equal(miss.backend.name, winner, 'the hash winner among the usable backends');
  t.equal(miss.lookup, l);
  t.equal(pinned('sid:2'), winner, 'and pinned');
  t.end();
});

t.test('a route to a name that is not a backend is ignored', (t) => {
  const { at } = setup();
  const p = at([routed('sid:3', 'zz')])!;
  t.equal(p.via, 'balance');
  t.equal(p.backend.name, winnerAndOther('sid:3').winner);
  t.end();
});

t.test('a plain key is balanced and pinned, then hits the table', (t) => {
  const { at, pinned } = setup();
  const l = plain('k');
  const first = at([l])!;
  t.equal(first.via, 'balance');
  t.equal(first.backend.name, winnerAndOther('k').winner);
  t.equal(first.lookup, l);
  t.equal(first.moved, undefined, 'nothing moved: there was no entry');
  t.equal(pinned('k'), first.backend.name);
  const second = at([l])!;
  t.equal(second.via, 'table');
  t.equal(second.backend, first.backend);
  t.end();
});

t.test('a learned lookup counts only on a table hit; otherwise the chain moves on', (t) => {
  const { at, table, clock, pinned } = setup();
  const session = learned('tls-session:s1');
  const sni = plain('sni:x');

  const miss = at([session, sni])!;
  t.equal(miss.via, 'balance');
  t.equal(miss.lookup, sni, 'the plain key decided');
  t.equal(pinned('tls-session:s1'), undefined, 'a learned key is never pinned by placing');
  t.equal(pinned('sni:x'), miss.backend.name);

  const { other } = winnerAndOther('sni:x');
  table.set('tls-session:s1', other, clock.now());
  const hit = at([session, sni])!;
  t.equal(hit.via, 'table');
  t.equal(hit.backend.name, other);
  t.equal(hit.lookup, session, 'the learned key decided');
  t.end();
});

t.test('only learned lookups and no hit: un-keyed balance, nothing pinned', (t) => {
  const { at, table } = setup();
  const p = at([learned('tls-session:s1'), learned('tls-ticket:t1')])!;
  t.equal(p.via, 'balance');
  t.equal(p.lookup, undefined, 'no lookup decided');
  t.equal(table.size, 0);
  t.end();
});

t.test('a learned entry on a backend that is down is skipped, not re-placed', (t) => {
  const { at, table, clock, down, pinned } = setup();
  table.set('tls-session:s1', 'b', clock.now());
  down('b');
  const sni = plain('sni:y');
  const p = at([learned('tls-session:s1'), sni])!;
  t.equal(p.lookup, sni);
  t.not(p.backend.name, 'b');
  t.equal(pinned('tls-session:s1'), 'b', 'the learned entry is left alone');
  t.end();
});

t.test('a stale entry is re-placed and reported as moved', (t) => {
  const { at, table, clock, down, pinned } = setup();
  const { winner } = winnerAndOther('k2', ['a', 'c']);
  table.set('k2', 'b', clock.now());
  down('b');
  const l = plain('k2');
  const p = at([l])!;
  t.equal(p.via, 'balance');
  t.equal(p.moved, 'b');
  t.equal(p.backend.name, winner);
  t.equal(p.lookup, l);
  t.equal(pinned('k2'), winner, 're-pinned');
  t.end();
});

t.test('named (the inserted cookie) wins when usable and is ignored when unknown or down', (t) => {
  const { at, table, clock, down } = setup();
  table.set('k3', 'a', clock.now());
  const l = [plain('k3')];
  const named = at(l, 'c')!;
  t.equal(named.backend.name, 'c');
  t.equal(named.via, 'named');
  t.equal(named.lookup, undefined, 'no lookup decided');

  const unknown = at(l, 'no-such-backend')!;
  t.equal(unknown.backend.name, 'a', 'an unknown name is ignored');
  t.equal(unknown.via, 'table');

  down('c');
  const gone = at(l, 'c')!;
  t.equal(gone.backend.name, 'a', 'a backend that is down is ignored');
  t.equal(gone.via, 'table');
  t.end();
});

t.test('the lookup reported is the deciding one, not the first', (t) => {
  const { at, table, clock } = setup();
  const first = learned('tls-ticket:t9');
  const second = routed('sid:9', 'zz');
  const third = plain('src:9');
  table.set('src:9', 'b', clock.now());
  const p = at([first, second, third])!;
  t.equal(p.lookup, second, 'the first plain key decides (balanced), later ones are not consulted');
  t.equal(p.via, 'balance');
  table.set('sid:9', 'c', clock.now());
  t.equal(at([first, second, third])!.lookup, second);
  t.equal(at([first, third])!.lookup, third);
  t.equal(at([first, third])!.backend.name, 'b');
  t.end();
});

t.test('no backend can take the client: undefined', (t) => {
  const { at, down } = setup();
  for (const n of ['a', 'b', 'c']) down(n);
  t.equal(at([plain('k')]), undefined);
  t.equal(at([], 'a'), undefined);
  t.end();
});
