// What runs: the run-time shape of a tether and its frontends, which admin/, state/ and demo/
// read. Types only; runtime/ builds them from a Config.
import type net from 'node:net';
import type tls from 'node:tls';
import type { CompiledAcl } from '../accept/acl.js';
import type { Throttle } from '../accept/limits.js';
import type { FdWatch } from '../accept/fd-watch.js';
import type { Listener } from '../accept/listen.js';
import type { UserDirectory } from '../affinity/directory.js';
import type { KeyModule } from '../affinity/key-module.js';
import type { Clock, Rng, Timers } from '../clock.js';
import type { BackendTlsMode, BalanceKind, Config, FrontendConfig } from '../config/types.js';
import type { ConverseOptions } from '../greet/converse.js';
import type { Logger } from '../log.js';
import type { AffinityTable } from '../place/affinity-table.js';
import type { Balancer } from '../place/balance.js';
import type { Pool } from '../place/pool.js';
import type { WaitQueue } from '../place/queue.js';

export interface Deps {
  readonly logger: Logger;
  readonly clock: Clock;
  readonly rng: Rng;
  /** Fills each affinity table as it is built, before any listener accepts (--state-file). */
  readonly restore?: (frontend: string, pool: string, table: AffinityTable, backendNames: ReadonlySet<string>) => void;
  /** For the pools' wait queues; real timers when absent. */
  readonly timers?: Timers;
}


/** One pool of a frontend at run time, with its own affinity table and balancer. */
export interface PoolRuntime {
  readonly name: string;
  readonly pool: Pool;
  readonly table: AffinityTable;
  readonly balancer: Balancer;
  readonly balance: BalanceKind;
  readonly backendNames: ReadonlySet<string>;
  /** Clients waiting for a backend below its max-conns. */
  readonly queue: WaitQueue;
  /** Backends a reload removed that still drain (open connections or pinned keys). */
  readonly retiring: ReadonlySet<string>;
}

/** What an imap/pop3 frontend needs at run time. */
export interface MailRuntime {
  readonly converse: ConverseOptions;
  readonly directory?: UserDirectory;
  readonly backendLogin: { readonly protocol: 'imap' | 'pop3'; readonly backendTls: BackendTlsMode; readonly timeoutMs: number };
  readonly backendTlsOptions: (host: string) => tls.ConnectionOptions;
}

/** Reads the TLS files and the user map of an imap/pop3 frontend. Rejects with TETHER_ERR_CONFIG. */

/** One open connection of a frontend, as the admin API and a stop see it. */
export interface OpenConn {
  /** Ends the connection now (both sockets). */
  readonly cut: () => void;
  /** Set once placed: the pool, the backend and the affinity-table key that decided, if any. */
  readonly pool?: string;
  readonly backend?: string;
  readonly tableKey?: string;
}

/** Counters of one frontend, kept across reloads; read by /metrics and the admin API. */
export interface FrontendStats {
  /** Clients accepted. */
  accepted: number;
  /** Closed connections by `cause|stage|code`. */
  readonly closes: Map<string, number>;
  /** Peek outcomes by `protocol|stop` (peeking frontends only). */
  readonly peeks: Map<string, number>;
  /** Dials beyond the first, over all connections. */
  retries: number;
  bytesIn: number;
  bytesOut: number;
}

export function newFrontendStats(): FrontendStats {
  return { accepted: 0, closes: new Map(), peeks: new Map(), retries: 0, bytesIn: 0, bytesOut: 0 };
}

/**
 * What one frontend's config builds: pools, chain, mail and ACL runtimes. A connection takes the
 * frontend's current one at accept and keeps it to the end, so a reload never changes the rules
 * under an open connection. `open` and `stats` are shared by every generation of the frontend.
 */
export interface Frontend {
  readonly config: FrontendConfig;
  /** The pools by name; `default` holds the frontend's own backends. */
  readonly pools: ReadonlyMap<string, PoolRuntime>;
  /** Whether clients are peeked before placing (the chain, routes or insert-cookie need it). */
  readonly peeks: boolean;
  /** `--key-module`, running in its worker thread; shared by generations while the file stays the same. */
  readonly keyModule?: KeyModule;
  /** imap/pop3 frontends: the greet stage's options, the user directory, backend login. */
  readonly mail?: MailRuntime;
  /** Open connections: raw client socket → how to cut it and where it went. */
  readonly open: Map<net.Socket, OpenConn>;
  /** `--allow`/`--deny`; for trusted balancers, checked on the address their header carries. */
  readonly acl: CompiledAcl;
  /** `--trusted-proxy` networks, when `--accept-proxy-protocol` is on. */
  readonly trusted?: CompiledAcl;
  readonly stats: FrontendStats;
  /** `--max-conns` and every frontend's open connections, shared by all frontends. */
  readonly shared: Shared;
  /** Keeps `limit.reached` to one line a second per limit, and `peek.slow` to one a second. */
  readonly limitLog: Throttle;
}

/** What every frontend of one tether shares: the process-wide limit and each one's open map. */
export interface Shared {
  /** `--max-conns`; a reload may change it. */
  maxConns: number | undefined;
  readonly opens: ReadonlyMap<net.Socket, OpenConn>[];
  /** Notices when tether runs out of file descriptors (accept/fd-watch.ts). */
  readonly fdWatch?: FdWatch;
}

/** A frontend while tether runs: its current generation, its listeners and its timers. */
export interface RunningFrontend {
  readonly name: string;
  current: Frontend;
  listeners: Listener[];
  /** Stops the frontend's timers (tls-ticket discovery, health checks). */
  stopTimers: () => void;
}

/** What a reload changed, for the log line and the admin API. */
export interface ReloadReport {
  readonly frontends: { readonly added: string[]; readonly removed: string[]; readonly kept: string[] };
  /** moved: bound sockets handed to another frontend (renamed, or the address moved). */
  readonly listeners: { readonly kept: number; readonly moved: number; readonly added: number; readonly closed: number };
  readonly backends: { readonly added: string[]; readonly removed: string[] };
}

/** A running tether: every frontend, reload, and a graceful stop. */
export interface Tether {
  /** Serving frontends in config order. */
  readonly frontends: readonly RunningFrontend[];
  /** The config in force (the last one a reload accepted). */
  readonly config: Config;
  /**
   * Applies a validated config: unchanged listeners keep their sockets, open connections keep
   * their old rules, affinity tables and backend states carry over by name. Rejects (and leaves
   * everything as it was) with TETHER_ERR_CONFIG or TETHER_ERR_LISTEN.
   */
  reload(config: Config): Promise<ReloadReport>;
  /** Stops accepting, waits up to `graceMs` for open connections, then cuts the rest. */
  stop(graceMs: number): Promise<void>;
}
