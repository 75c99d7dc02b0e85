// Composition root, I/O: the flow. Carries each accepted client through the stages, each one
// folder that owns its step: accept → admit → learn (peek or greet) → connect (place, dial,
// failover) → splice → one conn.close line. Building and running the frontends is lib/runtime/.
import type net from 'node:net';
import { admit } from './accept/admit.js';
import { noteAcceptError } from './accept/accept-errors.js';
import { acceptLimit } from './accept/limits.js';
import { chainLookups } from './affinity/chain.js';
import { withModuleKey } from './affinity/key-module.js';
import { MAX_PRELUDE_BYTES } from './config/defaults.js';
import type { Config } from './config/types.js';
import { ClientSocket } from './conn/client.js';
import { ended, goOn, placedOf, type Accepted, type Connected, type Ended, type Learned, type Step } from './conn/connection.js';
import { readyBackend } from './connect/backend.js';
import { connectWithFailover } from './connect/failover.js';
import { unavailableReply } from './connect/unavailable.js';
import { TetherError } from './errors.js';
import { learnByGreet } from './greet/learn.js';
import { learnByPeek } from './peek/learn.js';
import { selectPool } from './place/route.js';
import { noteKeyModuleProblem, noteLimit, notePeekSlow, reportClose } from './runtime/report.js';
import { startRuntime } from './runtime/tether.js';
import type { Deps, Frontend, Tether } from './runtime/types.js';
import { splice } from './splice/splice.js';
import { watchOptions } from './splice/watch.js';
import type { Activation } from './systemd/activation.js';

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
    fdWatch: fe.shared.fdWatch,
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

/**
 * Starts every frontend of `config`, serving the addresses `activation` has inherited sockets
 * for on those (systemd socket activation). On a listen failure, closes what was bound and rejects.
 */
export function startTether(config: Config, deps: Deps, activation?: Activation): Promise<Tether> {
  return startRuntime(config, deps, handleConnection, activation);
}
