// Stage 4, pure (time is passed in). The pool: a frontend's backends with weight, backup flag,
// active-connection counts and passive health (a failed dial holds a backend down for a while).
import type { BackendSpec } from '../config/types.js';

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
  /** Until this time (ms) the backend is skipped; 0 when up. */
  downUntilMs: number;
  /** Whether the last transition logged was "down" (so "up" is logged once on recovery). */
  down: boolean;
}

function fresh(spec: BackendSpec): Backend {
  return { spec, name: spec.name, weight: spec.weight, active: 0, total: 0, failures: 0, bytesIn: 0, bytesOut: 0, downUntilMs: 0, down: false };
}

export class Pool {
  readonly backends: readonly Backend[];
  private readonly byName: ReadonlyMap<string, Backend>;

  /**
   * `carried`: the backends of the pool this one replaces (a reload). One with the same name,
   * host and port is kept as it is — its open connections still count against it — with the new
   * spec; the others start fresh.
   */
  constructor(specs: readonly BackendSpec[], carried: readonly Backend[] = []) {
    const old = new Map(carried.map((b) => [b.name, b]));
    this.backends = specs.map((spec): Backend => {
      const prev = old.get(spec.name);
      if (prev?.spec.host === spec.host && prev.spec.port === spec.port) {
        prev.spec = spec;
        prev.weight = spec.weight;
        return prev;
      }
      return fresh(spec);
    });
    this.byName = new Map(this.backends.map((b) => [b.name, b]));
  }

  get(name: string): Backend | undefined {
    return this.byName.get(name);
  }

  /** True unless the backend is inside a hold-down period at `nowMs`. */
  isUp(b: Backend, nowMs: number): boolean {
    return b.downUntilMs <= nowMs;
  }

  /**
   * The backends that may take a new connection at `nowMs`, minus `exclude` (names already
   * tried for this client): the up primaries, or, only when no primary is up, the up backups.
   */
  candidates(nowMs: number, exclude: ReadonlySet<string> = new Set()): Backend[] {
    const up = this.backends.filter((b) => this.isUp(b, nowMs) && !exclude.has(b.name));
    const primaries = up.filter((b) => !b.spec.backup);
    if (primaries.length > 0) return primaries;
    // Backups serve only while no primary is up at all; a primary that is merely excluded
    // for this client (already tried) does not open the backups to everyone.
    const anyPrimaryUp = this.backends.some((b) => !b.spec.backup && this.isUp(b, nowMs));
    return anyPrimaryUp ? [] : up.filter((b) => b.spec.backup);
  }

  /**
   * True unless `b` already has its `max-conns` connections (dialing or spliced). A full backend
   * stays a candidate: it is up, keeps its keys, and frees a slot soon; place() sends new keys
   * and un-keyed clients elsewhere, and clients bound to it wait (place/queue.ts).
   */
  hasRoom(b: Backend): boolean {
    return b.spec.maxConns === undefined || b.active < b.spec.maxConns;
  }

  /** Holds `b` down until `nowMs + holdDownMs`. Returns true on an up → down transition. */
  markDown(b: Backend, nowMs: number, holdDownMs: number): boolean {
    b.downUntilMs = nowMs + holdDownMs;
    const transition = !b.down;
    b.down = true;
    return transition;
  }

  /** Records a successful dial. Returns true on a down → up transition. */
  markUp(b: Backend): boolean {
    b.downUntilMs = 0;
    const transition = b.down;
    b.down = false;
    return transition;
  }
}
