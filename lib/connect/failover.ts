// Stage 4–5, I/O: place the client and dial, with failover. Placement (place/place.ts) and the
// reservation of a backend slot happen in one step, so a slot freed while clients wait goes to
// the first of them that can use it; a client whose backends are all full waits in the pool's
// queue (held: its FIN or reset is noticed). A failed dial holds the backend down and the next
// placement excludes it, up to --retries times.
import type { Buffer } from 'node:buffer';
import type { Connected, Learned, Step } from '../conn/connection.js';
import { ended, goOn } from '../conn/connection.js';
import type { Termination } from '../errors.js';
import { formatAddress } from '../accept/port-range.js';
import { tableKey } from '../affinity/chain.js';
import { isFdShortage, socketFd, type FdWatch } from '../accept/fd-watch.js';
import { EVENTS, flushSoon, type Logger } from '../log.js';
import type { AffinityTable } from '../place/affinity-table.js';
import type { Balancer } from '../place/balance.js';
import { place, type Lookup, type Placement } from '../place/place.js';
import type { Backend, Pool } from '../place/pool.js';
import { waitTermination, type WaitQueue } from '../place/queue.js';
import { dial } from './dial.js';
import { holdWhile } from './hold.js';

/** The pool a client is placed in (runtime/types.ts PoolRuntime has this shape). */
export interface FailoverPool {
  readonly name: string;
  readonly pool: Pool;
  readonly table: AffinityTable;
  readonly balancer: Balancer;
  readonly queue: WaitQueue;
}

export interface FailoverOptions {
  /** The frontend's name, for log lines. */
  readonly frontend: string;
  readonly retries: number;
  readonly connectTimeoutMs: number;
  readonly holdDownMs: number;
  /** Most bytes read from a waiting client (kept for replay after the prelude). */
  readonly maxHeldBytes: number;
  readonly now: () => number;
  readonly log: Logger;
  /** Told when the queue refused a client (full); the caller logs it, throttled. */
  readonly onQueueFull: (capacity: number) => void;
  /** Told of an fd shortage at dial (tether's own, not the backend's). */
  readonly onFdShortage: (code: string) => void;
  /** Shown each backend socket's fd: one that took the last fd is a shortage too. */
  readonly fdWatch?: Pick<FdWatch, 'sawFd'> | undefined;
}

/** A slot of `b`, given back once (later calls do nothing); the waiting clients are served first. */
function reservation(pr: FailoverPool, b: Backend): () => void {
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    pr.pool.release(b);
    pr.queue.serve();
  };
}

/** A placement holding its backend slot until `release`. */
type Reserved = Placement & { readonly release: () => void };

/** Waits in the pool's queue until `placeNow` finds (and reserves) a backend with room. */
async function waitForSlot(conn: Learned, pr: FailoverPool, placeNow: () => Reserved | 'full' | undefined, o: FailoverOptions): Promise<{ held: readonly Buffer[]; termination?: Termination; placement?: Reserved }> {
  if (pr.queue.isFull()) {
    o.onQueueFull(pr.queue.capacity);
    return { held: [], termination: waitTermination('queue-full') };
  }
  if (o.log.isLevelEnabled('debug')) {
    o.log.debug({ event: EVENTS.queueWait, frontend: o.frontend, pool: pr.name, waiting: pr.queue.size + 1 }, 'waiting for a backend slot');
  }
  let placement: Reserved | undefined;
  const take = (): boolean => {
    const p = placeNow();
    if (p === 'full') return false;
    placement = p;
    return true;
  };
  const h = await holdWhile(conn.client.socket, o.maxHeldBytes, (signal) => pr.queue.wait(take, signal));
  if (h.result !== 'served') return { held: h.sent, termination: waitTermination(h.result) };
  return placement === undefined ? { held: h.sent } : { held: h.sent, placement };
}

/**
 * Places `conn` in `pr` and dials until a backend connects or the retries run out. On success
 * the connection holds a reserved slot (`release`) and its prelude has the bytes it sent while
 * it waited appended; on failure nothing stays reserved.
 */
export async function connectWithFailover(conn: Learned, pr: FailoverPool, lookups: readonly Lookup[], named: string | undefined, o: FailoverOptions): Promise<Step<Connected>> {
  const client = conn.client.socket;
  const { pool } = pr;
  const exclude = new Set<string>();
  let lastCode = 'no-backend';
  // Whether the last failed dial timed out: the termination then says `backend-timeout`
  // (HAProxy's "sC") rather than `backend` (a refusal, "SC"), as its code already does.
  let lastTimedOut = false;
  const client_ = { gone: false };
  const onClientClose = (): void => {
    client_.gone = true;
  };
  client.on('close', onClientClose);
  const held: Buffer[] = [];
  const fail = (termination: Termination, tries: number): Step<Connected> => ended(conn, termination, { tries, pool: pr.name, bytesIn: client.bytesRead });
  // Places and reserves in one step: a slot freed while clients wait goes to the first of them
  // that can use it, never to whoever runs next.
  const placeNow = (): Reserved | 'full' | undefined => {
    const req = { table: pr.table, pool, balancer: pr.balancer, lookups, nowMs: o.now(), exclude, port: conn.facts.localPort };
    const p = place(named === undefined ? req : { ...req, named });
    if (p === undefined || p === 'full') return p;
    pool.reserve(p.backend);
    return { ...p, release: reservation(pr, p.backend) };
  };
  try {
    for (let tries = 1; tries <= o.retries + 1; tries++) {
      // Waiting clients go first, also to room no release announced (a backend back from hold-down).
      pr.queue.serve();
      let p = placeNow();
      if (p === 'full') {
        const w = await waitForSlot(conn, pr, placeNow, o);
        held.push(...w.held);
        if (w.termination) return fail(w.termination, tries - 1);
        p = w.placement;
      }
      if (!p) {
        // Nothing (left) to dial. With nothing tried yet, every backend is held down after
        // failing: still the backends' doing, not tether's (`tether`: a limit, a stop or a bug).
        const cause = lastTimedOut ? 'backend-timeout' : 'backend';
        return fail({ cause, stage: exclude.size === 0 ? 'place' : 'connect', code: lastCode }, tries - 1);
      }
      const b = p.backend;
      const port = b.spec.port ?? conn.facts.localPort;
      const address = formatAddress(b.spec.host, port);
      const r = await dial(b.spec.host, port, o.connectTimeoutMs);
      if (client_.gone) {
        p.release();
        if (r.ok) r.socket.destroy();
        return fail({ cause: 'client', stage: 'connect', code: 'client-closed' }, tries);
      }
      if (r.ok) {
        o.fdWatch?.sawFd(socketFd(r.socket));
        b.total++;
        if (pool.markUp(b, port)) {
          o.log.info({ event: EVENTS.backendUp, frontend: o.frontend, pool: pr.name, backend: b.name, address, reason: 'connect' }, 'backend up');
          flushSoon(o.log);
        }
        const lookup = lookups.find((l) => l.tableKey === p.lookup?.tableKey);
        const prelude = held.length === 0 ? conn.prelude : [...conn.prelude, ...held];
        const pin = (kind: string, value: string): void => {
          pr.table.set(tableKey({ kind, value }), b.name, o.now());
        };
        const placed = { pool: pr.name, backend: b, via: p.via, tries, socket: r.socket, tcp: r.socket, release: p.release, pin };
        return goOn({ ...conn, prelude, ...placed, ...(lookup === undefined ? {} : { lookup }) });
      }
      p.release();
      if (isFdShortage(r.code)) {
        // tether's own shortage, not the backend's: no hold-down, and no other backend (its
        // dial would fail alike). The client is closed cleanly; accept.error says why.
        o.onFdShortage(r.code);
        return fail({ cause: 'tether', stage: 'connect', code: r.code }, tries);
      }
      b.failures++;
      lastCode = r.code;
      lastTimedOut = r.timeout;
      exclude.add(b.name);
      o.log.warn({ event: EVENTS.connectFail, frontend: o.frontend, pool: pr.name, backend: b.name, address, code: r.code }, 'backend connect failed');
      if (pool.markDown(b, o.now(), o.holdDownMs, port)) {
        o.log.warn(
          { event: EVENTS.backendDown, frontend: o.frontend, pool: pr.name, backend: b.name, address, reason: 'connect', code: r.code, holdDownMs: o.holdDownMs },
          'backend down',
        );
      }
      // Health events are rare and operators act on them: write them out now, not batched.
      flushSoon(o.log);
    }
    return fail({ cause: lastTimedOut ? 'backend-timeout' : 'backend', stage: 'connect', code: lastCode }, o.retries + 1);
  } finally {
    client.off('close', onClientClose);
  }
}
