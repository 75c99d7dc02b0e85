// The affinity tables' state file, I/O: checked at start, read before the listeners accept,
// written atomically (temporary file in the same folder, fsync, rename) with mode 0600, since
// keys hold user names and cookie values. Key values are never logged. The format and the
// choice of entries are in table-state.ts.
import { constants } from 'node:fs';
import { access, open, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Clock } from '../clock.js';
import { TetherError, errorCode } from '../errors.js';
import { describeFileError, readFileBounded } from '../files/read.js';
import { EVENTS, flushSoon, type Logger } from '../log.js';
import type { AffinityTable } from '../place/affinity-table.js';
import { encodeState, entriesToRestore, parseState, type SavedEntry, type SavedState } from './table-state.js';

/** One running affinity table, named as the state file names it. */
export interface TableRef {
  readonly frontend: string;
  readonly pool: string;
  readonly table: AffinityTable;
}

/**
 * Checks that `file` can be written: its folder exists and is writable, and the file, if
 * present, is a regular file. Rejects with TETHER_ERR_CONFIG and a one-line message.
 */
export async function checkStateFile(file: string): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  const fail = (why: string, cause: unknown): never => {
    throw new TetherError('TETHER_ERR_CONFIG', `cannot use --state-file ${file}: ${why}`, { cause });
  };
  try {
    if (!(await stat(dir)).isDirectory()) fail(`${dir} is not a folder`, undefined);
    await access(dir, constants.W_OK);
  } catch (e) {
    if (e instanceof TetherError) throw e;
    const code = errorCode(e);
    fail(code === 'ENOENT' ? `folder ${dir} does not exist` : `folder ${dir} is not writable (${code ?? String(e)})`, e);
  }
  try {
    if (!(await stat(file)).isFile()) fail('not a regular file', undefined);
  } catch (e) {
    if (e instanceof TetherError) throw e;
    if (errorCode(e) !== 'ENOENT') fail(errorCode(e) ?? String(e), e);
  }
}

/** The state read at start, handed to each table as it is built (see Deps.restore). */
export class StateLoader {
  private loaded = 0;
  private dropped = 0;
  private readonly visited = new Set<string>();

  constructor(
    private readonly file: string,
    private readonly saved: SavedState | undefined,
    private readonly clock: Clock,
  ) {}

  /** Fills `table` (pool `pool` of frontend `frontend`) with its saved entries that still apply. */
  restore(frontend: string, pool: string, table: AffinityTable, backendNames: ReadonlySet<string>): void {
    const entries = this.saved?.tables.get(frontend)?.get(pool);
    this.visited.add(JSON.stringify([frontend, pool]));
    if (entries === undefined) return;
    const nowMs = this.clock.now();
    const r = entriesToRestore(entries, { idleMs: table.idleMs, maxEntries: table.maxEntries, backendNames }, nowMs);
    const kept = table.load(r.keep, nowMs);
    this.loaded += kept;
    this.dropped += entries.length - kept;
  }

  /** Logs `state.loaded` once every table was built: entries kept and dropped, never keys. */
  report(logger: Logger): void {
    if (!this.saved) return;
    let dropped = this.dropped + this.saved.malformed;
    // Frontends and pools that are gone (or renamed) lose their entries.
    for (const [fe, pools] of this.saved.tables) {
      for (const [pool, entries] of pools) if (!this.visited.has(JSON.stringify([fe, pool]))) dropped += entries.length;
    }
    logger.info({ event: EVENTS.stateLoaded, file: this.file, entries: this.loaded, dropped, savedAt: new Date(this.saved.savedAtMs).toISOString() }, 'affinity tables restored');
    flushSoon(logger);
  }
}

/**
 * The largest state file read: V8's longest string is about 512 M characters, and 256 MiB is
 * some two million entries — far above any table's size bound. It is read once, before the
 * listeners accept, so its parse stalls no traffic.
 */
export const MAX_STATE_BYTES = 256 * 1024 * 1024;

/**
 * Reads `file` for StateLoader. A missing file is a first start (logged at info); an unreadable
 * or corrupt one is logged as a warning and tether starts with empty tables. Never rejects.
 */
export async function readStateFile(file: string, logger: Logger, clock: Clock): Promise<StateLoader> {
  let text: string;
  try {
    text = (await readFileBounded(file, { maxBytes: MAX_STATE_BYTES })).toString('utf8');
  } catch (e) {
    const code = errorCode(e);
    if (code === 'ENOENT') {
      logger.info({ event: EVENTS.stateLoaded, file, entries: 0, dropped: 0, missing: true }, 'no state file yet; affinity tables start empty');
    } else {
      logger.warn({ event: EVENTS.stateError, file, op: 'load', reason: describeFileError(e) }, 'state file unreadable; affinity tables start empty');
    }
    flushSoon(logger);
    return new StateLoader(file, undefined, clock);
  }
  const r = parseState(text);
  if (!r.ok) {
    logger.warn({ event: EVENTS.stateError, file, op: 'load', reason: r.reason }, 'state file ignored; affinity tables start empty');
    flushSoon(logger);
    return new StateLoader(file, undefined, clock);
  }
  return new StateLoader(file, r.state, clock);
}

/**
 * Writes every table's live entries to `file` atomically, mode 0600. Resolves with the number
 * of entries written; rejects with the file system's error (the temporary file is removed).
 */
export async function writeStateFile(file: string, tables: readonly TableRef[], nowMs: number): Promise<number> {
  const byFrontend = new Map<string, Map<string, SavedEntry[]>>();
  let count = 0;
  for (const t of tables) {
    const entries = [...t.table.list(nowMs)];
    count += entries.length;
    let pools = byFrontend.get(t.frontend);
    if (!pools) byFrontend.set(t.frontend, (pools = new Map<string, SavedEntry[]>()));
    pools.set(t.pool, entries);
  }
  const text = encodeState(byFrontend, nowMs);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${String(process.pid)}.tmp`);
  // A temporary file left by a crashed save would make 'wx' fail; it holds nothing we need.
  await unlink(tmp).catch(() => undefined);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    try {
      // The mode given to open() is masked by the umask; the file must be 0600 whatever it is.
      await fh.chmod(0o600);
      await fh.writeFile(text, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  // The rename is durable only once the folder is synced; without it a power cut may bring back
  // the previous file, which is still a whole file, so a failure here is not worth reporting.
  await syncFolder(path.dirname(file)).catch(() => undefined);
  return count;
}

async function syncFolder(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Saves the tables now and every `intervalMs` (0: only on stop); see startStateSaver. */
export interface StateSaver {
  /** Stops the periodic saves, waits for one under way, then saves a last time (logged at info). */
  stop(): Promise<void>;
}

/**
 * Starts periodic saves of `tables()` to `file` every `intervalMs` (0: none; the timer never
 * keeps the process alive). A failed save is logged as a warning; the next one tries again.
 */
export function startStateSaver(file: string, tables: () => readonly TableRef[], intervalMs: number, logger: Logger, clock: Clock): StateSaver {
  let running: Promise<void> | undefined;
  const save = (level: 'info' | 'debug'): Promise<void> =>
    writeStateFile(file, tables(), clock.now()).then(
      (entries) => {
        logger[level]({ event: EVENTS.stateSaved, file, entries }, 'affinity tables saved');
      },
      (e: unknown) => {
        logger.warn({ event: EVENTS.stateError, file, op: 'save', reason: errorCode(e) ?? (e instanceof Error ? e.message : 'error') }, 'state file not saved');
        flushSoon(logger);
      },
    );
  const timer =
    intervalMs > 0
      ? setInterval(() => {
          // A save slower than the interval is not stacked on itself.
          if (running) return;
          running = save('debug').finally(() => {
            running = undefined;
          });
        }, intervalMs)
      : undefined;
  timer?.unref();
  return {
    async stop(): Promise<void> {
      clearInterval(timer);
      await running;
      await save('info');
      flushSoon(logger);
    },
  };
}
