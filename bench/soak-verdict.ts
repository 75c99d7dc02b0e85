// The soak's verdict (bench/soak.ts), pure: from tether's readings after warm-up, at the peak
// and after the loop plus settle time, and the failure count, whether anything stayed behind.
// Kept apart from the script so a unit test can feed it a leak without running a soak.

/** One reading of the tether process: /proc and its admin API. */
export interface SoakReading {
  /** Entries of /proc/PID/fd. */
  readonly fds: number;
  /** VmRSS of /proc/PID/status, KiB. */
  readonly rssKib: number;
  /** Entries the default pool's affinity table holds (GET /frontends), expired ones not yet dropped included. */
  readonly tableEntries: number;
  /** Entries still within --affinity-timeout (GET /affinity total). */
  readonly liveEntries: number;
  /** Open clients of the frontend (GET /frontends `open`). */
  readonly open: number;
}

export interface SoakPeak {
  readonly fds: number;
  readonly rssKib: number;
  readonly tableEntries: number;
  readonly open: number;
}

export interface SoakBounds {
  /** Descriptors the after reading may hold beyond the baseline. */
  readonly fdSlack: number;
  /** KiB of RSS the after reading may hold beyond the baseline. */
  readonly rssSlackKib: number;
  /** Clients whose outcome was not the one expected of their kind. */
  readonly maxFailures: number;
}

export interface SoakFigures {
  /** After warm-up and its settle: what tether holds when idle with warm pools and JIT. */
  readonly baseline: SoakReading;
  readonly peak: SoakPeak;
  /** After the loop and its settle. */
  readonly after: SoakReading;
  readonly failures: number;
  /** Whether tether logged `process.fatal` (its last-resort guard: a bug). */
  readonly fatal: boolean;
}

export interface SoakCheck {
  readonly name: 'fds' | 'rss' | 'table' | 'table-filled' | 'open' | 'failures' | 'fatal';
  readonly ok: boolean;
  readonly detail: string;
}

export interface SoakVerdict {
  readonly ok: boolean;
  readonly checks: readonly SoakCheck[];
}

function mib(kib: number): string {
  return (kib / 1024).toFixed(1);
}

function signed(n: number, text = String(n)): string {
  return n > 0 ? `+${text}` : text;
}

/**
 * Judges the figures against `bounds`: descriptors and RSS back within their slack of the
 * baseline, the affinity table (held and live) and the open count back to the baseline, the
 * table filled above it at some point (else the soak did not exercise it), at most
 * `maxFailures` failures and no `process.fatal`. Accepts any numbers; never throws.
 */
export function judgeSoak(f: SoakFigures, bounds: SoakBounds): SoakVerdict {
  const { baseline: b, after: a } = f;
  const fdDelta = a.fds - b.fds;
  const rssDelta = a.rssKib - b.rssKib;
  const checks: SoakCheck[] = [
    {
      name: 'fds',
      ok: fdDelta <= bounds.fdSlack,
      detail: `fds ${b.fds} → ${a.fds} (${fdDelta === 0 ? 'exact' : `${signed(fdDelta)}, slack ${bounds.fdSlack}`})`,
    },
    {
      name: 'rss',
      ok: rssDelta <= bounds.rssSlackKib,
      detail: `RSS ${mib(b.rssKib)} → ${mib(a.rssKib)} MiB (${signed(rssDelta, mib(rssDelta))}, bound +${mib(bounds.rssSlackKib)})`,
    },
    {
      name: 'table',
      ok: a.tableEntries === b.tableEntries && a.liveEntries === b.liveEntries,
      detail: `table ${b.tableEntries} → ${a.tableEntries} (live ${b.liveEntries} → ${a.liveEntries})`,
    },
    {
      name: 'table-filled',
      ok: f.peak.tableEntries > b.tableEntries,
      detail: `table peak ${f.peak.tableEntries}`,
    },
    { name: 'open', ok: a.open === b.open, detail: `open ${b.open} → ${a.open}` },
    { name: 'failures', ok: f.failures <= bounds.maxFailures, detail: `failures ${f.failures} (at most ${bounds.maxFailures})` },
    { name: 'fatal', ok: !f.fatal, detail: f.fatal ? 'tether logged process.fatal' : 'no process.fatal' },
  ];
  return { ok: checks.every((c) => c.ok), checks };
}

/** One line: PASS or FAIL, then every check (failed ones marked). */
export function renderVerdict(v: SoakVerdict): string {
  const parts = v.checks.map((c) => (c.ok ? c.detail : `${c.detail} [FAIL]`));
  return `verdict: ${v.ok ? 'PASS' : 'FAIL'} — ${parts.join('; ')}`;
}
