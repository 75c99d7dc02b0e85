// Stage 4, pure (time is passed in). The pool: a frontend's backends with weight, backup flag,
// active-connection counts, the operator state (ready / drain / maint) and health: passive (a
// failed dial holds a backend down for a while) and, when active checks run, their rise/fall
// verdict (health/check.ts). New keys and un-keyed clients go only to `candidates`; a client
// the affinity table or a route pins to a backend goes there while it `takesPinned`.
//
// Port fronting: a backend without a port is dialled on the port the client connected to, so
// one host stands for as many services as the listen range has ports. A failed dial says
// nothing about the host's other ports: its hold-down is kept per port (`Backend.ports`), and
// the methods that decide for one client take that client's port. The backend-wide state
// (`downUntilMs`, `health`) is then the host's: only active checks set it.
import type { BackendAdmin, BackendSpec } from '../config/types.js';
import { countCheck, initialCount, passiveDownCount, type HealthCount } from '../health/check.js';

/** A backend as reported (logs, admin API, metrics). */
export type BackendState = 'up' | 'down' | 'draining' | 'maint';

/** One active check's outcome. `code`: why it failed (ECONNREFUSED, ETIMEDOUT, expect-…). */
export interface CheckRecord {
  readonly atMs: number;
  readonly ok: boolean;
  readonly code?: string;
}

/**
 * One backend's live state. `name` and `weight` mirror the spec for the balancers; a reload that
 * keeps the backend's address replaces `spec` and `weight` and keeps the rest (counters, health).
 */
export interface Backend {
  spec: BackendSpec;
  readonly name: string;
  weight: number;
  /** Open spliced or dialing connections (compared with `spec.maxConns` by `hasRoom`). */
  active: number;
  /** Connections ever placed here. */
  total: number;
  /** Dials that failed (refused, timed out). */
  failures: number;
  /** Bytes of closed connections: client → backend, backend → client. */
  bytesIn: number;
  bytesOut: number;
  /** Passive hold-down: until this time (ms) the backend is skipped; 0 when none. */
  downUntilMs: number;
  /** Whether the last transition reported was "down" (so each transition is logged once). */
  down: boolean;
  /**
   * A backend without a port only: the passive hold-downs of the ports whose dial failed
   * (port → its hold-down), at most MAX_PORT_HOLDS of them; the backend-wide `downUntilMs`
   * and `down` stay unused for these, since one closed port does not take the host out.
   */
  readonly ports: Map<number, PortHold>;
  /** Operator state (see BackendAdmin); change it with Pool.setAdmin. */
  admin: BackendAdmin;
  /** When `admin` last changed (ms); the pool's start for the starting state. */
  adminSinceMs: number;
  /** `drain` only: from this time pinned clients are re-placed too; undefined: no deadline. */
  drainDeadlineMs: number | undefined;
  /** The active checks' verdict and streak; stays up when checks are off. */
  health: HealthCount;
  /** The last active check (undefined until one finished, or when checks are off). */
  lastCheck: CheckRecord | undefined;
}

export interface PoolOptions {
  /** Start time (ms): `adminSinceMs`, and the base of `,drain=DURATION` deadlines. Default 0. */
  readonly nowMs?: number;
  /** Set when active checks run: their verdict then counts, with these rise/fall counts (≥ 1). */
  readonly checks?: { readonly rise: number; readonly fall: number };
  /**
   * The backends of the pool this one replaces (a reload). One with the same name, host and
   * port is kept as it is — its open connections still count against it, its health and
   * counters carry on — with the new spec; the others start fresh. The config's operator state
   * is applied to a kept backend only when the config changed it, so a state set at run time
   * (admin API) survives reloads that do not touch that backend.
   */
  readonly carried?: readonly Backend[];
}

/** The passive hold-down of one port of a backend without a port. */
export interface PortHold {
  /** Until this time (ms) the port is skipped. */
  downUntilMs: number;
  /** Whether its last transition reported was "down" (each one is logged once). */
  down: boolean;
}

/**
 * Ports of one port-less backend whose hold-down is remembered: a `--listen` range holds at
 * most 4096 ports (config/validate.ts), so every port of one range fits. Beyond it, expired
 * holds are forgotten first, then the oldest.
 */
export const MAX_PORT_HOLDS = 4096;

const NONE: ReadonlySet<string> = new Set();

export class Pool {
  readonly backends: readonly Backend[];
  /** The rise/fall counts when active checks run; undefined when they do not. */
  readonly checks: { readonly rise: number; readonly fall: number } | undefined;
  private readonly byName: ReadonlyMap<string, Backend>;

  constructor(specs: readonly BackendSpec[], opts: PoolOptions = {}) {
    const nowMs = opts.nowMs ?? 0;
    this.checks = opts.checks;
    const health = initialCount(opts.checks?.fall ?? 1);
    const old = new Map((opts.carried ?? []).map((b) => [b.name, b]));
    this.backends = specs.map((spec): Backend => {
      const prev = old.get(spec.name);
      if (prev?.spec.host === spec.host && prev.spec.port === spec.port) {
        const before = prev.spec;
        prev.spec = spec;
        prev.weight = spec.weight;
        if ((before.admin ?? 'ready') !== (spec.admin ?? 'ready') || before.drainMs !== spec.drainMs) {
          prev.admin = spec.admin ?? 'ready';
          prev.adminSinceMs = nowMs;
          prev.drainDeadlineMs = spec.admin === 'drain' && spec.drainMs !== undefined ? nowMs + spec.drainMs : undefined;
        }
        return prev;
      }
      return {
        spec,
        name: spec.name,
        weight: spec.weight,
        active: 0,
        total: 0,
        failures: 0,
        bytesIn: 0,
        bytesOut: 0,
        downUntilMs: 0,
        down: false,
        ports: new Map(),
        admin: spec.admin ?? 'ready',
        adminSinceMs: nowMs,
        drainDeadlineMs: spec.admin === 'drain' && spec.drainMs !== undefined ? nowMs + spec.drainMs : undefined,
        health,
        lastCheck: undefined,
      };
    });
    this.byName = new Map(this.backends.map((b) => [b.name, b]));
  }

  get(name: string): Backend | undefined {
    return this.byName.get(name);
  }

  /**
   * True unless the backend is in a hold-down period at `nowMs` or failing its checks. With
   * `port` (the client's) a backend without a port is judged on that port: the host's state
   * and that port's hold-down; without it, on the host alone (reporting).
   */
  isUp(b: Backend, nowMs: number, port?: number): boolean {
    if (b.downUntilMs > nowMs || !b.health.up) return false;
    const hold = port === undefined || b.spec.port !== undefined ? undefined : b.ports.get(port);
    return hold === undefined || hold.downUntilMs <= nowMs;
  }

  /** The ports of a port-less backend held down at `nowMs`, with the time left (reporting). */
  heldPorts(b: Backend, nowMs: number): { readonly port: number; readonly inMs: number }[] {
    const held: { port: number; inMs: number }[] = [];
    for (const [port, h] of b.ports) if (h.downUntilMs > nowMs) held.push({ port, inMs: h.downUntilMs - nowMs });
    return held.sort((x, y) => x.port - y.port);
  }

  /** Whether the operator lets `b` serve pinned clients: ready, or draining before its deadline. */
  private admits(b: Backend, nowMs: number): boolean {
    if (b.admin === 'drain') return b.drainDeadlineMs === undefined || nowMs < b.drainDeadlineMs;
    return b.admin === 'ready';
  }

  /** Whether some primary takes new clients on `port` (then backups take none, pinned or not). */
  private primaryOpen(nowMs: number, port: number | undefined): boolean {
    return this.backends.some((b) => !b.spec.backup && b.admin === 'ready' && this.isUp(b, nowMs, port));
  }

  /**
   * The backends that may take a new key or an un-keyed client at `nowMs`, minus `exclude`
   * (names already tried for this client): the up, ready primaries, or, only when no primary
   * is up and ready, the up, ready backups. Draining and maint backends are never candidates.
   * `port`: the client's, for port-less backends (see isUp).
   */
  candidates(nowMs: number, exclude: ReadonlySet<string> = NONE, port?: number): Backend[] {
    const open = this.backends.filter((b) => b.admin === 'ready' && this.isUp(b, nowMs, port));
    const primaries = open.filter((b) => !b.spec.backup && !exclude.has(b.name));
    if (primaries.length > 0) return primaries;
    // Backups serve only while no primary takes clients at all; a primary that is merely
    // excluded for this client (already tried) does not open the backups to everyone.
    if (open.some((b) => !b.spec.backup)) return [];
    return open.filter((b) => b.spec.backup && !exclude.has(b.name));
  }

  /**
   * Takes one of `b`'s slots for a client (from placement to the end of its splice): counted in
   * `active`, against its max-conns and by leastconn. Each reserve() is matched by one release().
   */
  reserve(b: Backend): void {
    b.active++;
  }

  /** Gives back a slot taken by reserve(); the caller then serves the pool's waiting clients. */
  release(b: Backend): void {
    b.active--;
  }

  /**
   * True unless `b` already has its `max-conns` connections (dialing or spliced). A full backend
   * stays a candidate: it is up, keeps its keys, and frees a slot soon; place() sends new keys
   * and un-keyed clients elsewhere, and clients bound to it wait (place/queue.ts).
   */
  hasRoom(b: Backend): boolean {
    return b.spec.maxConns === undefined || b.active < b.spec.maxConns;
  }

  /**
   * Whether `b` may take a client already pinned to it (an affinity-table hit, a route, the
   * inserted cookie) at `nowMs`: up, not excluded, ready or draining before its deadline, and
   * not a backup while a primary takes clients (such a client moves back to the primaries).
   * Every candidate takes pinned clients; a draining backend takes only these.
   */
  takesPinned(b: Backend, nowMs: number, exclude: ReadonlySet<string> = NONE, port?: number): boolean {
    if (exclude.has(b.name) || !this.isUp(b, nowMs, port) || !this.admits(b, nowMs)) return false;
    return !b.spec.backup || !this.primaryOpen(nowMs, port);
  }

  /**
   * The backend's state at `nowMs`, for reporting: `maint` (operator; also a drain past its
   * deadline, which takes no clients either), else `down` (hold-down or failing checks), else
   * `draining` or `up`.
   */
  state(b: Backend, nowMs: number): BackendState {
    if (!this.admits(b, nowMs)) return 'maint';
    if (!this.isUp(b, nowMs)) return 'down';
    return b.admin === 'drain' ? 'draining' : 'up';
  }

  /**
   * Sets backend `name`'s operator state at `nowMs`; `deadlineMs` (absolute) applies to
   * `drain` only. Returns whether anything changed (false for an unknown name). Draining a
   * draining backend only ever brings its deadline forward: re-reading a config, or repeating a
   * command, never keeps pinned clients longer than first said.
   */
  setAdmin(name: string, admin: BackendAdmin, opts: { readonly deadlineMs?: number; readonly nowMs: number }): boolean {
    const b = this.byName.get(name);
    if (!b) return false;
    if (admin === 'drain' && b.admin === 'drain') {
      const d = opts.deadlineMs;
      if (d === undefined || (b.drainDeadlineMs !== undefined && b.drainDeadlineMs <= d)) return false;
      b.drainDeadlineMs = d;
      return true;
    }
    if (admin === b.admin) return false;
    b.admin = admin;
    b.adminSinceMs = opts.nowMs;
    b.drainDeadlineMs = admin === 'drain' ? opts.deadlineMs : undefined;
    return true;
  }

  /**
   * A client's dial to `b` failed at `nowMs`: holds it down until `nowMs + holdDownMs`, and with
   * active checks also sets their verdict to down; the first passing check brings it back
   * (before the hold-down ends), unless a failing one confirms it first (then `rise` passes). Returns true on an up → down transition.
   */
  markDown(b: Backend, nowMs: number, holdDownMs: number, port?: number): boolean {
    if (port !== undefined && b.spec.port === undefined) return this.markPortDown(b, port, nowMs + holdDownMs, nowMs);
    b.downUntilMs = nowMs + holdDownMs;
    if (this.checks) b.health = passiveDownCount(this.checks.rise);
    const transition = !b.down;
    b.down = true;
    return transition;
  }

  /**
   * A client's dial to `b` succeeded. Without active checks this ends a hold-down and returns
   * true on a down → up transition. With them the checks alone bring a backend up (a dial that
   * began before they took it down proves little), so this changes nothing and returns false.
   */
  markUp(b: Backend, port?: number): boolean {
    if (port !== undefined && b.spec.port === undefined) {
      // The port answered: its hold-down (if any) is over, whatever the checks say of the host.
      const hold = b.ports.get(port);
      b.ports.delete(port);
      return hold?.down === true;
    }
    if (this.checks) return false;
    b.downUntilMs = 0;
    const transition = b.down;
    b.down = false;
    return transition;
  }

  /**
   * Holds port `port` of port-less `b` down until `untilMs`; the host and its other ports are
   * untouched (active checks, if any, judge the host). Returns true on an up → down transition.
   */
  private markPortDown(b: Backend, port: number, untilMs: number, nowMs: number): boolean {
    const hold = b.ports.get(port);
    if (hold) {
      hold.downUntilMs = untilMs;
      return false;
    }
    if (b.ports.size >= MAX_PORT_HOLDS) {
      for (const [p, h] of b.ports) if (h.downUntilMs <= nowMs) b.ports.delete(p);
      const oldest = b.ports.keys().next();
      if (b.ports.size >= MAX_PORT_HOLDS && oldest.done !== true) b.ports.delete(oldest.value);
    }
    b.ports.set(port, { downUntilMs: untilMs, down: true });
    return true;
  }

  /**
   * Counts one active check of `b` (ignored when checks are off). Returns the transition to
   * report: `down` after `fall` failures in a row (unless a failed dial already reported it),
   * `up` after `rise` passes in a row — which also ends a passive hold-down early.
   */
  recordCheck(b: Backend, result: CheckRecord): 'up' | 'down' | undefined {
    const checks = this.checks;
    if (!checks) return undefined;
    b.lastCheck = result;
    const r = countCheck(b.health, result.ok, checks.rise, checks.fall);
    b.health = r.count;
    if (r.transition === 'up') {
      b.downUntilMs = 0;
      if (!b.down) return undefined;
      b.down = false;
      return 'up';
    }
    if (r.transition === 'down') {
      if (b.down) return undefined;
      b.down = true;
      return 'down';
    }
    return undefined;
  }
}
