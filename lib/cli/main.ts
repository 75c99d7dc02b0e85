// The command line: argv → Config → a running tether. The only module that reads process.argv,
// handles signals and calls process.exit. Exit status: 0 after a signalled graceful stop or a
// successful `check`, 2 for usage/config errors, 1 for runtime start failures (EADDRINUSE).
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { monotonicMicros, realClock, realRng } from '../clock.js';
import { frontendWithDefaults, type FrontendDraft } from '../config/document.js';
import { GRACE_MS, STATE_INTERVAL_MS } from '../config/defaults.js';
import type { Config } from '../config/types.js';
import { deepFreeze, validateConfig } from '../config/validate.js';
import { TetherError, type ConfigIssue, type TetherErrorCode } from '../errors.js';
import { EVENTS, createLogger, flushLog, flushSoon, logFatalSync, type Logger, type LogLevel } from '../log.js';
import { startTether } from '../proxy.js';
import type { ReloadReport, Tether } from '../runtime/types.js';
import { startAdmin, type AdminServer } from '../admin/server.js';
import { createMetrics, type ReloadCounts } from '../admin/metrics.js';
import { adoptInherited } from '../systemd/activation.js';
import { parseListenFds } from '../systemd/listen-fds.js';
import { createNotifier, notifyReload } from '../systemd/notify.js';
import { buildUnit, runFlagsFrom, type UnitOptions } from './systemd-unit.js';
import { runDemo } from '../demo/demo.js';
import { checkStateFile, readStateFile, startStateSaver, type StateSaver, type TableRef } from '../state/state-file.js';
import { loadConfigFile } from './config-file.js';
import { describeFileError, readFileBounded } from '../files/read.js';
import {
  FLAG_TABLE,
  parseAffinityChain,
  parseBackend,
  parseBalance,
  parseCount,
  parseDuration,
  parseListen,
  parseLogLevel,
  parseName,
  parseCookieName,
  parseChoice,
  parseCidr,
  parseLookupUrl,
  parseAdminAddress,
  parseExpect,
  parseSendString,
} from './flags.js';
import { BACKEND_TLS_MODES, CLIENT_TLS_MODES, FRONTEND_PROTOCOLS, HEALTH_CHECK_KINDS, LOGIN_DOMAIN_MODES, PROXY_PROTOCOL_VERSIONS } from '../config/types.js';
import type { FrontendProtocol, HealthConfig, MailConfig, ProxyProtocolVersion } from '../config/types.js';
import { MAX_CONNS_LIMIT, MAX_HEALTH_COUNT, MAX_QUEUE_SIZE, MAX_RETRIES } from '../config/defaults.js';

interface RunOptions {
  listen?: ReturnType<typeof parseListen>[];
  backend?: ReturnType<typeof parseBackend>[];
  affinity?: ReturnType<typeof parseAffinityChain>;
  balance?: ReturnType<typeof parseBalance>;
  affinityTimeout?: number;
  affinityMaxEntries?: number;
  connectTimeout?: number;
  idleTimeout?: number;
  backendStallTimeout?: number;
  clientStallTimeout?: number;
  finTimeout?: number;
  retries?: number;
  holdDown?: number;
  peekTimeout?: number;
  insertCookie?: string;
  keyModule?: string;
  protocol?: FrontendProtocol;
  tls?: MailConfig['tls'];
  tlsCert?: string;
  tlsKey?: string;
  requireTls?: boolean;
  backendTls?: MailConfig['backendTls'];
  backendCa?: string;
  backendInsecure?: boolean;
  userMap?: string;
  userLookup?: string;
  userCacheTtl?: number;
  loginTimeout?: number;
  loginDomain?: MailConfig['loginDomain'];
  allow?: string[];
  deny?: string[];
  proxyProtocol?: ProxyProtocolVersion;
  acceptProxyProtocol?: boolean;
  trustedProxy?: string[];
  frontendMaxConns?: number;
  queueSize?: number;
  queueTimeout?: number;
  healthCheck?: HealthConfig['check'];
  healthExpect?: string;
  healthSend?: string;
  healthInterval?: number;
  healthTimeout?: number;
  healthRise?: number;
  healthFall?: number;
  name?: string;
  maxConns?: number;
  grace?: number;
  stateFile?: string;
  stateInterval?: number;
  logLevel?: LogLevel;
  admin?: ReturnType<typeof parseAdminAddress>;
  adminTokenFile?: string;
  config?: string;
}

const PARSERS: Readonly<Record<string, (v: string) => unknown>> = {
  '--listen': parseListen,
  '--backend': parseBackend,
  '--affinity': parseAffinityChain,
  '--balance': parseBalance,
  '--affinity-timeout': parseDuration,
  '--affinity-max-entries': parseCount(1, 100_000_000),
  '--connect-timeout': parseDuration,
  '--idle-timeout': parseDuration,
  '--backend-stall-timeout': parseDuration,
  '--client-stall-timeout': parseDuration,
  '--fin-timeout': parseDuration,
  '--retries': parseCount(0, MAX_RETRIES),
  '--hold-down': parseDuration,
  '--peek-timeout': parseDuration,
  '--insert-cookie': parseCookieName,
  '--key-module': (v) => v,
  '--protocol': parseChoice(FRONTEND_PROTOCOLS),
  '--tls': parseChoice(CLIENT_TLS_MODES),
  '--tls-cert': (v) => v,
  '--tls-key': (v) => v,
  '--backend-tls': parseChoice(BACKEND_TLS_MODES),
  '--backend-ca': (v) => v,
  '--user-map': (v) => v,
  '--user-lookup': parseLookupUrl,
  '--user-cache-ttl': parseDuration,
  '--login-timeout': parseDuration,
  '--login-domain': parseChoice(LOGIN_DOMAIN_MODES),
  '--allow': parseCidr,
  '--deny': parseCidr,
  '--proxy-protocol': parseChoice(PROXY_PROTOCOL_VERSIONS),
  '--trusted-proxy': parseCidr,
  '--frontend-max-conns': parseCount(1, MAX_CONNS_LIMIT),
  '--queue-size': parseCount(0, MAX_QUEUE_SIZE),
  '--queue-timeout': parseDuration,
  '--health-check': parseChoice(HEALTH_CHECK_KINDS),
  '--health-expect': parseExpect,
  '--health-send': parseSendString,
  '--health-interval': parseDuration,
  '--health-timeout': parseDuration,
  '--health-rise': parseCount(1, MAX_HEALTH_COUNT),
  '--health-fall': parseCount(1, MAX_HEALTH_COUNT),
  '--name': parseName,
  '--max-conns': parseCount(1, MAX_CONNS_LIMIT),
  '--grace': parseDuration,
  '--state-file': (v) => v,
  '--state-interval': parseDuration,
  '--log-level': parseLogLevel,
  '--admin': parseAdminAddress,
  '--admin-token-file': (v) => v,
  '--config': (v) => v,
};

function addRunOptions(cmd: Command): Command {
  for (const row of FLAG_TABLE) {
    const long = row.flags.split(' ')[0] ?? row.flags;
    if (!row.flags.includes('<')) {
      // A switch (--require-tls): no argument to parse.
      cmd.addOption(new Option(row.flags, row.description));
      continue;
    }
    const parse = PARSERS[long];
    if (parse === undefined) throw new TetherError('TETHER_ERR_INTERNAL', `no parser for ${long}`);
    const description = row.defaultText === undefined ? row.description : `${row.description} (default: ${row.defaultText})`;
    const opt = new Option(row.flags, description);
    if (row.repeatable) opt.argParser((v: string, prev: unknown[] | undefined) => [...(prev ?? []), parse(v)]);
    else opt.argParser((v: string) => parse(v));
    cmd.addOption(opt);
  }
  return cmd;
}

const FLAG_FOR_FIELD: Readonly<Record<string, string>> = { listen: '--listen', backends: '--backend', affinity: '--affinity', name: '--name', 'trusted-proxies': '--trusted-proxy' };
const FLAG_FIELD_NAMES = new Set(['affinity-timeout', 'connect-timeout', 'idle-timeout', 'backend-stall-timeout', 'client-stall-timeout', 'fin-timeout', 'affinity-max-entries', 'retries', 'hold-down', 'peek-timeout', 'insert-cookie', 'key-module', 'protocol', 'tls', 'require-tls', 'backend-tls', 'user-map', 'user-lookup', 'login-timeout', 'routes', 'proxy-protocol', 'accept-proxy-protocol', 'frontend-max-conns', 'queue-size', 'queue-timeout', 'health-check', 'health-expect', 'health-send', 'health-interval', 'health-timeout', 'health-rise', 'health-fall']);

/** Top-level config keys that are flags of the same name. */
const GLOBAL_FLAG_NAMES = new Set(['grace', 'log-level', 'state-file', 'state-interval', 'admin', 'admin-token-file']);

/** Renames `frontends[0].backends[1]` to `--backend #2` for configs built from flags. */
function flagPath(path: string): string {
  if (GLOBAL_FLAG_NAMES.has(path)) return `--${path}`;
  const m = /^frontends\[0\]\.([\w-]+)(?:\[(\d+)\])?(.*)$/.exec(path);
  if (!m?.[1]) return path;
  const flag = FLAG_FOR_FIELD[m[1]] ?? (FLAG_FIELD_NAMES.has(m[1]) ? `--${m[1]}` : m[1]);
  return m[2] === undefined ? `${flag}${m[3] ?? ''}` : `${flag} #${String(Number(m[2]) + 1)}${m[3] ?? ''}`;
}

function configFromFlags(o: RunOptions): Config {
  const d: FrontendDraft = {};
  if (o.name !== undefined) d.name = o.name;
  if (o.listen !== undefined) d.listen = o.listen;
  if (o.backend !== undefined) d.backends = o.backend;
  if (o.affinity !== undefined) d.affinity = o.affinity;
  if (o.balance !== undefined) d.balance = o.balance;
  if (o.affinityTimeout !== undefined) d.affinityTimeoutMs = o.affinityTimeout;
  if (o.affinityMaxEntries !== undefined) d.affinityMaxEntries = o.affinityMaxEntries;
  if (o.connectTimeout !== undefined) d.connectTimeoutMs = o.connectTimeout;
  if (o.idleTimeout !== undefined) d.idleTimeoutMs = o.idleTimeout;
  if (o.backendStallTimeout !== undefined) d.backendStallTimeoutMs = o.backendStallTimeout;
  if (o.clientStallTimeout !== undefined) d.clientStallTimeoutMs = o.clientStallTimeout;
  if (o.finTimeout !== undefined) d.finTimeoutMs = o.finTimeout;
  if (o.retries !== undefined) d.retries = o.retries;
  if (o.holdDown !== undefined) d.holdDownMs = o.holdDown;
  if (o.peekTimeout !== undefined) d.peekTimeoutMs = o.peekTimeout;
  if (o.insertCookie !== undefined) d.insertCookie = o.insertCookie;
  if (o.keyModule !== undefined) d.keyModule = o.keyModule;
  if (o.protocol !== undefined) d.protocol = o.protocol;
  const mail: { -readonly [K in keyof MailConfig]?: MailConfig[K] } = {};
  if (o.tls !== undefined) mail.tls = o.tls;
  if (o.tlsCert !== undefined) mail.tlsCert = o.tlsCert;
  if (o.tlsKey !== undefined) mail.tlsKey = o.tlsKey;
  if (o.requireTls !== undefined) mail.requireTls = o.requireTls;
  if (o.backendTls !== undefined) mail.backendTls = o.backendTls;
  if (o.backendCa !== undefined) mail.backendCa = o.backendCa;
  if (o.backendInsecure !== undefined) mail.backendVerify = !o.backendInsecure;
  if (o.userMap !== undefined) mail.userMap = o.userMap;
  if (o.userLookup !== undefined) mail.userLookup = o.userLookup;
  if (o.userCacheTtl !== undefined) mail.userCacheTtlMs = o.userCacheTtl;
  if (o.loginTimeout !== undefined) mail.loginTimeoutMs = o.loginTimeout;
  if (o.loginDomain !== undefined) mail.loginDomain = o.loginDomain;
  d.mail = mail;
  if (o.allow !== undefined) d.allow = o.allow;
  if (o.deny !== undefined) d.deny = o.deny;
  if (o.proxyProtocol !== undefined) d.proxyProtocol = o.proxyProtocol;
  if (o.acceptProxyProtocol !== undefined) d.acceptProxyProtocol = o.acceptProxyProtocol;
  if (o.trustedProxy !== undefined) d.trustedProxies = o.trustedProxy;
  const health: { -readonly [K in keyof HealthConfig]?: HealthConfig[K] } = {};
  if (o.healthCheck !== undefined) health.check = o.healthCheck;
  if (o.healthExpect !== undefined) health.expect = o.healthExpect;
  if (o.healthSend !== undefined) health.send = o.healthSend;
  if (o.healthInterval !== undefined) health.intervalMs = o.healthInterval;
  if (o.healthTimeout !== undefined) health.timeoutMs = o.healthTimeout;
  if (o.healthRise !== undefined) health.rise = o.healthRise;
  if (o.healthFall !== undefined) health.fall = o.healthFall;
  d.health = health;
  if (o.frontendMaxConns !== undefined) d.maxConns = o.frontendMaxConns;
  if (o.queueSize !== undefined) d.queueSize = o.queueSize;
  if (o.queueTimeout !== undefined) d.queueTimeoutMs = o.queueTimeout;
  // The global flags (--log-level, --grace, …) are laid over this by withGlobalFlags.
  return { logLevel: 'info', graceMs: GRACE_MS, frontends: [frontendWithDefaults(d)] };
}

/**
 * The global flags — --log-level, --grace, --max-conns, --state-file, --state-interval,
 * --admin, --admin-token-file — each over what the config file (or the defaults) says.
 */
function withGlobalFlags(config: Config, o: RunOptions): Config {
  if (o.adminTokenFile !== undefined && o.admin === undefined && config.admin === undefined) {
    throw new TetherError('TETHER_ERR_USAGE', '--admin-token-file needs --admin (the address of the admin API)');
  }
  const maxConns = o.maxConns ?? config.maxConns;
  const stateFile = o.stateFile ?? config.stateFile;
  const stateIntervalMs = o.stateInterval ?? config.stateIntervalMs;
  const admin = o.admin ?? config.admin;
  const tokenFile = o.adminTokenFile ?? config.admin?.tokenFile;
  return {
    ...config,
    logLevel: o.logLevel ?? config.logLevel,
    graceMs: o.grace ?? config.graceMs,
    ...(maxConns === undefined ? {} : { maxConns }),
    ...(stateFile === undefined ? {} : { stateFile }),
    ...(stateIntervalMs === undefined ? {} : { stateIntervalMs }),
    ...(admin === undefined ? {} : { admin: { host: admin.host, port: admin.port, ...(tokenFile === undefined ? {} : { tokenFile }) } }),
  };
}

const FRONTEND_OPTION_KEYS = [
  'listen', 'backend', 'affinity', 'balance', 'affinityTimeout', 'affinityMaxEntries', 'connectTimeout', 'idleTimeout', 'backendStallTimeout', 'clientStallTimeout', 'finTimeout', 'retries', 'holdDown', 'peekTimeout', 'insertCookie', 'keyModule', 'name',
  'protocol', 'tls', 'tlsCert', 'tlsKey', 'requireTls', 'backendTls', 'backendCa', 'backendInsecure', 'userMap', 'userLookup',
  'userCacheTtl', 'loginTimeout', 'loginDomain', 'allow', 'deny',
  'proxyProtocol', 'acceptProxyProtocol', 'trustedProxy', 'frontendMaxConns', 'queueSize', 'queueTimeout',
  'healthCheck', 'healthExpect', 'healthSend', 'healthInterval', 'healthTimeout', 'healthRise', 'healthFall',
] as const;

/** Exit status for each error code: usage and config problems 2, start failures 1. */
const EXIT_STATUS: Readonly<Record<TetherErrorCode, number>> = {
  TETHER_ERR_USAGE: 2,
  TETHER_ERR_CONFIG: 2,
  TETHER_ERR_CONFIG_FILE: 2,
  TETHER_ERR_LISTEN: 1,
  TETHER_ERR_INTERNAL: 1,
};

function configError(lines: readonly string[], issues: readonly ConfigIssue[] = []): TetherError {
  return new TetherError('TETHER_ERR_CONFIG', lines.join('\n'), { issues });
}

/** Builds and validates the Config from options; prints every problem and exits 2 on any. */
async function resolveConfig(o: RunOptions): Promise<Config> {
  let config: Config;
  let issues: ConfigIssue[];
  let fromFlags = false;
  if (o.config !== undefined) {
    const mixed = FRONTEND_OPTION_KEYS.filter((k) => o[k] !== undefined).map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
    if (mixed.length > 0) {
      throw new TetherError('TETHER_ERR_USAGE', mixed.map((f) => `${f} cannot be combined with --config (put it in the file)`).join('\n'));
    }
    ({ config, issues } = await loadConfigFile(o.config));
  } else {
    fromFlags = true;
    config = configFromFlags(o);
    issues = [];
  }
  config = withGlobalFlags(config, o);
  // Cross-field rules name items by their index in the parsed lists; a file item that failed
  // to parse was left out of them, so those paths would point at the wrong item. Run the rules
  // once every value parses.
  if (issues.length === 0) issues.push(...validateConfig(config));
  if (issues.length > 0) {
    const where = o.config === undefined ? '' : `${o.config}: `;
    throw configError(
      issues.map((i) => `${where}${fromFlags ? flagPath(i.path) : i.path}: ${i.message}`),
      issues,
    );
  }
  return deepFreeze(config);
}

/** The largest admin token file read: a token is tens of bytes. */
const MAX_TOKEN_BYTES = 4096;

/** Reads the admin bearer token (surrounding whitespace dropped). Rejects with TETHER_ERR_CONFIG. */
async function readToken(file: string): Promise<string> {
  let text: string;
  try {
    text = (await readFileBounded(file, { maxBytes: MAX_TOKEN_BYTES })).toString('utf8');
  } catch (e) {
    throw new TetherError('TETHER_ERR_CONFIG', `cannot read --admin-token-file ${file}: ${describeFileError(e)}`, { cause: e });
  }
  const token = text.trim();
  if (token === '' || /\s/.test(token)) throw new TetherError('TETHER_ERR_CONFIG', `--admin-token-file ${file}: expected one token with no spaces`);
  return token;
}

/** The variables systemd hands a service: readiness notification and socket activation. */
const SYSTEMD_VARS = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'] as const;

/**
 * Reads systemd's variables and removes them from the environment (as sd_listen_fds(3) and
 * sd_notify(3) do), so no child process believes they were meant for it.
 */
function takeSystemdEnv(): Partial<Record<(typeof SYSTEMD_VARS)[number] | 'PATH', string>> {
  const env: Partial<Record<(typeof SYSTEMD_VARS)[number] | 'PATH', string>> = {};
  for (const name of SYSTEMD_VARS) {
    const v = process.env[name];
    if (v !== undefined) env[name] = v;
    // eslint-disable-next-line @typescript-eslint/no-dynamic-delete
    delete process.env[name];
  }
  if (process.env['PATH'] !== undefined) env.PATH = process.env['PATH'];
  return env;
}

/** Exit status after an error nothing handled (sysexits.h EX_SOFTWARE): systemd restarts us. */
const EXIT_FATAL = 70;

/**
 * The last resort. Every socket, timer and promise of tether has its own error path, and the
 * fault tests pass without ever coming here; an exception that still escapes means the
 * process's state can no longer be trusted, so keeping it running would be worse than a
 * crash: log one `process.fatal` line (stack only, never payload) and exit for the supervisor
 * (systemd's Restart=on-failure) to start a clean process.
 */
export function exitOnEscapedErrors(logger: Logger): void {
  const die = (kind: string) => (err: unknown): void => {
    let stack: string;
    try {
      stack = err instanceof Error ? (err.stack ?? String(err)) : String(err);
    } catch {
      stack = 'an error that cannot be printed';
    }
    logFatalSync(logger, { event: EVENTS.fatal, code: 'TETHER_ERR_INTERNAL', kind, err: stack }, 'unhandled error; exiting');
    process.stderr.write(`tether: fatal: ${kind}: ${stack}\n`);
    process.exit(EXIT_FATAL);
  };
  process.on('uncaughtException', die('uncaughtException'));
  process.on('unhandledRejection', die('unhandledRejection'));
}

async function run(o: RunOptions): Promise<void> {
  const config = await resolveConfig(o);
  const stateFile = config.stateFile;
  if (stateFile !== undefined) await checkStateFile(stateFile);
  const env = takeSystemdEnv();
  const logger = createLogger(config.logLevel);
  exitOnEscapedErrors(logger);
  const notifier = createNotifier(env, logger, { pid: process.pid, monotonicMicros });
  // Before anything opens a socket or starts a child (the notifier's READY=1 comes later):
  // the descriptors LISTEN_FDS names must still be the ones systemd passed.
  const inherited = parseListenFds(env, process.pid);
  for (const reason of inherited.problems) logger.warn({ event: EVENTS.activationIgnored, reason }, 'inherited sockets ignored');
  const activation = await adoptInherited(inherited.fds, config.frontends, logger);
  let tether: Tether;
  let admin: AdminServer | undefined;
  let saver: StateSaver | undefined;
  let token = config.admin?.tokenFile === undefined ? undefined : await readToken(config.admin.tokenFile);
  try {
    const state = stateFile === undefined ? undefined : await readStateFile(stateFile, logger, realClock);
    tether = await startTether(config, { logger, clock: realClock, rng: realRng, ...(state ? { restore: state.restore.bind(state) } : {}) }, activation);
    state?.report(logger);
    if (stateFile !== undefined) {
      const running = tether;
      const tables = (): TableRef[] => running.frontends.flatMap((f) => [...f.current.pools.values()].map((p) => ({ frontend: f.name, pool: p.name, table: p.table })));
      saver = startStateSaver(stateFile, tables, config.stateIntervalMs ?? STATE_INTERVAL_MS, logger, realClock);
    }
  } catch (e) {
    await flushLog(logger);
    throw e;
  }
  /** Re-reads flags' files or the config file and applies them; the old config stays on failure. */
  const reloads: ReloadCounts = { ok: 0, failed: 0 };
  const reload = async (): Promise<ReloadReport> => {
    try {
      const next = await resolveConfig(o);
      if (next.admin?.host !== config.admin?.host || next.admin?.port !== config.admin?.port) {
        logger.warn({ event: EVENTS.reloadFailed, reason: 'admin-address' }, 'the admin address changes only on restart');
      }
      const nextToken = next.admin?.tokenFile === undefined ? undefined : await readToken(next.admin.tokenFile);
      const report = await tether.reload(next);
      token = nextToken;
      reloads.ok++;
      logger.info({ event: EVENTS.reloadDone, ...report }, 'configuration reloaded');
      flushSoon(logger);
      return report;
    } catch (e) {
      reloads.failed++;
      const errors = e instanceof TetherError ? e.message.split('\n') : [String(e)];
      logger.error({ event: EVENTS.reloadFailed, code: e instanceof TetherError ? e.code : 'TETHER_ERR_INTERNAL', errors }, 'reload refused; the running configuration stays');
      flushSoon(logger);
      throw e;
    }
  };
  if (config.admin) {
    try {
      admin = await startAdmin(
        { host: config.admin.host, port: config.admin.port, token: () => token },
        { tether, registry: createMetrics(tether, realClock, { reloads }), logger, clock: realClock, reload },
      );
    } catch (e) {
      await tether.stop(0);
      await flushLog(logger);
      throw e;
    }
  }
  const onHangup = (): void => {
    logger.info({ event: 'signal', signal: 'SIGHUP' }, 'reload requested');
    // RELOADING=1 … READY=1 around it, so `systemctl reload` waits for the outcome.
    notifyReload(notifier, reload).catch(() => undefined);
  };
  process.on('SIGHUP', onHangup);
  const listeners = tether.frontends.reduce((n, f) => n + f.listeners.length, 0);
  notifier.ready(`serving ${String(config.frontends.length)} frontend(s) on ${String(listeners)} listener(s)`);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        // A second signal: the operator does not want to wait for the grace period.
        process.stderr.write(`tether: ${signal} again, exiting now\n`);
        process.exit(1);
      }
      stopping = true;
      notifier.stopping();
      logger.info({ event: 'signal', signal }, 'graceful stop requested');
      process.off('SIGHUP', onHangup);
      // Saved after the stop: connections still open during the grace period may pin keys.
      void (admin?.close() ?? Promise.resolve())
        .then(() => tether.stop(tether.config.graceMs))
        .then(() => saver?.stop())
        .then(resolve);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await notifier.close();
  await flushLog(logger);
}

/** bin/tether, for the ExecStart of `systemd-unit` (this file is dist/lib/cli/main.js). */
const BIN_TETHER = fileURLToPath(new URL('../../../bin/tether', import.meta.url));

/**
 * Builds the commander program (exported for tests of --help). `argv` is the command line it
 * will parse; `systemd-unit` copies its flags from it.
 */
export function buildProgram(argv: readonly string[] = process.argv): Command {
  const program = new Command('tether');
  program
    .description('Layer-4 TCP/TLS proxy with session affinity')
    .version('0.1.0')
    .enablePositionalOptions()
    .exitOverride()
    .showHelpAfterError('(run tether --help for usage)')
    .addHelpText(
      'after',
      `
Examples:
  tether --listen 0.0.0.0:993 --backend a=10.0.0.1:993 --backend b=10.0.0.2:993,weight=2 \\
         --affinity source/24 --balance hash
  tether --listen 0.0.0.0:10000-10099 --backend 10.0.0.1 --backend 10.0.0.2
  tether --config /etc/tether/tether.yaml
  tether check --config /etc/tether/tether.yaml
  tether systemd-unit --config /etc/tether/tether.yaml > /etc/systemd/system/tether.service
  tether demo`,
    );
  addRunOptions(program).action(async (o: RunOptions) => {
    await run(o);
  });
  addRunOptions(
    program
      .command('check')
      .description('validate flags or --config FILE and exit: 0 when valid, 2 with every problem'),
  ).action(async (o: RunOptions) => {
    // Flags written before `check` belong to the root command; they count too.
    const config = await resolveConfig({ ...program.opts<RunOptions>(), ...o });
    const n = config.frontends.length;
    process.stdout.write(`tether: configuration ok (${String(n)} frontend${n === 1 ? '' : 's'})\n`);
  });
  addRunOptions(
    program
      .command('systemd-unit')
      .description('validate the flags as `tether` would, then print a hardened systemd service unit running tether with them (or, with --socket, the matching socket unit)')
      .option('--user <NAME>', 'User= to run as (default: DynamicUser=yes, a fresh unprivileged user)')
      .option('--exec <PATH>', 'absolute path of the tether executable for ExecStart (default: this node running this bin/tether)')
      .option('--socket', 'print the .socket unit for socket activation (systemd binds the --listen addresses)'),
  ).action(async (o: RunOptions & UnitOptions) => {
    const all = { ...program.opts<RunOptions>(), ...o };
    const config = await resolveConfig(all);
    const cwd = process.cwd();
    const launcher = o.exec === undefined ? [process.execPath, BIN_TETHER] : [o.exec];
    const out = buildUnit(config, { ...o, configFile: all.config }, runFlagsFrom(argv.slice(2), cwd), launcher, cwd);
    for (const w of out.warnings) process.stderr.write(`tether: warning: ${w}\n`);
    process.stdout.write(out.text);
  });
  program
    .command('demo')
    .description('run three local backends that answer with their name, with tether in front (source affinity)')
    .addOption(new Option('--listen <HOST:PORT>', 'where tether listens').default(parseListen('127.0.0.1:7000'), '127.0.0.1:7000').argParser(parseListen))
    .option('--once', 'show the demo connections, then exit (no serving)')
    .action(async (o: { listen: ReturnType<typeof parseListen>; once?: boolean }) => {
      const demo = await runDemo({ listen: o.listen, once: o.once === true, out: process.stdout });
      if (o.once === true) return;
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          void demo.stop().then(resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
  return program;
}

/** Entry point used by bin/tether. Sets process.exitCode; exits explicitly only when needed. */
export async function main(argv: readonly string[]): Promise<void> {
  const program = buildProgram(argv);
  for (const cmd of [program, ...program.commands]) {
    cmd.exitOverride();
    cmd.configureOutput({ writeErr: (s) => process.stderr.write(s.startsWith('error:') ? `tether: ${s}` : s) });
  }
  try {
    await program.parseAsync([...argv]);
    process.exitCode = 0;
  } catch (e) {
    if (e instanceof TetherError) {
      for (const line of e.message.split('\n')) process.stderr.write(`tether: error: ${line}\n`);
      process.exitCode = EXIT_STATUS[e.code];
    } else if (e instanceof CommanderError) {
      const ok = e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help';
      process.exitCode = ok ? 0 : 2;
    } else {
      process.stderr.write(`tether: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    }
  }
  // Listeners and timers are closed by now; exit so a stray handle cannot keep us alive.
  setTimeout(() => process.exit(), 100).unref();
}
