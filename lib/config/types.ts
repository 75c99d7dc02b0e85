// The typed configuration: the one definition of Config. Pure. Built by cli/ from flags or a
// config file, checked by validate.ts, then deep-frozen.
import type { LogLevel } from '../log.js';

export const BALANCE_KINDS = ['hash', 'roundrobin', 'leastconn', 'random2'] as const;
export type BalanceKind = (typeof BALANCE_KINDS)[number];

/** Key kinds spelled as in `--affinity` (`http-header`, `http-cookie`, `url-param` take `:NAME`). */
export const AFFINITY_KINDS = [
  'none',
  'source',
  'sni',
  'tls-session',
  'tls-ticket',
  'http-host',
  'http-header',
  'http-cookie',
  'url-param',
  'xmpp-to',
  'key-module',
] as const;
export type AffinityKind = (typeof AFFINITY_KINDS)[number];

/** One link of the affinity chain. */
export type AffinityStep =
  | { readonly kind: 'none' }
  | { readonly kind: 'source'; readonly v4Bits: number; readonly v6Bits: number }
  | { readonly kind: 'sni' | 'tls-session' | 'tls-ticket' | 'http-host' | 'xmpp-to' | 'key-module' }
  | { readonly kind: 'http-header' | 'http-cookie' | 'url-param'; readonly name: string };

/** Protocols the peek stage tells apart (sslh-style port sharing). */
export const PEEK_PROTOCOLS = ['tls', 'http', 'xmpp', 'ssh', 'unknown'] as const;
export type PeekProtocol = (typeof PEEK_PROTOCOLS)[number];

/** A routing rule: every given condition must hold; the first matching rule picks the pool. */
export interface RouteRule {
  readonly pool: string;
  readonly protocol?: PeekProtocol;
  /** Exact host or `*.example.com` (any depth of subdomain, not the apex). */
  readonly sni?: string;
  readonly alpn?: string;
  /** Exact host or `*.example.com`, matched against the Host header without port. */
  readonly httpHost?: string;
}

/** A named pool of a frontend, with its own balance and affinity table. */
export interface PoolConfig {
  readonly name: string;
  readonly backends: readonly BackendSpec[];
  readonly balance: BalanceKind;
}

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
  /** How long peek waits for the sniffers' verdict before the chain falls back. */
  readonly peekTimeoutMs: number;
  /** `--insert-cookie NAME`: tether's own stateless backend cookie (plain HTTP/1.x). */
  readonly insertCookie?: string;
  /** `--key-module FILE`: a user module computing the `key-module` key. */
  readonly keyModule?: string;
  /** Extra pools, chosen by `routes`; `backends`/`balance` above form the pool named `default`. */
  readonly pools: readonly PoolConfig[];
  readonly routes: readonly RouteRule[];
}

/** Everything one tether process runs. */
export interface Config {
  readonly logLevel: LogLevel;
  readonly graceMs: number;
  readonly frontends: readonly FrontendConfig[];
}
