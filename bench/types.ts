// Types shared by the bench's runner (run.ts) and its sections in other files (ops.ts).
import type { Child } from './children.js';

/** What one measurement returns: the headline value, the work done, and what else it saw. */
export interface Measured {
  readonly value: number;
  /** Units of work (MiB, connections, round trips), to put CPU times per unit. */
  readonly work: number;
  readonly detail: Readonly<Record<string, unknown>>;
}

/** One measurement and the CPU time each process used during it. */
export interface Sample extends Measured {
  /** The proxy process (direct: null), ms. */
  readonly proxyCpuMs: number | null;
  readonly backendCpuMs: number;
  /** This process (the load generator), ms. */
  readonly loadCpuMs: number;
  /** Share of the whole machine (all cores) used by processes other than ours, 0..1. */
  readonly otherCpuShare: number;
}

/** The processes whose CPU time a measurement records: the proxy (direct: none) and the backends. */
export interface Processes {
  readonly proxy: Child | undefined;
  readonly backendPids: readonly number[];
}
