// systemd readiness notification (sd_notify(3)): READY=1 once listening, RELOADING=1 and
// READY=1 around a reload, STOPPING=1 when a stop begins, WATCHDOG=1 while alive. I/O.
//
// How the datagram is sent: Node cannot send on an AF_UNIX datagram socket (node:dgram is UDP
// only), so tether runs `systemd-notify`, which ships with systemd and so is present wherever
// systemd sets NOTIFY_SOCKET. The alternative, the native addon unix-dgram, would send from
// tether's own PID, but it must be compiled at install on every host and rebuilt for each Node
// ABI; a proxy should install with npm alone. The costs of a helper process, and their answers:
// - The datagram comes from the helper's PID, so systemd accepts it only with NotifyAccess=all
//   (the unit `tether systemd-unit` prints sets it).
// - systemd matches a datagram to its unit through the sender's cgroup; a sender that exits
//   before systemd reads the datagram cannot be matched and the message is lost. Without
//   --no-block, systemd-notify waits for systemd's answer to a barrier (BARRIER=1 with a pipe
//   fd that systemd closes once it has read everything before it), so the message is in when
//   the helper exits. A receiver that never answers barriers costs one 5 s wait (the helper's
//   timeout, after the message itself was sent); tether then sends without waiting.
// - Messages go out one helper at a time, in order: STOPPING=1 never overtakes READY=1.
// Sending never throws and never blocks tether: a failure is logged once and dropped.
import { spawn } from 'node:child_process';
import { EVENTS, flushSoon, type Logger } from '../log.js';

/** What tether tells its service manager. Every method is a no-op without NOTIFY_SOCKET. */
export interface Notifier {
  /** Whether NOTIFY_SOCKET was set. */
  readonly enabled: boolean;
  /** READY=1: listening (after start-up, or after a reload). */
  ready(status?: string): void;
  /** RELOADING=1 with MONOTONIC_USEC (what Type=notify-reload requires); call ready() after. */
  reloading(): void;
  /** STOPPING=1: a graceful stop began. */
  stopping(): void;
  /** STATUS=: one line shown by `systemctl status`. */
  status(text: string): void;
  /** Stops the watchdog pings and waits (at most `ms`) for queued messages to go out. */
  close(ms?: number): Promise<void>;
}

/** The variables the notifier reads (absent ones undefined). */
export interface NotifyEnv {
  readonly NOTIFY_SOCKET?: string | undefined;
  readonly WATCHDOG_USEC?: string | undefined;
  readonly WATCHDOG_PID?: string | undefined;
  readonly PATH?: string | undefined;
}

export interface NotifierOptions {
  /** tether's PID (MAINPID=, and whether WATCHDOG_PID means us). */
  readonly pid: number;
  /** CLOCK_MONOTONIC in microseconds, for MONOTONIC_USEC= (lib/clock.ts monotonicMicros). */
  readonly monotonicMicros: () => bigint;
}

/**
 * Longest a helper may run: systemd-notify waits 5 s for a barrier answer; past this it is
 * stuck (a full socket buffer) and is killed so the next message can go.
 */
const HELPER_TIMEOUT_MS = 10_000;
/** Messages waiting for a helper; beyond this, new ones are dropped (a stuck receiver). */
const MAX_QUEUED = 16;
/** How long close() waits for queued messages by default (longer than one barrier wait). */
const CLOSE_WAIT_MS = 6_000;
/** Longest STATUS= text sent; `systemctl status` shows one line. */
const MAX_STATUS_CHARS = 200;

/** STATUS= with line breaks and other control characters made spaces (the protocol is line-based). */
export function statusField(text: string): string {
  // eslint-disable-next-line no-control-regex
  return `STATUS=${text.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, MAX_STATUS_CHARS)}`;
}

/** READY=1's fields: MAINPID tells systemd which process is tether even behind a wrapper. */
export function readyFields(pid: number, status?: string): string[] {
  return ['READY=1', `MAINPID=${String(pid)}`, ...(status === undefined ? [] : [statusField(status)])];
}

/** RELOADING=1's fields; systemd (Type=notify-reload) ignores it without MONOTONIC_USEC. */
export function reloadingFields(monotonicMicros: bigint): string[] {
  return ['RELOADING=1', `MONOTONIC_USEC=${monotonicMicros.toString()}`];
}

/**
 * The interval of WATCHDOG=1 pings: half of WATCHDOG_USEC (sd_watchdog_enabled(3) advises
 * pinging at least that often), or undefined when no watchdog is asked for us.
 */
export function watchdogIntervalMs(env: NotifyEnv, pid: number): number | undefined {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || !/^\d{1,15}$/.test(usec) || Number(usec) === 0) return undefined;
  const wpid = env.WATCHDOG_PID;
  if (wpid !== undefined && wpid !== String(pid)) return undefined;
  return Math.max(1, Math.floor(Number(usec) / 2_000));
}

const DISABLED: Notifier = {
  enabled: false,
  ready: () => undefined,
  reloading: () => undefined,
  stopping: () => undefined,
  status: () => undefined,
  close: () => Promise.resolve(),
};

/**
 * A notifier for `env`: disabled (every call a no-op) when NOTIFY_SOCKET is unset or empty.
 * Problems (no systemd-notify, a refused message) are logged once as `notify.error`.
 */
export function createNotifier(env: NotifyEnv, logger: Logger, opts: NotifierOptions): Notifier {
  const socket = env.NOTIFY_SOCKET;
  if (socket === undefined || socket === '') return DISABLED;
  const childEnv = { NOTIFY_SOCKET: socket, PATH: env.PATH ?? '/usr/bin:/bin' };
  const queue: string[][] = [];
  const idle: (() => void)[] = [];
  let busy = false;
  let noBlock = false;
  let broken = false;
  let warned = false;

  const warnOnce = (reason: string): void => {
    if (warned) return;
    warned = true;
    logger.warn({ event: EVENTS.notifyError, reason }, 'systemd notification failed; tether keeps running');
    flushSoon(logger);
  };

  const pump = (): void => {
    if (busy) return;
    const fields = queue.shift();
    if (!fields) {
      for (const resolve of idle.splice(0)) resolve();
      return;
    }
    busy = true;
    let stderr = '';
    let finished = false;
    const finish = (code: number | null, spawnError?: string): void => {
      if (finished) return;
      finished = true;
      busy = false;
      if (spawnError !== undefined) {
        // A missing or forbidden systemd-notify will not change while we run: stop trying.
        if (spawnError === 'ENOENT' || spawnError === 'EACCES') {
          broken = true;
          queue.length = 0;
        }
        warnOnce(`cannot run systemd-notify: ${spawnError}`);
      } else if (code !== 0 && !noBlock && /barrier/i.test(stderr)) {
        // The message went out; only the barrier went unanswered (not systemd, or one older
        // than 246). Waiting again would cost every later message 5 s.
        noBlock = true;
        logger.debug({ event: EVENTS.notifyError, reason: 'no barrier answer; sending without waiting' }, 'systemd-notify barrier unanswered');
      } else if (code !== 0) {
        const why = code === null ? `killed after ${String(HELPER_TIMEOUT_MS / 1_000)} s` : `exit status ${String(code)}`;
        warnOnce(`systemd-notify ${fields[0] ?? ''}: ${stderr.trim().slice(0, 300) || why}`);
      }
      pump();
    };
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn('systemd-notify', [...(noBlock ? ['--no-block'] : []), ...fields], { env: childEnv, stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      finish(null, e instanceof Error ? e.message : String(e));
      return;
    }
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, HELPER_TIMEOUT_MS);
    timer.unref();
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 1_000) stderr += d.toString();
    });
    let started = false;
    child.on('spawn', () => {
      started = true;
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      // Before 'spawn': the helper could not be run. After: a failed kill of a stuck helper,
      // whose 'close' still follows.
      if (started) return;
      clearTimeout(timer);
      finish(null, err.code ?? err.message);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      finish(signal === null ? code : null);
    });
  };

  const send = (fields: string[]): void => {
    if (broken) return;
    if (queue.length >= MAX_QUEUED) {
      warnOnce(`more than ${String(MAX_QUEUED)} messages waiting; dropped ${fields[0] ?? ''}`);
      return;
    }
    queue.push(fields);
    pump();
  };

  const interval = watchdogIntervalMs(env, opts.pid);
  const watchdog =
    interval === undefined
      ? undefined
      : setInterval(() => {
          // A ping still waiting proves nothing new; skip rather than pile helpers up.
          if (!busy && queue.length === 0) send(['WATCHDOG=1']);
        }, interval);
  watchdog?.unref();

  return {
    enabled: true,
    ready(status) {
      send(readyFields(opts.pid, status));
    },
    reloading() {
      send(reloadingFields(opts.monotonicMicros()));
    },
    stopping() {
      send(['STOPPING=1']);
    },
    status(text) {
      send([statusField(text)]);
    },
    close(ms = CLOSE_WAIT_MS) {
      if (watchdog) clearInterval(watchdog);
      if (!busy && queue.length === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        idle.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    },
  };
}

/**
 * Runs `reload` between RELOADING=1 and READY=1, as Type=notify-reload expects. READY=1 follows
 * a failed reload too: tether goes on serving the previous configuration, and systemd would
 * otherwise wait in "reloading" until its timeout.
 */
export async function notifyReload<T>(notifier: Notifier, reload: () => Promise<T>): Promise<T> {
  notifier.reloading();
  try {
    return await reload();
  } finally {
    notifier.ready();
  }
}
