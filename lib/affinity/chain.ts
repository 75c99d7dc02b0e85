// Stage 3, pure. Facts → the first present affinity key of the chain, or undefined
// ("connection affinity": each connection is balanced on its own).
import type { AffinityKind, AffinityStep } from '../config/types.js';
import type { Facts } from '../facts.js';
import { sourceNetwork } from './source.js';

/** An affinity key: the kind as spelled in `--affinity`, and its value. */
export interface AffinityKey {
  readonly kind: Exclude<AffinityKind, 'none'>;
  readonly value: string;
}

function keyFor(step: AffinityStep, facts: Facts): AffinityKey | undefined {
  switch (step.kind) {
    case 'none':
      return undefined;
    case 'source': {
      const value = sourceNetwork(facts.source, step.v4Bits, step.v6Bits);
      return value === undefined ? undefined : { kind: 'source', value };
    }
  }
}

/** Returns the key of the first chain step that yields one, else undefined. */
export function firstKey(chain: readonly AffinityStep[], facts: Facts): AffinityKey | undefined {
  for (const step of chain) {
    const key = keyFor(step, facts);
    if (key) return key;
  }
  return undefined;
}

/** The affinity table's string form of a key: kinds never collide with each other. */
export function tableKey(key: AffinityKey): string {
  return `${key.kind}\u0000${key.value}`;
}
