// I/O. Starts a tether from a Config: every frontend bound and serving, reload one at a time,
// and a graceful stop. The flow (how one client is carried) comes in as `serve`, so the runtime
// never imports lib/proxy.ts.
import { noteAcceptError } from '../accept/accept-errors.js';
import { closeListeners } from '../accept/listen.js';
import { watchFds } from '../accept/fd-watch.js';
import { raceTimeout } from '../clock.js';
import type { Config } from '../config/types.js';
import { EVENTS } from '../log.js';
import type { Activation } from '../systemd/activation.js';
import { startFrontend, type Serve } from './listeners.js';
import { applyReload, type RuntimeState } from './reload.js';
import type { Deps, Frontend, ReloadReport, Shared, Tether } from './types.js';

/**
 * How long a stop waits for a reload under way. Loading a key module is bounded at 5 s
 * (KEY_MODULE_LOAD_TIMEOUT_MS) and the rest of a reload reads small files; past 6 s the reload is
 * stuck, and the stop goes on without it.
 */
const STOP_RELOAD_WAIT_MS = 6_000;

/**
 * Starts every frontend of `initial`, serving the addresses `activation` has inherited sockets
 * for on those (systemd socket activation); `serve` carries each accepted client. On a listen
 * failure, closes what was bound and rejects (TETHER_ERR_CONFIG or TETHER_ERR_LISTEN).
 */
export async function startRuntime(initial: Config, deps: Deps, serve: Serve, activation?: Activation): Promise<Tether> {
  const fdWatch = watchFds((code) => {
    noteAcceptError(deps, code);
  });
  const stopFdWatch = (): void => {
    fdWatch.stop();
  };
  const shared: Shared = { maxConns: initial.maxConns, opens: [], fdWatch };
  const state: RuntimeState = { frontends: [], config: initial, retired: [], shared, stopping: false };
  try {
    for (const fc of initial.frontends) state.frontends.push(await startFrontend(fc, deps, shared, serve, activation));
  } catch (e) {
    stopFdWatch();
    for (const f of state.frontends) f.stopTimers();
    await Promise.all(state.frontends.map((f) => closeListeners(f.listeners)));
    throw e;
  }
  // One reload at a time: a SIGHUP during an admin reload waits for it.
  let reloading: Promise<unknown> = Promise.resolve();

  return {
    get frontends() {
      return state.frontends;
    },
    get config() {
      return state.config;
    },
    reload(next: Config): Promise<ReloadReport> {
      const r = reloading.then(() => applyReload(state, next, deps, serve));
      reloading = r.catch(() => undefined);
      return r;
    },
    async stop(graceMs: number): Promise<void> {
      // A reload that hangs (a file on a dead mount) must not hang the stop: wait a bounded time.
      state.stopping = true;
      await raceTimeout(reloading, STOP_RELOAD_WAIT_MS, () => undefined);
      stopFdWatch();
      const { frontends, retired } = state;
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
