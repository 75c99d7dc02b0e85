// The command line: argv → Config → a running tether. The only module that reads process.argv,
// handles signals and calls process.exit. Exit status: 0 after a signalled graceful stop or a
// successful `check`, 2 for usage/config errors, 1 for runtime start failures (EADDRINUSE).
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { monotonicMicros, realClock, realRng } from '../clock.js';
import { STATE_INTERVAL_MS } from '../config/defaults.js';
import type { Config } from '../config/types.js';
import { deepFreeze, validateConfig } from '../config/validate.js';
import { TetherError, type ConfigIssue, type TetherErrorCode } from '../errors.js';
import { EVENTS, createLogger, flushLog, flushLogSync, flushSoon, logFatalSync, type Logger } from '../log.js';
import { startTether } from '../proxy.js';
import type { ReloadReport, Tether } from '../runtime/types.js';
import type { AdminServer } from '../admin/server.js';
import type { ReloadCounts } from '../admin/metrics.js';
import { adoptInherited } from '../systemd/activation.js';
import { parseListenFds } from '../systemd/listen-fds.js';
import { createNotifier, notifyReload } from '../systemd/notify.js';
import { buildUnit, runFlagsFrom, type UnitOptions } from './systemd-unit.js';
import { checkStateFile, readStateFile, startStateSaver, type StateSaver, type TableRef } from '../state/state-file.js';
import { loadConfigFile } from './config-file.js';
import { readToken } from '../admin/token.js';
import { checkRuntime } from '../runtime/check.js';
import { configFromFlags, flagPath, frontendFlagsGiven, reported, withGlobalFlags } from '../options/build.js';
import { parseListen } from '../options/parse.js';
import { OPTIONS, type ValueIssue } from '../options/table.js';

/**
 * What commander collected for the run options: the texts as given (a list for a repeated
 * flag, true for a switch), parsed afterwards by the option table so every bad value is named.
 */
type RunOptions = Readonly<Record<string, unknown>> & { readonly config?: string };

function addRunOptions(cmd: Command): Command {
  for (const row of OPTIONS) {
    if (row.flags === undefined) continue;
    const description = row.defaultText === undefined ? row.description : `${row.description} (default: ${row.defaultText})`;
    const opt = new Option(row.flags, description);
    if (row.repeatable) opt.argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]);
    cmd.addOption(opt);
  }
  return cmd;
}

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

/**
 * Builds and validates the Config from options: every problem of flags or file at once, or the
 * Config. With `loadFiles` (`tether check`), also loads every file a start would (runtime/check.ts).
 */
async function resolveConfig(o: RunOptions, loadFiles = false): Promise<Config> {
  const file = o.config;
  let built: { config: Config; issues: ValueIssue[] };
  if (file !== undefined) {
    const mixed = frontendFlagsGiven(o);
    if (mixed.length > 0) {
      throw new TetherError('TETHER_ERR_USAGE', mixed.map((f) => `${f} cannot be combined with --config (put it in the file)`).join('\n'));
    }
    const loaded = await loadConfigFile(file);
    const over = withGlobalFlags(loaded.config, o);
    built = { config: over.config, issues: [...loaded.issues, ...over.issues] };
  } else {
    built = configFromFlags(o);
  }
  let issues = reported(built.issues, validateConfig(built.config));
  if (loadFiles) {
    // A load's message names its flag and file already (`cannot read --tls-cert x: ENOENT`), as a start's error does.
    const loads = await checkRuntime(built.config);
    issues = reported(issues, file === undefined ? loads.map((i) => ({ ...i, line: i.message })) : loads);
  }
  if (issues.length > 0) {
    const where = file === undefined ? '' : `${file}: `;
    throw configError(
      issues.map((i) => i.line ?? `${where}${file === undefined ? flagPath(i.path) : i.path}: ${i.message}`),
      issues,
    );
  }
  return deepFreeze(built.config);
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
  // An exit that did not wait for flushLog (process.exit on a path of its own) still writes
  // the gathered lines, as pino's own destination did.
  process.once('exit', () => {
    flushLogSync(logger);
  });
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
      // The admin API and prom-client load only when asked for: a start without --admin skips them.
      const [{ startAdmin }, { createMetrics }] = await Promise.all([import('../admin/server.js'), import('../admin/metrics.js')]);
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
    const config = await resolveConfig({ ...program.opts<RunOptions>(), ...o }, true);
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
    .addOption(new Option('--listen <HOST:PORT>', 'where tether listens').default('127.0.0.1:7000'))
    .option('--once', 'show the demo connections, then exit (no serving)')
    .action(async (o: { listen: string; once?: boolean }) => {
      const listen = parseListen(o.listen);
      if (!listen.ok) throw new TetherError('TETHER_ERR_USAGE', `option '--listen <HOST:PORT>' argument '${o.listen}' is invalid. ${listen.message}`);
      const { runDemo } = await import('../demo/demo.js');
      const demo = await runDemo({ listen: listen.value, once: o.once === true, out: process.stdout });
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
