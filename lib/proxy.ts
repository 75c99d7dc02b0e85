// Composition root, I/O. Builds the running frontends from a Config and carries each client
// through the stages: accept → key → place → dial (with failover) → splice → one conn.close line.
import net from 'node:net';
import tls from 'node:tls';
import { UserDirectory, loginKey } from './affinity/directory.js';
import { loginAtBackend } from './connect/replay.js';
import { converse } from './greet/converse.js';
import { MAX_BAD_BEFORE_LOGIN, MAX_COMMANDS_BEFORE_LOGIN, type Login } from './greet/dialogue.js';
import { closeListeners, listenAll, type Listener } from './accept/listen.js';
import { expandListen, type BindAddress } from './accept/port-range.js';
import type { Activation } from './systemd/activation.js';
import { compileAcl } from './accept/acl.js';
import { acceptLimit, Throttle, type LimitName } from './accept/limits.js';
import { holdWhile } from './connect/hold.js';
import { isFdShortage, watchFds } from './accept/fd-watch.js';
import { unavailableReply } from './connect/unavailable.js';
import { WaitQueue, waitTermination } from './place/queue.js';
import { readProxyHeader } from './accept/proxy-header.js';
import { encodeProxyV1, encodeProxyV2, parseProxyHeader } from './wire/proxy/header.js';
import { formatAddress } from './accept/port-range.js';
import { chainLookups, chainNeedsPeek, storedValue, tableKey } from './affinity/chain.js';
import { KeyModule, type KeyModuleInput } from './affinity/key-module.js';
import { describeFileError, MAX_PEM_BYTES, readFileBounded } from './files/read.js';
import { MAX_PRELUDE_BYTES } from './config/defaults.js';
import { peek } from './peek/collect.js';
import { responseHeadRewriter, tlsWatcher, type Pin } from './splice/watch.js';
import { selectPool } from './place/route.js';
import { realTimers } from './clock.js';
import type { BackendSpec, Config, FrontendConfig } from './config/types.js';
import { dial } from './connect/dial.js';
import { TICKET_PROBE_INTERVAL_MS, probeTicketKeyName } from './connect/ticket-probe.js';
import { TetherError, errorCode, type Termination } from './errors.js';
import type { Facts } from './facts.js';
import { EVENTS, flushSoon, keyHash, type Logger } from './log.js';
import { splice, type Splice, type SpliceOptions } from './splice/splice.js';
import { AffinityTable } from './place/affinity-table.js';
import { createBalancer } from './place/balance.js';
import { place, type Lookup, type Placement } from './place/place.js';
import { Pool, type Backend } from './place/pool.js';
import { startHealthChecks } from './health/monitor.js';
import { newFrontendStats, type Deps, type Frontend, type FrontendStats, type MailRuntime, type OpenConn, type PoolRuntime, type ReloadReport, type RunningFrontend, type Shared, type Tether } from './runtime/types.js';

/** Time for a backend's greeting, STARTTLS and login answer, on top of the connect timeout. */
const BACKEND_LOGIN_EXTRA_MS = 10_000;

/**
 * How long a stop waits for a reload under way. Loading a key module is bounded at 5 s
 * (KEY_MODULE_LOAD_TIMEOUT_MS) and the rest of a reload reads small files; past 6 s the reload is
 * stuck, and the stop goes on without it.
 */
const STOP_RELOAD_WAIT_MS = 6_000;

/** How long a client we could not place or connect may linger before we drop it. */
const REFUSE_LINGER_MS = 2_000;

/** `limit.reached` is logged at most once a second per frontend and limit, however many hit it. */
const LIMIT_LOG_INTERVAL_MS = 1_000;

async function mailRuntime(config: FrontendConfig, deps: Deps): Promise<MailRuntime | undefined> {
  const protocol = config.protocol;
  if (protocol === 'auto') return undefined;
  const m = config.mail;
  const read = async (file: string, what: string): Promise<Buffer> => {
    try {
      return await readFileBounded(file, { maxBytes: MAX_PEM_BYTES });
    } catch (e) {
      throw new TetherError('TETHER_ERR_CONFIG', `cannot read ${what} ${file}: ${describeFileError(e)}`, { cause: e });
    }
  };
  let secureContext: tls.SecureContext | undefined;
  if (m.tls !== 'none' && m.tlsCert !== undefined && m.tlsKey !== undefined) {
    // In order, so a run missing both files always names --tls-cert first (Promise.all would
    // report whichever read failed first).
    const cert = await read(m.tlsCert, '--tls-cert');
    const key = await read(m.tlsKey, '--tls-key');
    try {
      secureContext = tls.createSecureContext({ cert, key });
    } catch (e) {
      throw new TetherError('TETHER_ERR_CONFIG', `--tls-cert/--tls-key: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
  const ca = m.backendCa === undefined ? undefined : await read(m.backendCa, '--backend-ca');
  let directory: UserDirectory | undefined;
  if (m.userMap !== undefined || m.userLookup !== undefined) {
    directory = new UserDirectory({
      ...(m.userMap === undefined ? {} : { mapFile: m.userMap }),
      ...(m.userLookup === undefined ? {} : { lookupUrl: m.userLookup }),
      ttlMs: m.userCacheTtlMs,
      clock: deps.clock,
      onError: (what, err) => {
        deps.logger.warn({ event: EVENTS.directoryError, frontend: config.name, source: what, err: what === 'user-map' ? describeFileError(err) : err instanceof Error ? err.message : 'error' }, 'user directory failed');
      },
    });
    try {
      await directory.load();
    } catch (e) {
      throw new TetherError('TETHER_ERR_CONFIG', `cannot read --user-map ${m.userMap ?? ''}: ${describeFileError(e)}`, { cause: e });
    }
  }
  return {
    converse: {
      protocol,
      tls: m.tls,
      ...(secureContext === undefined ? {} : { secureContext }),
      requireTls: m.requireTls,
      loginTimeoutMs: m.loginTimeoutMs,
      maxCommands: MAX_COMMANDS_BEFORE_LOGIN,
      maxBad: MAX_BAD_BEFORE_LOGIN,
    },
    ...(directory === undefined ? {} : { directory }),
    backendLogin: { protocol, backendTls: m.backendTls, timeoutMs: config.connectTimeoutMs + BACKEND_LOGIN_EXTRA_MS },
    backendTlsOptions: (host) => ({
      rejectUnauthorized: m.backendVerify,
      ...(ca === undefined ? {} : { ca }),
      ...(net.isIP(host) === 0 ? { servername: host } : {}),
    }),
  };
}

let nextConnId = 1;

interface Outcome {
  termination: Termination;
  backend?: Backend;
  via?: Placement['via'];
  lookup?: Lookup;
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

interface Connected {
  socket: net.Socket;
  backend: Backend;
  via: Placement['via'];
  lookup?: Lookup;
  tries: number;
  /** What the client sent while it waited in the queue; replayed after the prelude. */
  sent: readonly Buffer[];
}

/** Ends one connection's hold on `b`; the freed slot goes to the pool's waiting clients first. */
function release(pr: PoolRuntime, b: Backend): void {
  b.active--;
  pr.queue.serve();
}

/** Logs `limit.reached` for `limit` (at most once a second per frontend, limit and pool). */
function noteLimit(fe: Frontend, limit: LimitName, max: number, deps: Deps, pool?: string): void {
  const held = fe.limitLog.pass(pool === undefined ? limit : `${limit} ${pool}`, deps.clock.now());
  if (held === undefined) return;
  deps.logger.warn(
    { event: EVENTS.limitReached, frontend: fe.config.name, ...(pool === undefined ? {} : { pool }), limit, max, refused: held + 1 },
    'limit reached; client refused',
  );
  flushSoon(deps.logger);
}

/** Logs `peek.slow` for clients cut at the peek deadline (at most once a second per frontend). */
function notePeekSlow(fe: Frontend, deps: Deps): void {
  const held = fe.limitLog.pass('peek-slow', deps.clock.now());
  if (held === undefined) return;
  deps.logger.warn({ event: EVENTS.peekSlow, frontend: fe.config.name, timeoutMs: fe.config.peekTimeoutMs, cut: held + 1 }, 'unfinished prelude at the peek deadline; client cut');
  flushSoon(deps.logger);
}

/**
 * Waits in the pool's queue until `placeNow` finds (and reserves) a backend with room, while
 * reading the client to notice if it leaves. `placement` is undefined when served with no
 * backend left (all down meanwhile), and absent with a `termination` when not served.
 */
async function waitForSlot(
  client: net.Socket,
  fe: Frontend,
  pr: PoolRuntime,
  placeNow: () => Placement | 'full' | undefined,
  deps: Deps,
): Promise<{ sent: readonly Buffer[]; termination?: Termination; placement?: Placement }> {
  if (pr.queue.isFull()) {
    noteLimit(fe, 'queue-size', pr.queue.capacity, deps, pr.name);
    return { sent: [], termination: waitTermination('queue-full') };
  }
  if (deps.logger.isLevelEnabled('debug')) {
    deps.logger.debug({ event: EVENTS.queueWait, frontend: fe.config.name, pool: pr.name, waiting: pr.queue.size + 1 }, 'waiting for a backend slot');
  }
  let placement: Placement | undefined;
  const take = (): boolean => {
    const p = placeNow();
    if (p === 'full') return false;
    placement = p;
    return true;
  };
  const held = await holdWhile(client, MAX_PRELUDE_BYTES, (signal) => pr.queue.wait(take, signal));
  if (held.result !== 'served') return { sent: held.sent, termination: waitTermination(held.result) };
  return placement === undefined ? { sent: held.sent } : { sent: held.sent, placement };
}

/** Dials placements until one connects or the retries run out. */
async function connectWithFailover(
  client: net.Socket,
  fe: Frontend,
  pr: PoolRuntime,
  facts: Facts,
  lookups: readonly Lookup[],
  named: string | undefined,
  deps: Deps,
  log: Logger,
): Promise<Connected | { termination: Termination; tries: number }> {
  const { config } = fe;
  const pool = pr.pool;
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
  const sent: Buffer[] = [];
  // Places and reserves in one step: a slot freed while clients wait goes to the first of them
  // that can use it, never to whoever runs next.
  const placeNow = (): Placement | 'full' | undefined => {
    const req = { table: pr.table, pool, balancer: pr.balancer, lookups, nowMs: deps.clock.now(), exclude, port: facts.localPort };
    const p = place(named === undefined ? req : { ...req, named });
    if (p !== undefined && p !== 'full') p.backend.active++;
    return p;
  };
  try {
    for (let tries = 1; tries <= config.retries + 1; tries++) {
      // Waiting clients go first, also to room no release announced (a backend back from hold-down).
      pr.queue.serve();
      let p = placeNow();
      if (p === 'full') {
        const w = await waitForSlot(client, fe, pr, placeNow, deps);
        sent.push(...w.sent);
        if (w.termination) return { termination: w.termination, tries: tries - 1 };
        p = w.placement;
      }
      if (!p) {
        // Nothing (left) to dial. With nothing tried yet, every backend is held down after
        // failing: still the backends' doing, not tether's (`tether`: a limit, a stop or a bug).
        const cause = lastTimedOut ? 'backend-timeout' : 'backend';
        return { termination: { cause, stage: exclude.size === 0 ? 'place' : 'connect', code: lastCode }, tries: tries - 1 };
      }
      const b = p.backend;
      const port = b.spec.port ?? facts.localPort;
      const r = await dial(b.spec.host, port, config.connectTimeoutMs);
      if (client_.gone) {
        release(pr, b);
        if (r.ok) r.socket.destroy();
        return { termination: { cause: 'client', stage: 'connect', code: 'client-closed' }, tries };
      }
      if (r.ok) {
        b.total++;
        if (pool.markUp(b, port)) {
          log.info({ event: EVENTS.backendUp, frontend: config.name, pool: pr.name, backend: b.name, address: formatAddress(b.spec.host, port), reason: 'connect' }, 'backend up');
          flushSoon(log);
        }
        const lookup = lookups.find((l) => l.tableKey === p.lookup?.tableKey);
        return lookup === undefined
          ? { socket: r.socket, backend: b, via: p.via, tries, sent }
          : { socket: r.socket, backend: b, via: p.via, lookup, tries, sent };
      }
      release(pr, b);
      if (isFdShortage(r.code)) {
        // tether's own shortage, not the backend's: no hold-down, and no other backend (its
        // dial would fail alike). The client is closed cleanly; accept.error says why.
        noteAcceptError(deps, r.code);
        return { termination: { cause: 'tether', stage: 'connect', code: r.code }, tries };
      }
      b.failures++;
      lastCode = r.code;
      lastTimedOut = r.timeout;
      exclude.add(b.name);
      log.warn(
        { event: EVENTS.connectFail, frontend: config.name, pool: pr.name, backend: b.name, address: formatAddress(b.spec.host, port), code: r.code },
        'backend connect failed',
      );
      if (pool.markDown(b, deps.clock.now(), config.holdDownMs, port)) {
        log.warn(
          { event: EVENTS.backendDown, frontend: config.name, pool: pr.name, backend: b.name, address: formatAddress(b.spec.host, port), reason: 'connect', code: r.code, holdDownMs: config.holdDownMs },
          'backend down',
        );
      }
      // Health events are rare and operators act on them: write them out now, not batched.
      flushSoon(log);
    }
    return { termination: { cause: lastTimedOut ? 'backend-timeout' : 'backend', stage: 'connect', code: lastCode }, tries: config.retries + 1 };
  } finally {
    client.off('close', onClientClose);
  }
}

/** The key module's view of the facts (names and values, never the raw prelude). */
function keyModuleInput(facts: Facts): KeyModuleInput {
  const p = facts.peek;
  const base = { source: facts.source, sourcePort: facts.sourcePort, localPort: facts.localPort };
  if (!p) return base;
  const tls = p.tls;
  const http = p.http;
  return {
    ...base,
    protocol: p.protocol,
    ...(tls?.sni === undefined ? {} : { sni: tls.sni }),
    ...(tls ? { alpn: tls.alpn } : {}),
    ...(http
      ? {
          http: {
            method: http.method,
            target: http.target,
            ...(http.host === undefined ? {} : { host: http.host }),
            headers: Object.fromEntries(http.headers),
            cookies: Object.fromEntries(http.cookies),
            query: Object.fromEntries(http.query),
          },
        }
      : {}),
    ...(p.xmpp?.to === undefined ? {} : { xmppTo: p.xmpp.to }),
  };
}

/** What to watch for in this connection's backend, as splice options. */
function watching(fe: Frontend, pr: PoolRuntime, facts: Facts, backend: Backend, deps: Deps): Pick<SpliceOptions, 'watchBackend' | 'rewriteHead'> {
  const chain = fe.config.affinity;
  const pin: Pin = (kind, value) => {
    pr.table.set(tableKey({ kind, value }), backend.name, deps.clock.now());
  };
  const tls = facts.peek?.tls;
  const http = facts.peek?.http;
  if (tls) {
    const want = { session: chain.some((s) => s.kind === 'tls-session'), ticket: chain.some((s) => s.kind === 'tls-ticket') };
    return want.session || want.ticket ? { watchBackend: tlsWatcher(tls, want, pin) } : {};
  }
  if (http) {
    const learn = chain.flatMap((s) => (s.kind === 'http-cookie' && !http.cookies.has(s.name) ? [s.name] : []));
    const ic = fe.config.insertCookie;
    const insert = ic !== undefined && http.cookies.get(ic) !== backend.name ? { name: ic, value: backend.name } : undefined;
    return learn.length > 0 || insert ? { rewriteHead: responseHeadRewriter(learn, insert, pin) } : {};
  }
  return {};
}

/** Adds one closed connection to the frontend's counters. */
function count(stats: FrontendStats, outcome: Outcome, peekOutcome: string | undefined): void {
  const t = outcome.termination;
  const close = `${t.cause}|${t.stage}|${t.code ?? ''}`;
  stats.closes.set(close, (stats.closes.get(close) ?? 0) + 1);
  if (peekOutcome !== undefined) stats.peeks.set(peekOutcome, (stats.peeks.get(peekOutcome) ?? 0) + 1);
  if (outcome.tries > 1) stats.retries += outcome.tries - 1;
  stats.bytesIn += outcome.bytesIn;
  stats.bytesOut += outcome.bytesOut;
}

/** One client on its way through the stages; each stage reads and fills it. */
interface Client {
  readonly raw: net.Socket;
  /** The client socket; imap/pop3 replace it with the TLS socket after implicit TLS or STARTTLS. */
  socket: net.Socket;
  facts: Facts;
  /** Where the client connected to (a trusted balancer's header may say otherwise). */
  destination: { readonly address: string; readonly port: number };
  /** Whether the peer is a --trusted-proxy balancer (its PROXY header says who the client is). */
  readonly trusted: boolean;
  prelude: readonly Buffer[];
  login?: Login;
  peekStop?: string;
  pool?: PoolRuntime;
  /** The first socket error before the splice: the client went away. */
  firstError?: string;
  /** Set by a stop that cut the client while a stage awaited. */
  cut: boolean;
}

/** How a stage ended a connection it will not pass on. */
const stopped = (c: Client, termination: Termination, bytesIn = 0): Outcome => ({
  // A stop that cut the client overrides whatever the interrupted stage reports.
  termination: c.cut ? { cause: 'tether', stage: 'shutdown' } : termination,
  bytesIn,
  bytesOut: 0,
  tries: 0,
});

/**
 * Stage 1, before a byte is read: the connection limits, then the ACL — for a trusted balancer
 * on the address its PROXY header carries. Returns an Outcome when the client is refused.
 */
async function admit(c: Client, fe: Frontend, deps: Deps, over: ReturnType<typeof acceptLimit>): Promise<Outcome | undefined> {
  if (over) {
    // Closed at once, before a byte is read (the socket is still paused). HAProxy stops
    // accepting at its maxconn instead, leaving clients in the kernel's backlog; a Node listener
    // cannot stop accepting without closing its socket and giving up the port, and a client
    // left unanswered in the backlog only learns of it by a timeout, where a close now lets it
    // retry at once (elsewhere, behind a balancer).
    c.socket.destroy();
    noteLimit(fe, over.limit, over.max, deps);
    return stopped(c, { cause: 'tether', stage: 'accept', code: over.limit });
  }
  if (!c.trusted) {
    if (fe.acl.admits(c.facts.source)) return undefined;
    c.socket.destroy();
    return stopped(c, { cause: 'client', stage: 'accept', code: 'acl-deny' });
  }
  const h = await readProxyHeader(c.socket);
  const v = h.ok ? h.header : undefined;
  if (v?.source !== undefined && v.sourcePort !== undefined && v.dest !== undefined && v.destPort !== undefined) {
    c.facts = { ...c.facts, source: v.source, sourcePort: v.sourcePort };
    c.destination = { address: v.dest, port: v.destPort };
  }
  if (h.ok && fe.acl.admits(c.facts.source)) return undefined;
  c.socket.destroy();
  return stopped(c, { cause: 'client', stage: 'accept', code: h.ok ? 'acl-deny' : 'proxy-header' }, c.raw.bytesRead);
}

/**
 * Stages 2–3: what the client says before a backend exists — the greet dialogue up to the login
 * (imap/pop3), or the peeked prelude — then the key module's key. Returns an Outcome when the
 * client is gone or refused.
 */
async function learn(c: Client, fe: Frontend, deps: Deps): Promise<Outcome | undefined> {
  if (c.facts.source === '') {
    // Reset (or gone) before its address could be read. The socket is paused, so its reset is
    // never read and nothing would ever close it: destroy it now.
    c.socket.destroy();
    return stopped(c, { cause: 'client', stage: 'accept', code: c.firstError ?? 'gone' });
  }
  if (fe.mail) {
    const g = await converse(c.socket, fe.mail.converse);
    c.socket = g.client;
    if (!g.ok) {
      // converse only half-closes (BYE, FIN) and leaves the client paused: without this, a
      // client that never closes its side would hold the connection past the login timeout.
      if (!c.socket.destroyed) refuse(c.socket);
      return stopped(c, g.termination, c.raw.bytesRead);
    }
    c.login = g.login;
    if (g.leftover.length > 0) c.prelude = [g.leftover];
    const key = loginKey(g.login.user, fe.config.mail.loginDomain);
    const named = fe.mail.directory ? await fe.mail.directory.lookup(key) : undefined;
    c.facts = { ...c.facts, login: named === undefined ? { key } : { key, backend: named } };
  } else if (fe.peeks) {
    const r = await peek(c.socket, { timeoutMs: fe.config.peekTimeoutMs, maxBytes: MAX_PRELUDE_BYTES });
    if (!r.ok) {
      if (r.started !== undefined) {
        c.socket.destroy();
        c.facts = { ...c.facts, peek: { protocol: r.started } };
        c.peekStop = 'timeout';
        notePeekSlow(fe, deps);
      }
      return stopped(c, r.termination, c.socket.bytesRead);
    }
    if (fe.trusted && !c.trusted && r.prelude.length > 0 && parseProxyHeader(Buffer.concat(r.prelude)).kind !== 'not-mine') {
      // Only --trusted-proxy balancers may say who the client is; anyone else trying is refused.
      c.socket.destroy();
      return stopped(c, { cause: 'client', stage: 'accept', code: 'proxy-untrusted' }, c.socket.bytesRead);
    }
    c.prelude = r.prelude;
    c.facts = { ...c.facts, peek: r.facts };
    c.peekStop = r.stop;
  }
  if (fe.keyModule) {
    const k = await fe.keyModule.key(keyModuleInput(c.facts));
    if ('problem' in k) {
      // A module failing on every connection would otherwise log every connection.
      const held = fe.limitLog.pass(EVENTS.keyModuleError, deps.clock.now());
      if (held !== undefined) deps.logger.warn({ event: EVENTS.keyModuleError, frontend: fe.config.name, err: k.problem, held }, 'key module failed');
    } else if ('key' in k) c.facts = { ...c.facts, moduleKey: k.key };
  }
  return undefined;
}

/**
 * Stages 4–6: the pool (routes), place and dial with failover, the PROXY header and the backend
 * login, then the splice until both sides are done. Always ends the connection.
 */
async function serve(c: Client, fe: Frontend, deps: Deps, stopCut: (cut: () => void) => void): Promise<Outcome> {
  const pr = fe.pools.get(selectPool(fe.config.routes, c.facts.peek)) ?? fe.pools.get('default');
  if (!pr) throw new TetherError('TETHER_ERR_INTERNAL', `frontend ${fe.config.name} has no default pool`);
  c.pool = pr;
  if (c.cut) return stopped(c, { cause: 'tether', stage: 'shutdown' });
  const client = c.socket;
  const lookups = chainLookups(fe.config.affinity, c.facts, { backendNames: pr.backendNames });
  const ic = fe.config.insertCookie;
  const named = ic === undefined ? undefined : c.facts.peek?.http?.cookies.get(ic);
  const d = await connectWithFailover(client, fe, pr, c.facts, lookups, named, deps, deps.logger);
  if ('termination' in d) {
    // A mail client that is still there is told why, in its protocol, before the FIN.
    if (fe.mail && d.termination.cause !== 'client' && !client.destroyed) client.write(unavailableReply(fe.mail.backendLogin.protocol));
    if (!client.destroyed) refuse(client);
    return { ...stopped(c, d.termination, client.bytesRead), tries: d.tries };
  }
  const placed = { backend: d.backend, via: d.via, tries: d.tries };
  // Before the prelude and before the backend's greeting is read (Dovecot and Postfix accept it).
  const pp = fe.config.proxyProtocol;
  if (pp !== undefined) {
    const endpoints = { source: c.facts.source, sourcePort: c.facts.sourcePort, dest: c.destination.address, destPort: c.destination.port };
    d.socket.write(pp === 'v1' ? encodeProxyV1(endpoints) : encodeProxyV2(endpoints));
  }
  let backendSocket = d.socket;
  if (c.login && fe.mail) {
    const bl = await loginAtBackend(d.socket, c.login, { ...fe.mail.backendLogin, tlsOptions: fe.mail.backendTlsOptions(d.backend.spec.host), now: () => deps.clock.now() });
    if (!bl.ok) {
      d.socket.destroy();
      release(pr, d.backend);
      if (!client.destroyed) {
        client.write(unavailableReply(fe.mail.backendLogin.protocol));
        // As for a failed dial: FIN, drain, and drop the client after a short wait.
        refuse(client);
      }
      return { termination: { cause: 'backend', stage: 'connect', code: bl.code }, ...placed, bytesIn: c.raw.bytesRead, bytesOut: 0 };
    }
    backendSocket = bl.socket;
    client.write(bl.toClient);
  }
  const prelude = d.sent.length === 0 ? c.prelude : [...c.prelude, ...d.sent];
  const timeouts = { idleMs: fe.config.idleTimeoutMs, backendStallMs: fe.config.backendStallTimeoutMs, clientStallMs: fe.config.clientStallTimeoutMs, finMs: fe.config.finTimeoutMs };
  // Under TLS (implicit, STARTTLS, backend TLS) a reset must go to the TCP socket beneath.
  const tcp = { ...(client === c.raw ? {} : { client: c.raw }), ...(backendSocket === d.socket ? {} : { backend: d.socket }) };
  const s: Splice = splice(client, backendSocket, prelude, { ...timeouts, tcp, ...watching(fe, pr, c.facts, d.backend, deps) });
  // Keyed by the raw socket, as at accept: `client` may be the TLS socket (STARTTLS or
  // implicit TLS), and only `raw` is deleted at the end; a TLS key would stay and hang stop().
  fe.open.set(c.raw, { cut: s.cut, pool: pr.name, backend: d.backend.name, ...(d.lookup ? { tableKey: d.lookup.tableKey } : {}) });
  stopCut(s.cut);
  const r = await s.done;
  release(pr, d.backend);
  return { termination: r.termination, ...placed, bytesIn: r.bytesIn, bytesOut: r.bytesOut, ...(d.lookup ? { lookup: d.lookup } : {}) };
}

/** Handles one accepted client from accept to close. Never throws; resolves once it is closed. */
async function handleConnection(raw: net.Socket, fe: Frontend, deps: Deps): Promise<void> {
  const conn = nextConnId++;
  const startedMs = deps.clock.now();
  const source = raw.remoteAddress ?? '';
  const c: Client = {
    raw,
    socket: raw,
    facts: { source, sourcePort: raw.remotePort ?? 0, localPort: raw.localPort ?? 0 },
    destination: { address: raw.localAddress ?? '', port: raw.localPort ?? 0 },
    trusted: fe.trusted !== undefined && source !== '' && fe.trusted.admits(source),
    prelude: [],
    cut: false,
  };
  // Until the splice owns the socket, an error only means the client went away; that is
  // recorded through the termination, so the error itself needs no more handling.
  const preError = (err: Error): void => {
    c.firstError ??= (err as NodeJS.ErrnoException).code ?? 'error';
  };
  raw.on('error', preError);
  fe.stats.accepted++;
  // Open clients are counted from accept to close by the frontends' open maps; this one is not
  // in them yet, and nothing yields before it is, so concurrent accepts count exactly.
  const over = acceptLimit(
    { all: fe.shared.maxConns === undefined ? 0 : fe.shared.opens.reduce((n, m) => n + m.size, 0), frontend: fe.open.size },
    { all: fe.shared.maxConns, frontend: fe.config.maxConns },
  );
  fe.open.set(raw, {
    cut: () => {
      c.cut = true;
      c.socket.destroy();
    },
  });
  const outcome =
    (await admit(c, fe, deps, over)) ??
    (await learn(c, fe, deps)) ??
    (await serve(c, fe, deps, (cut) => {
      // The splice owns the client's errors from here (under TLS, `raw` keeps preError: the TLS
      // socket reports for it); a stop that came while the backend was dialled cuts it at once.
      c.socket.off('error', preError);
      if (c.cut) cut();
    }));
  fe.open.delete(raw);
  letGo(c);
  closed(c, fe, outcome, conn, startedMs, deps);
}

/**
 * Leaves no socket of an ended connection open. Each stage that ends a connection closes the
 * client itself — destroys it, or ends it and destroys it after a linger (refuse, splice) — and
 * this is the net under them: a client left paused is never read, so not even its reset would
 * close it, and its fd would stay taken for good, uncounted by --max-conns.
 */
function letGo(c: Client): void {
  for (const s of c.socket === c.raw ? [c.raw] : [c.socket, c.raw]) {
    if (!s.destroyed && !s.writableEnded) s.destroy();
  }
}

/** Counts a closed connection and writes its one conn.close line. */
function closed(c: Client, fe: Frontend, outcome: Outcome, conn: number, startedMs: number, deps: Deps): void {
  const { facts, peekStop } = c;
  count(fe.stats, outcome, peekStop === undefined ? undefined : `${facts.peek?.protocol ?? 'unknown'}|${peekStop}`);
  if (outcome.backend) {
    outcome.backend.bytesIn += outcome.bytesIn;
    outcome.backend.bytesOut += outcome.bytesOut;
  }
  const log = deps.logger;
  if (!log.isLevelEnabled('info')) return;
  log.info(
    {
      event: EVENTS.connClose,
      conn,
      frontend: fe.config.name,
      client: formatAddress(facts.source, facts.sourcePort),
      port: facts.localPort,
      protocol: facts.peek?.protocol ?? null,
      peek: peekStop ?? null,
      pool: c.pool?.name ?? null,
      // The login name is what mail operators search logs by; the password never leaves the
      // replay buffers (see greet/).
      user: facts.login?.key ?? null,
      backend: outcome.backend?.name ?? null,
      // The hash of the stored form, as the admin API shows it (the same for any key ≤ 128 bytes).
      key: outcome.lookup ? { kind: outcome.lookup.kind, hash: keyHash(storedValue(outcome.lookup.value)) } : null,
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

/** Discovers each backend's ticket key_name now and every TICKET_PROBE_INTERVAL_MS. */
function startTicketProbes(config: FrontendConfig, pools: ReadonlyMap<string, PoolRuntime>, deps: Deps): () => void {
  const round = (): void => {
    for (const pr of pools.values()) {
      for (const b of pr.pool.backends) {
        const port = b.spec.port ?? config.listen[0]?.portLow;
        if (port === undefined || port === 0) continue;
        void probeTicketKeyName(b.spec.host, port, config.connectTimeoutMs).then((keyName) => {
          if (keyName === undefined) return;
          pr.table.set(tableKey({ kind: 'tls-ticket', value: keyName }), b.name, deps.clock.now());
          deps.logger.debug({ event: EVENTS.ticketKey, frontend: config.name, pool: pr.name, backend: b.name, hash: keyHash(keyName) }, 'ticket key learned');
        });
      }
    }
  };
  round();
  const timer = setInterval(round, TICKET_PROBE_INTERVAL_MS);
  timer.unref();
  return () => {
    clearInterval(timer);
  };
}

/** A pool's runtime; with `prev` (a reload) its table and same-address backends carry over. */
function poolRuntime(name: string, backends: FrontendConfig['backends'], balance: FrontendConfig['balance'], config: FrontendConfig, deps: Deps, prev?: PoolRuntime): PoolRuntime {
  const backendNames = new Set(backends.map((b) => b.name));
  const h = config.health;
  // Waiting clients stay queued across a reload; the new size and timeout apply from now.
  const queue = prev?.queue ?? new WaitQueue(config.queueSize, config.queueTimeoutMs, deps.timers ?? realTimers);
  queue.capacity = config.queueSize;
  queue.timeoutMs = config.queueTimeoutMs;
  const nowMs = deps.clock.now();
  let table = prev?.table;
  if (table) {
    table.resize(config.affinityTimeoutMs, config.affinityMaxEntries, nowMs);
  } else {
    table = new AffinityTable(config.affinityTimeoutMs, config.affinityMaxEntries);
    deps.restore?.(config.name, name, table, backendNames);
  }
  const retiring = prev ? retiringSpecs(prev, backendNames, table, config.affinityTimeoutMs, nowMs) : [];
  return {
    name,
    pool: new Pool([...backends, ...retiring], { nowMs, ...(h.check === 'none' ? {} : { checks: { rise: h.rise, fall: h.fall } }), ...(prev ? { carried: prev.pool.backends } : {}) }),
    table,
    balancer: prev?.balance === balance ? prev.balancer : createBalancer(balance, deps.rng),
    balance,
    backendNames,
    queue,
    retiring: new Set(retiring.map((b) => b.name)),
  };
}

/**
 * Backends a reload removed from a pool but that still have clients: open connections, or live
 * affinity entries. They stay in the pool draining — no new keys, pinned clients still come —
 * for at most one affinity timeout, after which no entry can still name them; a later reload
 * drops them once nothing uses them.
 */
function retiringSpecs(prev: PoolRuntime, keep: ReadonlySet<string>, table: AffinityTable, affinityTimeoutMs: number, nowMs: number): BackendSpec[] {
  const gone = prev.pool.backends.filter((b) => !keep.has(b.name));
  if (gone.length === 0) return [];
  const pinned = new Set<string>();
  for (const e of table.list(nowMs)) pinned.add(e.backend);
  return gone
    .filter((b) => b.active > 0 || pinned.has(b.name))
    .map((b) => {
      // Already retiring: keep its deadline (setAdmin only ever brings a drain deadline forward).
      const drainMs = b.spec.admin === 'drain' && b.spec.drainMs !== undefined ? b.spec.drainMs : affinityTimeoutMs;
      return { ...b.spec, admin: 'drain' as const, drainMs };
    });
}

/**
 * Builds a frontend generation from its config: reads TLS files, user map and key module (any
 * failure rejects with TETHER_ERR_CONFIG and changes nothing). With `prev`, pools keep their
 * affinity tables and backends, and `open`/`stats` are shared.
 */
async function buildFrontend(config: FrontendConfig, deps: Deps, shared: Shared, prev?: Frontend): Promise<Frontend> {
  const pools = new Map<string, PoolRuntime>();
  pools.set('default', poolRuntime('default', config.backends, config.balance, config, deps, prev?.pools.get('default')));
  for (const p of config.pools) pools.set(p.name, poolRuntime(p.name, p.backends, p.balance, config, deps, prev?.pools.get(p.name)));
  // The same file keeps its worker (and is not re-read) across reloads, as an in-process import was cached.
  const keyModule = config.keyModule === undefined ? undefined : prev?.keyModule?.file === config.keyModule ? prev.keyModule : await KeyModule.load(config.keyModule);
  let mail: MailRuntime | undefined;
  try {
    mail = await mailRuntime(config, deps);
  } catch (e) {
    if (keyModule !== prev?.keyModule) await keyModule?.close();
    throw e;
  }
  const trusted = config.acceptProxyProtocol ? compileAcl({ allow: config.trustedProxies, deny: [] }) : undefined;
  const open = prev?.open ?? new Map<net.Socket, OpenConn>();
  if (!prev) shared.opens.push(open);
  return {
    config,
    pools,
    peeks: chainNeedsPeek(config.affinity) || config.routes.length > 0 || config.insertCookie !== undefined,
    ...(keyModule === undefined ? {} : { keyModule }),
    ...(mail === undefined ? {} : { mail }),
    open,
    acl: compileAcl({ allow: config.allow, deny: config.deny }),
    ...(trusted === undefined ? {} : { trusted }),
    stats: prev?.stats ?? newFrontendStats(),
    shared,
    limitLog: prev?.limitLog ?? new Throttle(LIMIT_LOG_INTERVAL_MS),
  };
}

/** Starts a frontend generation's timers (tls-ticket discovery); returns how to stop them. */
function startTimers(fe: Frontend, deps: Deps): () => void {
  const stops: (() => void)[] = [];
  if (fe.config.affinity.some((st) => st.kind === 'tls-ticket')) stops.push(startTicketProbes(fe.config, fe.pools, deps));
  if (fe.config.health.check !== 'none') stops.push(startHealthChecks(fe.config, fe.pools.values(), deps));
  return () => {
    for (const stop of stops) stop();
  };
}

const addressKey = (a: BindAddress): string => `${a.host}|${String(a.port)}`;

/** Where a listener sends its clients; a reload may point it at another frontend. */
interface Route {
  name: string;
  current: () => Frontend | undefined;
}

/** Each listener's route (see Route), so a reload can hand a bound socket to another frontend. */
const ROUTES = new WeakMap<Listener, Route>();

/**
 * Binds `addresses` (one listener each), each with its own route to `current()`. Rejects with
 * TETHER_ERR_LISTEN after closing what it bound.
 */
async function bindFor(name: string, current: () => Frontend | undefined, addresses: readonly BindAddress[], deps: Deps, activation?: Activation): Promise<Listener[]> {
  const bound: Listener[] = [];
  try {
    for (const a of addresses) {
      const route: Route = { name, current };
      const [l] = await bindRoute(route, a, deps, activation);
      if (l) {
        ROUTES.set(l, route);
        bound.push(l);
      }
    }
  } catch (e) {
    await closeListeners(bound);
    throw e;
  }
  return bound;
}

/** When each tether last logged accept.error (see noteAcceptError). */
const LAST_ACCEPT_ERROR = new WeakMap<Deps, number>();

/**
 * Logs `accept.error` for an fd shortage or an accept failure, at most once a second per
 * tether whatever its source (a listener's error, the fd watch, a dial): under a storm each
 * would repeat once per client.
 */
function noteAcceptError(deps: Deps, code: string | undefined, where?: { readonly frontend: string; readonly address: string }): void {
  const now = deps.clock.now();
  if (now - (LAST_ACCEPT_ERROR.get(deps) ?? -Infinity) < 1_000) return;
  LAST_ACCEPT_ERROR.set(deps, now);
  deps.logger.error({ event: EVENTS.acceptError, ...where, code: code ?? null }, isFdShortage(code) ? 'out of file descriptors; new clients are refused' : 'accept failed');
  flushSoon(deps.logger);
}

function bindRoute(route: Route, a: BindAddress, deps: Deps, activation?: Activation): Promise<Listener[]> {
  return listenAll(
    [{ host: a.host, portLow: a.port, portHigh: a.port }],
    (client) => {
      const fe = route.current();
      fe?.shared.fdWatch?.soon();
      if (!fe) {
        client.destroy();
        return;
      }
      handleConnection(client, fe, deps).catch((err: unknown) => {
        // A bug (HAProxy's "should never happen"): end this connection, keep serving the rest.
        fe.open.delete(client);
        client.destroy();
        deps.logger.error(
          { event: EVENTS.internalError, frontend: route.name, code: 'TETHER_ERR_INTERNAL', err: err instanceof Error ? err.stack : String(err) },
          'internal error; connection closed',
        );
      });
    },
    (err, addr) => {
      // Rare: libuv reports EMFILE/ENFILE on accept only when its spare fd is gone too (see
      // accept/fd-watch.ts, which notices the usual case).
      noteAcceptError(deps, errorCode(err), { frontend: route.name, address: formatAddress(addr.host, addr.port) });
    },
    activation && ((addr) => activation.take(route.name, addr)),
  );
}

function logListening(name: string, listeners: readonly Listener[], deps: Deps): void {
  for (const l of listeners) {
    deps.logger.info(
      { event: EVENTS.listenReady, frontend: name, address: formatAddress(l.host, l.port), host: l.host, port: l.port, ...(l.activated ? { activated: true } : {}) },
      'listening',
    );
  }
}

/** Binds one frontend's listeners and starts serving. Rejects with TETHER_ERR_CONFIG or TETHER_ERR_LISTEN. */
async function startFrontend(config: FrontendConfig, deps: Deps, shared: Shared, activation: Activation | undefined): Promise<RunningFrontend> {
  const current = await buildFrontend(config, deps, shared);
  const rf: RunningFrontend = { name: config.name, current, listeners: [], stopTimers: () => undefined };
  rf.listeners = await bindFor(config.name, () => rf.current, config.listen.flatMap(expandListen), deps, activation);
  rf.stopTimers = startTimers(current, deps);
  logListening(config.name, rf.listeners, deps);
  flushSoon(deps.logger);
  return rf;
}

/** One frontend's part of a reload, prepared (files read, new addresses bound) but not yet in force. */
interface Staged {
  readonly rf: RunningFrontend;
  readonly isNew: boolean;
  readonly next: Frontend;
  readonly keep: Listener[];
  /** Sockets another frontend gives up and this one takes over. */
  readonly handed: Listener[];
  readonly bound: Listener[];
}

/** The configured backends of every pool of a frontend (not retiring ones), as `frontend/pool/backend`. */
function backendIds(fe: Frontend): Set<string> {
  const ids = new Set<string>();
  for (const pr of fe.pools.values()) {
    for (const b of pr.pool.backends) if (!pr.retiring.has(b.name)) ids.add(`${fe.config.name}/${pr.name}/${b.name}`);
  }
  return ids;
}

/**
 * Starts every frontend of `config`, serving the addresses `activation` has inherited sockets
 * for on those (systemd socket activation). On a listen failure, closes what was bound and rejects.
 */
export async function startTether(initial: Config, deps: Deps, activation?: Activation): Promise<Tether> {
  let frontends: RunningFrontend[] = [];
  let config = initial;
  // Frontends a reload removed: no listeners, but their open connections run to their end.
  const retired: Frontend[] = [];
  const fdWatch = watchFds((code) => {
    noteAcceptError(deps, code);
  });
  const stopFdWatch = (): void => {
    fdWatch.stop();
  };
  const shared: Shared = { maxConns: config.maxConns, opens: [], fdWatch };
  try {
    for (const fc of config.frontends) frontends.push(await startFrontend(fc, deps, shared, activation));
  } catch (e) {
    stopFdWatch();
    for (const f of frontends) f.stopTimers();
    await Promise.all(frontends.map((f) => closeListeners(f.listeners)));
    throw e;
  }
  // One reload at a time: a SIGHUP during an admin reload waits for it.
  let reloading: Promise<unknown> = Promise.resolve();
  let stopping = false;

  async function applyReload(next: Config): Promise<ReloadReport> {
    // Frontends removed earlier whose last connection has ended: nothing to wait for any more.
    for (const f of [...retired]) {
      if (f.open.size > 0) continue;
      retired.splice(retired.indexOf(f), 1);
      shared.opens.splice(shared.opens.indexOf(f.open), 1);
    }
    const byName = new Map(frontends.map((f) => [f.name, f]));
    const nextWants = new Map(next.frontends.map((fc) => [fc.name, new Set(fc.listen.flatMap(expandListen).map(addressKey))]));
    // Bound sockets whose frontend no longer wants them: another frontend that now lists the
    // address takes the socket over (a renamed frontend, an address moved between frontends),
    // since binding it anew would fail with EADDRINUSE; the rest are closed once in force.
    // Found by the address asked for and by the one bound (`host:0` became a real port).
    const spare = new Map<string, Listener>();
    for (const f of frontends) {
      for (const l of f.listeners) {
        if (nextWants.get(f.name)?.has(addressKey(l.requested)) === true) continue;
        spare.set(addressKey(l.requested), l);
        spare.set(addressKey(l), l);
      }
    }
    const takeSpare = (a: BindAddress): Listener | undefined => {
      const l = spare.get(addressKey(a));
      if (l) {
        spare.delete(addressKey(l.requested));
        spare.delete(addressKey(l));
      }
      return l;
    };
    const staged: Staged[] = [];
    const pending: (() => void)[] = [];
    try {
      for (const fc of next.frontends) {
        const rf = byName.get(fc.name);
        const fe = await buildFrontend(fc, deps, shared, rf?.current);
        const want = fc.listen.flatMap(expandListen);
        const wanted = new Set(want.map(addressKey));
        const have = new Map((rf?.listeners ?? []).map((l) => [addressKey(l.requested), l]));
        const keep = [...have.values()].filter((l) => wanted.has(addressKey(l.requested)));
        const missing = want.filter((a) => !have.has(addressKey(a)));
        const handed: Listener[] = [];
        const toBind = missing.filter((a) => {
          const l = takeSpare(a);
          if (l) handed.push(l);
          return !l;
        });
        // A new frontend's listeners refuse clients until the reload is in force.
        const live = { on: rf !== undefined };
        const target: RunningFrontend = rf ?? { name: fc.name, current: fe, listeners: [], stopTimers: () => undefined };
        const route = (): Frontend | undefined => (live.on ? target.current : undefined);
        // Pushed before binding so a failure below still closes what this frontend bound.
        const stage: Staged = { rf: target, isNew: rf === undefined, next: fe, keep, handed, bound: [] };
        staged.push(stage);
        stage.bound.push(...(await bindFor(fc.name, route, toBind, deps)));
        pending.push(() => {
          live.on = true;
          for (const l of handed) {
            const r = ROUTES.get(l);
            if (r) {
              r.name = fc.name;
              r.current = route;
            }
          }
        });
      }
      // A stop that gave up waiting for this reload has closed the listeners: put nothing in force.
      if (stopping) throw new TetherError('TETHER_ERR_CONFIG', 'tether is stopping');
    } catch (e) {
      await Promise.all(staged.map((st) => closeListeners(st.bound)));
      await Promise.all(staged.flatMap((st) => (st.next.keyModule && st.next.keyModule !== (st.isNew ? undefined : st.rf.current.keyModule) ? [st.next.keyModule.close()] : [])));
      throw e;
    }
    // Everything is read and bound: put the new generation in force.
    const report = { frontends: { added: [] as string[], removed: [] as string[], kept: [] as string[] }, listeners: { kept: 0, moved: 0, added: 0, closed: 0 }, backends: { added: [] as string[], removed: [] as string[] } };
    const nextFrontends: RunningFrontend[] = [];
    const before = new Set(frontends.flatMap((f) => [...backendIds(f.current)]));
    for (const p of pending) p();
    for (const st of staged) {
      const rf = st.rf;
      rf.stopTimers();
      if (!st.isNew && rf.current.keyModule !== st.next.keyModule) void rf.current.keyModule?.close();
      rf.current = st.next;
      (st.isNew ? report.frontends.added : report.frontends.kept).push(rf.name);
      rf.listeners = [...st.keep, ...st.handed, ...st.bound];
      rf.stopTimers = startTimers(st.next, deps);
      logListening(rf.name, [...st.handed, ...st.bound], deps);
      report.listeners.kept += st.keep.length;
      report.listeners.moved += st.handed.length;
      report.listeners.added += st.bound.length;
      nextFrontends.push(rf);
    }
    const unwanted = new Set(spare.values());
    await closeListeners([...unwanted]);
    report.listeners.closed += unwanted.size;
    const kept = new Set(nextFrontends.map((f) => f.name));
    for (const f of frontends) {
      if (kept.has(f.name)) continue;
      f.stopTimers();
      void f.current.keyModule?.close();
      report.frontends.removed.push(f.name);
      retired.push(f.current);
    }
    const after = new Set(nextFrontends.flatMap((f) => [...backendIds(f.current)]));
    report.backends.added.push(...[...after].filter((id) => !before.has(id)));
    report.backends.removed.push(...[...before].filter((id) => !after.has(id)));
    shared.maxConns = next.maxConns;
    frontends = nextFrontends;
    config = next;
    deps.logger.level = next.logLevel;
    return report;
  }

  return {
    get frontends() {
      return frontends;
    },
    get config() {
      return config;
    },
    reload(next: Config): Promise<ReloadReport> {
      const r = reloading.then(() => applyReload(next));
      reloading = r.catch(() => undefined);
      return r;
    },
    async stop(graceMs: number): Promise<void> {
      // A reload that hangs (a file on a dead mount) must not hang the stop: wait a bounded time.
      stopping = true;
      let waited: NodeJS.Timeout | undefined;
      await Promise.race([reloading, new Promise((r) => (waited = setTimeout(r, STOP_RELOAD_WAIT_MS)))]);
      clearTimeout(waited);
      stopFdWatch();
      for (const f of frontends) f.stopTimers();
      await Promise.all([...frontends.map((f) => f.current), ...retired].flatMap((f) => (f.keyModule ? [f.keyModule.close()] : [])));
      await Promise.all(frontends.map((f) => closeListeners(f.listeners)));
      const all = (): Frontend[] => [...frontends.map((f) => f.current), ...retired];
      const openCount = (): number => all().reduce((n, f) => n + f.open.size, 0);
      deps.logger.info({ event: EVENTS.stopBegin, open: openCount(), graceMs }, 'stopping: listeners closed');
      const deadline = deps.clock.now() + graceMs;
      while (openCount() > 0 && deps.clock.now() < deadline) {
        await new Promise((r) => setTimeout(r, Math.min(50, Math.max(1, deadline - deps.clock.now()))));
      }
      const cut = openCount();
      for (const f of all()) for (const c of [...f.open.values()]) c.cut();
      while (openCount() > 0) await new Promise((r) => setTimeout(r, 5));
      deps.logger.info({ event: EVENTS.stopDone, cut }, 'stopped');
    },
  };
}
