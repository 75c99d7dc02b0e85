// Admin, I/O. The admin HTTP API (`--admin HOST:PORT`): JSON views and operations over the running
// tether, and Prometheus text at /metrics. Optional bearer token (`--admin-token-file`); every
// endpoint but /health needs it when set. Request logs carry method, path and status — never query
// values, which may hold affinity key values (logins, cookies).
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { Registry } from 'prom-client';
import { formatAddress } from '../accept/port-range.js';
import type { Clock } from '../clock.js';
import { TetherError, errorCode } from '../errors.js';
import { EVENTS, flushSoon, keyHash, type Logger } from '../log.js';
import type { RunningFrontend, Tether } from '../runtime/types.js';
import { AdminError, dumpEntries, flushEntries, frontendNamed, frontendsView, moveEntry, poolsNamed, setBackendState, tableValue, type KeySelector } from './view.js';
import { storedValue, tableKey } from '../affinity/chain.js';
import { explain } from './explain.js';
import { BACKEND_ADMIN_STATES, type BackendAdmin } from '../config/types.js';
import { parseDuration } from '../options/parse.js';

/** Largest request body read (JSON parameters only). */
const MAX_BODY_BYTES = 64 * 1024;
/** Entries a dump returns unless `limit=` says otherwise; a full table can hold millions. */
const DEFAULT_DUMP_LIMIT = 1_000;
/** Slowloris guard: a request must arrive whole within this time. */
const REQUEST_TIMEOUT_MS = 10_000;

export interface AdminOptions {
  readonly host: string;
  readonly port: number;
  /** The bearer token now (a reload may replace it); undefined: none (loopback only, see validate). */
  readonly token: () => string | undefined;
}

export interface AdminDeps {
  readonly tether: Tether;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Re-reads the config source and applies it (the same as SIGHUP). */
  readonly reload: () => Promise<unknown>;
}

export interface AdminServer {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

type Params = Readonly<Record<string, string>>;
type Json = Record<string, unknown> | readonly unknown[];

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

function authorized(req: http.IncomingMessage, token: string | undefined): boolean {
  if (token === undefined) return true;
  const h = req.headers.authorization ?? '';
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  // Compare digests: equal lengths for timingSafeEqual, and no early exit on a prefix.
  return m?.[1] !== undefined && timingSafeEqual(digest(m[1]), digest(token));
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        // Answer 413 and close (send() sets `connection: close`); reading stops here.
        req.removeAllListeners('data');
        req.pause();
        reject(new AdminError(413, 'body-too-large', `request body over ${String(MAX_BODY_BYTES)} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
  });
}

/** Query parameters, plus a JSON object body's scalar fields (the body wins). */
async function params(req: http.IncomingMessage, url: URL): Promise<Params> {
  const out: Record<string, string> = Object.fromEntries(url.searchParams);
  if (req.method === 'GET' || req.method === 'HEAD') return out;
  const text = (await readBody(req)).trim();
  if (text === '') return out;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new AdminError(400, 'bad-json', 'the request body is not JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new AdminError(400, 'bad-json', 'the request body must be a JSON object');
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
    else throw new AdminError(400, 'bad-json', `field ${k}: expected a string, number or boolean`);
  }
  return out;
}

const flag = (v: string | undefined): boolean => v !== undefined && ['1', 'true', 'yes', ''].includes(v.toLowerCase());

/** The entries a request names; `withBackend` false for a move, whose backend= is the target. */
function selector(f: RunningFrontend, p: Params, withBackend = true): KeySelector {
  const kind = p['kind'];
  const value = p['value'];
  return {
    ...(kind === undefined ? {} : { kind }),
    ...(value === undefined ? {} : { value: kind === undefined ? value : tableValue(f, kind, value) }),
    ...(p['hash'] === undefined ? {} : { hash: p['hash'] }),
    ...(p['backend'] === undefined || !withBackend ? {} : { backend: p['backend'] }),
  };
}

function limitOf(p: Params): number {
  const v = p['limit'];
  if (v === undefined) return DEFAULT_DUMP_LIMIT;
  if (!/^\d{1,9}$/.test(v)) throw new AdminError(400, 'bad-limit', 'limit= takes a whole number');
  return Number(v);
}

/** Answers one request (one endpoint per method and path): a JSON body or the metrics text. */
async function answer(method: string, path: string, p: Params, deps: AdminDeps): Promise<{ status: number; json?: Json; text?: string; contentType?: string }> {
  const { tether, clock } = deps;
  const now = clock.now();
  const key = `${method} ${path}`;
  switch (key) {
    case 'GET /health':
      return { status: 200, json: { status: 'ok' } };
    case 'GET /metrics':
      return { status: 200, text: await deps.registry.metrics(), contentType: deps.registry.contentType };
    case 'GET /frontends':
      return { status: 200, json: frontendsView(tether, now) };
    case 'GET /affinity': {
      const f = frontendNamed(tether, p['frontend']);
      const r = dumpEntries(poolsNamed(f, p['pool']), selector(f, p), flag(p['reveal']), limitOf(p), now);
      return { status: 200, json: { frontend: f.name, total: r.total, entries: r.entries } };
    }
    case 'GET /affinity/lookup': {
      const f = frontendNamed(tether, p['frontend']);
      const kind = p['kind'];
      const value = p['value'];
      if (kind === undefined || value === undefined) throw new AdminError(400, 'key-required', 'lookup needs kind= and value=');
      const v = tableValue(f, kind, value);
      const found = poolsNamed(f, p['pool']).map((pr) => ({ pool: pr.name, backend: pr.table.peek(tableKey({ kind, value: v }), now) ?? null }));
      return { status: 200, json: { frontend: f.name, kind, hash: keyHash(storedValue(v)), pools: found } };
    }
    case 'DELETE /affinity':
    case 'POST /affinity/flush': {
      const f = frontendNamed(tether, p['frontend']);
      const removed = flushEntries(poolsNamed(f, p['pool']), selector(f, p), now);
      deps.logger.info({ event: EVENTS.adminFlush, frontend: f.name, pool: p['pool'] ?? null, kind: p['kind'] ?? null, backend: p['backend'] ?? null, removed }, 'affinity entries flushed');
      return { status: 200, json: { frontend: f.name, removed } };
    }
    case 'POST /affinity/move': {
      const f = frontendNamed(tether, p['frontend']);
      const pools = poolsNamed(f, p['pool'] ?? 'default');
      const backend = p['to'] ?? p['backend'];
      if (backend === undefined) throw new AdminError(400, 'backend-required', 'move needs to= (the backend to pin the key on)');
      const pr = pools[0];
      if (!pr) throw new AdminError(404, 'no-such-pool', 'no pool');
      const r = moveEntry(f, pr, selector(f, p, false), backend, flag(p['close']), now);
      deps.logger.info({ event: EVENTS.adminMove, frontend: f.name, pool: p['pool'] ?? 'default', kind: r.kind, hash: r.hash, from: r.from, to: backend, closed: r.closed }, 'affinity entry moved');
      flushSoon(deps.logger);
      return { status: 200, json: { frontend: f.name, ...r, to: backend } };
    }
    case 'POST /backends/state': {
      const f = frontendNamed(tether, p['frontend']);
      const name = p['backend'];
      const state = p['state'];
      if (name === undefined) throw new AdminError(400, 'backend-required', 'name the backend: backend=');
      if (state === undefined || !(BACKEND_ADMIN_STATES as readonly string[]).includes(state)) {
        throw new AdminError(400, 'bad-state', `state= takes one of ${BACKEND_ADMIN_STATES.join(', ')}`);
      }
      let deadline: number | undefined;
      if (p['deadline'] !== undefined) {
        if (state !== 'drain') throw new AdminError(400, 'bad-deadline', 'deadline= goes with state=drain only');
        const d = parseDuration(p['deadline']);
        if (!d.ok) throw new AdminError(400, 'bad-deadline', d.message);
        deadline = d.value;
      }
      const results = setBackendState(f, poolsNamed(f, p['pool']), name, state as BackendAdmin, deadline, now);
      for (const r of results) {
        if (!r.changed) continue;
        deps.logger.info({ event: EVENTS.adminState, frontend: f.name, pool: r.pool, backend: name, admin: state, state: r.state, ...(deadline === undefined ? {} : { deadlineMs: deadline }) }, 'backend state set');
      }
      flushSoon(deps.logger);
      return { status: 200, json: { frontend: f.name, backend: name, pools: results } };
    }
    case 'GET /explain': {
      const f = frontendNamed(tether, p['frontend']);
      return { status: 200, json: { ...(await explain(f, p, now)) } };
    }
    case 'POST /reload': {
      try {
        const report = await deps.reload();
        return { status: 200, json: { status: 'reloaded', report } };
      } catch (e) {
        if (e instanceof TetherError) {
          return { status: 422, json: { error: e.code, message: e.message, issues: e.issues.map((i) => `${i.path}: ${i.message}`) } };
        }
        throw e;
      }
    }
    default: {
      const known = ['/health', '/metrics', '/frontends', '/explain', '/backends/state', '/affinity', '/affinity/lookup', '/affinity/flush', '/affinity/move', '/reload'];
      if (known.includes(path)) throw new AdminError(405, 'method-not-allowed', `${method} is not served on ${path}`);
      throw new AdminError(404, 'not-found', `no admin endpoint ${path}`);
    }
  }
}

function send(res: http.ServerResponse, status: number, body: string, contentType: string): void {
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    // An unread request body (413) leaves the connection unusable: close it after the answer.
    ...(status === 413 ? { connection: 'close' } : {}),
  });
  res.end(body);
}

/** Starts the admin server. Rejects with TETHER_ERR_LISTEN when the address cannot be bound. */
export function startAdmin(options: AdminOptions, deps: AdminDeps): Promise<AdminServer> {
  const server = http.createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS }, (req, res) => {
    const method = req.method ?? 'GET';
    let path = '/';
    const done = (status: number): void => {
      deps.logger.info({ event: EVENTS.adminRequest, method, path, status }, 'admin request');
    };
    void (async () => {
      let url: URL;
      try {
        url = new URL(req.url ?? '/', 'http://admin');
      } catch {
        send(res, 400, JSON.stringify({ error: 'bad-url', message: 'unparsable request target' }) + '\n', 'application/json');
        done(400);
        return;
      }
      path = url.pathname.replace(/\/+$/, '') || '/';
      if (path !== '/health' && !authorized(req, options.token())) {
        res.setHeader('www-authenticate', 'Bearer realm="tether"');
        send(res, 401, JSON.stringify({ error: 'unauthorized', message: 'a valid bearer token is required' }) + '\n', 'application/json');
        done(401);
        return;
      }
      try {
        const r = await answer(method, path, await params(req, url), deps);
        if (r.text !== undefined) send(res, r.status, r.text, r.contentType ?? 'text/plain');
        else send(res, r.status, JSON.stringify(r.json, null, 2) + '\n', 'application/json');
        done(r.status);
      } catch (e) {
        if (e instanceof AdminError) {
          send(res, e.status, JSON.stringify({ error: e.code, message: e.message }) + '\n', 'application/json');
          done(e.status);
          return;
        }
        deps.logger.error({ event: EVENTS.internalError, code: 'TETHER_ERR_INTERNAL', err: e instanceof Error ? e.stack : String(e) }, 'admin request failed');
        if (!res.headersSent) send(res, 500, JSON.stringify({ error: 'internal', message: 'internal error' }) + '\n', 'application/json');
        else res.destroy();
        done(500);
      }
    })();
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err) => {
      reject(new TetherError('TETHER_ERR_LISTEN', `cannot listen on ${formatAddress(options.host, options.port)} (admin): ${errorCode(err) ?? String(err)}`, { cause: err }));
    });
    server.listen({ host: options.host, port: options.port }, () => {
      server.on('error', (err) => {
        deps.logger.error({ event: EVENTS.acceptError, frontend: 'admin', code: errorCode(err) ?? 'error' }, 'admin accept failed');
      });
      const a = server.address();
      const port = a !== null && typeof a === 'object' ? a.port : options.port;
      deps.logger.info({ event: EVENTS.adminReady, address: formatAddress(options.host, port), host: options.host, port }, 'admin API listening');
      flushSoon(deps.logger);
      resolve({
        host: options.host,
        port,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => {
              r();
            });
            server.closeAllConnections();
          }),
      });
    });
  });
}

