// Cross-field rules over a whole Config: every problem is collected, then the config is frozen.
// Pure. Syntax of single values is checked earlier, by the flag parsers.
import ipaddr from 'ipaddr.js';
import type { ConfigIssue } from '../errors.js';
import { formatAffinityStep, type Config, type FrontendConfig, type ListenSpec } from './types.js';
import { MAX_PORT_RANGE, MIN_HEALTH_INTERVAL_MS, MIN_STATE_INTERVAL_MS } from './defaults.js';
import { pathOf } from './origin.js';

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '0:0:0:0:0:0:0:0';
}

function isLoopbackOrLocal(host: string): boolean {
  if (host === 'localhost') return true;
  if (!ipaddr.isValid(host)) return false;
  const range = ipaddr.process(host).range();
  return range === 'loopback' || range === 'unspecified';
}

function sameHost(a: string, b: string): boolean {
  if (a === b) return true;
  if (ipaddr.isValid(a) && ipaddr.isValid(b)) {
    return ipaddr.process(a).toNormalizedString() === ipaddr.process(b).toNormalizedString();
  }
  return false;
}

function listenCovers(l: ListenSpec, host: string, port: number): boolean {
  if (port < l.portLow || port > l.portHigh) return false;
  return sameHost(l.host, host) || (isWildcard(l.host) && isLoopbackOrLocal(host));
}

function checkFrontend(fe: FrontendConfig, at: string, issues: ConfigIssue[]): void {
  if (fe.listen.length === 0) issues.push({ path: `${at}.listen`, message: 'at least one listen address is required' });
  if (fe.backends.length === 0) issues.push({ path: `${at}.backends`, message: 'at least one backend is required' });

  const names = new Set<string>();
  fe.backends.forEach((b, i) => {
    if (names.has(b.name)) {
      issues.push({ path: pathOf(b, `${at}.backends[${String(i)}]`), message: `duplicate backend name "${b.name}"; give each a NAME= prefix` });
    }
    names.add(b.name);
    for (const l of fe.listen) {
      const loops =
        b.port === undefined
          ? sameHost(l.host, b.host) || (isWildcard(l.host) && isLoopbackOrLocal(b.host))
          : listenCovers(l, b.host, b.port) && l.portLow !== 0;
      if (loops) {
        issues.push({
          path: pathOf(b, `${at}.backends[${String(i)}]`),
          message: `backend "${b.name}" is tether's own listen address ${l.host}:${String(l.portLow)}; connections would loop`,
        });
      }
    }
    if (b.port === undefined && fe.listen.some((l) => l.portLow === 0)) {
      issues.push({ path: pathOf(b, `${at}.backends[${String(i)}]`), message: `backend "${b.name}" has no port, which needs a listen address with a fixed port` });
    }
  });
  if (fe.backends.length > 0 && fe.backends.every((b) => b.backup)) {
    issues.push({ path: `${at}.backends`, message: 'every backend is marked backup; at least one must be a primary' });
  }

  fe.listen.forEach((l, i) => {
    if (l.portHigh - l.portLow + 1 > MAX_PORT_RANGE) {
      issues.push({ path: pathOf(l, `${at}.listen[${String(i)}]`), message: `port range ${String(l.portLow)}-${String(l.portHigh)} is larger than ${String(MAX_PORT_RANGE)} ports` });
    }
  });

  const poolNames = new Set(['default']);
  fe.pools.forEach((p) => {
    const here = `${at}.pools.${p.name}`;
    if (poolNames.has(p.name)) issues.push({ path: here, message: `duplicate pool name "${p.name}" ("default" is the frontend's own backends)` });
    poolNames.add(p.name);
    if (p.backends.length === 0) issues.push({ path: `${here}.backends`, message: 'at least one backend is required' });
    else if (p.backends.every((b) => b.backup)) issues.push({ path: `${here}.backends`, message: 'every backend is marked backup; at least one must be a primary' });
    const seen = new Set<string>();
    p.backends.forEach((b, i) => {
      if (seen.has(b.name)) issues.push({ path: pathOf(b, `${here}.backends[${String(i)}]`), message: `duplicate backend name "${b.name}"` });
      seen.add(b.name);
    });
  });
  fe.routes.forEach((r, i) => {
    if (!poolNames.has(r.pool)) issues.push({ path: `${pathOf(r, `${at}.routes[${String(i)}]`)}.pool`, message: `no pool named "${r.pool}"` });
  });
  if (fe.insertCookie !== undefined && fe.affinity.some((s) => s.kind === 'http-cookie' && s.name === fe.insertCookie)) {
    issues.push({ path: `${at}.insert-cookie`, message: `"${fe.insertCookie}" is also an http-cookie key; tether's inserted cookie needs a name of its own` });
  }

  checkMail(fe, at, issues);
  checkHealth(fe, at, issues);
  if (fe.acceptProxyProtocol && fe.trustedProxies.length === 0) {
    issues.push({ path: `${at}.accept-proxy-protocol`, message: 'needs at least one --trusted-proxy: only trusted balancers may set the client address' });
  }
  if (!fe.acceptProxyProtocol && fe.trustedProxies.length > 0) {
    issues.push({ path: `${at}.trusted-proxies`, message: 'needs --accept-proxy-protocol' });
  }

  const positive: readonly [string, number][] = [
    ['affinity-timeout', fe.affinityTimeoutMs],
    ['connect-timeout', fe.connectTimeoutMs],
    ['idle-timeout', fe.idleTimeoutMs],
    ['backend-stall-timeout', fe.backendStallTimeoutMs],
    ['client-stall-timeout', fe.clientStallTimeoutMs],
    ['fin-timeout', fe.finTimeoutMs],
    ['queue-timeout', fe.queueTimeoutMs],
  ];
  for (const [field, ms] of positive) {
    if (ms < 1) issues.push({ path: `${at}.${field}`, message: 'must be at least 1ms' });
  }

  const chain = fe.affinity;
  if (chain.length > 1 && chain.some((s) => s.kind === 'none')) {
    issues.push({ path: `${at}.affinity`, message: '"none" cannot be combined with other key kinds' });
  }
  // Named kinds may repeat with other names (url-param:a,url-param:b); a second source never
  // matters, since a source key is always present.
  const kinds = chain.map((s) => (s.kind === 'source' ? 'source' : formatAffinityStep(s)));
  if (new Set(kinds).size !== kinds.length) {
    issues.push({ path: `${at}.affinity`, message: 'a key kind appears twice in the chain' });
  }
}

function family(host: string): 'v4' | 'v6' | 'name' {
  if (!ipaddr.isValid(host)) return 'name';
  return ipaddr.parse(host).kind() === 'ipv4' ? 'v4' : 'v6';
}

/** Whether binding `w` (a wildcard) takes `other`'s address: 0.0.0.0 takes IPv4 only; `::`
 *  is dual-stack on Linux by default and takes both families. */
function wildcardTakes(w: string, other: string): boolean {
  return family(w) === 'v6' || family(other) !== 'v6';
}

const PEEK_KINDS = new Set(['sni', 'tls-session', 'tls-ticket', 'http-host', 'http-header', 'http-cookie', 'url-param', 'xmpp-to']);

/** Rules for imap/pop3 frontends (greet instead of peek) and their TLS and directory options. */
function checkMail(fe: FrontendConfig, at: string, issues: ConfigIssue[]): void {
  const m = fe.mail;
  const mail = fe.protocol === 'imap' || fe.protocol === 'pop3';
  const hasLogin = fe.affinity.some((s) => s.kind === 'login');
  if (hasLogin && !mail) issues.push({ path: `${at}.affinity`, message: '"login" needs --protocol imap or pop3' });
  if (mail) {
    for (const s of fe.affinity) {
      if (PEEK_KINDS.has(s.kind)) issues.push({ path: `${at}.affinity`, message: `"${s.kind}" reads the client's first bytes, but with --protocol ${fe.protocol} tether speaks first` });
    }
    if (fe.routes.length > 0) issues.push({ path: `${at}.routes`, message: `routes need --protocol auto (imap/pop3 do not peek)` });
    if (fe.insertCookie !== undefined) issues.push({ path: `${at}.insert-cookie`, message: 'insert-cookie is for HTTP frontends' });
  } else {
    const mailOnly: [string, boolean][] = [
      ['tls', m.tls !== 'none'],
      ['require-tls', m.requireTls],
      ['backend-tls', m.backendTls !== 'none'],
      ['user-map', m.userMap !== undefined],
      ['user-lookup', m.userLookup !== undefined],
    ];
    for (const [field, set] of mailOnly) {
      if (set) issues.push({ path: `${at}.${field}`, message: 'only for --protocol imap or pop3' });
    }
  }
  if (m.tls !== 'none' && (m.tlsCert === undefined || m.tlsKey === undefined)) {
    issues.push({ path: `${at}.tls`, message: `--tls ${m.tls} needs --tls-cert and --tls-key` });
  }
  if (m.requireTls && m.tls === 'none') issues.push({ path: `${at}.require-tls`, message: 'needs --tls starttls or implicit' });
  if ((m.userMap !== undefined || m.userLookup !== undefined) && !hasLogin) {
    issues.push({ path: `${at}.affinity`, message: 'a user directory (--user-map, --user-lookup) needs "login" in the chain' });
  }
  if (m.loginTimeoutMs < 1) issues.push({ path: `${at}.login-timeout`, message: 'must be at least 1ms' });
}

/** Rules for --health-*: each check kind takes exactly the settings it uses. */
function checkHealth(fe: FrontendConfig, at: string, issues: ConfigIssue[]): void {
  const h = fe.health;
  const reads = h.check === 'banner' || h.check === 'send';
  if (h.expect !== undefined && !reads) issues.push({ path: `${at}.health-expect`, message: 'needs --health-check banner or send' });
  if (h.send !== undefined && h.check !== 'send') issues.push({ path: `${at}.health-send`, message: 'needs --health-check send' });
  if (reads && h.expect === undefined) {
    const hint = h.check === 'banner' ? ' (imap/pop3 frontends default to their greeting)' : '';
    issues.push({ path: `${at}.health-check`, message: `--health-check ${h.check} needs --health-expect${hint}` });
  }
  if (h.check === 'send' && h.send === undefined) issues.push({ path: `${at}.health-check`, message: '--health-check send needs --health-send' });
  if (reads && fe.mail.backendTls === 'tls') {
    issues.push({ path: `${at}.health-check`, message: `a ${h.check} check speaks plain text, but --backend-tls tls backends start with a TLS handshake; use --health-check tcp` });
  }
  if (h.intervalMs < MIN_HEALTH_INTERVAL_MS) issues.push({ path: `${at}.health-interval`, message: `must be at least ${String(MIN_HEALTH_INTERVAL_MS)}ms` });
  if (h.timeoutMs < 1) issues.push({ path: `${at}.health-timeout`, message: 'must be at least 1ms' });
}

function overlaps(a: ListenSpec, b: ListenSpec): boolean {
  if (a.portLow === 0 || b.portLow === 0) return false;
  const hostClash =
    sameHost(a.host, b.host) || (isWildcard(a.host) && wildcardTakes(a.host, b.host)) || (isWildcard(b.host) && wildcardTakes(b.host, a.host));
  return hostClash && a.portLow <= b.portHigh && b.portLow <= a.portHigh;
}

/** Returns every cross-field problem of `config` (empty when it is usable). */
export function validateConfig(config: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (config.frontends.length === 0) issues.push({ path: 'frontends', message: 'at least one frontend is required' });
  const every = config.stateIntervalMs;
  if (every !== undefined && config.stateFile === undefined) issues.push({ path: 'state-interval', message: 'needs --state-file (state-file in a config file)' });
  if (every !== undefined && every > 0 && every < MIN_STATE_INTERVAL_MS) {
    issues.push({ path: 'state-interval', message: `must be 0 (save only on stop) or at least ${String(MIN_STATE_INTERVAL_MS)}ms` });
  }
  const feNames = new Set<string>();
  const allListens: { at: string; l: ListenSpec }[] = [];
  config.frontends.forEach((fe, i) => {
    const at = pathOf(fe, `frontends[${String(i)}]`);
    if (feNames.has(fe.name)) issues.push({ path: `${at}.name`, message: `duplicate frontend name "${fe.name}"` });
    feNames.add(fe.name);
    checkFrontend(fe, at, issues);
    fe.listen.forEach((l, j) => {
      const here = pathOf(l, `${at}.listen[${String(j)}]`);
      for (const other of allListens) {
        if (overlaps(other.l, l)) issues.push({ path: here, message: `overlaps ${other.at}` });
      }
      allListens.push({ at: here, l });
    });
  });
  const admin = config.admin;
  if (admin) {
    if (admin.tokenFile === undefined && !isLoopback(admin.host)) {
      issues.push({ path: 'admin', message: `${admin.host} is not a loopback address: the admin API there needs admin-token-file` });
    }
    const asListen = { host: admin.host, portLow: admin.port, portHigh: admin.port };
    for (const other of allListens) {
      if (admin.port !== 0 && overlaps(other.l, asListen)) issues.push({ path: 'admin', message: `overlaps ${other.at}` });
    }
  }
  return issues;
}

/** Whether `host` is a loopback address (127.0.0.0/8, ::1, localhost). */
function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (!ipaddr.isValid(host)) return false;
  const a = ipaddr.process(host);
  return a.range() === 'loopback';
}

/** Freezes `value` and everything reachable from it. */
export function deepFreeze<T>(value: T): T {
  // Visited objects, not Object.isFrozen, stop the walk (and cycles): an object frozen only on
  // its surface must still have its children frozen.
  const seen = new WeakSet<object>();
  const visit = (v: unknown): void => {
    if (v === null || typeof v !== 'object' || seen.has(v)) return;
    seen.add(v);
    Object.freeze(v);
    for (const child of Object.values(v)) visit(child);
  };
  visit(value);
  return value;
}
