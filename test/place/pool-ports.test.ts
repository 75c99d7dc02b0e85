// Port fronting in Pool and place(): a backend without a port is dialled on the client's port,
// so a failed dial holds down that port only — the host's other ports stay up, for new clients
// and pinned ones — and the per-port holds are bounded (MAX_PORT_HOLDS).
import t from 'tap';
import { ManualClock, seededRng } from '../../lib/clock.js';
import type { BackendSpec } from '../../lib/config/types.js';
import { AffinityTable } from '../../lib/place/affinity-table.js';
import { createBalancer } from '../../lib/place/balance.js';
import { place } from '../../lib/place/place.js';
import { MAX_PORT_HOLDS, Pool } from '../../lib/place/pool.js';

const HOLD_DOWN_MS = 10_000;
const NONE: ReadonlySet<string> = new Set();
const portless = (name: string, host: string): BackendSpec => ({ name, host, port: undefined, weight: 1, backup: false });

t.test('a failed dial holds down host:port, not the host', (t) => {
  const clock = new ManualClock();
  const pool = new Pool([portless('a', '127.0.0.2'), portless('b', '127.0.0.3')], { nowMs: clock.now() });
  const a = pool.get('a')!;
  t.equal(pool.markDown(a, clock.now(), HOLD_DOWN_MS, 8001), true, 'up → down on 8001');
  t.equal(pool.markDown(a, clock.now(), HOLD_DOWN_MS, 8001), false, 'reported once');
  t.notOk(pool.isUp(a, clock.now(), 8001), '8001 is down');
  t.ok(pool.isUp(a, clock.now(), 8000), '8000 is up');
  t.ok(pool.isUp(a, clock.now()), 'the host is up');
  t.equal(pool.state(a, clock.now()), 'up', 'reported up, with its held port');
  t.same(pool.heldPorts(a, clock.now()), [{ port: 8001, inMs: HOLD_DOWN_MS }]);
  t.same(pool.candidates(clock.now(), NONE, 8001).map((b) => b.name), ['b']);
  t.same(pool.candidates(clock.now(), NONE, 8000).map((b) => b.name), ['a', 'b']);

  const table = new AffinityTable(60_000, 1_000);
  table.set('k', 'a', clock.now());
  const req = { table, pool, balancer: createBalancer('hash', seededRng(1)), lookups: [{ kind: 'test', value: 'k', tableKey: 'k', learned: false }], exclude: NONE };
  t.match(place({ ...req, nowMs: clock.now(), port: 8000 }), { backend: { name: 'a' }, via: 'table' }, 'a key pinned to a stays there on a working port');
  t.match(place({ ...req, nowMs: clock.now(), port: 8001 }), { backend: { name: 'b' }, via: 'balance', moved: 'a' }, 'and moves on the held port');

  clock.advance(HOLD_DOWN_MS);
  t.ok(pool.isUp(a, clock.now(), 8001), 'the hold-down ends');
  t.equal(pool.markUp(a, 8001), true, 'a dial that works reports down → up once');
  t.equal(pool.markUp(a, 8001), false);
  t.same(pool.heldPorts(a, clock.now()), []);
  t.end();
});

t.test('with active checks, a failed dial still holds down only its port', (t) => {
  const pool = new Pool([portless('a', '127.0.0.2')], { checks: { rise: 2, fall: 2 } });
  const a = pool.get('a')!;
  pool.markDown(a, 0, HOLD_DOWN_MS, 8001);
  t.ok(a.health.up, 'the checks verdict (the host) is untouched');
  t.ok(pool.isUp(a, 0, 8000));
  t.notOk(pool.isUp(a, 0, 8001));
  t.end();
});

t.test('a backend with a port keeps one state for all client ports', (t) => {
  const pool = new Pool([{ name: 'a', host: '127.0.0.2', port: 7000, weight: 1, backup: false }]);
  const a = pool.get('a')!;
  pool.markDown(a, 0, HOLD_DOWN_MS, 8001);
  t.notOk(pool.isUp(a, 0, 8000), 'its one address is down whatever port the client used');
  t.equal(a.ports.size, 0);
  t.end();
});

t.test('per-port holds are bounded', (t) => {
  const pool = new Pool([portless('a', '127.0.0.2')]);
  const a = pool.get('a')!;
  for (let p = 0; p < MAX_PORT_HOLDS + 10; p++) pool.markDown(a, 0, HOLD_DOWN_MS, 1024 + p);
  t.equal(a.ports.size, MAX_PORT_HOLDS, 'at most MAX_PORT_HOLDS');
  t.notOk(pool.isUp(a, 0, 1024 + MAX_PORT_HOLDS + 9), 'the newest is kept');
  t.ok(pool.isUp(a, 0, 1024), 'the oldest went first');
  pool.markDown(a, HOLD_DOWN_MS, HOLD_DOWN_MS, 60_000);
  t.equal(a.ports.size, 1, 'expired holds are forgotten first');
  t.end();
});
