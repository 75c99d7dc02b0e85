// Admin. `explain`: given a client address and key values, which backend tether would choose
// now and why. It derives the lookups exactly as live traffic does (chainLookups over Facts built
// from the parameters) and runs place() against a read-only view of the affinity table, so
// explaining changes no entry, counter or balancer state.
import { chainLookups, storedValue } from '../affinity/chain.js';
import { seededRng } from '../clock.js';
import type { Facts } from '../facts.js';
import { keyHash } from '../log.js';
import type { PeekFacts } from '../peek/sniff.js';
import { createBalancer } from '../place/balance.js';
import { place } from '../place/place.js';
import { selectPool } from '../place/route.js';
import type { RunningFrontend } from '../runtime/types.js';
import { formatAffinityStep } from '../config/types.js';
import { AdminError } from './view.js';

type Params = Readonly<Record<string, string>>;

export interface ExplainStep {
  readonly kind: string;
  readonly hash: string;
  /** The backend the affinity table pins this key to, if any. */
  readonly pinned: string | null;
  /** A backend named by the key itself (a cookie's backend suffix, user directory). */
  readonly names: string | null;
  /** tls-session / tls-ticket keys count only on a table hit. */
  readonly learnedOnly: boolean;
}

export interface Explanation {
  readonly frontend: string;
  readonly pool: string;
  readonly backend: string | null;
  readonly via: 'named' | 'table' | 'balance' | null;
  readonly key: { readonly kind: string; readonly hash: string } | null;
  readonly reason: string;
  readonly steps: readonly ExplainStep[];
  /** Backends that may take a new client now. */
  readonly candidates: readonly string[];
  readonly balance: string;
}

/** Builds the facts a client with these parameters would produce. */
async function factsFrom(f: RunningFrontend, p: Params): Promise<Facts> {
  const chainParam = (kind: string): string | undefined => p[kind];
  const tlsGiven = ['sni', 'alpn', 'tls-session', 'tls-ticket'].some((k) => p[k] !== undefined);
  const cookies = new Map<string, string>();
  const query = new Map<string, string>();
  const headers: [string, string][] = [];
  for (const step of f.current.config.affinity) {
    if (step.kind !== 'http-cookie' && step.kind !== 'http-header' && step.kind !== 'url-param') continue;
    const v = chainParam(formatAffinityStep(step));
    if (v === undefined) continue;
    if (step.kind === 'http-cookie') cookies.set(step.name, v);
    else if (step.kind === 'url-param') query.set(step.name, v);
    else headers.push([step.name.toLowerCase(), v]);
  }
  const httpGiven = p['http-host'] !== undefined || cookies.size + query.size + headers.length > 0;
  const protocol = (p['protocol'] ?? (tlsGiven ? 'tls' : httpGiven ? 'http' : p['xmpp-to'] !== undefined ? 'xmpp' : undefined)) as PeekFacts['protocol'] | undefined;
  const sessionId = p['tls-session'];
  const ticketName = p['tls-ticket'];
  if (sessionId !== undefined && !/^([0-9a-fA-F]{2}){1,32}$/.test(sessionId)) throw new AdminError(400, 'bad-key', 'tls-session= takes the session id in hex (1-32 bytes)');
  if (ticketName !== undefined && !/^[0-9a-fA-F]{32}$/.test(ticketName)) throw new AdminError(400, 'bad-key', 'tls-ticket= takes the 16-byte key name in hex');
  const peek: PeekFacts | undefined =
    protocol === undefined
      ? undefined
      : {
          protocol,
          ...(tlsGiven
            ? {
                tls: {
                  legacyVersion: 0x0303,
                  sessionId: sessionId?.toLowerCase() ?? '',
                  ...(p['sni'] === undefined ? {} : { sni: p['sni'].toLowerCase() }),
                  alpn: p['alpn'] === undefined ? [] : [p['alpn']],
                  supportedVersions: [],
                  // A ticket in RFC 5077's layout whose key_name is the one given.
                  ...(ticketName === undefined ? {} : { ticket: Buffer.concat([Buffer.from(ticketName, 'hex'), Buffer.alloc(32)]) }),
                  pskIdentities: [],
                },
              }
            : {}),
          ...(httpGiven
            ? {
                http: {
                  method: 'GET',
                  target: '/',
                  version: 'HTTP/1.1',
                  headers,
                  ...(p['http-host'] === undefined ? {} : { host: p['http-host'].toLowerCase() }),
                  cookies,
                  query,
                  pathParams: new Map<string, string>(),
                },
              }
            : {}),
          ...(p['xmpp-to'] === undefined ? {} : { xmpp: { to: p['xmpp-to'].toLowerCase() } }),
        };
  const login = p['login'];
  const named = login === undefined ? undefined : await f.current.mail?.directory?.lookup(login);
  return {
    source: p['source'] ?? '',
    sourcePort: 0,
    localPort: f.current.config.listen[0]?.portLow ?? 0,
    ...(peek === undefined ? {} : { peek }),
    ...(p['key-module'] === undefined ? {} : { moduleKey: p['key-module'] }),
    ...(login === undefined ? {} : { login: named === undefined ? { key: login } : { key: login, backend: named } }),
  };
}

/** Where a client with these parameters would go now, and why. Changes nothing. */
export async function explain(f: RunningFrontend, p: Params, nowMs: number): Promise<Explanation> {
  const fe = f.current;
  const facts = await factsFrom(f, p);
  const poolName = p['pool'] ?? selectPool(fe.config.routes, facts.peek);
  const pr = fe.pools.get(poolName);
  if (!pr) throw new AdminError(404, 'no-such-pool', `frontend ${f.name} has no pool named ${JSON.stringify(poolName)}`);
  const lookups = chainLookups(fe.config.affinity, facts, { backendNames: pr.backendNames });
  const view = { get: (key: string, now: number): string | undefined => pr.table.peek(key, now), set: (): void => undefined };
  // A fresh balancer of the same policy: `hash` answers exactly as the live one; roundrobin,
  // leastconn and random2 depend on their running state, so their pick is one possible answer.
  const balancer = createBalancer(pr.balance, seededRng(1));
  const p0 = place({ table: view, pool: pr.pool, balancer, lookups, nowMs, exclude: new Set() });
  const steps = lookups.map((l) => ({ kind: l.kind, hash: keyHash(storedValue(l.value)), pinned: pr.table.peek(l.tableKey, nowMs) ?? null, names: l.names ?? null, learnedOnly: l.learned }));
  const candidates = pr.pool.candidates(nowMs).map((b) => b.name);
  const base = { frontend: f.name, pool: pr.name, steps, candidates, balance: pr.balance };
  if (!p0) return { ...base, backend: null, via: null, key: null, reason: 'no backend can take a new client now (all down, in maintenance or held down)' };
  if (p0 === 'full') {
    return { ...base, backend: null, via: null, key: null, reason: `the backend for this client is at its max-conns: it would wait in the pool's queue (${String(pr.queue.size)} waiting)` };
  }
  const decided = lookups.find((l) => l.tableKey === p0.lookup?.tableKey);
  const key = decided ? { kind: decided.kind, hash: keyHash(decided.value) } : null;
  const b = p0.backend.name;
  let reason: string;
  if (p0.via === 'named') reason = p0.lookup ? `the ${p0.lookup.kind} key names backend ${b}` : `the client names backend ${b}`;
  else if (p0.via === 'table') reason = `affinity-table hit: the ${key?.kind ?? ''} key is pinned to ${b}`;
  else if (!p0.lookup) reason = lookups.length === 0 ? `no key of the chain is present: each connection is balanced (${pr.balance}) → ${b}` : `only learned keys, none known yet: balanced (${pr.balance}) → ${b}`;
  else {
    const stale = steps.find((s) => s.hash === key?.hash && s.kind === key.kind)?.pinned;
    const why = stale !== null && stale !== undefined ? `pinned to ${stale}, which cannot take clients now; re-placed` : 'no entry yet';
    reason = `the ${p0.lookup.kind} key has ${why}: ${pr.balance} ${pr.balance === 'hash' ? 'places it' : 'would place it (one possible pick)'} on ${b}`;
  }
  return { ...base, backend: b, via: p0.via, key, reason };
}
