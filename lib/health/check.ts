// Health checks, pure: the verdict on one check's response, and rise/fall counting of verdicts
// into up/down transitions. A leaf module (like wire/): the pool counts with it and the probe
// (connect/health-probe.ts) judges responses with it; it imports nothing of either.
import { Buffer } from 'node:buffer';

/** Where a backend's checks stand: its verdict, and how many results in a row disagreed. */
export interface HealthCount {
  readonly up: boolean;
  /** Consecutive results against `up` (failures while up, passes while down). */
  readonly streak: number;
}

/**
 * The count a backend starts with: up, but one failed check short of down (HAProxy's default
 * start). A backend dead at start is out after its first check, not after `fall` of them, and
 * a live one takes clients at once instead of after `rise` checks.
 */
export function initialCount(fall: number): HealthCount {
  return { up: true, streak: Math.max(0, fall - 1) };
}

/** The count after a passive failure (a client's dial failed): down, `rise` passes from up. */
export const FAILED_COUNT: HealthCount = { up: false, streak: 0 };

/**
 * The count after a client's dial failed while checks run: down, and one passing check from up.
 * One refused dial is weaker evidence than `fall` failed checks; the first check that passes
 * overrules it, so a backend that recovers is back within one check interval. A check that
 * fails too confirms the verdict, and then `rise` passes are needed, as for any down backend.
 */
export function passiveDownCount(rise: number): HealthCount {
  return { up: false, streak: Math.max(0, rise - 1) };
}

/**
 * Adds one check result (`ok`) to `count`. An up backend goes down after `fall` failures in a
 * row, a down one comes up after `rise` passes in a row; a result that agrees with the verdict
 * resets the streak. `rise`, `fall` ≥ 1. `transition` is set only when the verdict flips.
 */
export function countCheck(
  count: HealthCount,
  ok: boolean,
  rise: number,
  fall: number,
): { readonly count: HealthCount; readonly transition?: 'up' | 'down' } {
  if (ok === count.up) return { count: { up: count.up, streak: 0 } };
  const streak = count.streak + 1;
  if (streak >= (count.up ? fall : rise)) return { count: { up: !count.up, streak: 0 }, transition: count.up ? 'down' : 'up' };
  return { count: { up: count.up, streak } };
}

/** What a check's response says so far (wire/parse.ts's 3-way Parse result, for a regex). */
export type ExpectVerdict = 'match' | 'need-more' | 'mismatch';

/**
 * Judges `received` (everything the backend sent, up to `maxBytes`) against `expect`. Bytes are
 * read as Latin-1, one char per byte, so binary greetings neither throw nor shift offsets.
 * `ended`: the backend closed its side. Returns `match` as soon as the regex matches;
 * `mismatch` once the cap is reached or the backend ended without a match; else `need-more`.
 */
export function judgeResponse(received: Uint8Array, expect: RegExp, maxBytes: number, ended: boolean): ExpectVerdict {
  const text = Buffer.from(received.buffer, received.byteOffset, Math.min(received.length, maxBytes)).toString('latin1');
  if (expect.test(text)) return 'match';
  return ended || received.length >= maxBytes ? 'mismatch' : 'need-more';
}

/**
 * Compiles a `--health-expect` source. The `m` flag lets `^` anchor at every line, so a send
 * check can expect its command's answer after the server's greeting (`^a1 OK`). Throws
 * SyntaxError on an invalid source (flags.ts turns it into a usage error).
 */
export function compileExpect(source: string): RegExp {
  return new RegExp(source, 'm');
}
