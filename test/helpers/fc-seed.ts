// fast-check's seed for one test file: random per run, so every run of the suite explores new
// cases, unless FC_SEED replays a reported one. The seed is printed as a tap comment first, so
// a failing run's log always says how to replay it.
import { randomInt } from 'node:crypto';
import fc from 'fast-check';
import t from 'tap';

/** Largest seed we draw: fast-check takes any 32-bit integer; 2³¹−1 keeps it positive. */
const MAX_SEED = 2 ** 31 - 1;

/** Picks the seed (FC_SEED, or a random one), prints it, and configures fast-check with it. */
export function seedFastCheck(options: { readonly numRuns: number }): number {
  const fromEnv = process.env['FC_SEED'];
  const seed = fromEnv === undefined || fromEnv === '' ? randomInt(MAX_SEED) : Number(fromEnv);
  if (!Number.isSafeInteger(seed)) throw new Error(`FC_SEED must be an integer, got ${JSON.stringify(fromEnv)}`);
  t.comment(`fast-check seed: ${seed} (replay: FC_SEED=${seed})`);
  fc.configureGlobal({ seed, numRuns: options.numRuns });
  return seed;
}
