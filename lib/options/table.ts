// The one option table. Each row is one option: its flag, its config-file key, its value
// parser, its default and where its value goes. The commander flags and --help (cli/main.ts),
// the README's option table (cli/docs.ts), the config-file keys and their reading
// (config/document.ts), the defaults and the flag names in messages (build.ts) all come from
// here: adding an option is one row here, its field in config/types.ts, and its use.
import * as D from '../config/defaults.js';
import {
  BACKEND_TLS_MODES,
  BALANCE_KINDS,
  CLIENT_TLS_MODES,
  FRONTEND_PROTOCOLS,
  HEALTH_CHECK_KINDS,
  LOGIN_DOMAIN_MODES,
  PROXY_PROTOCOL_VERSIONS,
  formatAffinityStep,
  type AffinityStep,
  type Config,
  type FrontendConfig,
  type HealthConfig,
  type MailConfig,
} from '../config/types.js';
import { noteOrigin } from '../config/origin.js';
import type { ConfigIssue } from '../errors.js';
import { LOG_LEVELS } from '../log.js';
import { backendItem, describe, listOf, poolsFrom, routesFrom, scalar } from './file-values.js';
import {
  AFFINITY_SYNTAX,
  BACKEND_SYNTAX,
  LISTEN_SYNTAX,
  parseAdminAddress,
  parseAffinityChain,
  parseBackend,
  parseChoice,
  parseCidr,
  parseCookieName,
  parseCount,
  parseDuration,
  parseExpect,
  parseListen,
  parseLogLevel,
  parseLookupUrl,
  parseName,
  parseSendString,
  parseText,
  type Parser,
} from './parse.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A frontend's settings as given; what is absent takes its row's default (build.ts). */
export type FrontendDraft = Partial<Mutable<Omit<FrontendConfig, 'mail' | 'health'>>> & {
  mail?: Partial<Mutable<MailConfig>>;
  health?: Partial<Mutable<HealthConfig>>;
};

/** The top-level settings as given. `admin` and its token file are two options, one AdminConfig. */
export type TopDraft = Partial<Mutable<Omit<Config, 'frontends' | 'admin'>>> & {
  admin?: { readonly host: string; readonly port: number };
  adminTokenFile?: string;
};

/** Where option values go: the frontend being built and the top level. */
export interface Drafts {
  readonly fe: FrontendDraft & { mail: Partial<Mutable<MailConfig>>; health: Partial<Mutable<HealthConfig>> };
  readonly top: TopDraft;
}

/** `frontend`: one per frontend (flags build one); `global`: top level; `cli`: the command line only. */
export type Scope = 'frontend' | 'global' | 'cli';

/** A problem with one option value: `path` as in a config file (`frontends[0].retries`). */
export interface ValueIssue extends ConfigIssue {
  /** For a flag: the line tether prints (`option '--retries <N>' argument '99' is invalid. …`). */
  readonly line?: string;
}

/** One option, its value type erased (rows are made by `one` and `many`). */
export interface OptionRow {
  /** The commander spec (`--queue-timeout <DURATION>`, `--require-tls`); absent for file-only keys. */
  readonly flags?: string;
  /** The long flag (`--queue-timeout`). */
  readonly flag?: string;
  /** The config-file key (top level for `global`); absent for command-line-only options. */
  readonly key?: string;
  readonly scope: Scope;
  /** The flag may be repeated; the file key takes one value or a list. */
  readonly repeatable: boolean;
  readonly description: string;
  /** The default as --help and the README show it. */
  readonly defaultText?: string;
  /** The value is a file path (systemd-unit makes it absolute). */
  readonly takesFile: boolean;
  /** Puts the default (if any) into fresh drafts. */
  readonly putDefault: (d: Drafts) => void;
  /** A flag's value(s) as commander collected them: a text, a list of texts, or true. */
  readonly fromFlag: (raw: unknown, at: string, d: Drafts, issues: ValueIssue[]) => void;
  /** A config file's value at `at` (`frontends[0].retries`). */
  readonly fromFile: (v: unknown, at: string, d: Drafts, issues: ConfigIssue[]) => void;
}

/** How one value is read: from a flag's text, and from a file's (YAML/JSON) value. */
interface Value<V> {
  readonly parse?: Parser<V>;
  readonly file: (v: unknown, at: string, issues: ConfigIssue[]) => V | undefined;
  /** The flag spelling of a value, for --help's defaults. */
  readonly show?: (v: V) => string;
}

const scalarValue = <V>(parse: Parser<V>, show?: (v: V) => string): Value<V> => ({
  parse,
  file: (v, at, issues) => scalar(v, at, parse, issues),
  ...(show ? { show } : {}),
});

const UNITS: readonly (readonly [string, number])[] = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1_000]];

/** A duration as a flag would say it: the largest unit that divides it (`30m`, `5s`, `250ms`). */
export function formatDuration(ms: number): string {
  for (const [unit, size] of UNITS) if (ms > 0 && ms % size === 0) return `${String(ms / size)}${unit}`;
  return `${String(ms)}ms`;
}

const duration = scalarValue(parseDuration, formatDuration);
const count = (min: number, max: number): Value<number> => scalarValue(parseCount(min, max), String);
const choice = <T extends string>(choices: readonly T[]): Value<T> => scalarValue(parseChoice(choices), (v) => v);
const text = (parse: Parser<string>): Value<string> => scalarValue(parse, (v) => v);

/** A file or module path: any flag text; in a file, a non-empty string. */
const filePath: Value<string> = {
  parse: parseText,
  file: (v, at, issues) => {
    if (typeof v === 'string' && v !== '') return v;
    issues.push({ path: at, message: `expected a file path, got ${describe(v)}` });
    return undefined;
  },
};

/** A switch: the flag alone; in a file, true or false. */
const onOff: Value<boolean> = {
  file: (v, at, issues) => {
    if (typeof v === 'boolean') return v;
    issues.push({ path: at, message: `expected true or false, got ${describe(v)}` });
    return undefined;
  },
};

interface Spec<V> {
  /** Commander spec; absent for a file-only key. */
  readonly flags?: string;
  /** The file key, when not the flag's name (`--backend` → `backends`); null: not in files. */
  readonly key?: string | null;
  readonly scope?: Scope;
  readonly value: Value<V>;
  readonly description: string;
  readonly default?: NoInfer<V>;
  /** When the default is not a value (`no limit`) or is set elsewhere. */
  readonly defaultText?: string;
}

function flagIssue(flags: string, raw: string, message: string, path: string): ValueIssue {
  return { path, message, line: `option '${flags}' argument '${raw}' is invalid. ${message}` };
}

function common<V>(s: Spec<V>, repeatable: boolean): Omit<OptionRow, 'putDefault' | 'fromFlag' | 'fromFile'> {
  const flag = s.flags?.split(' ')[0];
  const key = s.key === null ? undefined : (s.key ?? flag?.slice(2));
  const shown = s.defaultText ?? (s.default === undefined ? undefined : s.value.show?.(s.default));
  return {
    ...(s.flags === undefined ? {} : { flags: s.flags }),
    ...(flag === undefined ? {} : { flag }),
    ...(key === undefined ? {} : { key }),
    scope: s.scope ?? 'frontend',
    repeatable,
    takesFile: (s.value as unknown) === filePath,
    description: repeatable && s.flags !== undefined ? `${s.description}; repeatable` : s.description,
    ...(shown === undefined ? {} : { defaultText: shown }),
  };
}

/** An option with one value. */
function one<V>(s: Spec<V> & { readonly put: (d: Drafts, v: V) => void }): OptionRow {
  const { parse } = s.value;
  return {
    ...common(s, false),
    putDefault: (d) => {
      if (s.default !== undefined) s.put(d, s.default);
    },
    fromFlag: (raw, at, d, issues) => {
      if (typeof raw === 'boolean') {
        if (parse === undefined) s.put(d, raw as V);
        return;
      }
      if (parse === undefined || typeof raw !== 'string' || s.flags === undefined) return;
      const p = parse(raw);
      if (p.ok) s.put(d, p.value);
      else issues.push(flagIssue(s.flags, raw, p.message, at));
    },
    fromFile: (v, at, d, issues) => {
      const got = s.value.file(v, at, issues);
      if (got !== undefined) s.put(d, got);
    },
  };
}

/** Notes where a list item came from (config/origin.ts), so later rules name it by that path. */
function noted<V>(item: V, path: string): V {
  if (typeof item === 'object' && item !== null) noteOrigin(item, path);
  return item;
}

/** An option taking a list: a repeated flag, or a file key with one value or a list. */
function many<V>(s: Spec<V> & { readonly put: (d: Drafts, v: V[]) => void }): OptionRow {
  const { parse } = s.value;
  return {
    ...common(s, true),
    putDefault: (d) => {
      s.put(d, []);
    },
    fromFlag: (raw, at, d, issues) => {
      if (parse === undefined || !Array.isArray(raw) || s.flags === undefined) return;
      const flags = s.flags;
      const got: V[] = [];
      raw.forEach((item: unknown, i) => {
        const t = String(item);
        const p = parse(t);
        const path = `${at}[${String(i)}]`;
        if (p.ok) got.push(noted(p.value, path));
        else issues.push(flagIssue(flags, t, p.message, path));
      });
      s.put(d, got);
    },
    fromFile: (v, at, d, issues) => {
      const got: V[] = [];
      listOf(v).forEach((item, i) => {
        const path = Array.isArray(v) ? `${at}[${String(i)}]` : at;
        const x = s.value.file(item, path, issues);
        if (x !== undefined) got.push(noted(x, path));
      });
      s.put(d, got);
    },
  };
}

/** `--affinity`: one chain; a file may also give it as a list of kinds. */
const affinityChain: Value<AffinityStep[]> = {
  parse: parseAffinityChain,
  file: (v, at, issues) => scalar(Array.isArray(v) ? v.map(String).join(',') : v, at, parseAffinityChain, issues),
  show: (steps) => steps.map(formatAffinityStep).join(','),
};

const backend = { parse: parseBackend, file: backendItem };

/** File-only values: no flag parses them. */
const pools = { file: (v: unknown, at: string, issues: ConfigIssue[]) => poolsFrom(v, at, issues) };
const routes = { file: (v: unknown, at: string, issues: ConfigIssue[]) => routesFrom(v, at, issues) };

/** Every option, in --help order (file-only keys where the file table lists them). */
export const OPTIONS: readonly OptionRow[] = [
  many({ flags: '--listen <HOST:PORT>', value: scalarValue(parseListen),
    description: `address to accept clients on: ${LISTEN_SYNTAX}`,
    put: (d, v) => { d.fe.listen = v; } }),
  many({ flags: '--backend <SPEC>', key: 'backends', value: backend,
    description: `a backend: ${BACKEND_SYNTAX}; without :PORT, the port the client connected to; max-conns=N: at most N connections at once (more go to another backend or wait, see --queue-size); drain: no new clients, pinned ones still come (until DURATION); maint: no clients`,
    put: (d, v) => { d.fe.backends = v; } }),
  one({ flags: '--affinity <CHAIN>', value: affinityChain, default: [{ kind: 'none' }],
    description: `affinity key chain, first present key wins: ${AFFINITY_SYNTAX}`,
    put: (d, v) => { d.fe.affinity = v; } }),
  one({ flags: '--balance <POLICY>', value: choice(BALANCE_KINDS), default: 'hash',
    description: 'placement of new keys and un-keyed connections: hash (weighted rendezvous), roundrobin, leastconn, random2 (better of two random)',
    put: (d, v) => { d.fe.balance = v; } }),
  one({ flags: '--affinity-timeout <DURATION>', value: duration, default: D.AFFINITY_TIMEOUT_MS,
    description: 'idle time after which an affinity entry is forgotten',
    put: (d, v) => { d.fe.affinityTimeoutMs = v; } }),
  one({ flags: '--affinity-max-entries <N>', value: count(1, D.MAX_AFFINITY_ENTRIES), default: D.AFFINITY_MAX_ENTRIES,
    description: 'size of the affinity table; least recently used entries go first',
    put: (d, v) => { d.fe.affinityMaxEntries = v; } }),
  one({ flags: '--connect-timeout <DURATION>', value: duration, default: D.CONNECT_TIMEOUT_MS,
    description: 'time allowed to connect to a backend before trying another',
    put: (d, v) => { d.fe.connectTimeoutMs = v; } }),
  one({ flags: '--idle-timeout <DURATION>', value: duration, default: D.IDLE_TIMEOUT_MS,
    description: 'close a connection after this long with no byte either way',
    put: (d, v) => { d.fe.idleTimeoutMs = v; } }),
  one({ flags: '--backend-stall-timeout <DURATION>', value: duration, default: D.BACKEND_STALL_TIMEOUT_MS,
    description: 'close a connection whose bytes toward the backend have waited this long without any of them being taken',
    put: (d, v) => { d.fe.backendStallTimeoutMs = v; } }),
  one({ flags: '--client-stall-timeout <DURATION>', value: duration, default: D.CLIENT_STALL_TIMEOUT_MS,
    description: 'close a connection whose bytes toward the client have waited this long without any of them being taken',
    put: (d, v) => { d.fe.clientStallTimeoutMs = v; } }),
  one({ flags: '--fin-timeout <DURATION>', value: duration, default: D.FIN_TIMEOUT_MS,
    description: 'once one side has sent its FIN, close the connection after this long with no byte either way (if shorter than --idle-timeout)',
    put: (d, v) => { d.fe.finTimeoutMs = v; } }),
  one({ flags: '--retries <N>', value: count(0, D.MAX_RETRIES), default: D.RETRIES,
    description: `other backends tried after a failed connect (0-${String(D.MAX_RETRIES)})`,
    put: (d, v) => { d.fe.retries = v; } }),
  one({ flags: '--hold-down <DURATION>', value: duration, default: D.HOLD_DOWN_MS,
    description: 'how long a backend that failed to connect is skipped',
    put: (d, v) => { d.fe.holdDownMs = v; } }),
  one({ flags: '--peek-timeout <DURATION>', value: duration, default: D.PEEK_TIMEOUT_MS,
    description: 'how long to wait for the client\'s first bytes (TLS ClientHello, HTTP head, XMPP header) when the chain reads them; a prelude still unfinished then is cut, silence or an unknown protocol falls back',
    put: (d, v) => { d.fe.peekTimeoutMs = v; } }),
  one({ flags: '--insert-cookie <NAME>', value: text(parseCookieName),
    description: 'plain HTTP/1.x: add Set-Cookie NAME=<backend> to the first response of a client without it, and send requests carrying it to that backend',
    put: (d, v) => { d.fe.insertCookie = v; } }),
  one({ flags: '--key-module <FILE>', value: filePath,
    description: 'a JS module whose exported key(facts) returns the key-module key (string or undefined)',
    put: (d, v) => { d.fe.keyModule = v; } }),
  one({ key: 'pools', value: pools, default: [],
    description: 'named pools of backends (`NAME: { backends, balance }`) that routes send clients to',
    put: (d, v) => { d.fe.pools = v; } }),
  one({ key: 'routes', value: routes, default: [],
    description: 'rules (`{ pool, protocol, sni, alpn, http-host }`) choosing a pool from what the client sent; first match wins, else the frontend\'s own backends',
    put: (d, v) => { d.fe.routes = v; } }),
  one({ flags: '--protocol <PROTOCOL>', value: choice(FRONTEND_PROTOCOLS), default: 'auto',
    description: 'auto (peek at client-first protocols), imap or pop3 (tether greets the client and reads the login)',
    put: (d, v) => { d.fe.protocol = v; } }),
  one({ flags: '--tls <MODE>', value: choice(CLIENT_TLS_MODES), default: 'none',
    description: 'imap/pop3: TLS toward the client: none, starttls (STARTTLS/STLS offered) or implicit (993/995)',
    put: (d, v) => { d.fe.mail.tls = v; } }),
  one({ flags: '--tls-cert <FILE>', value: filePath,
    description: 'imap/pop3: PEM certificate chain for --tls',
    put: (d, v) => { d.fe.mail.tlsCert = v; } }),
  one({ flags: '--tls-key <FILE>', value: filePath,
    description: 'imap/pop3: PEM private key for --tls',
    put: (d, v) => { d.fe.mail.tlsKey = v; } }),
  one({ flags: '--require-tls', value: onOff, default: false,
    description: 'imap/pop3: refuse logins in clear (LOGINDISABLED, PRIVACYREQUIRED)',
    put: (d, v) => { d.fe.mail.requireTls = v; } }),
  one({ flags: '--backend-tls <MODE>', value: choice(BACKEND_TLS_MODES), default: 'none',
    description: 'imap/pop3: TLS toward the backend: none, starttls or tls',
    put: (d, v) => { d.fe.mail.backendTls = v; } }),
  one({ flags: '--backend-ca <FILE>', value: filePath,
    description: 'imap/pop3: PEM CA bundle to verify backends (default: the system CAs)',
    put: (d, v) => { d.fe.mail.backendCa = v; } }),
  one({ flags: '--backend-insecure', value: onOff, default: false,
    description: 'imap/pop3: do not verify backend certificates',
    put: (d, v) => { d.fe.mail.backendVerify = !v; } }),
  one({ flags: '--user-map <FILE>', value: filePath,
    description: 'imap/pop3: "user backend" lines placing users on backends; re-read when it changes',
    put: (d, v) => { d.fe.mail.userMap = v; } }),
  one({ flags: '--user-lookup <URL>', value: text(parseLookupUrl),
    description: 'imap/pop3: HTTP service answering GET URL?user=NAME with a backend name (404: unknown user)',
    put: (d, v) => { d.fe.mail.userLookup = v; } }),
  one({ flags: '--user-cache-ttl <DURATION>', value: duration, default: D.USER_CACHE_TTL_MS,
    description: 'imap/pop3: how long a directory answer (found or not) is reused',
    put: (d, v) => { d.fe.mail.userCacheTtlMs = v; } }),
  one({ flags: '--login-timeout <DURATION>', value: duration, default: D.LOGIN_TIMEOUT_MS,
    description: 'imap/pop3: time from connect to a complete login',
    put: (d, v) => { d.fe.mail.loginTimeoutMs = v; } }),
  one({ flags: '--login-domain <MODE>', value: choice(LOGIN_DOMAIN_MODES), default: 'keep',
    description: 'imap/pop3: login key from user@domain: keep the domain, or strip it',
    put: (d, v) => { d.fe.mail.loginDomain = v; } }),
  many({ flags: '--allow <CIDR>', value: scalarValue(parseCidr),
    description: 'serve only clients in these networks (checked at accept, before any byte is read; for a trusted balancer, on the address its PROXY header carries)',
    put: (d, v) => { d.fe.allow = v; } }),
  many({ flags: '--deny <CIDR>', value: scalarValue(parseCidr),
    description: 'refuse clients in these networks (wins over --allow)',
    put: (d, v) => { d.fe.deny = v; } }),
  one({ flags: '--proxy-protocol <VERSION>', value: choice(PROXY_PROTOCOL_VERSIONS),
    description: 'send a PROXY protocol header (v1 text or v2 binary) with the client\'s address to each backend before any client byte',
    put: (d, v) => { d.fe.proxyProtocol = v; } }),
  one({ flags: '--accept-proxy-protocol', value: onOff, default: false,
    description: 'read a PROXY protocol header (v1 or v2) from clients in --trusted-proxy networks and use the address it carries',
    put: (d, v) => { d.fe.acceptProxyProtocol = v; } }),
  many({ flags: '--trusted-proxy <CIDR>', key: 'trusted-proxies', value: scalarValue(parseCidr),
    description: 'a balancer network whose PROXY headers are believed (others sending one are refused)',
    put: (d, v) => { d.fe.trustedProxies = v; } }),
  one({ flags: '--frontend-max-conns <N>', value: count(1, D.MAX_CONNS_LIMIT), defaultText: 'no limit',
    description: 'open clients this frontend serves at once; more are closed at accept, before a byte is read',
    put: (d, v) => { d.fe.maxConns = v; } }),
  one({ flags: '--queue-size <N>', value: count(0, D.MAX_QUEUE_SIZE), default: D.QUEUE_SIZE,
    description: 'clients of one pool that may wait while the backends they may use are at their max-conns; more are refused (0: none wait)',
    put: (d, v) => { d.fe.queueSize = v; } }),
  one({ flags: '--queue-timeout <DURATION>', value: duration, default: D.QUEUE_TIMEOUT_MS,
    description: 'how long a client waits in that queue before it is refused',
    put: (d, v) => { d.fe.queueTimeoutMs = v; } }),
  one({ flags: '--health-check <KIND>', value: choice(HEALTH_CHECK_KINDS), default: 'none',
    description: 'active checks of every backend: none, tcp (connect), banner (connect and read until --health-expect matches) or send (write --health-send, then read until --health-expect matches)',
    put: (d, v) => { d.fe.health.check = v; } }),
  one({ flags: '--health-expect <REGEX>', value: text(parseExpect),
    description: 'regular expression the check\'s response must match (^ anchors at each line); imap/pop3 banner checks default to ^\\* OK / ^\\+OK',
    put: (d, v) => { d.fe.health.expect = v; } }),
  one({ flags: '--health-send <STRING>', value: text(parseSendString),
    description: 'what a send check writes; \\r, \\n, \\t, \\\\ and \\xHH escapes',
    put: (d, v) => { d.fe.health.send = v; } }),
  one({ flags: '--health-interval <DURATION>', value: duration, default: D.HEALTH_INTERVAL_MS,
    description: `time between two checks of one backend (at least ${String(D.MIN_HEALTH_INTERVAL_MS)}ms)`,
    put: (d, v) => { d.fe.health.intervalMs = v; } }),
  one({ flags: '--health-timeout <DURATION>', value: duration, default: D.HEALTH_TIMEOUT_MS,
    description: 'time one check may take, connect included',
    put: (d, v) => { d.fe.health.timeoutMs = v; } }),
  one({ flags: '--health-rise <N>', value: count(1, D.MAX_HEALTH_COUNT), default: D.HEALTH_RISE,
    description: `passed checks in a row that bring a down backend up (1-${String(D.MAX_HEALTH_COUNT)}); one down only because a client's dial failed is back at its first passing check`,
    put: (d, v) => { d.fe.health.rise = v; } }),
  one({ flags: '--health-fall <N>', value: count(1, D.MAX_HEALTH_COUNT), default: D.HEALTH_FALL,
    description: `failed checks in a row that take a backend down (1-${String(D.MAX_HEALTH_COUNT)}); a backend is out after its first failed check at start`,
    put: (d, v) => { d.fe.health.fall = v; } }),
  one({ flags: '--name <NAME>', value: text(parseName), default: D.DEFAULT_FRONTEND_NAME,
    description: 'frontend name used in logs',
    put: (d, v) => { d.fe.name = v; } }),
  one({ flags: '--max-conns <N>', scope: 'global', value: count(1, D.MAX_CONNS_LIMIT), defaultText: 'no limit',
    description: 'open clients of all frontends at once; more are closed at accept, before a byte is read',
    put: (d, v) => { d.top.maxConns = v; } }),
  one({ flags: '--grace <DURATION>', scope: 'global', value: duration, default: D.GRACE_MS,
    description: 'on SIGTERM/SIGINT, how long open connections may finish before they are closed',
    put: (d, v) => { d.top.graceMs = v; } }),
  one({ flags: '--state-file <FILE>', scope: 'global', value: filePath,
    description: 'save the affinity tables to FILE (mode 0600) on stop and every --state-interval, and restore them at start; entries past --affinity-timeout or on backends no longer configured are dropped',
    put: (d, v) => { d.top.stateFile = v; } }),
  // No default put: a state-interval without a state file is a mistake validate.ts names.
  one({ flags: '--state-interval <DURATION>', scope: 'global', value: duration, defaultText: formatDuration(D.STATE_INTERVAL_MS),
    description: 'how often --state-file is also saved while running; 0 saves only on stop',
    put: (d, v) => { d.top.stateIntervalMs = v; } }),
  one({ flags: '--log-level <LEVEL>', scope: 'global', value: scalarValue(parseLogLevel, (v) => v), default: 'info',
    description: `one of ${LOG_LEVELS.join(', ')}`,
    put: (d, v) => { d.top.logLevel = v; } }),
  one({ flags: '--admin <[HOST:]PORT>', scope: 'global', value: scalarValue(parseAdminAddress),
    description: 'serve the admin HTTP API and Prometheus /metrics here; a bare port is on 127.0.0.1 (a non-loopback address needs --admin-token-file)',
    put: (d, v) => { d.top.admin = v; } }),
  one({ flags: '--admin-token-file <FILE>', scope: 'global', value: filePath,
    description: 'file holding the bearer token the admin API requires (re-read on reload)',
    put: (d, v) => { d.top.adminTokenFile = v; } }),
  one({ flags: '--config <FILE>', key: null, scope: 'cli', value: filePath,
    description: 'YAML or JSON file with one or more frontends (replaces the frontend flags)',
    put: () => undefined }),
];
