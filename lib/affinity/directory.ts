// Stage 3, I/O. The user directory for `login` affinity (nginx mail's auth_http, Dovecot's
// director/passdb "host" field, in small): a map file of "user backend" lines re-read when it
// changes, and/or an HTTP service asked GET URL?user=NAME. Answers — a backend, or "not
// found" (negative caching) — are reused for a TTL. A user found nowhere is placed by hashing.
import { stat } from 'node:fs/promises';
import { raceTimeout, type Clock } from '../clock.js';
import { parseOffThread } from '../files/off-thread.js';
import { readFileBounded } from '../files/read.js';
import { buildUserTable, UserTable } from './user-table.js';

/** Map-file lines are "user backend" (whitespace-separated); "#" starts a comment. The first line for a user wins. */
export function parseUserMap(text: string): Map<string, string> {
  return new Map(new UserTable(buildUserTable(Buffer.from(text)).value).entries());
}

/**
 * The largest user map read: 256 MiB is about 8 million "user backend" lines, beyond any one
 * mail cluster's directory; a bigger file is refused (and the last good map kept) rather than
 * read into memory.
 */
export const MAX_USER_MAP_BYTES = 256 * 1024 * 1024;

/**
 * How long a lookup waits for a map re-read in progress before it answers from the map it has:
 * a small map is re-read in a millisecond or two; a big one parses in a worker for seconds, and
 * LOGINs must not wait on that.
 */
const MAP_WAIT_MS = 250;

/** How often the map file's modification time is checked, at most. */
const MAP_CHECK_MS = 1_000;
/** An HTTP lookup slower than this counts as "no answer" (not cached): placement goes on. */
const LOOKUP_TIMEOUT_MS = 2_000;
/**
 * How much of a lookup answer is read: its first word is a backend name (tens of bytes), so
 * 1 KiB is plenty; the rest is never read (a 150 MB body stalled the loop 17 s, 500 MB killed it).
 */
const MAX_LOOKUP_ANSWER_BYTES = 1024;

/**
 * The first whitespace-separated word of `res`'s body ('' for a blank body), reading only as far
 * as that word's end or MAX_LOOKUP_ANSWER_BYTES, then cancelling the rest. null when the word
 * runs past the cap. The fetch's timeout signal also bounds the body (it errors the stream).
 */
async function firstToken(res: Response): Promise<string | null> {
  const reader = res.body?.getReader();
  if (!reader) return '';
  const decoder = new TextDecoder();
  let text = '';
  let bytes = 0;
  try {
    for (;;) {
      const r: { done: boolean; value?: Uint8Array } = await reader.read();
      if (r.done || r.value === undefined) return text.trim().split(/\s+/)[0] ?? '';
      const room = MAX_LOOKUP_ANSWER_BYTES - bytes;
      const part = r.value.subarray(0, room);
      bytes += part.length;
      text += decoder.decode(part, { stream: true });
      const m = /^\s*(\S+)\s/.exec(text);
      if (m) return m[1] ?? '';
      if (bytes >= MAX_LOOKUP_ANSWER_BYTES) return /\S/.test(text) ? null : '';
    }
  } finally {
    // Unread rest: cancel so the connection is dropped rather than drained.
    reader.cancel().catch(() => undefined);
  }
}

/** Cached answers kept at most (oldest dropped first). */
const MAX_CACHE = 100_000;

export interface DirectoryOptions {
  readonly mapFile?: string;
  readonly lookupUrl?: string;
  readonly ttlMs: number;
  readonly clock: Clock;
  /** Reports a failed lookup (never with the user's password; the user name is fine). */
  readonly onError: (what: string, err: unknown) => void;
}

export class UserDirectory {
  private map = UserTable.empty();
  /** The file's identity when `map` was read: a changed identity is re-read. */
  private mapStamp = '';
  /** The identity of a version that could not be read: not retried until the file changes again. */
  private failedStamp = '';
  private lastCheckMs = -Infinity;
  private refreshing: Promise<void> | undefined;
  private readonly cache = new Map<string, { backend: string | undefined; expiresMs: number }>();

  constructor(private readonly o: DirectoryOptions) {}

  /** Reads the map file now; rejects when it cannot be read (a start-up error). */
  async load(): Promise<void> {
    if (this.o.mapFile === undefined) return;
    const st = await stat(this.o.mapFile);
    this.map = await readUserMap(this.o.mapFile);
    this.mapStamp = stamp(st);
    this.lastCheckMs = this.o.clock.now();
  }

  /** Starts a re-read when one is due (at most one at a time) and resolves when it ends. */
  private refreshMap(): Promise<void> {
    const file = this.o.mapFile;
    if (file === undefined) return Promise.resolve();
    if (this.refreshing) return this.refreshing;
    const now = this.o.clock.now();
    if (now - this.lastCheckMs < MAP_CHECK_MS) return Promise.resolve();
    this.lastCheckMs = now;
    this.refreshing = (async () => {
      try {
        const st = await stat(file);
        const s = stamp(st);
        if (s === this.mapStamp || s === this.failedStamp) return;
        try {
          this.map = await readUserMap(file);
          this.mapStamp = s;
          this.failedStamp = '';
          this.cache.clear();
        } catch (e) {
          this.failedStamp = s;
          throw e;
        }
      } catch (e) {
        // Keep serving from the last good map; the operator sees the error in the log.
        this.o.onError('user-map', e);
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  private async ask(user: string): Promise<{ backend: string | undefined } | undefined> {
    const url = this.o.lookupUrl;
    if (url === undefined) return { backend: undefined };
    const u = new URL(url);
    u.searchParams.set('user', user);
    try {
      const res = await fetch(u, { signal: AbortSignal.timeout(LOOKUP_TIMEOUT_MS) });
      if (res.status === 404) return { backend: undefined };
      if (!res.ok) {
        this.o.onError('user-lookup', new Error(`HTTP ${String(res.status)}`));
        return undefined;
      }
      const name = await firstToken(res);
      if (name === null) {
        this.o.onError('user-lookup', new Error(`answer has no backend name within its first ${String(MAX_LOOKUP_ANSWER_BYTES)} bytes`));
        return undefined;
      }
      return { backend: name === '' ? undefined : name };
    } catch (e) {
      this.o.onError('user-lookup', e);
      return undefined;
    }
  }

  /** The backend named for `user` (lower-cased key), or undefined when none is known. */
  async lookup(user: string): Promise<string | undefined> {
    await raceTimeout(this.refreshMap(), MAP_WAIT_MS, () => undefined);
    const key = user.toLowerCase();
    const fromMap = this.map.get(key);
    if (fromMap !== undefined) return fromMap;
    const now = this.o.clock.now();
    const hit = this.cache.get(key);
    if (hit && hit.expiresMs > now) return hit.backend;
    const answer = await this.ask(key);
    if (answer === undefined) return undefined;
    this.cache.delete(key);
    this.cache.set(key, { backend: answer.backend, expiresMs: now + this.o.ttlMs });
    if (this.cache.size > MAX_CACHE) {
      const oldest = this.cache.keys().next();
      if (oldest.done !== true) this.cache.delete(oldest.value);
    }
    return answer.backend;
  }
}

/**
 * The `login` key for a user name: lower-cased (mail systems treat user names
 * case-insensitively), and with `strip` the `@domain` part removed.
 */
export function loginKey(user: string, domain: 'keep' | 'strip'): string {
  const u = user.trim().toLowerCase();
  if (domain === 'keep') return u;
  const at = u.lastIndexOf('@');
  return at > 0 ? u.slice(0, at) : u;
}

/** A file's identity for change detection: inode, size and modification time. */
function stamp(st: { ino: number; size: number; mtimeMs: number }): string {
  return `${String(st.ino)}:${String(st.size)}:${String(st.mtimeMs)}`;
}

/** Reads and parses a map file: bounded read, then a worker parse when it is big. */
async function readUserMap(file: string): Promise<UserTable> {
  const bytes = await readFileBounded(file, { maxBytes: MAX_USER_MAP_BYTES });
  return new UserTable(await parseOffThread(buildUserTable, bytes, undefined));
}
