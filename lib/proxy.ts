// Composition root, I/O. Builds the running frontends from a Config and carries each client
// through the stages: accept → key → place → dial (with failover) → splice → one conn.close line.
import net from 'node:net';
import tls from 'node:tls';
import { admit } from './accept/admit.js';
import { withModuleKey } from './affinity/key-module.js';
import { ClientSocket } from './conn/client.js';
import { ended, goOn, placedOf, type Accepted, type Connected, type Ended, type Learned, type Step } from './conn/connection.js';
import { noteKeyModuleProblem, noteLimit, notePeekSlow, reportClose } from './conn/report.js';
import { readyBackend } from './connect/backend.js';
import { connectWithFailover } from './connect/failover.js';
import { learnByGreet } from './greet/learn.js';
import { learnByPeek } from './peek/learn.js';
import { watchOptions } from './splice/watch.js';
import { UserDirectory } from './affinity/directory.js';
import { MAX_BAD_BEFORE_LOGIN, MAX_COMMANDS_BEFORE_LOGIN } from './greet/dialogue.js';
import { closeListeners, listenAll, type Listener } from './accept/listen.js';
import { expandListen, type BindAddress } from './accept/port-range.js';
import type { Activation } from './systemd/activation.js';
import { compileAcl } from './accept/acl.js';
import { acceptLimit, Throttle } from './accept/limits.js';
import { isFdShortage, watchFds } from './accept/fd-watch.js';
import { unavailableReply } from './connect/unavailable.js';
import { WaitQueue } from './place/queue.js';
import { formatAddress } from './accept/port-range.js';
import { chainLookups, chainNeedsPeek, tableKey } from './affinity/chain.js';
import { KeyModule } from './affinity/key-module.js';
import { describeFileError, MAX_PEM_BYTES, readFileBounded } from './files/read.js';
import { MAX_PRELUDE_BYTES } from './config/defaults.js';
import { selectPool } from './place/route.js';
import { realTimers } from './clock.js';
import type { BackendSpec, Config, FrontendConfig } from './config/types.js';
import { TICKET_PROBE_INTERVAL_MS, probeTicketKeyName } from './connect/ticket-probe.js';
import { TetherError, errorCode } from './errors.js';
import { EVENTS, flushSoon, keyHash } from './log.js';
import { splice } from './splice/splice.js';
import { AffinityTable } from './place/affinity-table.js';
import { createBalancer } from './place/balance.js';
import { Pool } from './place/pool.js';
import { startHealthChecks } from './health/monitor.js';
import { newFrontendStats, type Deps, type Frontend, type MailRuntime, type OpenConn, type PoolRuntime, type ReloadReport, type RunningFrontend, type Shared, type Tether } from './runtime/types.js';

/** Time for a backend's greeting, STARTTLS and login answer, on top of the connect timeout. */
const BACKEND_LOGIN_EXTRA_MS = 10_000;

/**
 * How long a stop waits for a reload under way. Loading a key module is bounded at 5 s
 * (KEY_MODULE_LOAD_TIMEOUT_MS) and the rest of a reload reads small files; past 6 s the reload is
 * stuck, and the stop goes on without it.
 */
const STOP_RELOAD_WAIT_MS = 6_000;


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

/** Stage 2: what the client says before a backend exists (greet or peek), then the key module's key. */
async function learn(c: Accepted, fe: Frontend, deps: Deps): Promise<Step<Learned>> {
  const dir = fe.mail?.directory;
  const s = fe.mail
    ? await learnByGreet(c, { converse: fe.mail.converse, loginDomain: fe.config.mail.loginDomain, ...(dir ? { lookup: (key: string) => dir.lookup(key) } : {}) })
    : fe.peeks
      ? await learnByPeek(c, { timeoutMs: fe.config.peekTimeoutMs, maxBytes: MAX_PRELUDE_BYTES, trustsProxies: fe.trusted !== undefined, onSlow: () => {
          notePeekSlow(fe, deps);
        } })
      : goOn({ ...c, prelude: [] });
  if (!s.ok || !fe.keyModule) return s;
  return goOn({ ...s.conn, facts: await withModuleKey(s.conn.facts, fe.keyModule, (problem) => {
    noteKeyModuleProblem(fe, problem, deps);
  }) });
}

/** Stages 3–5: the pool (routes), place and dial with failover, then the PROXY header and backend login. */
async function connect(c: Learned, fe: Frontend, deps: Deps): Promise<Step<Connected>> {
  const { config, mail } = fe;
  const pr = fe.pools.get(selectPool(config.routes, c.facts.peek)) ?? fe.pools.get('default');
  if (!pr) throw new TetherError('TETHER_ERR_INTERNAL', `frontend ${config.name} has no default pool`);
  if (c.client.wasCut) return ended(c, { cause: 'tether', stage: 'shutdown' }, { pool: pr.name });
  const lookups = chainLookups(config.affinity, c.facts, { backendNames: pr.backendNames });
  const ic = config.insertCookie;
  const named = ic === undefined ? undefined : c.facts.peek?.http?.cookies.get(ic);
  const d = await connectWithFailover(c, pr, lookups, named, {
    frontend: config.name,
    retries: config.retries,
    connectTimeoutMs: config.connectTimeoutMs,
    holdDownMs: config.holdDownMs,
    maxHeldBytes: MAX_PRELUDE_BYTES,
    now: () => deps.clock.now(),
    log: deps.logger,
    onQueueFull: (capacity) => {
      noteLimit(fe, 'queue-size', capacity, deps, pr.name);
    },
    onFdShortage: (code) => {
      noteAcceptError(deps, code);
    },
  });
  if (!d.ok) {
    // A mail client that is still there is told why, in its protocol, before the FIN.
    c.client.refuse(mail && d.ended.termination.cause !== 'client' ? unavailableReply(mail.backendLogin.protocol) : undefined);
    return d;
  }
  const login = mail ? { ...mail.backendLogin, tlsOptions: mail.backendTlsOptions, now: () => deps.clock.now() } : undefined;
  return readyBackend(d.conn, { proxyProtocol: config.proxyProtocol, ...(login ? { login } : {}) });
}

/** Stage 6: the splice, until both sides are done; watches the backend for keys to learn. */
async function spliceBoth(c: Connected, fe: Frontend): Promise<Ended> {
  const { config } = fe;
  const { client } = c;
  const timeouts = { idleMs: config.idleTimeoutMs, backendStallMs: config.backendStallTimeoutMs, clientStallMs: config.clientStallTimeoutMs, finMs: config.finTimeoutMs };
  // Under TLS (implicit, STARTTLS, backend TLS) a reset must go to the TCP socket beneath.
  const tcp = { ...(client.socket === client.raw ? {} : { client: client.raw }), ...(c.socket === c.tcp ? {} : { backend: c.tcp }) };
  const watch = watchOptions(config.affinity, config.insertCookie, c.facts.peek, c.backend.name, c.pin);
  const s = splice(client.socket, c.socket, c.prelude, { ...timeouts, tcp, ...watch });
  // Keyed by the raw socket, as at accept: the client may be on a TLS socket (STARTTLS or
  // implicit TLS), and only `raw` is deleted at the end; a TLS key would stay and hang stop().
  fe.open.set(client.raw, {
    cut: () => {
      client.cut();
    },
    pool: c.pool, backend: c.backend.name, ...(c.lookup ? { tableKey: c.lookup.tableKey } : {}) });
  client.handOver(s.cut);
  const r = await s.done;
  c.release();
  return { conn: c, termination: r.termination, bytesIn: r.bytesIn, bytesOut: r.bytesOut, tries: c.tries, pool: c.pool, placed: placedOf(c) };
}

/** accept → admit → learn → connect → splice: the connection's end, whichever stage it came at. */
async function flow(c: Accepted, over: ReturnType<typeof acceptLimit>, fe: Frontend, deps: Deps): Promise<Ended> {
  const admitted = await admit(c, { over, acl: fe.acl, onLimit: (limit, max) => {
      noteLimit(fe, limit, max, deps);
    } });
  if (!admitted.ok) return admitted.ended;
  const learned = await learn(admitted.conn, fe, deps);
  if (!learned.ok) return learned.ended;
  const connected = await connect(learned.conn, fe, deps);
  if (!connected.ok) return connected.ended;
  return spliceBoth(connected.conn, fe);
}

/** Handles one accepted client from accept to close. Never throws; resolves once it is closed. */
async function handleConnection(raw: net.Socket, fe: Frontend, deps: Deps): Promise<void> {
  const id = nextConnId++;
  const startedMs = deps.clock.now();
  const source = raw.remoteAddress ?? '';
  const client = new ClientSocket(raw);
  fe.stats.accepted++;
  // Open clients are counted from accept to close by the frontends' open maps; this one is not
  // in them yet, and nothing yields before it is, so concurrent accepts count exactly.
  const over = acceptLimit(
    { all: fe.shared.maxConns === undefined ? 0 : fe.shared.opens.reduce((n, m) => n + m.size, 0), frontend: fe.open.size },
    { all: fe.shared.maxConns, frontend: fe.config.maxConns },
  );
  fe.open.set(raw, {
    cut: () => {
      client.cut();
    },
  });
  const ended = await flow(
    {
      id,
      startedMs,
      client,
      facts: { source, sourcePort: raw.remotePort ?? 0, localPort: raw.localPort ?? 0 },
      destination: { address: raw.localAddress ?? '', port: raw.localPort ?? 0 },
      trusted: fe.trusted !== undefined && source !== '' && fe.trusted.admits(source),
    },
    over,
    fe,
    deps,
  );
  fe.open.delete(raw);
  client.letGo();
  reportClose(fe, ended, deps);
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
