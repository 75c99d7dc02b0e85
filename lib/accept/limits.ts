// Stage 1, pure (time is passed in). Connection limits checked at accept (`--max-conns` for the
// whole process, `--frontend-max-conns` per frontend), and the throttle that keeps the warning
// about them to one line a second however many clients are refused.

/** A limit, spelled as its flag; also the termination code of a client it refused. */
export type LimitName = 'max-conns' | 'frontend-max-conns' | 'queue-size';

/**
 * The accept limit one more client would exceed, or undefined when it may be served. `open`
 * counts the clients open now, this one not included; an absent maximum is no limit. The
 * process-wide limit is named first when both are reached (it is the one to raise first).
 */
export function acceptLimit(
  open: { readonly all: number; readonly frontend: number },
  max: { readonly all?: number | undefined; readonly frontend?: number | undefined },
): { readonly limit: LimitName; readonly max: number } | undefined {
  if (max.all !== undefined && open.all >= max.all) return { limit: 'max-conns', max: max.all };
  if (max.frontend !== undefined && open.frontend >= max.frontend) return { limit: 'frontend-max-conns', max: max.frontend };
  return undefined;
}

/** Lets one event per key through every `intervalMs` and counts the ones held back. */
export class Throttle {
  private readonly last = new Map<string, { atMs: number; held: number }>();

  constructor(readonly intervalMs: number) {}

  /**
   * Records an event for `key` at `nowMs`. Returns how many events of `key` were held back since
   * the last one let through (0 or more) when this one should be reported, or undefined to
   * stay quiet.
   */
  pass(key: string, nowMs: number): number | undefined {
    const s = this.last.get(key);
    if (s === undefined) {
      this.last.set(key, { atMs: nowMs, held: 0 });
      return 0;
    }
    if (nowMs - s.atMs < this.intervalMs) {
      s.held++;
      return undefined;
    }
    const held = s.held;
    s.atMs = nowMs;
    s.held = 0;
    return held;
  }
}
