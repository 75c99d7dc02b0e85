// The connection as a value. Each stage of the flow (accept → admit → learn → connect → splice →
// close) takes the connection as the stage before left it and returns a Step: go on with the
// connection as it now stands (a new value; nothing is changed in place), or ended, with the one
// termination that the close line logs. The bytes the client sent before a backend existed,
// replayed to it once before the splice, are always the `prelude`.
import type { Buffer } from 'node:buffer';
import type net from 'node:net';
import type { Termination } from '../errors.js';
import type { Facts } from '../facts.js';
import type { Login } from '../greet/dialogue.js';
import type { Lookup, Placement } from '../place/place.js';
import type { Backend } from '../place/pool.js';
import type { ClientSocket } from './client.js';

/** Why peeking stopped (peek/collect.ts), counted as `PROTOCOL|stop`. */
export type PeekStop = 'verdict' | 'timeout' | 'cap' | 'eof';

/** Accepted: the client's socket and what its addresses say. */
export interface Accepted {
  /** A number for this process's log lines (conn.close `conn`). */
  readonly id: number;
  readonly startedMs: number;
  /** The one owner of the client's socket, its errors and its close. */
  readonly client: ClientSocket;
  readonly facts: Facts;
  /** Where the client connected to (a trusted balancer's PROXY header may say otherwise). */
  readonly destination: { readonly address: string; readonly port: number };
  /** Whether the peer is a --trusted-proxy balancer (its PROXY header says who the client is). */
  readonly trusted: boolean;
  /** Why peeking stopped, once it has (counted as `PROTOCOL|stop`). */
  readonly peekStop?: PeekStop;
}

/** Learned: what the client said before a backend exists (peeked prelude, or the mail login). */
export interface Learned extends Accepted {
  /** Client bytes held for replay to the backend, in order, sent once before the splice. */
  readonly prelude: readonly Buffer[];
  /** imap/pop3: the login tether read itself, replayed to the backend. */
  readonly login?: Login;
}

/** Where placement put the connection. */
export interface Placed {
  readonly pool: string;
  readonly backend: Backend;
  readonly via: Placement['via'];
  /** The lookup that decided (undefined: un-keyed, or named by tether's inserted cookie). */
  readonly lookup?: Lookup;
  /** Dials made (1 = the first backend answered). */
  readonly tries: number;
}

/** Connected: a backend socket, ready for the splice (PROXY header sent, login replayed). */
export interface Connected extends Learned, Placed {
  /** The backend socket the splice reads and writes (a TLS socket under backend TLS). */
  readonly socket: net.Socket;
  /** The TCP socket beneath `socket` (itself when no TLS): a reset goes there. */
  readonly tcp: net.Socket;
  /** Gives the backend slot back (the pool's waiting clients first). Idempotent. */
  readonly release: () => void;
  /** Records a key learned from this backend's answer (kind, value) in the pool's affinity table. */
  readonly pin: (kind: string, value: string) => void;
}

/** How a connection ended: the termination and what is known of it, for the close line. */
export interface Ended {
  /** The connection as far as it got. */
  readonly conn: Accepted;
  readonly termination: Termination;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly tries: number;
  /** The pool chosen, once routes were applied. */
  readonly pool?: string;
  /** Where it was placed, once a backend was dialled and connected. */
  readonly placed?: Placed;
}

/** Where `c` was placed, as the close line reports it. */
export function placedOf(c: Connected): Placed {
  return { pool: c.pool, backend: c.backend, via: c.via, tries: c.tries, ...(c.lookup === undefined ? {} : { lookup: c.lookup }) };
}

/** A stage's result: go on with `conn`, or the connection ended. */
export type Step<C> = { readonly ok: true; readonly conn: C } | { readonly ok: false; readonly ended: Ended };

/** Goes on with `conn`. */
export const goOn = <C>(conn: C): Step<C> => ({ ok: true, conn });

/**
 * Ends the connection with `termination`. A stop that cut the client while the stage awaited
 * overrides whatever the interrupted stage reports: the close line then says `shutdown`.
 */
export function ended(conn: Accepted, termination: Termination, more: Partial<Omit<Ended, 'conn' | 'termination'>> = {}): { readonly ok: false; readonly ended: Ended } {
  return {
    ok: false,
    ended: {
      conn,
      termination: conn.client.wasCut ? { cause: 'tether', stage: 'shutdown' } : termination,
      bytesIn: more.bytesIn ?? 0,
      bytesOut: more.bytesOut ?? 0,
      tries: more.tries ?? 0,
      ...(more.pool === undefined ? {} : { pool: more.pool }),
      ...(more.placed === undefined ? {} : { placed: more.placed }),
    },
  };
}
