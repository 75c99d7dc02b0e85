// Config-file values that are more than one scalar: a backend as a mapping, `pools`, `routes`,
// and the helpers every file value goes through (a scalar through its parser, unknown keys,
// one-or-a-list). Pure; every problem is an issue at its field path.
import { noteOrigin } from '../config/origin.js';
import type { ConfigIssue } from '../errors.js';
import * as D from '../config/defaults.js';
import { BACKEND_ADMIN_STATES, PEEK_PROTOCOLS, type BackendSpec, type PeekProtocol, type PoolConfig, type RouteRule } from '../config/types.js';
import { parseBackend, parseBalance, parseCount, parseHostPattern, type Parser } from './parse.js';

const POOL_KEYS = ['backends', 'balance'] as const;
const ROUTE_KEYS = ['pool', 'protocol', 'sni', 'alpn', 'http-host'] as const;
const BACKEND_KEYS = ['name', 'host', 'port', 'weight', 'max-conns', 'backup', 'state'] as const;

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** Runs a value parser on a scalar (a string or a number), its problem an issue at `path`. */
export function scalar<T>(v: unknown, path: string, parse: Parser<T>, issues: ConfigIssue[]): T | undefined {
  if (typeof v !== 'string' && typeof v !== 'number') {
    issues.push({ path, message: `expected a string or number, got ${describe(v)}` });
    return undefined;
  }
  const p = parse(String(v));
  if (p.ok) return p.value;
  issues.push({ path, message: p.message });
  return undefined;
}

export function unknownKeys(obj: Record<string, unknown>, known: readonly string[], at: string, issues: ConfigIssue[]): void {
  for (const k of Object.keys(obj)) {
    if (!known.includes(k)) {
      issues.push({ path: at === '' ? k : `${at}.${k}`, message: `unknown field; expected one of ${known.join(', ')}` });
    }
  }
}

export function listOf(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [v];
}

/** A backend as a mapping (`{ name, host, port, weight, max-conns, backup, state }`). */
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

/** One `backends` item of a file: a mapping or the `--backend` string. */
export function backendItem(b: unknown, at: string, issues: ConfigIssue[]): BackendSpec | undefined {
  return isRecord(b) ? backendFromObject(b, at, issues) : scalar(b, at, parseBackend, issues);
}

/** A `backends` list (or one item) of a file. */
function backendList(v: unknown, at: string, issues: ConfigIssue[]): BackendSpec[] {
  const backends: BackendSpec[] = [];
  listOf(v).forEach((b, i) => {
    const path = Array.isArray(v) ? `${at}[${String(i)}]` : at;
    const spec = backendItem(b, path, issues);
    if (spec) {
      noteOrigin(spec, path);
      backends.push(spec);
    }
  });
  return backends;
}

/** `pools: { NAME: { backends: [...], balance: … } }`. */
export function poolsFrom(v: unknown, at: string, issues: ConfigIssue[]): PoolConfig[] {
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
export function routesFrom(v: unknown, at: string, issues: ConfigIssue[]): RouteRule[] {
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
    noteOrigin(rule, here);
    routes.push(rule);
  });
  return routes;
}

