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
  'login',
] as const;
export type AffinityKind = (typeof AFFINITY_KINDS)[number];

/** One link of the affinity chain. */
export type AffinityStep =
  | { readonly kind: 'none' }
  | { readonly kind: 'source'; readonly v4Bits: number; readonly v6Bits: number }
  | { readonly kind: 'sni' | 'tls-session' | 'tls-ticket' | 'http-host' | 'xmpp-to' | 'key-module' | 'login' }
  | { readonly kind: 'http-header' | 'http-cookie' | 'url-param'; readonly name: string };

/** `--protocol`: `auto` peeks at client-first protocols; imap/pop3 greet the client first. */
export const FRONTEND_PROTOCOLS = ['auto', 'imap', 'pop3'] as const;
export type FrontendProtocol = (typeof FRONTEND_PROTOCOLS)[number];
export const CLIENT_TLS_MODES = ['none', 'starttls', 'implicit'] as const;
export type ClientTlsMode = (typeof CLIENT_TLS_MODES)[number];
export const BACKEND_TLS_MODES = ['none', 'starttls', 'tls'] as const;
export type BackendTlsMode = (typeof BACKEND_TLS_MODES)[number];
export const LOGIN_DOMAIN_MODES = ['keep', 'strip'] as const;
export type LoginDomainMode = (typeof LOGIN_DOMAIN_MODES)[number];
/** `--proxy-protocol`: the PROXY protocol header version sent to backends. */
export const PROXY_PROTOCOL_VERSIONS = ['v1', 'v2'] as const;
export type ProxyProtocolVersion = (typeof PROXY_PROTOCOL_VERSIONS)[number];

/** Mail settings of an imap/pop3 frontend. */
export interface MailConfig {
  readonly tls: ClientTlsMode;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly requireTls: boolean;
  readonly backendTls: BackendTlsMode;
  readonly backendCa?: string;
  /** Verify the backend's certificate (off with --backend-insecure). */
  readonly backendVerify: boolean;
  readonly userMap?: string;
  readonly userLookup?: string;
  readonly userCacheTtlMs: number;
  readonly loginTimeoutMs: number;
  readonly loginDomain: LoginDomainMode;
}

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

/**
 * A backend's operator state: `ready` takes clients; `drain` takes no new keys and no un-keyed
 * clients, but clients the affinity table (or a route) pins to it still go there; `maint` takes
 * no clients at all. Connections already spliced are never cut by either.
 */
export const BACKEND_ADMIN_STATES = ['ready', 'drain', 'maint'] as const;
export type BackendAdmin = (typeof BACKEND_ADMIN_STATES)[number];

/** One `--backend`. `port` undefined means "the port the client connected to". */
export interface BackendSpec {
  readonly name: string;
  readonly host: string;
  readonly port: number | undefined;
  readonly weight: number;
  readonly backup: boolean;
  /** `,max-conns=N`: connections (dialing or spliced) this backend takes at once; absent: no limit. */
  readonly maxConns?: number;
  /** Starting operator state (`,drain`, `,maint`); absent means `ready`. */
  readonly admin?: BackendAdmin;
  /** `,drain=DURATION`: pinned clients stop going there this long after the drain began. */
  readonly drainMs?: number;
}

/** `--health-check`: none; tcp (connect); banner (connect, read until --health-expect matches);
 *  send (connect, write --health-send, read until --health-expect matches). */
export const HEALTH_CHECK_KINDS = ['none', 'tcp', 'banner', 'send'] as const;
export type HealthCheckKind = (typeof HEALTH_CHECK_KINDS)[number];

/** Active health checks of every backend of a frontend's pools. */
export interface HealthConfig {
  readonly check: HealthCheckKind;
  /** Regular expression source (compiled with the `m` flag) the response must match. */
  readonly expect?: string;
  /** Bytes to send (escapes resolved; each char one byte, Latin-1). */
  readonly send?: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Consecutive passed checks that bring a down backend up. */
  readonly rise: number;
  /** Consecutive failed checks that take an up backend down. */
  readonly fall: number;
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
  /** Bytes waiting toward the backend with none of them taken for this long close the connection. */
  readonly backendStallTimeoutMs: number;
  /** The same toward the client. */
  readonly clientStallTimeoutMs: number;
  /** Once one side has sent its FIN, the inactivity timeout is min(idle, this). */
  readonly finTimeoutMs: number;
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
  readonly protocol: FrontendProtocol;
  readonly mail: MailConfig;
  /** `--allow` / `--deny` CIDRs, checked at accept before any byte is read. */
  readonly allow: readonly string[];
  readonly deny: readonly string[];
  /** `--proxy-protocol`: a PROXY header with the client's address goes to each backend first. */
  readonly proxyProtocol?: ProxyProtocolVersion;
  /** `--accept-proxy-protocol`: clients from `trustedProxies` start with a PROXY header. */
  readonly acceptProxyProtocol: boolean;
  /** `--trusted-proxy` CIDRs: the balancers whose PROXY headers are believed. */
  readonly trustedProxies: readonly string[];
  /** `--frontend-max-conns`: open clients of this frontend at once; absent: no limit. */
  readonly maxConns?: number;
  /** `--queue-size`: clients of one pool that may wait for a backend below its max-conns. */
  readonly queueSize: number;
  /** `--queue-timeout`: how long such a client waits before it is refused. */
  readonly queueTimeoutMs: number;
  /** `--health-*`: active checks of every backend of every pool. */
  readonly health: HealthConfig;
}

/** `--admin`: where the admin API listens, and the token file guarding it. */
export interface AdminConfig {
  readonly host: string;
  readonly port: number;
  readonly tokenFile?: string;
}

/** Everything one tether process runs. */
export interface Config {
  readonly logLevel: LogLevel;
  readonly graceMs: number;
  readonly admin?: AdminConfig;
  /** `--state-file`: where the affinity tables are saved on stop and read at start. */
  readonly stateFile?: string;
  /** `--state-interval`: how often the tables are also saved while running (0: only on stop). */
  readonly stateIntervalMs?: number;
  /** `--max-conns`: open clients of all frontends at once; absent: no limit. */
  readonly maxConns?: number;
  readonly frontends: readonly FrontendConfig[];
}

/** The `--affinity` spelling of a step (`source/24/64`, `http-cookie:JSESSIONID`). */
export function formatAffinityStep(step: AffinityStep): string {
  switch (step.kind) {
    case 'source':
      return step.v4Bits === 32 && step.v6Bits === 128 ? 'source' : `source/${String(step.v4Bits)}/${String(step.v6Bits)}`;
    case 'http-header':
    case 'http-cookie':
    case 'url-param':
      return `${step.kind}:${step.name}`;
    case 'none':
    case 'sni':
    case 'tls-session':
    case 'tls-ticket':
    case 'http-host':
    case 'xmpp-to':
    case 'key-module':
    case 'login':
      return step.kind;
  }
}

