// The only place that reads the real clock or real randomness. Pure code takes Clock/Rng.

/** Milliseconds on a monotonic-enough clock. */
export interface Clock {
  now(): number;
}

/** Uniform floats in [0, 1). */
export interface Rng {
  next(): number;
}

/** One-shot timers, for code that waits (the pool wait queue); a fake one in unit tests. */
export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

/**
 * Wall-clock milliseconds (Date.now); entries compare against each other, never across hosts.
 * Epoch time, not a monotonic clock: the state file (--state-file) carries affinity-table times
 * from one process to the next.
 */
export const realClock: Clock = { now: () => Date.now() };

/** setTimeout/clearTimeout; unref'd, since whatever waits holds a socket that keeps us alive. */
export const realTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms).unref(),
  clear: (handle) => {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

/**
 * Microseconds on CLOCK_MONOTONIC (libuv's hrtime on Linux), the clock systemd compares a
 * notification's MONOTONIC_USEC against.
 */
export function monotonicMicros(): bigint {
  return process.hrtime.bigint() / 1000n;
}

/** Math.random; balancing needs spread, not secrecy. */
export const realRng: Rng = { next: () => Math.random() };

/**
 * A deterministic Rng (mulberry32) for tests and for reproducible benches.
 * Accepts any 32-bit seed; the same seed always yields the same sequence.
 */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  return {
    next(): number {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}

/** A clock that moves only when told to; for tests of expiry and hold-down. */
export class ManualClock implements Clock {
  private ms: number;
  constructor(startMs = 1_000_000) {
    this.ms = startMs;
  }
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** setTimeout/clearTimeout as they are: the timer keeps the process alive while it runs. */
const refTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (handle) => {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

/**
 * Settles as `work` does, or after `ms` with what `late()` returns (or rejects with what it
 * throws), whichever is first; the timer is cleared either way. `work` goes on and must clean
 * up after itself. The one "race a promise with a timer" of tether: callers that wait on a
 * file or a reload that may hang bound the wait with it.
 */
export async function raceTimeout<T, L>(work: Promise<T>, ms: number, late: () => L, timers: Timers = refTimers): Promise<T | L> {
  let handle: unknown;
  const timeout = new Promise<L>((resolve, reject) => {
    handle = timers.set(() => {
      try {
        resolve(late());
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    }, ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    timers.clear(handle);
  }
}
