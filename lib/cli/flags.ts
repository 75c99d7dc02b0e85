// One pure parser per flag micro-syntax, and the flag table that both --help and the README's
// option table are made from. Syntax errors throw commander's InvalidArgumentError, whose
// message commander prefixes with the flag; config-file loading reuses the same parsers.
import { InvalidArgumentError } from 'commander';
import ipaddr from 'ipaddr.js';
import type { AffinityStep, BackendAdmin, BackendSpec, BalanceKind, ListenSpec } from '../config/types.js';
import { BALANCE_KINDS } from '../config/types.js';
import { MAX_HEALTH_SEND_BYTES } from '../config/defaults.js';
import { compileExpect } from '../health/check.js';
import { LOG_LEVELS, type LogLevel } from '../log.js';
import { MAX_CONNS_LIMIT } from '../config/defaults.js';

const LISTEN_SYNTAX = 'HOST:PORT or HOST:PORT-PORT ([::1]:PORT for IPv6)';
const BACKEND_SYNTAX = '[NAME=]HOST[:PORT][,weight=N][,max-conns=N][,backup][,drain[=DURATION]|,maint]';
const AFFINITY_SYNTAX =
  'a comma list of: none, source[/V4BITS[/V6BITS]], sni, tls-session, tls-ticket, http-host, http-header:NAME, http-cookie:NAME, url-param:NAME, xmpp-to, key-module, login';
const DURATION_SYNTAX = 'a duration such as 500ms, 30s, 10m, 1h (a bare number is milliseconds)';

function fail(expected: string, got: string): never {
  throw new InvalidArgumentError(`expected ${expected}, got ${JSON.stringify(got)}`);
}

/** A DNS name or an IP literal (IPv6 without brackets). */
function isHost(host: string): boolean {
  if (ipaddr.isValid(host)) return true;
  return /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/.test(
    host,
  );
}

function parsePort(text: string, allowZero: boolean): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  if (n > 65535 || (n === 0 && !allowZero)) return undefined;
  return n;
}

/**
 * Splits `HOST:REST`, `[V6]:REST`, or (when `portOptional`) a lone `HOST`/`[V6]`/bare IPv6.
 * Returns undefined on anything else.
 */
function splitHostPort(
  text: string,
  portOptional: boolean,
): { host: string; rest: string | undefined } | undefined {
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return undefined;
    const host = text.slice(1, close);
    if (!ipaddr.IPv6.isValid(host)) return undefined;
    const after = text.slice(close + 1);
    if (after === '') return portOptional ? { host, rest: undefined } : undefined;
    if (!after.startsWith(':')) return undefined;
    return { host, rest: after.slice(1) };
  }
  if (portOptional && ipaddr.IPv6.isValid(text) && text.includes(':')) {
    return { host: text, rest: undefined };
  }
  const colon = text.lastIndexOf(':');
  if (colon < 0) return portOptional ? { host: text, rest: undefined } : undefined;
  const host = text.slice(0, colon);
  if (host.includes(':')) return undefined; // a bare IPv6 with a port needs brackets
  return { host, rest: text.slice(colon + 1) };
}

/** Parses `--listen HOST:PORT[-PORT]`. Accepts port 0 (ephemeral) only as a single port. */
export function parseListen(text: string): ListenSpec {
  const hp = splitHostPort(text.trim(), false);
  if (!hp?.rest || !isHost(hp.host)) fail(LISTEN_SYNTAX, text);
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(hp.rest);
  if (!m?.[1]) fail(LISTEN_SYNTAX, text);
  const low = parsePort(m[1], m[2] === undefined);
  const high = m[2] === undefined ? low : parsePort(m[2], false);
  if (low === undefined || high === undefined) fail(`ports 1-65535 in ${LISTEN_SYNTAX}`, text);
  if (high < low) fail(`a range LOW-HIGH with LOW <= HIGH in ${LISTEN_SYNTAX}`, text);
  return { host: hp.host, portLow: low, portHigh: high };
}

/**
 * Parses `--backend [NAME=]HOST[:PORT][,weight=N][,max-conns=N][,backup][,drain[=DURATION]|,maint]`;
 * the name defaults to HOST[:PORT]. `ready` is accepted as the explicit default state.
 */
export function parseBackend(text: string): BackendSpec {
  const parts = text.trim().split(',');
  const first = parts[0] ?? '';
  const eq = first.indexOf('=');
  const explicitName = eq >= 0 ? first.slice(0, eq) : undefined;
  const address = eq >= 0 ? first.slice(eq + 1) : first;
  if (explicitName !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(explicitName)) {
    fail(`a NAME of letters, digits, '_', '.', '-' in ${BACKEND_SYNTAX}`, text);
  }
  const hp = splitHostPort(address, true);
  if (!hp || !isHost(hp.host)) fail(BACKEND_SYNTAX, text);
  let port: number | undefined;
  if (hp.rest !== undefined) {
    port = parsePort(hp.rest, false);
    if (port === undefined) fail(`a port 1-65535 in ${BACKEND_SYNTAX}`, text);
  }
  let weight = 1;
  let backup = false;
  let maxConns: number | undefined;
  let admin: BackendAdmin | undefined;
  let drainMs: number | undefined;
  for (const opt of parts.slice(1)) {
    const w = /^weight=(\d{1,4})$/.exec(opt);
    const m = /^max-conns=(\d{1,8})$/.exec(opt);
    const d = /^drain=(.*)$/.exec(opt);
    if (w?.[1] !== undefined) {
      weight = Number(w[1]);
      if (weight < 1 || weight > 1000) fail(`weight=N with N in 1..1000 in ${BACKEND_SYNTAX}`, text);
    } else if (m?.[1] !== undefined || opt.startsWith('max-conns=')) {
      maxConns = Number(m?.[1]);
      if (!(maxConns >= 1 && maxConns <= MAX_CONNS_LIMIT)) fail(`max-conns=N with N in 1..${String(MAX_CONNS_LIMIT)} in ${BACKEND_SYNTAX}`, text);
    } else if (opt === 'backup') {
      backup = true;
    } else if (opt === 'ready' || opt === 'drain' || opt === 'maint' || d) {
      if (admin !== undefined) fail(`one of ready, drain, maint in ${BACKEND_SYNTAX}`, text);
      admin = d ? 'drain' : (opt as BackendAdmin);
      if (d?.[1] !== undefined) {
        let ms: number | undefined;
        try {
          ms = parseDuration(d[1]);
        } catch {
          ms = undefined;
        }
        if (ms === undefined || ms < 1) fail(`drain=DURATION with a duration of at least 1ms in ${BACKEND_SYNTAX}`, text);
        drainMs = ms;
      }
    } else {
      fail(BACKEND_SYNTAX, text);
    }
  }
  // An IPv6 host keeps its brackets, as formatAddress writes it: `::1:7001` would read as a
  // different, port-less IPv6 address.
  const hostText = hp.host.includes(':') ? `[${hp.host}]` : hp.host;
  const defaultName = port === undefined ? hp.host : `${hostText}:${String(port)}`;
  return {
    name: explicitName ?? defaultName,
    host: hp.host,
    port,
    weight,
    backup,
    ...(maxConns === undefined ? {} : { maxConns }),
    ...(admin === undefined || admin === 'ready' ? {} : { admin }),
    ...(drainMs === undefined ? {} : { drainMs }),
  };
}

const SIMPLE_KINDS = ['sni', 'tls-session', 'tls-ticket', 'http-host', 'xmpp-to', 'key-module', 'login'] as const;
const NAMED_KINDS = ['http-header', 'http-cookie', 'url-param'] as const;

/** Parses `--affinity CHAIN`: comma-separated key kinds tried in order. */
export function parseAffinityChain(text: string): AffinityStep[] {
  const steps: AffinityStep[] = [];
  for (const raw of text.split(',')) {
    const item = raw.trim();
    if (item === 'none') {
      steps.push({ kind: 'none' });
      continue;
    }
    const simple = SIMPLE_KINDS.find((k) => k === item);
    if (simple !== undefined) {
      steps.push({ kind: simple });
      continue;
    }
    const colon = item.indexOf(':');
    const named = NAMED_KINDS.find((k) => k === item.slice(0, colon));
    if (colon > 0 && named !== undefined) {
      const name = item.slice(colon + 1);
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/.test(name)) fail(`${named}:NAME with a header, cookie or parameter name`, text);
      steps.push({ kind: named, name });
      continue;
    }
    const m = /^source(?:\/(\d{1,3})(?:\/(\d{1,3}))?)?$/.exec(item);
    if (!m) fail(AFFINITY_SYNTAX, text);
    const v4Bits = m[1] === undefined ? 32 : Number(m[1]);
    const v6Bits = m[2] === undefined ? 128 : Number(m[2]);
    if (v4Bits > 32) fail(`V4BITS in 0..32 in source/V4BITS/V6BITS`, text);
    if (v6Bits > 128) fail(`V6BITS in 0..128 in source/V4BITS/V6BITS`, text);
    steps.push({ kind: 'source', v4Bits, v6Bits });
  }
  return steps;
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

/** Parses `--balance`. */
export function parseBalance(text: string): BalanceKind {
  const found = BALANCE_KINDS.find((k) => k === text.trim());
  if (found === undefined) fail(`one of ${BALANCE_KINDS.join(', ')}`, text);
  return found;
}

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses a duration (`500ms`, `30s`, `1.5m`, `10m`, `1h`, `1d`, or bare milliseconds) to ms. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m?.[1]) fail(DURATION_SYNTAX, text);
  const ms = Math.round(Number(m[1]) * (UNIT_MS[m[2] ?? 'ms'] ?? 1));
  if (!Number.isSafeInteger(ms) || ms > 2_147_483_647) fail(`${DURATION_SYNTAX}, at most 24d`, text);
  return ms;
}

/** Parses a whole number within [min, max]. */
export function parseCount(min: number, max: number): (text: string) => number {
  return (text: string) => {
    const t = text.trim();
    if (!/^\d+$/.test(t)) fail(`a whole number from ${String(min)} to ${String(max)}`, text);
    const n = Number(t);
    if (n < min || n > max) fail(`a whole number from ${String(min)} to ${String(max)}`, text);
    return n;
  };
}

/** Parses `--log-level`. */
export function parseLogLevel(text: string): LogLevel {
  const found = LOG_LEVELS.find((l) => l === text.trim());
  if (found === undefined) fail(`one of ${LOG_LEVELS.join(', ')}`, text);
  return found;
}

/** A parser accepting exactly one of `choices`. */
export function parseChoice<T extends string>(choices: readonly T[]): (text: string) => T {
  return (text: string) => {
    const found = choices.find((c) => c === text.trim());
    if (found === undefined) fail(`one of ${choices.join(', ')}`, text);
    return found;
  };
}

/** Parses `--user-lookup URL`: an http:// or https:// URL (tether adds `user=NAME`). */
export function parseLookupUrl(text: string): string {
  let u: URL;
  try {
    u = new URL(text.trim());
  } catch {
    fail('an http:// or https:// URL', text);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') fail('an http:// or https:// URL', text);
  return u.toString();
}

/** Parses a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a single address (as /32 or /128). */
export function parseCidr(text: string): string {
  const t = text.trim();
  if (ipaddr.isValidCIDR(t)) {
    const [addr, bits] = ipaddr.parseCIDR(t);
    return `${addr.toString()}/${String(bits)}`;
  }
  if (ipaddr.isValid(t)) {
    const addr = ipaddr.parse(t);
    return `${addr.toString()}/${addr.kind() === 'ipv4' ? '32' : '128'}`;
  }
  fail('an address or CIDR such as 10.0.0.0/8 or 2001:db8::/32', text);
}

/** Parses a cookie name (`--insert-cookie`), an RFC 6265 token. */
export function parseCookieName(text: string): string {
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/.test(text)) fail('a cookie name (letters, digits and !#$%&\'*+.^_`|~-)', text);
  return text;
}

/** Parses a host pattern for routes: `mail.example.com` or `*.example.com`; lower-cased. */
export function parseHostPattern(text: string): string {
  // SNI and Host are compared without their trailing dot (client-hello.ts, request-head.ts), so
  // the pattern drops it too: `mail.example.com.` would otherwise never match.
  const t = text.trim().toLowerCase().replace(/\.$/, '');
  const bare = t.startsWith('*.') ? t.slice(2) : t;
  if (!isHost(bare) || bare.includes(':') || bare.endsWith('.')) fail('a host name or *.domain', text);
  return t;
}

/** Parses `--admin [HOST:]PORT` (one port; 0 picks a free one); a bare port is on 127.0.0.1. */
export function parseAdminAddress(text: string): { readonly host: string; readonly port: number } {
  const bare = /^\d{1,5}$/.test(text.trim()) ? parsePort(text.trim(), true) : undefined;
  if (bare !== undefined) return { host: '127.0.0.1', port: bare };
  const hp = splitHostPort(text.trim(), false);
  const port = hp?.rest === undefined ? undefined : /^\d{1,5}$/.test(hp.rest) ? parsePort(hp.rest, true) : undefined;
  if (!hp || !isHost(hp.host) || port === undefined) fail('[HOST:]PORT (one port, e.g. 9900 or 127.0.0.1:9900)', text);
  return { host: hp.host, port };
}

/** Parses `--health-expect REGEX`: a JavaScript regular expression (compiled with the `m` flag). */
export function parseExpect(text: string): string {
  if (text === '') fail('a non-empty regular expression such as ^\\* OK', text);
  try {
    compileExpect(text);
  } catch (e) {
    fail(`a regular expression (${e instanceof Error ? e.message : String(e)})`, text);
  }
  return text;
}

const SEND_SYNTAX = `at most ${String(MAX_HEALTH_SEND_BYTES)} printable ASCII characters with \\r, \\n, \\t, \\\\ and \\xHH escapes`;
const SEND_ESCAPES: Readonly<Record<string, string>> = { r: '\r', n: '\n', t: '\t', '\\': '\\' };

/**
 * Parses `--health-send STRING`: printable ASCII with the escapes \r \n \t \\ and \xHH,
 * resolved here; each char of the result is one byte (Latin-1). Real CR, LF and tab pass as
 * themselves (a YAML double-quoted string has already resolved its own escapes).
 */
export function parseSendString(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (c !== '\\') {
      if (!/^[\x20-\x7e\r\n\t]$/.test(c)) fail(SEND_SYNTAX, text);
      out += c;
      continue;
    }
    const e = text.charAt(i + 1);
    const simple = SEND_ESCAPES[e];
    if (simple !== undefined) {
      out += simple;
      i++;
    } else if (e === 'x' && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 2, i + 4))) {
      out += String.fromCharCode(parseInt(text.slice(i + 2, i + 4), 16));
      i += 3;
    } else {
      fail(SEND_SYNTAX, text);
    }
  }
  if (out === '' || out.length > MAX_HEALTH_SEND_BYTES) fail(SEND_SYNTAX, text);
  return out;
}

/** Parses a frontend name (config files, `--name`). */
export function parseName(text: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(text)) fail(`a name of letters, digits, '_', '.', '-'`, text);
  return text;
}

/** One row of the flag table: the source of --help and of the README's option table. */
export interface FlagRow {
  /** Commander flag spec, e.g. `--listen <HOST:PORT>`. */
  readonly flags: string;
  /** Key in a config file frontend (or top level, for `scope: 'global'`). */
  readonly configKey: string;
  readonly scope: 'frontend' | 'global' | 'cli';
  readonly repeatable: boolean;
  readonly description: string;
  readonly defaultText?: string;
}

/** Every run flag of `tether`, in --help order. */
export const FLAG_TABLE: readonly FlagRow[] = [
  { flags: '--listen <HOST:PORT>', configKey: 'listen', scope: 'frontend', repeatable: true,
    description: `address to accept clients on: ${LISTEN_SYNTAX}; repeatable` },
  { flags: '--backend <SPEC>', configKey: 'backends', scope: 'frontend', repeatable: true,
    description: `a backend: ${BACKEND_SYNTAX}; without :PORT, the port the client connected to; max-conns=N: at most N connections at once (more go to another backend or wait, see --queue-size); drain: no new clients, pinned ones still come (until DURATION); maint: no clients; repeatable` },
  { flags: '--affinity <CHAIN>', configKey: 'affinity', scope: 'frontend', repeatable: false,
    description: `affinity key chain, first present key wins: ${AFFINITY_SYNTAX}`, defaultText: 'none' },
  { flags: '--balance <POLICY>', configKey: 'balance', scope: 'frontend', repeatable: false,
    description: 'placement of new keys and un-keyed connections: hash (weighted rendezvous), roundrobin, leastconn, random2 (better of two random)',
    defaultText: 'hash' },
  { flags: '--affinity-timeout <DURATION>', configKey: 'affinity-timeout', scope: 'frontend', repeatable: false,
    description: 'idle time after which an affinity entry is forgotten', defaultText: '30m' },
  { flags: '--affinity-max-entries <N>', configKey: 'affinity-max-entries', scope: 'frontend', repeatable: false,
    description: 'size of the affinity table; least recently used entries go first', defaultText: '100000' },
  { flags: '--connect-timeout <DURATION>', configKey: 'connect-timeout', scope: 'frontend', repeatable: false,
    description: 'time allowed to connect to a backend before trying another', defaultText: '5s' },
  { flags: '--idle-timeout <DURATION>', configKey: 'idle-timeout', scope: 'frontend', repeatable: false,
    description: 'close a connection after this long with no byte either way', defaultText: '1h' },
  { flags: '--backend-stall-timeout <DURATION>', configKey: 'backend-stall-timeout', scope: 'frontend', repeatable: false,
    description: 'close a connection whose bytes toward the backend have waited this long without any of them being taken', defaultText: '10s' },
  { flags: '--client-stall-timeout <DURATION>', configKey: 'client-stall-timeout', scope: 'frontend', repeatable: false,
    description: 'close a connection whose bytes toward the client have waited this long without any of them being taken', defaultText: '60s' },
  { flags: '--fin-timeout <DURATION>', configKey: 'fin-timeout', scope: 'frontend', repeatable: false,
    description: 'once one side has sent its FIN, close the connection after this long with no byte either way (if shorter than --idle-timeout)', defaultText: '30s' },
  { flags: '--retries <N>', configKey: 'retries', scope: 'frontend', repeatable: false,
    description: 'other backends tried after a failed connect (0-16)', defaultText: '2' },
  { flags: '--hold-down <DURATION>', configKey: 'hold-down', scope: 'frontend', repeatable: false,
    description: 'how long a backend that failed to connect is skipped', defaultText: '10s' },
  { flags: '--peek-timeout <DURATION>', configKey: 'peek-timeout', scope: 'frontend', repeatable: false,
    description: 'how long to wait for the client\'s first bytes (TLS ClientHello, HTTP head, XMPP header) when the chain reads them; a prelude still unfinished then is cut, silence or an unknown protocol falls back',
    defaultText: '3s' },
  { flags: '--insert-cookie <NAME>', configKey: 'insert-cookie', scope: 'frontend', repeatable: false,
    description: 'plain HTTP/1.x: add Set-Cookie NAME=<backend> to the first response of a client without it, and send requests carrying it to that backend' },
  { flags: '--key-module <FILE>', configKey: 'key-module', scope: 'frontend', repeatable: false,
    description: 'a JS module whose exported key(facts) returns the key-module key (string or undefined)' },
  { flags: '--protocol <PROTOCOL>', configKey: 'protocol', scope: 'frontend', repeatable: false,
    description: 'auto (peek at client-first protocols), imap or pop3 (tether greets the client and reads the login)', defaultText: 'auto' },
  { flags: '--tls <MODE>', configKey: 'tls', scope: 'frontend', repeatable: false,
    description: 'imap/pop3: TLS toward the client: none, starttls (STARTTLS/STLS offered) or implicit (993/995)', defaultText: 'none' },
  { flags: '--tls-cert <FILE>', configKey: 'tls-cert', scope: 'frontend', repeatable: false,
    description: 'imap/pop3: PEM certificate chain for --tls' },
  { flags: '--tls-key <FILE>', configKey: 'tls-key', scope: 'frontend', repeatable: false,
    description: 'imap/pop3: PEM private key for --tls' },
  { flags: '--require-tls', configKey: 'require-tls', scope: 'frontend', repeatable: false,
    description: 'imap/pop3: refuse logins in clear (LOGINDISABLED, PRIVACYREQUIRED)' },
  { flags: '--backend-tls <MODE>', configKey: 'backend-tls', scope: 'frontend', repeatable: false,
    description: 'imap/pop3: TLS toward the backend: none, starttls or tls', defaultText: 'none' },
  { flags: '--backend-ca <FILE>', configKey: 'backend-ca', scope: 'frontend', repeatable: false,
    description: 'imap/pop3: PEM CA bundle to verify backends (default: the system CAs)' },
  { flags: '--backend-insecure', configKey: 'backend-insecure', scope: 'frontend', repeatable: false,
    description: 'imap/pop3: do not verify backend certificates' },
  { flags: '--user-map <FILE>', configKey: 'user-map', scope: 'frontend', repeatable: false,
    description: 'imap/pop3: "user backend" lines placing users on backends; re-read when it changes' },
  { flags: '--user-lookup <URL>', configKey: 'user-lookup', scope: 'frontend', repeatable: false,
    description: 'imap/pop3: HTTP service answering GET URL?user=NAME with a backend name (404: unknown user)' },
  { flags: '--user-cache-ttl <DURATION>', configKey: 'user-cache-ttl', scope: 'frontend', repeatable: false,
    description: 'imap/pop3: how long a directory answer (found or not) is reused', defaultText: '1m' },
  { flags: '--login-timeout <DURATION>', configKey: 'login-timeout', scope: 'frontend', repeatable: false,
    description: 'imap/pop3: time from connect to a complete login', defaultText: '1m' },
  { flags: '--login-domain <MODE>', configKey: 'login-domain', scope: 'frontend', repeatable: false,
    description: 'imap/pop3: login key from user@domain: keep the domain, or strip it', defaultText: 'keep' },
  { flags: '--allow <CIDR>', configKey: 'allow', scope: 'frontend', repeatable: true,
    description: 'serve only clients in these networks (checked at accept, before any byte is read; for a trusted balancer, on the address its PROXY header carries); repeatable' },
  { flags: '--deny <CIDR>', configKey: 'deny', scope: 'frontend', repeatable: true,
    description: 'refuse clients in these networks (wins over --allow); repeatable' },
  { flags: '--proxy-protocol <VERSION>', configKey: 'proxy-protocol', scope: 'frontend', repeatable: false,
    description: 'send a PROXY protocol header (v1 text or v2 binary) with the client\'s address to each backend before any client byte' },
  { flags: '--accept-proxy-protocol', configKey: 'accept-proxy-protocol', scope: 'frontend', repeatable: false,
    description: 'read a PROXY protocol header (v1 or v2) from clients in --trusted-proxy networks and use the address it carries' },
  { flags: '--trusted-proxy <CIDR>', configKey: 'trusted-proxies', scope: 'frontend', repeatable: true,
    description: 'a balancer network whose PROXY headers are believed (others sending one are refused); repeatable' },
  { flags: '--frontend-max-conns <N>', configKey: 'frontend-max-conns', scope: 'frontend', repeatable: false,
    description: 'open clients this frontend serves at once; more are closed at accept, before a byte is read', defaultText: 'no limit' },
  { flags: '--queue-size <N>', configKey: 'queue-size', scope: 'frontend', repeatable: false,
    description: 'clients of one pool that may wait while the backends they may use are at their max-conns; more are refused (0: none wait)',
    defaultText: '128' },
  { flags: '--queue-timeout <DURATION>', configKey: 'queue-timeout', scope: 'frontend', repeatable: false,
    description: 'how long a client waits in that queue before it is refused', defaultText: '5s' },
  { flags: '--health-check <KIND>', configKey: 'health-check', scope: 'frontend', repeatable: false,
    description: 'active checks of every backend: none, tcp (connect), banner (connect and read until --health-expect matches) or send (write --health-send, then read until --health-expect matches)',
    defaultText: 'none' },
  { flags: '--health-expect <REGEX>', configKey: 'health-expect', scope: 'frontend', repeatable: false,
    description: 'regular expression the check\'s response must match (^ anchors at each line); imap/pop3 banner checks default to ^\\* OK / ^\\+OK' },
  { flags: '--health-send <STRING>', configKey: 'health-send', scope: 'frontend', repeatable: false,
    description: 'what a send check writes; \\r, \\n, \\t, \\\\ and \\xHH escapes' },
  { flags: '--health-interval <DURATION>', configKey: 'health-interval', scope: 'frontend', repeatable: false,
    description: 'time between two checks of one backend (at least 50ms)', defaultText: '2s' },
  { flags: '--health-timeout <DURATION>', configKey: 'health-timeout', scope: 'frontend', repeatable: false,
    description: 'time one check may take, connect included', defaultText: '2s' },
  { flags: '--health-rise <N>', configKey: 'health-rise', scope: 'frontend', repeatable: false,
    description: 'passed checks in a row that bring a down backend up (1-100); one down only because a client\'s dial failed is back at its first passing check', defaultText: '2' },
  { flags: '--health-fall <N>', configKey: 'health-fall', scope: 'frontend', repeatable: false,
    description: 'failed checks in a row that take a backend down (1-100); a backend is out after its first failed check at start', defaultText: '3' },
  { flags: '--name <NAME>', configKey: 'name', scope: 'frontend', repeatable: false,
    description: 'frontend name used in logs', defaultText: 'default' },
  { flags: '--max-conns <N>', configKey: 'max-conns', scope: 'global', repeatable: false,
    description: 'open clients of all frontends at once; more are closed at accept, before a byte is read', defaultText: 'no limit' },
  { flags: '--grace <DURATION>', configKey: 'grace', scope: 'global', repeatable: false,
    description: 'on SIGTERM/SIGINT, how long open connections may finish before they are closed', defaultText: '30s' },
  { flags: '--state-file <FILE>', configKey: 'state-file', scope: 'global', repeatable: false,
    description: 'save the affinity tables to FILE (mode 0600) on stop and every --state-interval, and restore them at start; entries past --affinity-timeout or on backends no longer configured are dropped' },
  { flags: '--state-interval <DURATION>', configKey: 'state-interval', scope: 'global', repeatable: false,
    description: 'how often --state-file is also saved while running; 0 saves only on stop', defaultText: '1m' },
  { flags: '--log-level <LEVEL>', configKey: 'log-level', scope: 'global', repeatable: false,
    description: `one of ${LOG_LEVELS.join(', ')}`, defaultText: 'info' },
  { flags: '--admin <[HOST:]PORT>', configKey: 'admin', scope: 'global', repeatable: false,
    description: 'serve the admin HTTP API and Prometheus /metrics here; a bare port is on 127.0.0.1 (a non-loopback address needs --admin-token-file)' },
  { flags: '--admin-token-file <FILE>', configKey: 'admin-token-file', scope: 'global', repeatable: false,
    description: 'file holding the bearer token the admin API requires (re-read on reload)' },
  { flags: '--config <FILE>', configKey: '', scope: 'cli', repeatable: false,
    description: 'YAML or JSON file with one or more frontends (replaces the frontend flags)' },
];
