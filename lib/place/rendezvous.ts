// Stage 4, pure. Weighted rendezvous (highest-random-weight) hashing.
//
// Each (backend, key) pair gets a uniform u in (0,1) from MurmurHash3 x86_32 (seed chain below);
// the backend's score is -weight / ln(u), and the highest score wins. This is the "logarithmic
// method" of weighted HRW (Schindelhauer & Schomaker 2005; used by e.g. Twitter's EventBus):
// backend i wins with probability weight_i / Σweight, and removing a backend moves only the keys
// it owned, while adding one to N moves ~weight_new/Σweight of keys (1/(N+1) when equal).
// Two tether instances with the same pool compute the same answer with no shared state.
//
// Hash: h1 = murmur3_32(key, seed = murmur3_32(backendName, 0)),
//       h2 = murmur3_32(key, seed = h1 ^ 0x9e3779b9); u = (h1·2^21 + h2>>>11 + 0.5) / 2^53.
// Keys and names are hashed as UTF-8. Changing any of this moves keys: treat it as a format.
import { Buffer } from 'node:buffer';

/** MurmurHash3 x86_32 of `data` with `seed`; returns an unsigned 32-bit integer. */
export function murmur3(data: Uint8Array, seed: number): number {
  let h = seed >>> 0;
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  const len = data.length;
  const blocks = len & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k =
      (data[i] ?? 0) | ((data[i + 1] ?? 0) << 8) | ((data[i + 2] ?? 0) << 16) | ((data[i + 3] ?? 0) << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = len & 3;
  if (tail > 0) {
    let k = 0;
    if (tail === 3) k ^= (data[blocks + 2] ?? 0) << 16;
    if (tail >= 2) k ^= (data[blocks + 1] ?? 0) << 8;
    k ^= data[blocks] ?? 0;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const nameSeeds = new Map<string, number>();

function nameSeed(name: string): number {
  let s = nameSeeds.get(name);
  if (s === undefined) {
    s = murmur3(Buffer.from(name, 'utf8'), 0);
    if (nameSeeds.size < 65_536) nameSeeds.set(name, s);
  }
  return s;
}

/** The weighted rendezvous score of backend `name` (weight ≥ 1) for `key`; higher wins. */
export function rendezvousScore(name: string, weight: number, key: Uint8Array): number {
  const h1 = murmur3(key, nameSeed(name));
  const h2 = murmur3(key, (h1 ^ 0x9e3779b9) >>> 0);
  const u = (h1 * 2_097_152 + (h2 >>> 11) + 0.5) / 9_007_199_254_740_992;
  return -weight / Math.log(u);
}

/**
 * Returns the candidate with the highest score for `key` (ties, which need equal 53-bit
 * hashes, go to the first), or undefined when there are no candidates.
 */
export function rendezvousPick<T extends { readonly name: string; readonly weight: number }>(
  candidates: readonly T[],
  key: string,
): T | undefined {
  const bytes = Buffer.from(key, 'utf8');
  let best: T | undefined;
  let bestScore = -Infinity;
  for (const c of candidates) {
    const s = rendezvousScore(c.name, c.weight, bytes);
    if (s > bestScore) {
      bestScore = s;
      best = c;
    }
  }
  return best;
}
