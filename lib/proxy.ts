// Composition root, I/O. Builds the running frontends from a Config and carries each client
// through the stages: accept → key → place → dial (with failover) → splice → one conn.close line.
import type net from 'node:net';
import { closeListeners, listenAll, type Listener } from './accept/listen.js';
import { formatAddress } from './accept/port-range.js';
import { firstKey, tableKey, type AffinityKey } from './affinity/chain.js';
import type { Clock, Rng } from './clock.js';
import type { Config, FrontendConfig } from './config/types.js';
import { dial } from './connect/dial.js';
import type { Termination } from './errors.js';
import type { Facts } from './facts.js';
import { EVENTS, keyHash, type Logger } from './log.js';
import { splice, type Splice } from './pipe/splice.js';
import { AffinityTable } from './place/affinity-table.js';
import { createBalancer, type Balancer } from './place/balance.js';
import { place } from './place/place.js';
import { Pool, type Backend } from './place/pool.js';

/** How long a client we could not place or connect may linger before we drop it. */
const REFUSE_LINGER_MS = 2_000;

export interface Deps {
  readonly logger: Logger;
  readonly clock: Clock;
  readonly rng: Rng;
}

/** One running frontend: its config, listeners, pool, table and open connections. */
export interface Frontend {
  readonly config: FrontendConfig;
  readonly listeners: readonly Listener[];
  readonly pool: Pool;
  readonly table: AffinityTable;
  readonly balancer: Balancer;
  /** Open connections: client socket → a way to cut it. */
  readonly open: Map<net.Socket, () => void>;
}

/** A running tether: every frontend, and a graceful stop. */
export interface Tether {
  readonly frontends: readonly Frontend[];
  /** Stops accepting, waits up to `graceMs` for open connections, then cuts the rest. */
  stop(graceMs: number): Promise<void>;
}

let nextConnId = 1;

interface Outcome {
  termination: Termination;
  backend?: Backend;
  via?: 'table' | 'balance';
  bytesIn: number;
  bytesOut: number;
  tries: number;
}

/** Closes a client we will not serve: FIN, drain whatever it sends, drop it after a short wait. */
function refuse(client: net.Socket): void {
  client.on('data', () => undefined);
  client.resume();
  client.end();
  setTimeout(() => client.destroy(), REFUSE_LINGER_MS).unref();
}

/** Dials placements until one connects or the retries run out. */
async function connectWithFailover(
  client: net.Socket,
  fe: Frontend,
  facts: Facts,
  key: string | undefined,
  deps: Deps,
  log: Logger,
): Promise<{ socket: net.Socket; backend: Backend; via: 'table' | 'balance'; tries: number } | { termination: Termination; tries: number }> {
  const { config, pool } = fe;
  const exclude = new Set<string>();
  let lastCode = 'no-backend';
  // Whether the last failed dial timed out: the termination then says `backend-timeout`
  // (HAProxy's "sC") rather than `backend` (a refusal, "SC"), as its code already does.
  let lastTimedOut = false;
  const client_ = { gone: false };
  const onClientClose = (): void => {
    client_.gone = true;
  };
  client.once('close', onClientClose);
  try {
    for (let tries = 1; tries <= config.retries + 1; tries++) {
      const p = place({ table: fe.table, pool, balancer: fe.balancer, key, nowMs: deps.clock.now(), exclude });
      if (!p) {
        // Nothing (left) to dial. With nothing tried yet, every backend is held down after
        // failing: still the backends' doing, not tether's (`tether` means a bug or a stop).
        const cause = lastTimedOut ? 'backend-timeout' : 'backend';
        return { termination: { cause, stage: exclude.size === 0 ? 'place' : 'connect', code: lastCode }, tries: tries - 1 };
      }
      const b = p.backend;
      b.active++;
      const port = b.spec.port ?? facts.localPort;
      const r = await dial(b.spec.host, port, config.connectTimeoutMs);
      if (client_.gone) {
        b.active--;
        if (r.ok) r.socket.destroy();
        return { termination: { cause: 'client', stage: 'connect', code: 'client-closed' }, tries };
      }
      if (r.ok) {
        b.total++;
        if (pool.markUp(b)) log.info({ event: EVENTS.backendUp, frontend: config.name, backend: b.name }, 'backend up');
        return { socket: r.socket, backend: b, via: p.via, tries };
      }
      b.active--;
      lastCode = r.code;
      lastTimedOut = r.timeout;
      exclude.add(b.name);
      log.warn(
        { event: EVENTS.connectFail, frontend: config.name, backend: b.name, address: formatAddress(b.spec.host, port), code: r.code },
        'backend connect failed',
      );
      if (pool.markDown(b, deps.clock.now(), config.holdDownMs)) {
        log.warn({ event: EVENTS.backendDown, frontend: config.name, backend: b.name, code: r.code, holdDownMs: config.holdDownMs }, 'backend down');
      }
    }
    return { termination: { cause: lastTimedOut ? 'backend-timeout' : 'backend', stage: 'connect', code: lastCode }, tries: config.retries + 1 };
  } finally {
    client.off('close', onClientClose);
  }
}

/** Handles one accepted client from accept to close. Never throws; resolves once it is closed. */
async function handleConnection(client: net.Socket, fe: Frontend, deps: Deps): Promise<void> {
  const conn = nextConnId++;
  const startedMs = deps.clock.now();
  const log = deps.logger;
  let firstError: string | undefined;
  // Until the splice owns the socket, an error only means the client went away; that is
  // recorded through clientGone/termination, so the error itself needs no more handling.
  const preError = (err: Error): void => {
    firstError ??= (err as NodeJS.ErrnoException).code ?? 'error';
  };
  client.on('error', preError);
  const facts: Facts = {
    source: client.remoteAddress ?? '',
    sourcePort: client.remotePort ?? 0,
    localPort: client.localPort ?? 0,
  };
  const stopping = { cut: false };
  fe.open.set(client, () => {
    stopping.cut = true;
    client.destroy();
  });

  const key: AffinityKey | undefined = firstKey(fe.config.affinity, facts);
  let outcome: Outcome;
  if (facts.source === '') {
    outcome = { termination: { cause: 'client', stage: 'accept', code: firstError ?? 'gone' }, bytesIn: 0, bytesOut: 0, tries: 0 };
  } else {
    const c = await connectWithFailover(client, fe, facts, key ? tableKey(key) : undefined, deps, log);
    if ('termination' in c) {
      if (!client.destroyed) refuse(client);
      outcome = { termination: stopping.cut ? { cause: 'tether', stage: 'shutdown' } : c.termination, bytesIn: 0, bytesOut: 0, tries: c.tries };
    } else {
      client.off('error', preError);
      const s: Splice = splice(client, c.socket, [], fe.config.idleTimeoutMs);
      fe.open.set(client, s.cut);
      if (stopping.cut) s.cut();
      const r = await s.done;
      c.backend.active--;
      outcome = { termination: r.termination, backend: c.backend, via: c.via, bytesIn: r.bytesIn, bytesOut: r.bytesOut, tries: c.tries };
    }
  }
  fe.open.delete(client);
  log.info(
    {
      event: EVENTS.connClose,
      conn,
      frontend: fe.config.name,
      client: formatAddress(facts.source, facts.sourcePort),
      port: facts.localPort,
      backend: outcome.backend?.name ?? null,
      key: key ? { kind: key.kind, hash: keyHash(key.value) } : null,
      via: outcome.via ?? null,
      tries: outcome.tries,
      bytesIn: outcome.bytesIn,
      bytesOut: outcome.bytesOut,
      durationMs: deps.clock.now() - startedMs,
      termination: outcome.termination,
    },
    'connection closed',
  );
}

/** Binds one frontend's listeners and starts serving. Rejects with TETHER_ERR_LISTEN. */
async function startFrontend(config: FrontendConfig, deps: Deps): Promise<Frontend> {
  const pool = new Pool(config.backends);
  const table = new AffinityTable(config.affinityTimeoutMs, config.affinityMaxEntries);
  const balancer = createBalancer(config.balance, deps.rng);
  const open = new Map<net.Socket, () => void>();
  let lastAcceptErrorMs = -Infinity;
  const feRef: { fe?: Frontend } = {};
  const listeners = await listenAll(
    config.listen,
    (client) => {
      const fe = feRef.fe;
      if (!fe) {
        client.destroy();
        return;
      }
      handleConnection(client, fe, deps).catch((err: unknown) => {
        // A bug (HAProxy's "should never happen"): end this connection, keep serving the rest.
        fe.open.delete(client);
        client.destroy();
        deps.logger.error(
          { event: EVENTS.internalError, frontend: config.name, code: 'TETHER_ERR_INTERNAL', err: err instanceof Error ? err.stack : String(err) },
          'internal error; connection closed',
        );
      });
    },
    (err, addr) => {
      // Accept errors (EMFILE, ENFILE) repeat once per attempt: log at most once a second.
      const now = deps.clock.now();
      if (now - lastAcceptErrorMs < 1_000) return;
      lastAcceptErrorMs = now;
      deps.logger.error(
        { event: EVENTS.acceptError, frontend: config.name, address: formatAddress(addr.host, addr.port), code: (err as NodeJS.ErrnoException).code },
        'accept failed',
      );
    },
  );
  const fe: Frontend = { config, listeners, pool, table, balancer, open };
  feRef.fe = fe;
  for (const l of listeners) {
    deps.logger.info(
      { event: EVENTS.listenReady, frontend: config.name, address: formatAddress(l.host, l.port), host: l.host, port: l.port },
      'listening',
    );
  }
  return fe;
}

/** Starts every frontend of `config`. On a listen failure, closes what was bound and rejects. */
export async function startTether(config: Config, deps: Deps): Promise<Tether> {
  const frontends: Frontend[] = [];
  try {
    for (const fc of config.frontends) frontends.push(await startFrontend(fc, deps));
  } catch (e) {
    await Promise.all(frontends.map((f) => closeListeners(f.listeners)));
    throw e;
  }
  return {
    frontends,
    async stop(graceMs: number): Promise<void> {
      await Promise.all(frontends.map((f) => closeListeners(f.listeners)));
      const openCount = (): number => frontends.reduce((n, f) => n + f.open.size, 0);
      deps.logger.info({ event: EVENTS.stopBegin, open: openCount(), graceMs }, 'stopping: listeners closed');
      const deadline = deps.clock.now() + graceMs;
      while (openCount() > 0 && deps.clock.now() < deadline) {
        await new Promise((r) => setTimeout(r, Math.min(50, Math.max(1, deadline - deps.clock.now()))));
      }
      const cut = openCount();
      for (const f of frontends) for (const c of [...f.open.values()]) c();
      while (openCount() > 0) await new Promise((r) => setTimeout(r, 5));
      deps.logger.info({ event: EVENTS.stopDone, cut }, 'stopped');
    },
  };
}
