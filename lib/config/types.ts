// The typed configuration: the one definition of Config. Pure. Built by cli/ from flags or a
// config file, checked by validate.ts, then deep-frozen.
import type { LogLevel } from '../log.js';

export const BALANCE_KINDS = ['hash', 'roundrobin', 'leastconn', 'random2'] as const;
export type BalanceKind = (typeof BALANCE_KINDS)[number];

/** Key kinds spelled exactly as in `--affinity`. */
export const AFFINITY_KINDS = ['none', 'source'] as const;
export type AffinityKind = (typeof AFFINITY_KINDS)[number];

/** One link of the affinity chain. */
export type AffinityStep =
  | { readonly kind: 'none' }
  | { readonly kind: 'source'; readonly v4Bits: number; readonly v6Bits: number };

/** One `--listen`: a host and a port range (portLow === portHigh for a single port). */
export interface ListenSpec {
  readonly host: string;
  readonly portLow: number;
  readonly portHigh: number;
}

/** One `--backend`. `port` undefined means "the port the client connected to". */
export interface BackendSpec {
  readonly name: string;
  readonly host: string;
  readonly port: number | undefined;
  readonly weight: number;
  readonly backup: boolean;
}

/** One frontend: listeners, pool, chain, balance and its limits. */
export interface FrontendConfig {
  readonly name: string;
  readonly listen: readonly ListenSpec[];
  readonly backends: readonly BackendSpec[];
  readonly affinity: readonly AffinityStep[];
  readonly balance: BalanceKind;
  readonly affinityTimeoutMs: number;
  readonly affinityMaxEntries: number;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly retries: number;
  readonly holdDownMs: number;
}

/** Everything one tether process runs. */
export interface Config {
  readonly logLevel: LogLevel;
  readonly graceMs: number;
  readonly frontends: readonly FrontendConfig[];
}
