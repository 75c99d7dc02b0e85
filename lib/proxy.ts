// Composition root, I/O. Builds the running frontends from a Config and carries each client
// through the stages: accept → key → place → dial (with failover) → splice → one conn.close line.
import type net from 'node:net';
import { loginKey } from './affinity/directory.js';
import { loginAtBackend } from './connect/replay.js';
import { converse } from './greet/converse.js';
import type { Login } from './greet/dialogue.js';
import type { Activation } from './systemd/activation.js';
import { noteAcceptError } from './accept/accept-errors.js';
import { startRuntime } from './runtime/tether.js';
import { acceptLimit, type LimitName } from './accept/limits.js';
import { holdWhile } from './connect/hold.js';
import { isFdShortage } from './accept/fd-watch.js';
import { unavailableReply } from './connect/unavailable.js';
import { waitTermination } from './place/queue.js';
import { readProxyHeader } from './accept/proxy-header.js';
import { encodeProxyV1, encodeProxyV2, parseProxyHeader } from './wire/proxy/header.js';
import { formatAddress } from './accept/port-range.js';
import { chainLookups, storedValue, tableKey } from './affinity/chain.js';
import type { KeyModuleInput } from './affinity/key-module.js';
import { MAX_PRELUDE_BYTES } from './config/defaults.js';
import { peek } from './peek/collect.js';
import { responseHeadRewriter, tlsWatcher, type Pin } from './splice/watch.js';
import { selectPool } from './place/route.js';
import type { Config } from './config/types.js';
import { dial } from './connect/dial.js';
import { TetherError, type Termination } from './errors.js';
import type { Facts } from './facts.js';
import { EVENTS, flushSoon, keyHash, type Logger } from './log.js';
import { splice, type Splice, type SpliceOptions } from './splice/splice.js';
import { place, type Lookup, type Placement } from './place/place.js';
import type { Backend } from './place/pool.js';
import type { Deps, Frontend, FrontendStats, PoolRuntime, Tether } from './runtime/types.js';

/** How long a client we could not place or connect may linger before we drop it. */
const REFUSE_LINGER_MS = 2_000;

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

/**
 * Starts every frontend of `config`, serving the addresses `activation` has inherited sockets
 * for on those (systemd socket activation). On a listen failure, closes what was bound and rejects.
 */
export function startTether(config: Config, deps: Deps, activation?: Activation): Promise<Tether> {
  return startRuntime(config, deps, handleConnection, activation);
}
