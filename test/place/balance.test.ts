import t from 'tap';
import { seededRng } from '../../lib/clock.js';
import type { BalanceKind } from '../../lib/config/types.js';
import { BALANCE_KINDS } from '../../lib/config/types.js';
import { createBalancer, type Balanced } from '../../lib/place/balance.js';
import { rendezvousPick } from '../../lib/place/rendezvous.js';

const b = (name: string, weight = 1, active = 0): Balanced => ({ name, weight, active });

function picks(kind: BalanceKind, candidates: readonly Balanced[], n: number, seed = 1): string[] {
  const balancer = createBalancer(kind, seededRng(seed));
  return Array.from({ length: n }, () => balancer.pick(candidates, undefined)!.name);
}

function tally(names: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of names) out[n] = (out[n] ?? 0) + 1;
  return out;
}

t.test('every policy returns undefined for no candidates and the only one for one', (t) => {
  for (const kind of BALANCE_KINDS) {
    const balancer = createBalancer(kind, seededRng(1));
    const none: Balanced[] = [];
    t.equal(balancer.pick(none, undefined), undefined, `${kind}: empty, un-keyed`);
    t.equal(balancer.pick(none, 'k'), undefined, `${kind}: empty, keyed`);
    const only = b('only', 3, 7);
    t.equal(balancer.pick([only], undefined), only, `${kind}: single, un-keyed`);
    t.equal(balancer.pick([only], 'k'), only, `${kind}: single, keyed`);
  }
  t.end();
});

t.test('every policy is deterministic under the same seed', (t) => {
  const pool = [b('a', 2, 1), b('b', 1, 0), b('c', 3, 2)];
  for (const kind of BALANCE_KINDS) t.same(picks(kind, pool, 50, 7), picks(kind, pool, 50, 7), kind);
  t.end();
});

t.test('hash: a keyed client goes to its weighted rendezvous winner', (t) => {
  const pool = [b('a', 1), b('b', 2), b('c', 1, 50), b('d', 3)];
  const balancer = createBalancer('hash', seededRng(1));
  const seen = new Set<string>();
  for (let i = 0; i < 1_000; i++) {
    const key = `source\u000010.0.${String(i >> 8)}.${String(i & 255)}/32`;
    const got = balancer.pick(pool, key);
    if (got !== rendezvousPick(pool, key)) t.fail(`${key}: ${got?.name ?? 'none'} is not the rendezvous winner`);
    seen.add(got!.name);
  }
  t.same([...seen].sort(), ['a', 'b', 'c', 'd'], 'load (active) does not matter to a keyed pick');
  const other = createBalancer('hash', seededRng(999));
  t.equal(other.pick(pool, 'some-key'), balancer.pick(pool, 'some-key'), 'the rng plays no part');
  t.end();
});

t.test('hash: un-keyed clients spread by weight', (t) => {
  const counts = tally(picks('hash', [b('a', 1), b('b', 3)], 10_000));
  t.ok(Math.abs((counts['a'] ?? 0) - 2_500) < 150, `a: ${String(counts['a'])}`);
  t.ok(Math.abs((counts['b'] ?? 0) - 7_500) < 150, `b: ${String(counts['b'])}`);
  t.not(
    picks('hash', [b('a'), b('b')], 20, 1).join(),
    picks('hash', [b('a'), b('b')], 20, 2).join(),
    'the rng decides',
  );
  t.end();
});

t.test("roundrobin: weights 5,1,1 give nginx's smooth order a a b a c a a", (t) => {
  const pool = [b('a', 5), b('b', 1), b('c', 1)];
  t.same(picks('roundrobin', pool, 14), ['a', 'a', 'b', 'a', 'c', 'a', 'a', 'a', 'a', 'b', 'a', 'c', 'a', 'a']);
  t.end();
});

t.test('roundrobin: equal weights rotate in candidate order', (t) => {
  t.same(picks('roundrobin', [b('a'), b('b'), b('c')], 6), ['a', 'b', 'c', 'a', 'b', 'c']);
  t.end();
});

t.test('roundrobin: weights 2,1 interleave and ignore load and key', (t) => {
  const balancer = createBalancer('roundrobin', seededRng(1));
  const pool = [b('a', 2, 100), b('b', 1, 0)];
  t.same(
    ['k1', 'k1', 'k1', 'k2', 'k2', 'k2'].map((k) => balancer.pick(pool, k)!.name),
    ['a', 'b', 'a', 'a', 'b', 'a'],
  );
  t.end();
});

t.test('leastconn: picks the lowest active/weight', (t) => {
  const balancer = createBalancer('leastconn', seededRng(1));
  t.equal(balancer.pick([b('a', 1, 3), b('b', 1, 1), b('c', 2, 4)], undefined)!.name, 'b', 'loads 3, 1, 2');
  t.equal(balancer.pick([b('a', 1, 2), b('b', 2, 3), b('c', 1, 5)], undefined)!.name, 'b', 'loads 2, 1.5, 5');
  t.equal(balancer.pick([b('a', 1, 2), b('b', 4, 4), b('c', 1, 5)], 'k')!.name, 'b', 'a key does not matter');
  t.end();
});

t.test('leastconn: ties rotate so an idle pool still spreads', (t) => {
  const idle = [b('a'), b('b'), b('c')];
  const six = picks('leastconn', idle, 6);
  t.same(new Set(six.slice(0, 3)).size, 3, 'three picks visit all three');
  t.same(six.slice(3), six.slice(0, 3), 'and then repeat in the same order');
  t.same(tally(picks('leastconn', [b('a', 1, 1), b('b', 2, 2), b('c', 1, 0)], 4)), { c: 4 }, 'no tie, no rotation');
  const tiedTwo = picks('leastconn', [b('a', 1, 1), b('b', 2, 2), b('c', 1, 5)], 4);
  t.same(tally(tiedTwo), { a: 2, b: 2 }, 'equal load relative to weight is a tie');
  t.end();
});

t.test('random2: never picks the most loaded of three when loads differ strongly', (t) => {
  const pool = [b('a', 1, 0), b('b', 1, 50), b('c', 1, 100)];
  const counts = tally(picks('random2', pool, 3_000));
  t.equal(counts['c'], undefined, 'c, the most loaded, is never chosen');
  // a wins every draw it is in (2 of 3 pairs), b only the pair {b, c}.
  t.ok(Math.abs((counts['a'] ?? 0) - 2_000) < 120, `a: ${String(counts['a'])}`);
  t.ok(Math.abs((counts['b'] ?? 0) - 1_000) < 120, `b: ${String(counts['b'])}`);
  t.end();
});

t.test('random2: compares load relative to weight', (t) => {
  // a: 10/10 = 1, b: 3/1 = 3 — a is less loaded although it has more connections.
  t.same(tally(picks('random2', [b('a', 10, 10), b('b', 1, 3)], 200)), { a: 200 });
  t.end();
});

t.test('random2: spreads when loads are equal', (t) => {
  const counts = tally(picks('random2', [b('a'), b('b'), b('c')], 3_000));
  for (const name of ['a', 'b', 'c']) {
    t.ok(Math.abs((counts[name] ?? 0) - 1_000) < 120, `${name}: ${String(counts[name])}`);
  }
  t.end();
});
