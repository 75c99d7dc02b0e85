// I/O. A reload: build every frontend of the next config and bind its new addresses (nothing
// in force yet), then swap generations in one step; any failure closes what it bound and leaves
// the running tether as it was.
import { closeListeners, type Listener } from '../accept/listen.js';
import { expandListen, type BindAddress } from '../accept/port-range.js';
import type { Config } from '../config/types.js';
import { TetherError } from '../errors.js';
import { buildFrontend, startTimers } from './frontend.js';
import { addressKey, bindFor, logListening, rebind, type Serve } from './listeners.js';
import type { Deps, Frontend, ReloadReport, RunningFrontend, Shared } from './types.js';

/** What a running tether holds between reloads; applyReload and the stop change it. */
export interface RuntimeState {
  /** Serving frontends in config order. */
  frontends: RunningFrontend[];
  /** The config in force. */
  config: Config;
  /** Frontends a reload removed: no listeners, but their open connections run to their end. */
  readonly retired: Frontend[];
  readonly shared: Shared;
  /** Set by a stop: a reload still under way puts nothing in force. */
  stopping: boolean;
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
 * Applies `next` to the running tether in `state`. Rejects (and leaves everything as it was)
 * with TETHER_ERR_CONFIG or TETHER_ERR_LISTEN.
 */
export async function applyReload(state: RuntimeState, next: Config, deps: Deps, serve: Serve): Promise<ReloadReport> {
  // Frontends removed earlier whose last connection has ended: nothing to wait for any more.
  for (const f of [...state.retired]) {
    if (f.open.size > 0) continue;
    state.retired.splice(state.retired.indexOf(f), 1);
    state.shared.opens.splice(state.shared.opens.indexOf(f.open), 1);
  }
  const byName = new Map(state.frontends.map((f) => [f.name, f]));
  const nextWants = new Map(next.frontends.map((fc) => [fc.name, new Set(fc.listen.flatMap(expandListen).map(addressKey))]));
  // Bound sockets whose frontend no longer wants them: another frontend that now lists the
  // address takes the socket over (a renamed frontend, an address moved between frontends),
  // since binding it anew would fail with EADDRINUSE; the rest are closed once in force.
  // Found by the address asked for and by the one bound (`host:0` became a real port).
  const spare = new Map<string, Listener>();
  for (const f of state.frontends) {
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
      const fe = await buildFrontend(fc, deps, state.shared, rf?.current);
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
      const current = (): Frontend | undefined => (live.on ? target.current : undefined);
      // Pushed before binding so a failure below still closes what this frontend bound.
      const stage: Staged = { rf: target, isNew: rf === undefined, next: fe, keep, handed, bound: [] };
      staged.push(stage);
      stage.bound.push(...(await bindFor(fc.name, current, toBind, deps, serve)));
      pending.push(() => {
        live.on = true;
        for (const l of handed) rebind(l, fc.name, current);
      });
    }
    // A stop that gave up waiting for this reload has closed the listeners: put nothing in force.
    if (state.stopping) throw new TetherError('TETHER_ERR_CONFIG', 'tether is stopping');
  } catch (e) {
    await Promise.all(staged.map((st) => closeListeners(st.bound)));
    await Promise.all(staged.flatMap((st) => (st.next.keyModule && st.next.keyModule !== (st.isNew ? undefined : st.rf.current.keyModule) ? [st.next.keyModule.close()] : [])));
    throw e;
  }
  // Everything is read and bound: put the new generation in force.
  const report = { frontends: { added: [] as string[], removed: [] as string[], kept: [] as string[] }, listeners: { kept: 0, moved: 0, added: 0, closed: 0 }, backends: { added: [] as string[], removed: [] as string[] } };
  const nextFrontends: RunningFrontend[] = [];
  const before = new Set(state.frontends.flatMap((f) => [...backendIds(f.current)]));
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
  for (const f of state.frontends) {
    if (kept.has(f.name)) continue;
    f.stopTimers();
    void f.current.keyModule?.close();
    report.frontends.removed.push(f.name);
    state.retired.push(f.current);
  }
  const after = new Set(nextFrontends.flatMap((f) => [...backendIds(f.current)]));
  report.backends.added.push(...[...after].filter((id) => !before.has(id)));
  report.backends.removed.push(...[...before].filter((id) => !after.has(id)));
  state.shared.maxConns = next.maxConns;
  state.frontends = nextFrontends;
  state.config = next;
  deps.logger.level = next.logLevel;
  return report;
}
