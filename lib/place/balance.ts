// Stage 4, pure (randomness is injected). Balance policies: which candidate takes a new key or
// an un-keyed connection. All are weight-aware and deterministic under a seeded Rng.
import type { Rng } from '../clock.js';
import type { BalanceKind } from '../config/types.js';
import { rendezvousPick } from './rendezvous.js';

/** What a balancer needs of a backend. */
export interface Balanced {
  readonly name: string;
  readonly weight: number;
  readonly active: number;
}

export interface Balancer {
  /** Picks one of `candidates` (non-empty → defined) for `key` (undefined: un-keyed). */
  pick<T extends Balanced>(candidates: readonly T[], key: string | undefined): T | undefined;
}

function weightedRandom<T extends Balanced>(candidates: readonly T[], rng: Rng): T | undefined {
  let total = 0;
  for (const c of candidates) total += c.weight;
  let r = rng.next() * total;
  for (const c of candidates) {
    r -= c.weight;
    if (r < 0) return c;
  }
  return candidates[candidates.length - 1];
}

/** Load relative to weight: a weight-2 backend with 2 connections is as loaded as a weight-1 with 1. */
function load(b: Balanced): number {
  return b.active / b.weight;
}

/**
 * hash: a key goes to its weighted-rendezvous winner (stable across restarts and instances);
 * an un-keyed connection goes to a weighted random backend.
 */
function hashBalancer(rng: Rng): Balancer {
  return {
    pick: (candidates, key) => (key === undefined ? weightedRandom(candidates, rng) : rendezvousPick(candidates, key)),
  };
}

/**
 * roundrobin: nginx's smooth weighted round robin — each pick adds every candidate's weight to
 * its running score, takes the highest, and subtracts the total from the winner, so weights
 * 5,1,1 give a a b a c a a rather than a a a a a b c.
 */
function roundRobinBalancer(): Balancer {
  const current = new Map<string, number>();
  return {
    pick(candidates) {
      let total = 0;
      let best: (typeof candidates)[number] | undefined;
      let bestScore = -Infinity;
      for (const c of candidates) {
        const score = (current.get(c.name) ?? 0) + c.weight;
        current.set(c.name, score);
        total += c.weight;
        if (score > bestScore) {
          bestScore = score;
          best = c;
        }
      }
      if (best) current.set(best.name, bestScore - total);
      return best;
    },
  };
}

/** leastconn: the lowest active/weight; ties rotate so idle pools still spread. */
function leastConnBalancer(): Balancer {
  let turn = 0;
  return {
    pick(candidates) {
      let min = Infinity;
      for (const c of candidates) min = Math.min(min, load(c));
      const tied = candidates.filter((c) => load(c) === min);
      if (tied.length === 0) return undefined;
      turn = (turn + 1) % 1_000_000_007;
      return tied[turn % tied.length];
    },
  };
}

/**
 * random2: "power of two choices" (Mitzenmacher 2001) — draw two distinct backends by weight
 * and keep the less loaded; nearly leastconn's balance without its herd on a recovered backend.
 */
function random2Balancer(rng: Rng): Balancer {
  return {
    pick(candidates) {
      const first = weightedRandom(candidates, rng);
      if (first === undefined || candidates.length < 2) return first;
      const second = weightedRandom(
        candidates.filter((c) => c !== first),
        rng,
      );
      if (second === undefined) return first;
      return load(second) < load(first) ? second : first;
    },
  };
}

/** Builds the balancer for `kind`. */
export function createBalancer(kind: BalanceKind, rng: Rng): Balancer {
  switch (kind) {
    case 'hash':
      return hashBalancer(rng);
    case 'roundrobin':
      return roundRobinBalancer();
    case 'leastconn':
      return leastConnBalancer();
    case 'random2':
      return random2Balancer(rng);
  }
}
