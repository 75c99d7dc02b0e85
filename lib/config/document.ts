// Turns a parsed config document (YAML/JSON → plain values) into a Config, naming the field path
// of every problem. Pure. Keys are spelled as the flags are (`affinity-timeout`, `log-level`),
// and values use the flags' micro-syntaxes, so one vocabulary serves both.
import type { ConfigIssue } from '../errors.js';
import type { LogLevel } from '../log.js';
import {
  parseAffinityChain,
  parseBackend,
  parseBalance,
  parseCount,
  parseDuration,
  parseListen,
  parseLogLevel,
  parseName,
  parseCookieName,
  parseHostPattern,
  parseChoice,
  parseCidr,
  parseLookupUrl,
  parseAdminAddress,
  parseExpect,
  parseSendString,
} from '../cli/flags.js';
import * as D from './defaults.js';
import { BACKEND_ADMIN_STATES, BACKEND_TLS_MODES, CLIENT_TLS_MODES, FRONTEND_PROTOCOLS, HEALTH_CHECK_KINDS, LOGIN_DOMAIN_MODES, PEEK_PROTOCOLS, PROXY_PROTOCOL_VERSIONS } from './types.js';
import type {
  AdminConfig,
  AffinityStep,
  BackendSpec,
  BalanceKind,
  Config,
  FrontendConfig,
  FrontendProtocol,
  HealthConfig,
  ListenSpec,
  MailConfig,
  PeekProtocol,
  PoolConfig,
  ProxyProtocolVersion,
  RouteRule,
} from './types.js';

/** Per-frontend settings as given; anything absent takes its default in `frontendWithDefaults`. */
export interface FrontendDraft {
  name?: string;
  listen?: ListenSpec[];
  backends?: BackendSpec[];
  affinity?: AffinityStep[];
  balance?: BalanceKind;
  affinityTimeoutMs?: number;
  affinityMaxEntries?: number;
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  backendStallTimeoutMs?: number;
  clientStallTimeoutMs?: number;
  finTimeoutMs?: number;
  retries?: number;
  holdDownMs?: number;
  peekTimeoutMs?: number;
  insertCookie?: string;
  keyModule?: string;
  pools?: PoolConfig[];
  routes?: RouteRule[];
  protocol?: FrontendProtocol;
  mail?: Partial<MailConfig>;
  allow?: string[];
  deny?: string[];
  proxyProtocol?: ProxyProtocolVersion;
  acceptProxyProtocol?: boolean;
  trustedProxies?: string[];
  maxConns?: number;
  queueSize?: number;
  queueTimeoutMs?: number;
  health?: Partial<HealthConfig>;
}

/** Fills the mail defaults. */
export function mailWithDefaults(m: Partial<MailConfig> = {}): MailConfig {
  return {
    tls: m.tls ?? 'none',
    ...(m.tlsCert === undefined ? {} : { tlsCert: m.tlsCert }),
    ...(m.tlsKey === undefined ? {} : { tlsKey: m.tlsKey }),
    requireTls: m.requireTls ?? false,
    backendTls: m.backendTls ?? 'none',
    ...(m.backendCa === undefined ? {} : { backendCa: m.backendCa }),
    backendVerify: m.backendVerify ?? true,
    ...(m.userMap === undefined ? {} : { userMap: m.userMap }),
    ...(m.userLookup === undefined ? {} : { userLookup: m.userLookup }),
    userCacheTtlMs: m.userCacheTtlMs ?? D.USER_CACHE_TTL_MS,
    loginTimeoutMs: m.loginTimeoutMs ?? D.LOGIN_TIMEOUT_MS,
    loginDomain: m.loginDomain ?? 'keep',
  };
}

/** Fills the health-check defaults; a banner check of an imap/pop3 frontend expects its greeting. */
export function healthWithDefaults(h: Partial<HealthConfig> = {}, protocol: FrontendProtocol = 'auto'): HealthConfig {
  const check = h.check ?? 'none';
  const expect = h.expect ?? (check === 'banner' && protocol !== 'auto' ? D.MAIL_BANNER_EXPECT[protocol] : undefined);
  return {
    check,
    ...(expect === undefined ? {} : { expect }),
    ...(h.send === undefined ? {} : { send: h.send }),
    intervalMs: h.intervalMs ?? D.HEALTH_INTERVAL_MS,
    timeoutMs: h.timeoutMs ?? D.HEALTH_TIMEOUT_MS,
    rise: h.rise ?? D.HEALTH_RISE,
    fall: h.fall ?? D.HEALTH_FALL,
  };
}

/** Fills in every default (config/defaults.ts) for a frontend draft. */
export function frontendWithDefaults(d: FrontendDraft): FrontendConfig {
  return {
    name: d.name ?? D.DEFAULT_FRONTEND_NAME,
    listen: d.listen ?? [],
    backends: d.backends ?? [],
    affinity: d.affinity ?? [{ kind: 'none' }],
    balance: d.balance ?? 'hash',
    affinityTimeoutMs: d.affinityTimeoutMs ?? D.AFFINITY_TIMEOUT_MS,
    affinityMaxEntries: d.affinityMaxEntries ?? D.AFFINITY_MAX_ENTRIES,
    connectTimeoutMs: d.connectTimeoutMs ?? D.CONNECT_TIMEOUT_MS,
    idleTimeoutMs: d.idleTimeoutMs ?? D.IDLE_TIMEOUT_MS,
    backendStallTimeoutMs: d.backendStallTimeoutMs ?? D.BACKEND_STALL_TIMEOUT_MS,
    clientStallTimeoutMs: d.clientStallTimeoutMs ?? D.CLIENT_STALL_TIMEOUT_MS,
    finTimeoutMs: d.finTimeoutMs ?? D.FIN_TIMEOUT_MS,
    retries: d.retries ?? D.RETRIES,
    holdDownMs: d.holdDownMs ?? D.HOLD_DOWN_MS,
    peekTimeoutMs: d.peekTimeoutMs ?? D.PEEK_TIMEOUT_MS,
    ...(d.insertCookie === undefined ? {} : { insertCookie: d.insertCookie }),
    ...(d.keyModule === undefined ? {} : { keyModule: d.keyModule }),
    pools: d.pools ?? [],
    routes: d.routes ?? [],
    protocol: d.protocol ?? 'auto',
    mail: mailWithDefaults(d.mail),
    allow: d.allow ?? [],
    deny: d.deny ?? [],
    ...(d.proxyProtocol === undefined ? {} : { proxyProtocol: d.proxyProtocol }),
    acceptProxyProtocol: d.acceptProxyProtocol ?? false,
    trustedProxies: d.trustedProxies ?? [],
    ...(d.maxConns === undefined ? {} : { maxConns: d.maxConns }),
    queueSize: d.queueSize ?? D.QUEUE_SIZE,
    queueTimeoutMs: d.queueTimeoutMs ?? D.QUEUE_TIMEOUT_MS,
    health: healthWithDefaults(d.health, d.protocol),
  };
}

const FRONTEND_KEYS = [
  'name', 'listen', 'backends', 'affinity', 'balance', 'affinity-timeout', 'affinity-max-entries',
  'connect-timeout', 'idle-timeout', 'backend-stall-timeout', 'client-stall-timeout', 'fin-timeout', 'retries', 'hold-down', 'peek-timeout', 'insert-cookie', 'key-module',
  'pools', 'routes', 'protocol', 'tls', 'tls-cert', 'tls-key', 'require-tls', 'backend-tls', 'backend-ca',
  'backend-insecure', 'user-map', 'user-lookup', 'user-cache-ttl', 'login-timeout', 'login-domain', 'allow', 'deny',
  'proxy-protocol', 'accept-proxy-protocol', 'trusted-proxies', 'frontend-max-conns', 'queue-size', 'queue-timeout',
  'health-check', 'health-expect', 'health-send', 'health-interval', 'health-timeout', 'health-rise', 'health-fall',
] as const;
const POOL_KEYS = ['backends', 'balance'] as const;
const ROUTE_KEYS = ['pool', 'protocol', 'sni', 'alpn', 'http-host'] as const;
const TOP_KEYS = ['frontends', 'log-level', 'grace', 'max-conns', 'admin', 'admin-token-file', 'state-file', 'state-interval'] as const;
const BACKEND_KEYS = ['name', 'host', 'port', 'weight', 'max-conns', 'backup', 'state'] as const;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** Runs a flag parser on a scalar, turning its error into an issue at `path`. */
function scalar<T>(v: unknown, path: string, parse: (s: string) => T, issues: ConfigIssue[]): T | undefined {
  if (typeof v !== 'string' && typeof v !== 'number') {
    issues.push({ path, message: `expected a string or number, got ${describe(v)}` });
    return undefined;
  }
  try {
    return parse(String(v));
  } catch (e) {
    issues.push({ path, message: e instanceof Error ? e.message : String(e) });
    return undefined;
  }
}

function unknownKeys(obj: Record<string, unknown>, known: readonly string[], at: string, issues: ConfigIssue[]): void {
  for (const k of Object.keys(obj)) {
    if (!known.includes(k)) {
      issues.push({ path: at === '' ? k : `${at}.${k}`, message: `unknown field; expected one of ${known.join(', ')}` });
    }
  }
}

function listOf(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [v];
}

function backendFromObject(o: Record<string, unknown>, at: string, issues: ConfigIssue[]): BackendSpec | undefined {
  unknownKeys(o, BACKEND_KEYS, at, issues);
  const host = o['host'];
  // ',' and '=' would be read as the micro-syntax's own separators below (`h,backup`).
  if (typeof host !== 'string' || /[,=]/.test(host)) {
    issues.push({ path: `${at}.host`, message: `expected a host name or IP address, got ${describe(host)}` });
    return undefined;
  }
  let text = host.includes(':') ? `[${host}]` : host;
  for (const field of ['port', 'weight', 'max-conns'] as const) {
    const v = o[field];
    if (v !== undefined && typeof v !== 'number' && typeof v !== 'string') {
      issues.push({ path: `${at}.${field}`, message: `expected a number, got ${describe(v)}` });
      return undefined;
    }
  }
  // Checked field by field so an issue names the field (`backends[0].weight`), not the backend.
  const port = o['port'] === undefined ? undefined : scalar(o['port'], `${at}.port`, parseCount(1, 65_535), issues);
  const weight = o['weight'] === undefined ? undefined : scalar(o['weight'], `${at}.weight`, parseCount(1, D.MAX_WEIGHT), issues);
  const maxConns = o['max-conns'] === undefined ? undefined : scalar(o['max-conns'], `${at}.max-conns`, parseCount(1, D.MAX_CONNS_LIMIT), issues);
  if (
    (o['port'] !== undefined && port === undefined) ||
    (o['weight'] !== undefined && weight === undefined) ||
    (o['max-conns'] !== undefined && maxConns === undefined)
  ) {
    return undefined;
  }
  if (port !== undefined) text += `:${String(port)}`;
  if (weight !== undefined) text += `,weight=${String(weight)}`;
  if (maxConns !== undefined) text += `,max-conns=${String(maxConns)}`;
  if (o['backup'] === true) text += ',backup';
  else if (o['backup'] !== undefined && o['backup'] !== false) {
    issues.push({ path: `${at}.backup`, message: `expected true or false, got ${describe(o['backup'])}` });
  }
  // `state: drain=30m` reuses the string form's own words, checked by parseBackend below.
  const state = o['state'];
  if (state !== undefined) {
    const word = typeof state === 'string' ? state.split('=')[0] : undefined;
    if (typeof state !== 'string' || !BACKEND_ADMIN_STATES.some((w) => w === word) || (word !== 'drain' && state.includes('='))) {
      issues.push({ path: `${at}.state`, message: `expected one of ready, drain, drain=DURATION, maint, got ${describe(state)}` });
      return undefined;
    }
    text += `,${state}`;
  }
  if (o['name'] !== undefined) {
    if (typeof o['name'] !== 'string') {
      issues.push({ path: `${at}.name`, message: `expected a string, got ${describe(o['name'])}` });
      return undefined;
    }
    text = `${o['name']}=${text}`;
  }
  return scalar(text, at, parseBackend, issues);
}

function backendList(v: unknown, at: string, issues: ConfigIssue[]): BackendSpec[] {
  const backends: BackendSpec[] = [];
  listOf(v).forEach((b, i) => {
    const path = Array.isArray(v) ? `${at}[${String(i)}]` : at;
    const spec = isRecord(b) ? backendFromObject(b, path, issues) : scalar(b, path, parseBackend, issues);
    if (spec) backends.push(spec);
  });
  return backends;
}

/** `pools: { NAME: { backends: [...], balance: … } }`. */
function poolsFrom(v: unknown, at: string, issues: ConfigIssue[]): PoolConfig[] {
  if (!isRecord(v)) {
    issues.push({ path: at, message: `expected a mapping of pool names to pools, got ${describe(v)}` });
    return [];
  }
  const pools: PoolConfig[] = [];
  for (const [name, p] of Object.entries(v)) {
    const here = `${at}.${name}`;
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) issues.push({ path: here, message: 'a pool name is letters, digits, "_", ".", "-"' });
    if (!isRecord(p)) {
      issues.push({ path: here, message: `expected a mapping with backends, got ${describe(p)}` });
      continue;
    }
    unknownKeys(p, POOL_KEYS, here, issues);
    const backends = p['backends'] === undefined ? [] : backendList(p['backends'], `${here}.backends`, issues);
    const balance = p['balance'] === undefined ? 'hash' : (scalar(p['balance'], `${here}.balance`, parseBalance, issues) ?? 'hash');
    pools.push({ name, backends, balance });
  }
  return pools;
}

/** `routes: [ { pool, protocol?, sni?, alpn?, http-host? } ]`. */
function routesFrom(v: unknown, at: string, issues: ConfigIssue[]): RouteRule[] {
  if (!Array.isArray(v)) {
    issues.push({ path: at, message: `expected a list of routes, got ${describe(v)}` });
    return [];
  }
  const routes: RouteRule[] = [];
  v.forEach((r, i) => {
    const here = `${at}[${String(i)}]`;
    if (!isRecord(r)) {
      issues.push({ path: here, message: `expected a mapping, got ${describe(r)}` });
      return;
    }
    unknownKeys(r, ROUTE_KEYS, here, issues);
    const pool = r['pool'];
    if (typeof pool !== 'string') {
      issues.push({ path: `${here}.pool`, message: `expected a pool name, got ${describe(pool)}` });
      return;
    }
    let rule: RouteRule = { pool };
    const protocol = r['protocol'];
    if (protocol !== undefined) {
      const p = PEEK_PROTOCOLS.find((x) => x === protocol);
      if (p === undefined) issues.push({ path: `${here}.protocol`, message: `expected one of ${PEEK_PROTOCOLS.join(', ')}, got ${describe(protocol)}` });
      else rule = { ...rule, protocol: p satisfies PeekProtocol };
    }
    const sni = r['sni'] === undefined ? undefined : scalar(r['sni'], `${here}.sni`, parseHostPattern, issues);
    if (sni !== undefined) rule = { ...rule, sni };
    const host = r['http-host'] === undefined ? undefined : scalar(r['http-host'], `${here}.http-host`, parseHostPattern, issues);
    if (host !== undefined) rule = { ...rule, httpHost: host };
    if (r['alpn'] !== undefined) {
      if (typeof r['alpn'] === 'string' && r['alpn'] !== '') rule = { ...rule, alpn: r['alpn'] };
      else issues.push({ path: `${here}.alpn`, message: `expected a protocol name such as h2, got ${describe(r['alpn'])}` });
    }
    if (rule.protocol === undefined && rule.sni === undefined && rule.alpn === undefined && rule.httpHost === undefined) {
      issues.push({ path: here, message: 'a route needs at least one of protocol, sni, alpn, http-host' });
    }
    routes.push(rule);
  });
  return routes;
}

function frontendFromObject(o: Record<string, unknown>, at: string, issues: ConfigIssue[]): FrontendConfig {
  unknownKeys(o, FRONTEND_KEYS, at, issues);
  const d: FrontendDraft = {};
  const set = <K extends keyof FrontendDraft>(key: K, v: FrontendDraft[K] | undefined): void => {
    if (v !== undefined) d[key] = v;
  };
  if (o['name'] !== undefined) set('name', scalar(o['name'], `${at}.name`, parseName, issues));
  if (o['listen'] !== undefined) {
    const listen: ListenSpec[] = [];
    listOf(o['listen']).forEach((l, i) => {
      const v = scalar(l, Array.isArray(o['listen']) ? `${at}.listen[${String(i)}]` : `${at}.listen`, parseListen, issues);
      if (v) listen.push(v);
    });
    d.listen = listen;
  }
  if (o['backends'] !== undefined) d.backends = backendList(o['backends'], `${at}.backends`, issues);
  if (o['affinity'] !== undefined) {
    const a = Array.isArray(o['affinity']) ? o['affinity'].map(String).join(',') : o['affinity'];
    set('affinity', scalar(a, `${at}.affinity`, parseAffinityChain, issues));
  }
  if (o['balance'] !== undefined) set('balance', scalar(o['balance'], `${at}.balance`, parseBalance, issues));
  const dur = (key: string): number | undefined =>
    o[key] === undefined ? undefined : scalar(o[key], `${at}.${key}`, parseDuration, issues);
  set('affinityTimeoutMs', dur('affinity-timeout'));
  set('connectTimeoutMs', dur('connect-timeout'));
  set('idleTimeoutMs', dur('idle-timeout'));
  set('backendStallTimeoutMs', dur('backend-stall-timeout'));
  set('clientStallTimeoutMs', dur('client-stall-timeout'));
  set('finTimeoutMs', dur('fin-timeout'));
  set('holdDownMs', dur('hold-down'));
  if (o['affinity-max-entries'] !== undefined) {
    set('affinityMaxEntries', scalar(o['affinity-max-entries'], `${at}.affinity-max-entries`, parseCount(1, 100_000_000), issues));
  }
  if (o['retries'] !== undefined) set('retries', scalar(o['retries'], `${at}.retries`, parseCount(0, D.MAX_RETRIES), issues));
  set('peekTimeoutMs', dur('peek-timeout'));
  if (o['insert-cookie'] !== undefined) set('insertCookie', scalar(o['insert-cookie'], `${at}.insert-cookie`, parseCookieName, issues));
  if (o['key-module'] !== undefined) {
    if (typeof o['key-module'] === 'string' && o['key-module'] !== '') d.keyModule = o['key-module'];
    else issues.push({ path: `${at}.key-module`, message: `expected a file path, got ${describe(o['key-module'])}` });
  }
  if (o['pools'] !== undefined) d.pools = poolsFrom(o['pools'], `${at}.pools`, issues);
  if (o['routes'] !== undefined) d.routes = routesFrom(o['routes'], `${at}.routes`, issues);
  if (o['protocol'] !== undefined) set('protocol', scalar(o['protocol'], `${at}.protocol`, parseChoice(FRONTEND_PROTOCOLS), issues));
  const mail: { -readonly [K in keyof MailConfig]?: MailConfig[K] } = {};
  const choice = <T extends string>(key: string, choices: readonly T[]): T | undefined =>
    o[key] === undefined ? undefined : scalar(o[key], `${at}.${key}`, parseChoice(choices), issues);
  const file = (key: string): string | undefined => {
    const v = o[key];
    if (v === undefined) return undefined;
    if (typeof v === 'string' && v !== '') return v;
    issues.push({ path: `${at}.${key}`, message: `expected a file path, got ${describe(v)}` });
    return undefined;
  };
  const bool = (key: string): boolean | undefined => {
    const v = o[key];
    if (v === undefined || typeof v === 'boolean') return v;
    issues.push({ path: `${at}.${key}`, message: `expected true or false, got ${describe(v)}` });
    return undefined;
  };
  const put = <K extends keyof MailConfig>(key: K, v: MailConfig[K] | undefined): void => {
    if (v !== undefined) mail[key] = v;
  };
  put('tls', choice('tls', CLIENT_TLS_MODES));
  put('tlsCert', file('tls-cert'));
  put('tlsKey', file('tls-key'));
  put('requireTls', bool('require-tls'));
  put('backendTls', choice('backend-tls', BACKEND_TLS_MODES));
  put('backendCa', file('backend-ca'));
  const insecure = bool('backend-insecure');
  if (insecure !== undefined) mail.backendVerify = !insecure;
  put('userMap', file('user-map'));
  if (o['user-lookup'] !== undefined) put('userLookup', scalar(o['user-lookup'], `${at}.user-lookup`, parseLookupUrl, issues));
  put('userCacheTtlMs', dur('user-cache-ttl'));
  put('loginTimeoutMs', dur('login-timeout'));
  put('loginDomain', choice('login-domain', LOGIN_DOMAIN_MODES));
  d.mail = mail;
  set('proxyProtocol', choice('proxy-protocol', PROXY_PROTOCOL_VERSIONS));
  set('acceptProxyProtocol', bool('accept-proxy-protocol'));
  const health: { -readonly [K in keyof HealthConfig]?: HealthConfig[K] } = {};
  const putHealth = <K extends keyof HealthConfig>(key: K, v: HealthConfig[K] | undefined): void => {
    if (v !== undefined) health[key] = v;
  };
  putHealth('check', choice('health-check', HEALTH_CHECK_KINDS));
  if (o['health-expect'] !== undefined) putHealth('expect', scalar(o['health-expect'], `${at}.health-expect`, parseExpect, issues));
  if (o['health-send'] !== undefined) putHealth('send', scalar(o['health-send'], `${at}.health-send`, parseSendString, issues));
  putHealth('intervalMs', dur('health-interval'));
  putHealth('timeoutMs', dur('health-timeout'));
  for (const [key, field] of [['health-rise', 'rise'], ['health-fall', 'fall']] as const) {
    if (o[key] !== undefined) putHealth(field, scalar(o[key], `${at}.${key}`, parseCount(1, D.MAX_HEALTH_COUNT), issues));
  }
  d.health = health;
  for (const [key, field] of [['allow', 'allow'], ['deny', 'deny'], ['trusted-proxies', 'trustedProxies']] as const) {
    if (o[key] === undefined) continue;
    const list: string[] = [];
    listOf(o[key]).forEach((c, i) => {
      const v = scalar(c, Array.isArray(o[key]) ? `${at}.${key}[${String(i)}]` : `${at}.${key}`, parseCidr, issues);
      if (v !== undefined) list.push(v);
    });
    d[field] = list;
  }
  if (o['frontend-max-conns'] !== undefined) {
    set('maxConns', scalar(o['frontend-max-conns'], `${at}.frontend-max-conns`, parseCount(1, D.MAX_CONNS_LIMIT), issues));
  }
  if (o['queue-size'] !== undefined) set('queueSize', scalar(o['queue-size'], `${at}.queue-size`, parseCount(0, D.MAX_QUEUE_SIZE), issues));
  set('queueTimeoutMs', dur('queue-timeout'));
  return frontendWithDefaults(d);
}

/**
 * Converts a parsed document into a Config. Accepts a mapping with `frontends` (a list of
 * frontend mappings) and optional `log-level`, `grace`, `max-conns`, `admin`, `admin-token-file`,
 * `state-file` and `state-interval`. Never throws; returns every issue.
 */
export function configFromDocument(doc: unknown): { config: Config; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  let logLevel: LogLevel = 'info';
  let graceMs = D.GRACE_MS;
  const state: { stateFile?: string; stateIntervalMs?: number } = {};
  const frontends: FrontendConfig[] = [];
  if (!isRecord(doc)) {
    issues.push({ path: '(top level)', message: `expected a mapping with "frontends", got ${describe(doc)}` });
    return { config: { logLevel, graceMs, frontends }, issues };
  }
  unknownKeys(doc, TOP_KEYS, '', issues);
  if (doc['log-level'] !== undefined) logLevel = scalar(doc['log-level'], 'log-level', parseLogLevel, issues) ?? logLevel;
  if (doc['grace'] !== undefined) graceMs = scalar(doc['grace'], 'grace', parseDuration, issues) ?? graceMs;
  let admin: AdminConfig | undefined;
  if (doc['admin'] !== undefined) {
    const a = scalar(doc['admin'], 'admin', parseAdminAddress, issues);
    if (a) admin = a;
  }
  if (doc['admin-token-file'] !== undefined) {
    const t = scalar(doc['admin-token-file'], 'admin-token-file', (v) => v, issues);
    if (t !== undefined) {
      if (admin) admin = { ...admin, tokenFile: t };
      else issues.push({ path: 'admin-token-file', message: 'needs admin (the address of the admin API)' });
    }
  }
  const stateFile = doc['state-file'];
  if (typeof stateFile === 'string' && stateFile !== '') state.stateFile = stateFile;
  else if (stateFile !== undefined) issues.push({ path: 'state-file', message: `expected a file path, got ${describe(stateFile)}` });
  const every = doc['state-interval'] === undefined ? undefined : scalar(doc['state-interval'], 'state-interval', parseDuration, issues);
  if (every !== undefined) state.stateIntervalMs = every;
  const maxConns = doc['max-conns'] === undefined ? undefined : scalar(doc['max-conns'], 'max-conns', parseCount(1, D.MAX_CONNS_LIMIT), issues);
  const fes = doc['frontends'];
  if (!Array.isArray(fes)) {
    issues.push({ path: 'frontends', message: `expected a list of frontends, got ${describe(fes)}` });
  } else {
    fes.forEach((fe, i) => {
      const at = `frontends[${String(i)}]`;
      if (!isRecord(fe)) {
        issues.push({ path: at, message: `expected a mapping, got ${describe(fe)}` });
        return;
      }
      const built = frontendFromObject(fe, at, issues);
      frontends.push(fe['name'] === undefined && fes.length > 1 ? { ...built, name: `frontend${String(i)}` } : built);
    });
  }
  return { config: { logLevel, graceMs, ...(maxConns === undefined ? {} : { maxConns }), ...(admin ? { admin } : {}), ...state, frontends }, issues };
}
