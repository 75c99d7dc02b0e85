// Stage 3, pure. Facts → the affinity lookups of the chain, in chain order. Placement walks
// them: a key that `names` a backend goes there outright, a `learned` key counts only when the affinity
// table already holds it (tls-session, tls-ticket), and a plain key is placed and pinned.
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import type { AffinityStep } from '../config/types.js';
import { formatAffinityStep } from '../config/types.js';
import type { Facts } from '../facts.js';
import type { Lookup } from '../place/place.js';
import { sourceNetwork } from './source.js';
import { ticketKeyName } from '../wire/tls/ticket-key-name.js';

/** An affinity key: the kind as spelled in `--affinity`, and its value. */
export interface AffinityKey {
  readonly kind: string;
  readonly value: string;
}


/** Where the names of the current pool's backends come from, for backend-name suffixes. */
export interface ChainContext {
  readonly backendNames: ReadonlySet<string>;
}

/**
 * Longest key value the affinity table stores as it is, in UTF-8 bytes. The keys tether makes
 * (an IPv6 /128 source, a session id or ticket key name in hex) and the usual session cookies
 * (JSESSIONID with a jvmRoute, PHPSESSID, a UUID) and host names are far shorter and stay
 * readable in an admin dump; a longer value (a 15 KB cookie cost 16.5 KB per entry, ~1.6 GB
 * per pool at the default cap) is stored as its hash, 46 characters.
 */
export const MAX_STORED_KEY_BYTES = 128;

/** Marks a stored value as a hash. Values that begin with it are hashed too, so no value can pose as another's hash. */
const HASHED_PREFIX = '#h:';

/**
 * A key value as the affinity table stores it: as it is, or `#h:` + SHA-256 (base64url) when it
 * is longer than MAX_STORED_KEY_BYTES or begins with `#h:`. The same value always maps to the
 * same stored form, so placement (rendezvous over the table key) and lookups agree.
 */
export function storedValue(value: string): string {
  if (value.length * 3 <= MAX_STORED_KEY_BYTES && !value.startsWith(HASHED_PREFIX)) return value;
  if (Buffer.byteLength(value, 'utf8') <= MAX_STORED_KEY_BYTES && !value.startsWith(HASHED_PREFIX)) return value;
  return HASHED_PREFIX + createHash('sha256').update(value, 'utf8').digest('base64url');
}

/** The affinity table's string form of a key (its value as storedValue() gives it). */
export function tableKey(key: AffinityKey): string {
  return `${key.kind}\u0000${storedValue(key.value)}`;
}

/** Tomcat jvmRoute style: a value ending in `.NAME` where NAME is a backend of the pool. */
function namedBackend(value: string, ctx: ChainContext): string | undefined {
  const dot = value.lastIndexOf('.');
  if (dot < 0) return undefined;
  const name = value.slice(dot + 1);
  return ctx.backendNames.has(name) ? name : undefined;
}

function lookup(kind: string, value: string, learned: boolean, names?: string): Lookup {
  const l = { kind, value, tableKey: tableKey({ kind, value }), learned };
  return names === undefined ? l : { ...l, names };
}

function lookupsFor(step: AffinityStep, facts: Facts, ctx: ChainContext): Lookup[] {
  // The mask is part of a source key's value (`192.0.2.0/24`), so its kind stays `source`.
  const kind = step.kind === 'source' ? 'source' : formatAffinityStep(step);
  const tls = facts.peek?.tls;
  const http = facts.peek?.http;
  switch (step.kind) {
    case 'none':
      return [];
    case 'source': {
      const value = sourceNetwork(facts.source, step.v4Bits, step.v6Bits);
      return value === undefined ? [] : [lookup(kind, value, false)];
    }
    case 'sni':
      return tls?.sni === undefined ? [] : [lookup(kind, tls.sni, false)];
    case 'tls-session':
      return tls && tls.sessionId !== '' ? [lookup(kind, tls.sessionId, true)] : [];
    case 'tls-ticket': {
      if (!tls) return [];
      const names = [tls.ticket, ...tls.pskIdentities].flatMap((t) => {
        const n = t === undefined ? undefined : ticketKeyName(t);
        return n === undefined ? [] : [n];
      });
      return [...new Set(names)].map((n) => lookup(kind, n, true));
    }
    case 'http-host':
      return http?.host === undefined ? [] : [lookup(kind, http.host, false)];
    case 'http-header': {
      const want = step.name.toLowerCase();
      const h = http?.headers.find(([n]) => n === want);
      return h === undefined || h[1] === '' ? [] : [lookup(kind, h[1], false)];
    }
    case 'http-cookie': {
      const v = http?.cookies.get(step.name);
      return v === undefined || v === '' ? [] : [lookup(kind, v, false, namedBackend(v, ctx))];
    }
    case 'url-param': {
      const v = http?.pathParams.get(step.name) ?? http?.query.get(step.name);
      return v === undefined || v === '' ? [] : [lookup(kind, v, false, namedBackend(v, ctx))];
    }
    case 'xmpp-to': {
      const to = facts.peek?.xmpp?.to;
      return to === undefined ? [] : [lookup(kind, to, false)];
    }
    case 'key-module':
      return facts.moduleKey === undefined || facts.moduleKey === '' ? [] : [lookup(kind, facts.moduleKey, false)];
    case 'login':
      return facts.login === undefined ? [] : [lookup(kind, facts.login.key, false, facts.login.backend)];
  }
}

/** Every lookup of the chain, in order (a step may give none, one, or several). */
export function chainLookups(chain: readonly AffinityStep[], facts: Facts, ctx: ChainContext): Lookup[] {
  return chain.flatMap((step) => lookupsFor(step, facts, ctx));
}

/** Whether the chain needs the peek stage (any step reads the client's first bytes). */
export function chainNeedsPeek(chain: readonly AffinityStep[]): boolean {
  for (const step of chain) {
    // A source key is always present: nothing after it is ever consulted. A login comes from
    // the greet stage, not from peeking.
    if (step.kind === 'source' || step.kind === 'none' || step.kind === 'login') return false;
    // Every other kind reads them, key-module included: its input carries the peeked
    // protocol, sni, alpn, http and xmppTo, which are absent unless tether peeks.
    return true;
  }
  return false;
}
