// The value parsers: one pure function per option micro-syntax (durations, counts, listen
// addresses, backends, affinity chains, …), shared by flags and config files. Each returns a
// Parsed — the value, or the message saying what was expected and what came — and never
// throws; the option table (table.ts) turns a message into a flag's or a file path's issue.
import ipaddr from 'ipaddr.js';
import type { AffinityStep, BackendAdmin, BackendSpec, BalanceKind, ListenSpec } from '../config/types.js';
import { BALANCE_KINDS } from '../config/types.js';
import { MAX_CONNS_LIMIT, MAX_HEALTH_SEND_BYTES } from '../config/defaults.js';
import { compileExpect } from '../health/check.js';
import { LOG_LEVELS, type LogLevel } from '../log.js';

/** What a parser gives: the value, or the problem (`expected …, got "…"`). */
export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string };

/** A parser of one option value. */
export type Parser<T> = (text: string) => Parsed<T>;

export const LISTEN_SYNTAX = 'HOST:PORT or HOST:PORT-PORT ([::1]:PORT for IPv6)';
export const BACKEND_SYNTAX = '[NAME=]HOST[:PORT][,weight=N][,max-conns=N][,backup][,drain[=DURATION]|,maint]';
export const AFFINITY_SYNTAX =
  'a comma list of: none, source[/V4BITS[/V6BITS]], sni, tls-session, tls-ticket, http-host, http-header:NAME, http-cookie:NAME, url-param:NAME, xmpp-to, key-module, login';
export const DURATION_SYNTAX = 'a duration such as 500ms, 30s, 10m, 1h (a bare number is milliseconds)';

/** A value that does not parse; caught at the exported parser's edge and turned into a Parsed. */
class Bad {
  constructor(readonly message: string) {}
}

function fail(expected: string, got: string): never {
  // eslint-disable-next-line @typescript-eslint/only-throw-error -- internal control flow, caught by parser()
  throw new Bad(`expected ${expected}, got ${JSON.stringify(got)}`);
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
function listenOf(text: string): ListenSpec {
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
function backendOf(text: string): BackendSpec {
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
          ms = durationOf(d[1]);
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
function affinityChainOf(text: string): AffinityStep[] {
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

/** Parses `--balance`. */
function balanceOf(text: string): BalanceKind {
  const found = BALANCE_KINDS.find((k) => k === text.trim());
  if (found === undefined) fail(`one of ${BALANCE_KINDS.join(', ')}`, text);
  return found;
}

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses a duration (`500ms`, `30s`, `1.5m`, `10m`, `1h`, `1d`, or bare milliseconds) to ms. */
function durationOf(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m?.[1]) fail(DURATION_SYNTAX, text);
  const ms = Math.round(Number(m[1]) * (UNIT_MS[m[2] ?? 'ms'] ?? 1));
  if (!Number.isSafeInteger(ms) || ms > 2_147_483_647) fail(`${DURATION_SYNTAX}, at most 24d`, text);
  return ms;
}

/** Parses a whole number within [min, max]. */
function countOf(min: number, max: number): (text: string) => number {
  return (text: string) => {
    const t = text.trim();
    if (!/^\d+$/.test(t)) fail(`a whole number from ${String(min)} to ${String(max)}`, text);
    const n = Number(t);
    if (n < min || n > max) fail(`a whole number from ${String(min)} to ${String(max)}`, text);
    return n;
  };
}

/** Parses `--log-level`. */
function logLevelOf(text: string): LogLevel {
  const found = LOG_LEVELS.find((l) => l === text.trim());
  if (found === undefined) fail(`one of ${LOG_LEVELS.join(', ')}`, text);
  return found;
}

function choiceOf<T extends string>(choices: readonly T[]): (text: string) => T {
  return (text: string) => {
    const found = choices.find((c) => c === text.trim());
    if (found === undefined) fail(`one of ${choices.join(', ')}`, text);
    return found;
  };
}

/** Parses `--user-lookup URL`: an http:// or https:// URL (tether adds `user=NAME`). */
function lookupUrlOf(text: string): string {
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
function cidrOf(text: string): string {
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
function cookieNameOf(text: string): string {
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/.test(text)) fail('a cookie name (letters, digits and !#$%&\'*+.^_`|~-)', text);
  return text;
}

/** Parses a host pattern for routes: `mail.example.com` or `*.example.com`; lower-cased. */
function hostPatternOf(text: string): string {
  // SNI and Host are compared without their trailing dot (client-hello.ts, request-head.ts), so
  // the pattern drops it too: `mail.example.com.` would otherwise never match.
  const t = text.trim().toLowerCase().replace(/\.$/, '');
  const bare = t.startsWith('*.') ? t.slice(2) : t;
  if (!isHost(bare) || bare.includes(':') || bare.endsWith('.')) fail('a host name or *.domain', text);
  return t;
}

/** Parses `--admin [HOST:]PORT` (one port; 0 picks a free one); a bare port is on 127.0.0.1. */
function adminAddressOf(text: string): { readonly host: string; readonly port: number } {
  const bare = /^\d{1,5}$/.test(text.trim()) ? parsePort(text.trim(), true) : undefined;
  if (bare !== undefined) return { host: '127.0.0.1', port: bare };
  const hp = splitHostPort(text.trim(), false);
  const port = hp?.rest === undefined ? undefined : /^\d{1,5}$/.test(hp.rest) ? parsePort(hp.rest, true) : undefined;
  if (!hp || !isHost(hp.host) || port === undefined) fail('[HOST:]PORT (one port, e.g. 9900 or 127.0.0.1:9900)', text);
  return { host: hp.host, port };
}

/** Parses `--health-expect REGEX`: a JavaScript regular expression (compiled with the `m` flag). */
function expectOf(text: string): string {
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
function sendStringOf(text: string): string {
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
function nameOf(text: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(text)) fail(`a name of letters, digits, '_', '.', '-'`, text);
  return text;
}


/** Wraps a throwing parse function: Bad becomes `{ ok: false }`; anything else is a bug and is rethrown. */
function parser<T>(f: (text: string) => T): Parser<T> {
  return (text) => {
    try {
      return { ok: true, value: f(text) };
    } catch (e) {
      if (e instanceof Bad) return { ok: false, message: e.message };
      throw e;
    }
  };
}

export const parseListen = parser(listenOf);
export const parseBackend = parser(backendOf);
export const parseAffinityChain = parser(affinityChainOf);
export const parseBalance = parser(balanceOf);
export const parseDuration = parser(durationOf);
export const parseLogLevel = parser(logLevelOf);
export const parseLookupUrl = parser(lookupUrlOf);
export const parseCidr = parser(cidrOf);
export const parseCookieName = parser(cookieNameOf);
export const parseHostPattern = parser(hostPatternOf);
export const parseAdminAddress = parser(adminAddressOf);
export const parseExpect = parser(expectOf);
export const parseSendString = parser(sendStringOf);
export const parseName = parser(nameOf);

/** A whole number within [min, max]. */
export function parseCount(min: number, max: number): Parser<number> {
  return parser(countOf(min, max));
}

/** Exactly one of `choices`. */
export function parseChoice<T extends string>(choices: readonly T[]): Parser<T> {
  return parser(choiceOf(choices));
}

/** Any text (a file path, a module path): accepted as given. */
export const parseText: Parser<string> = (text) => ({ ok: true, value: text });
