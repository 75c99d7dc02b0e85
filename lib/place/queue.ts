// Stage 4, pure apart from the timers it is given. The wait queue of one pool: clients whose
// backends are all at their max-conns wait here, first come first served, until a connection of
// the pool ends and frees a slot (HAProxy's server queue, bounded like its `maxqueue`, with its
// `timeout queue`). The queue knows nothing of sockets or placement: a waiter brings a `take`
// that tries to place (and reserve) it, and the I/O code calls serve() when room may have
// appeared.
import type { Timers } from '../clock.js';
import type { Termination } from '../errors.js';

/** How a wait ended: placed by `take`, refused at once (queue full), timed out, or cancelled. */
export type WaitEnd = 'served' | 'queue-full' | 'queue-timeout' | 'cancelled';

interface Waiter {
  readonly take: () => boolean;
  readonly end: (how: WaitEnd) => void;
}

export class WaitQueue {
  // A Set iterates in insertion order: FIFO, with O(1) removal of a waiter that leaves early.
  private readonly waiters = new Set<Waiter>();

  /** `capacity` ≥ 0 waiters (0: nobody waits); each waits at most `timeoutMs` ≥ 1. */
  constructor(
    public capacity: number,
    public timeoutMs: number,
    private readonly timers: Timers,
  ) {}

  /** Clients waiting now. */
  get size(): number {
    return this.waiters.size;
  }

  /** Whether a wait() now would be refused at once ('queue-full'). */
  isFull(): boolean {
    return this.waiters.size >= this.capacity;
  }

  /**
   * Waits at the tail until a serve() finds `take()` true (it must reserve what it takes, in
   * the same call, so no other waiter or newcomer gets it), for at most `timeoutMs`, or until
   * `signal` aborts. Resolves 'queue-full' at once when `capacity` clients already wait. Never
   * rejects; `take` is only called from serve().
   */
  wait(take: () => boolean, signal?: AbortSignal): Promise<WaitEnd> {
    if (signal?.aborted === true) return Promise.resolve('cancelled');
    if (this.isFull()) return Promise.resolve('queue-full');
    return new Promise((resolve) => {
      const onAbort = (): void => {
        waiter.end('cancelled');
      };
      const waiter: Waiter = {
        take,
        end: (how) => {
          // Whichever comes first (served, timeout, cancel) ends the wait; the rest find it gone.
          if (!this.waiters.delete(waiter)) return;
          this.timers.clear(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(how);
        },
      };
      this.waiters.add(waiter);
      const timer = this.timers.set(() => {
        waiter.end('queue-timeout');
      }, this.timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Offers whatever room there is to the waiters in arrival order; each whose `take()` returns
   * true leaves the queue, served. A waiter that cannot use the room (its backend is still full)
   * keeps its place, and those behind it are still asked: a client pinned to a full backend does
   * not hold up one that could go elsewhere. Returns how many were served.
   */
  serve(): number {
    if (this.waiters.size === 0) return 0;
    let served = 0;
    // A snapshot: `take` may not add waiters, but a cancel from inside it must not skip anyone.
    for (const w of [...this.waiters]) {
      if (!this.waiters.has(w)) continue;
      if (w.take()) {
        w.end('served');
        served++;
      }
    }
    return served;
  }
}

/** The termination of a client that waited for a slot and did not get one. */
export function waitTermination(end: Exclude<WaitEnd, 'served'>): Termination {
  switch (end) {
    // tether's own bound refused it (HAProxy's "P": a limit enforced by the proxy).
    case 'queue-full':
      return { cause: 'tether', stage: 'queue', code: 'queue-full' };
    // The backends stayed busy (HAProxy's "sQ": a server-side timeout while queued).
    case 'queue-timeout':
      return { cause: 'backend-timeout', stage: 'queue', code: 'queue-timeout' };
    case 'cancelled':
      return { cause: 'client', stage: 'queue', code: 'client-closed' };
  }
}
