// Composition root, I/O. Builds the running frontends from a Config and carries each client
// through the stages: accept → key → place → dial (with failover) → splice → one conn.close line.
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import tls from 'node:tls';
import { UserDirectory, loginKey } from './affinity/directory.js';
import { loginAtBackend, type BackendTls } from './connect/replay.js';
import { converse, type ConverseOptions } from './greet/converse.js';
import { MAX_BAD_BEFORE_LOGIN, MAX_COMMANDS_BEFORE_LOGIN, type Login } from './greet/dialogue.js';
import { closeListeners, listenAll, type Listener } from './accept/listen.js';
import type { Activation } from './systemd/activation.js';
import { compileAcl, type CompiledAcl } from './accept/acl.js';
import { readProxyHeader } from './accept/proxy-header.js';
import { encodeProxyV1, encodeProxyV2, parseProxyHeader } from './wire/proxy/header.js';
import { formatAddress } from './accept/port-range.js';
import { chainLookups, chainNeedsPeek, tableKey, type Lookup } from './affinity/chain.js';
import { loadKeyModule, runKeyFunction, type KeyFunction, type KeyModuleInput } from './affinity/key-module.js';
import { MAX_PRELUDE_BYTES } from './config/defaults.js';
import { peek } from './peek/collect.js';
import { responseHeadRewriter, tlsLearner, type Pin } from './pipe/learn.js';
import { selectPool } from './place/route.js';
import type { Clock, Rng } from './clock.js';
import type { Config, FrontendConfig } from './config/types.js';
import { dial } from './connect/dial.js';
import { TICKET_PROBE_INTERVAL_MS, probeTicketKeyName } from './connect/ticket-probe.js';
import { TetherError, errorCode, type Termination } from './errors.js';
import type { Facts } from './facts.js';
import { EVENTS, flushSoon, keyHash, type Logger } from './log.js';
import { splice, type Splice, type SpliceOptions } from './pipe/splice.js';
import { AffinityTable } from './place/affinity-table.js';
import { createBalancer, type Balancer } from './place/balance.js';
import { place, type Placement } from './place/place.js';
import { Pool, type Backend } from './place/pool.js';

/** Time for a backend's greeting, STARTTLS and login answer, on top of the connect timeout. */
const BACKEND_LOGIN_EXTRA_MS = 10_000;

/** How long a client we could not place or connect may linger before we drop it. */
const REFUSE_LINGER_MS = 2_000;

export interface Deps {
  readonly logger: Logger;
  readonly clock: Clock;
  readonly rng: Rng;
}

/** One pool of a frontend at run time, with its own affinity table and balancer. */
export interface PoolRuntime {
  readonly name: string;
  readonly pool: Pool;
  readonly table: AffinityTable;
  readonly balancer: Balancer;
  readonly backendNames: ReadonlySet<string>;
}

/** What an imap/pop3 frontend needs at run time. */
export interface MailRuntime {
  readonly converse: ConverseOptions;
  readonly directory?: UserDirectory;
  readonly backendLogin: { readonly protocol: 'imap' | 'pop3'; readonly backendTls: BackendTls; readonly timeoutMs: number };
  readonly backendTlsOptions: (host: string) => tls.ConnectionOptions;
}

/** Reads the TLS files and the user map of an imap/pop3 frontend. Rejects with TETHER_ERR_CONFIG. */
async function mailRuntime(config: FrontendConfig, deps: Deps): Promise<MailRuntime | undefined> {
  const protocol = config.protocol;
  if (protocol === 'auto') return undefined;
  const m = config.mail;
  const read = async (file: string, what: string): Promise<Buffer> => {
    try {
      return await readFile(file);
    } catch (e) {
      throw new TetherError('TETHER_ERR_CONFIG', `cannot read ${what} ${file}: ${errorCode(e) ?? String(e)}`, { cause: e });
    }
  };
  let secureContext: tls.SecureContext | undefined;
  if (m.tls !== 'none' && m.tlsCert !== undefined && m.tlsKey !== undefined) {
    const [cert, key] = await Promise.all([read(m.tlsCert, '--tls-cert'), read(m.tlsKey, '--tls-key')]);
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
        deps.logger.warn({ event: EVENTS.directoryError, frontend: config.name, source: what, err: err instanceof Error ? err.message : 'error' }, 'user directory failed');
      },
    });
    try {
      await directory.load();
    } catch (e) {
      throw new TetherError('TETHER_ERR_CONFIG', `cannot read --user-map ${m.userMap ?? ''}: ${errorCode(e) ?? String(e)}`, { cause: e });
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

/** One running frontend: its config, listeners, pools and open connections. */
export interface Frontend {
  readonly config: FrontendConfig;
  readonly listeners: readonly Listener[];
  /** The pools by name; `default` holds the frontend's own backends. */
  readonly pools: ReadonlyMap<string, PoolRuntime>;
  /** Whether clients are peeked before placing (the chain, routes or insert-cookie need it). */
  readonly peeks: boolean;
  readonly keyFunction?: KeyFunction;
  /** imap/pop3 frontends: the greet stage's options, the user directory, backend login. */
  readonly mail?: MailRuntime;
  /** Stops the tls-ticket key discovery timer, if running. */
  readonly stopProbes?: () => void;
  /** Open connections: client socket → a way to cut it. */
  readonly open: Map<net.Socket, () => void>;
  /** `--allow`/`--deny`; for trusted balancers, checked on the address their header carries. */
  readonly acl: CompiledAcl;
  /** `--trusted-proxy` networks, when `--accept-proxy-protocol` is on. */
  readonly trusted?: CompiledAcl;
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
  try {
    for (let tries = 1; tries <= config.retries + 1; tries++) {
      const req = { table: pr.table, pool, balancer: pr.balancer, lookups, nowMs: deps.clock.now(), exclude };
      const p = place(named === undefined ? req : { ...req, named });
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
        if (pool.markUp(b)) {
          log.info({ event: EVENTS.backendUp, frontend: config.name, pool: pr.name, backend: b.name }, 'backend up');
          flushSoon(log);
        }
        const lookup = lookups.find((l) => l.tableKey === p.lookup?.tableKey);
        return lookup === undefined
          ? { socket: r.socket, backend: b, via: p.via, tries }
          : { socket: r.socket, backend: b, via: p.via, lookup, tries };
      }
      b.active--;
      lastCode = r.code;
      lastTimedOut = r.timeout;
      exclude.add(b.name);
      log.warn(
        { event: EVENTS.connectFail, frontend: config.name, pool: pr.name, backend: b.name, address: formatAddress(b.spec.host, port), code: r.code },
        'backend connect failed',
      );
      if (pool.markDown(b, deps.clock.now(), config.holdDownMs)) {
        log.warn({ event: EVENTS.backendDown, frontend: config.name, pool: pr.name, backend: b.name, code: r.code, holdDownMs: config.holdDownMs }, 'backend down');
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

/** What to learn from this connection's backend, as splice options. */
function learning(fe: Frontend, pr: PoolRuntime, facts: Facts, backend: Backend, deps: Deps): Omit<SpliceOptions, 'idleMs'> {
  const chain = fe.config.affinity;
  const pin: Pin = (kind, value) => {
    pr.table.set(tableKey({ kind, value }), backend.name, deps.clock.now());
  };
  const tls = facts.peek?.tls;
  const http = facts.peek?.http;
  if (tls) {
    const want = { session: chain.some((s) => s.kind === 'tls-session'), ticket: chain.some((s) => s.kind === 'tls-ticket') };
    return want.session || want.ticket ? { watchBackend: tlsLearner(tls, want, pin) } : {};
  }
  if (http) {
    const learn = chain.flatMap((s) => (s.kind === 'http-cookie' && !http.cookies.has(s.name) ? [s.name] : []));
    const ic = fe.config.insertCookie;
    const insert = ic !== undefined && http.cookies.get(ic) !== backend.name ? { name: ic, value: backend.name } : undefined;
    return learn.length > 0 || insert ? { rewriteHead: responseHeadRewriter(learn, insert, pin) } : {};
  }
  return {};
}

/** Handles one accepted client from accept to close. Never throws; resolves once it is closed. */
async function handleConnection(raw: net.Socket, fe: Frontend, deps: Deps): Promise<void> {
  // The client socket; imap/pop3 replace it with the TLS socket after implicit TLS or STARTTLS.
  let client = raw;
  const conn = nextConnId++;
  const startedMs = deps.clock.now();
  const log = deps.logger;
  let firstError: string | undefined;
  // Until the splice owns the socket, an error only means the client went away; that is
  // recorded through the termination, so the error itself needs no more handling.
  const preError = (err: Error): void => {
    firstError ??= (err as NodeJS.ErrnoException).code ?? 'error';
  };
  client.on('error', preError);
  let facts: Facts = {
    source: client.remoteAddress ?? '',
    sourcePort: client.remotePort ?? 0,
    localPort: client.localPort ?? 0,
  };
  const stopping = { cut: false };
  // A stop may cut the client while a stage awaits; read it through a call, not a narrowed field.
  const isCut = (): boolean => stopping.cut;
  /** A stop that cut the client overrides whatever the interrupted stage reports. */
  const ended = (t: Termination): Termination => (isCut() ? { cause: 'tether', stage: 'shutdown' } : t);
  fe.open.set(raw, () => {
    stopping.cut = true;
    client.destroy();
  });

  let outcome: Outcome = { termination: { cause: 'client', stage: 'accept', code: 'gone' }, bytesIn: 0, bytesOut: 0, tries: 0 };
  let prelude: readonly Buffer[] = [];
  let pr = fe.pools.get('default');
  let peekStop: string | undefined;
  let login: Login | undefined;
  let destination = { address: raw.localAddress ?? '', port: facts.localPort };
  const isTrusted = fe.trusted !== undefined && facts.source !== '' && fe.trusted.admits(facts.source);
  if (!isTrusted && !fe.acl.admits(facts.source)) {
    // Refused before a byte is read (the socket is still paused); a trusted balancer's clients
    // are checked below, once its header has said who they are.
    outcome = { ...outcome, termination: { cause: 'client', stage: 'accept', code: 'acl-deny' } };
    pr = undefined;
    client.destroy();
  } else if (isTrusted) {
    const h = await readProxyHeader(client);
    const v = h.ok ? h.header : undefined;
    if (v?.source !== undefined && v.sourcePort !== undefined && v.dest !== undefined && v.destPort !== undefined) {
      facts = { ...facts, source: v.source, sourcePort: v.sourcePort };
      destination = { address: v.dest, port: v.destPort };
    }
    if (!h.ok || !fe.acl.admits(facts.source)) {
      const termination = ended({ cause: 'client', stage: 'accept', code: h.ok ? 'acl-deny' : 'proxy-header' });
      outcome = { ...outcome, termination, bytesIn: raw.bytesRead };
      pr = undefined;
      client.destroy();
    }
  }
  if (!pr) {
    // Refused above: by the ACL, or after reading the balancer's header.
  } else if (facts.source === '') {
    outcome = { ...outcome, termination: { cause: 'client', stage: 'accept', code: firstError ?? 'gone' } };
  } else if (fe.mail) {
    const g = await converse(client, fe.mail.converse);
    client = g.client;
    if (g.ok) {
      login = g.login;
      if (g.leftover.length > 0) prelude = [g.leftover];
      const key = loginKey(g.login.user, fe.config.mail.loginDomain);
      const named = fe.mail.directory ? await fe.mail.directory.lookup(key) : undefined;
      facts = { ...facts, login: named === undefined ? { key } : { key, backend: named } };
    } else {
      outcome = { ...outcome, termination: ended(g.termination), bytesIn: raw.bytesRead };
      pr = undefined;
      // converse only half-closes (BYE, FIN) and leaves the client paused: without this, a
      // client that never closes its side would hold the connection past the login timeout.
      if (!client.destroyed) refuse(client);
    }
  } else if (fe.peeks) {
    const r = await peek(client, { timeoutMs: fe.config.peekTimeoutMs, maxBytes: MAX_PRELUDE_BYTES });
    if (r.ok && fe.trusted && !isTrusted && r.prelude.length > 0 && parseProxyHeader(Buffer.concat(r.prelude)).kind !== 'not-mine') {
      // Only --trusted-proxy balancers may say who the client is; anyone else trying is refused.
      outcome = { ...outcome, termination: { cause: 'client', stage: 'accept', code: 'proxy-untrusted' }, bytesIn: client.bytesRead };
      pr = undefined;
      client.destroy();
    } else if (r.ok) {
      prelude = r.prelude;
      facts = { ...facts, peek: r.facts };
      peekStop = r.stop;
    } else {
      outcome = { ...outcome, termination: ended(r.termination), bytesIn: client.bytesRead };
      pr = undefined;
    }
  }
  if (fe.keyFunction && facts.source !== '' && pr) {
    const k = runKeyFunction(fe.keyFunction, keyModuleInput(facts));
    if (k.error !== undefined) log.warn({ event: EVENTS.keyModuleError, frontend: fe.config.name, err: k.error instanceof Error ? k.error.message : 'non-Error thrown' }, 'key module failed');
    if (k.key !== undefined) facts = { ...facts, moduleKey: k.key };
  }
  if (pr && facts.source !== '') pr = fe.pools.get(selectPool(fe.config.routes, facts.peek)) ?? pr;
  if (pr && facts.source !== '' && !stopping.cut) {
    const lookups = chainLookups(fe.config.affinity, facts, { backendNames: pr.backendNames });
    const ic = fe.config.insertCookie;
    const named = ic === undefined ? undefined : facts.peek?.http?.cookies.get(ic);
    const c = await connectWithFailover(client, fe, pr, facts, lookups, named, deps, log);
    if ('termination' in c) {
      if (!client.destroyed) refuse(client);
      outcome = { termination: ended(c.termination), bytesIn: client.bytesRead, bytesOut: 0, tries: c.tries };
    } else {
      let backendSocket: net.Socket | undefined = c.socket;
      // Before the prelude and before the backend's greeting is read (Dovecot and Postfix accept it).
      const pp = fe.config.proxyProtocol;
      if (pp !== undefined) {
        const endpoints = { source: facts.source, sourcePort: facts.sourcePort, dest: destination.address, destPort: destination.port };
        c.socket.write(pp === 'v1' ? encodeProxyV1(endpoints) : encodeProxyV2(endpoints));
      }
      if (login && fe.mail) {
        const bl = await loginAtBackend(c.socket, login, { ...fe.mail.backendLogin, tlsOptions: fe.mail.backendTlsOptions(c.backend.spec.host), now: () => deps.clock.now() });
        if (bl.ok) {
          backendSocket = bl.socket;
          client.write(bl.toClient);
        } else {
          c.socket.destroy();
          backendSocket = undefined;
          c.backend.active--;
          if (!client.destroyed) {
            client.write(fe.config.protocol === 'imap' ? '* BYE Backend unavailable, try again later\r\n' : '-ERR Backend unavailable, try again later\r\n');
            // As for a failed dial: FIN, drain, and drop the client after a short wait.
            refuse(client);
          }
          outcome = { termination: { cause: 'backend', stage: 'connect', code: bl.code }, backend: c.backend, via: c.via, bytesIn: raw.bytesRead, bytesOut: 0, tries: c.tries };
        }
      }
      if (backendSocket) {
        client.off('error', preError);
        const s: Splice = splice(client, backendSocket, prelude, { idleMs: fe.config.idleTimeoutMs, ...learning(fe, pr, facts, c.backend, deps) });
        // Keyed by the raw socket, as at accept: `client` may be the TLS socket (STARTTLS or
        // implicit TLS), and only `raw` is deleted below; a TLS key would stay and hang stop().
        fe.open.set(raw, s.cut);
        if (isCut()) s.cut();
        const r = await s.done;
        c.backend.active--;
        outcome = { termination: r.termination, backend: c.backend, via: c.via, bytesIn: r.bytesIn, bytesOut: r.bytesOut, tries: c.tries };
        if (c.lookup) outcome.lookup = c.lookup;
      }
    }
  } else if (stopping.cut && facts.source !== '') {
    outcome = { ...outcome, termination: { cause: 'tether', stage: 'shutdown' } };
  }
  fe.open.delete(raw);
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
      pool: pr?.name ?? null,
      // The login name is what mail operators search logs by; the password never leaves the
      // replay buffers (see greet/).
      user: facts.login?.key ?? null,
      backend: outcome.backend?.name ?? null,
      key: outcome.lookup ? { kind: outcome.lookup.kind, hash: keyHash(outcome.lookup.value) } : null,
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

function poolRuntime(name: string, backends: FrontendConfig['backends'], balance: FrontendConfig['balance'], config: FrontendConfig, deps: Deps): PoolRuntime {
  return {
    name,
    pool: new Pool(backends),
    table: new AffinityTable(config.affinityTimeoutMs, config.affinityMaxEntries),
    balancer: createBalancer(balance, deps.rng),
    backendNames: new Set(backends.map((b) => b.name)),
  };
}

/**
 * Binds one frontend's listeners (or claims the sockets systemd passed for its addresses) and
 * starts serving. Rejects with TETHER_ERR_LISTEN.
 */
async function startFrontend(config: FrontendConfig, deps: Deps, activation: Activation | undefined): Promise<Frontend> {
  const defaultPool = poolRuntime('default', config.backends, config.balance, config, deps);
  const pools = new Map<string, PoolRuntime>([['default', defaultPool]]);
  for (const p of config.pools) pools.set(p.name, poolRuntime(p.name, p.backends, p.balance, config, deps));
  const keyFunction = config.keyModule === undefined ? undefined : await loadKeyModule(config.keyModule);
  const mail = await mailRuntime(config, deps);
  const peeks = chainNeedsPeek(config.affinity) || config.routes.length > 0 || config.insertCookie !== undefined;
  const open = new Map<net.Socket, () => void>();
  let lastAcceptErrorMs = -Infinity;
  const acl = compileAcl({ allow: config.allow, deny: config.deny });
  const trusted = config.acceptProxyProtocol ? compileAcl({ allow: config.trustedProxies, deny: [] }) : undefined;
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
    activation && ((addr) => activation.take(config.name, addr)),
  );
  const probes = config.affinity.some((st) => st.kind === 'tls-ticket') ? startTicketProbes(config, pools, deps) : undefined;
  const fe: Frontend = {
    config,
    listeners,
    pools,
    peeks,
    ...(keyFunction === undefined ? {} : { keyFunction }),
    ...(mail === undefined ? {} : { mail }),
    ...(probes === undefined ? {} : { stopProbes: probes }),
    open,
    acl,
    ...(trusted === undefined ? {} : { trusted }),
  };
  feRef.fe = fe;
  for (const l of listeners) {
    deps.logger.info(
      { event: EVENTS.listenReady, frontend: config.name, address: formatAddress(l.host, l.port), host: l.host, port: l.port, ...(l.activated ? { activated: true } : {}) },
      'listening',
    );
  }
  flushSoon(deps.logger);
  return fe;
}

/**
 * Starts every frontend of `config`, serving the addresses `activation` has inherited sockets
 * for on those. On a listen failure, closes what was bound and rejects.
 */
export async function startTether(config: Config, deps: Deps, activation?: Activation): Promise<Tether> {
  const frontends: Frontend[] = [];
  try {
    for (const fc of config.frontends) frontends.push(await startFrontend(fc, deps, activation));
  } catch (e) {
    await Promise.all(frontends.map((f) => closeListeners(f.listeners)));
    throw e;
  }
  return {
    frontends,
    async stop(graceMs: number): Promise<void> {
      for (const f of frontends) f.stopProbes?.();
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
