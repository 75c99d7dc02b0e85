// Pure. The user map ("user backend" lines) as a compact, transferable hash table: a 50 MB map
// is parsed in a worker (lib/files/off-thread.ts) and handed back as three ArrayBuffers, moved
// rather than copied. Handing back a Map instead cost the event loop 2.7 s for 1.5 M users
// (structured clone rebuilds every entry on the receiving side); a transfer costs nothing.

/** The table's parts: UTF-8 keys back to back, entries, open-addressing slots, backend names. */
export interface UserTableParts {
  /** Lower-cased user names, UTF-8, back to back. */
  readonly keys: Uint8Array;
  /** Per entry: key offset, key length, index into `names`. */
  readonly entries: Uint32Array;
  /** Power-of-two slots holding entry index + 1 (0: empty), probed linearly from the key's hash. */
  readonly slots: Uint32Array;
  readonly names: readonly string[];
  /** Lines that were neither blank, a comment, nor "user backend". */
  readonly malformed: number;
}

/**
 * Parses a map file's bytes (the Parse contract of lib/files/off-thread.ts: no imports, no
 * closure, as it is also run from its source text in a worker). "#" starts a comment; a line is
 * "user backend" separated by whitespace; the user is lower-cased; the first line for a user
 * wins. A line with one word, or with more than two, counts as malformed.
 */
export function buildUserTable(bytes: Uint8Array): { value: UserTableParts; transfer: ArrayBuffer[] } {
  const text = new TextDecoder().decode(bytes);
  const encoder = new TextEncoder();
  const nameIndex = new Map<string, number>();
  const names: string[] = [];
  // Worst case every byte is key: the key blob never outgrows the input (lower-casing may grow
  // a few characters, so a margin, then a grow path below).
  let keys = new Uint8Array(Math.max(16, bytes.length + 16));
  let keyEnd = 0;
  let entries = new Uint32Array(3 * 1024);
  let count = 0;
  let malformed = 0;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    let line = text.slice(start, end);
    start = end + 1;
    const hash = line.indexOf('#');
    if (hash >= 0) line = line.slice(0, hash);
    line = line.trim();
    if (line === '') continue;
    const words = line.split(/\s+/);
    const user = words[0];
    const backend = words[1];
    if (user === undefined || backend === undefined || words.length > 2) {
      malformed++;
      if (user === undefined || backend === undefined) continue;
    }
    const key = encoder.encode(user.toLowerCase());
    if (keyEnd + key.length > keys.length) {
      const grown = new Uint8Array(Math.max(keys.length * 2, keyEnd + key.length));
      grown.set(keys.subarray(0, keyEnd));
      keys = grown;
    }
    keys.set(key, keyEnd);
    if (3 * count + 3 > entries.length) {
      const grown = new Uint32Array(entries.length * 2);
      grown.set(entries);
      entries = grown;
    }
    let ni = nameIndex.get(backend);
    if (ni === undefined) {
      ni = names.length;
      names.push(backend);
      nameIndex.set(backend, ni);
    }
    entries[3 * count] = keyEnd;
    entries[3 * count + 1] = key.length;
    entries[3 * count + 2] = ni;
    keyEnd += key.length;
    count++;
  }
  let size = 8;
  while (size < count * 2) size *= 2;
  const slots = new Uint32Array(size);
  const mask = size - 1;
  for (let i = 0; i < count; i++) {
    const off = entries[3 * i] ?? 0;
    const len = entries[3 * i + 1] ?? 0;
    // FNV-1a over the key's bytes (the same as userTableHash below).
    let h = 0x811c9dc5;
    for (let j = off; j < off + len; j++) h = Math.imul(h ^ (keys[j] ?? 0), 0x01000193);
    let s = (h >>> 0) & mask;
    let duplicate = false;
    for (;;) {
      const at = slots[s] ?? 0;
      if (at === 0) break;
      const o2 = entries[3 * (at - 1)] ?? 0;
      const l2 = entries[3 * (at - 1) + 1] ?? 0;
      if (l2 === len) {
        let same = true;
        for (let j = 0; j < len; j++) {
          if (keys[off + j] !== keys[o2 + j]) {
            same = false;
            break;
          }
        }
        if (same) {
          duplicate = true;
          break;
        }
      }
      s = (s + 1) & mask;
    }
    if (duplicate) continue; // the first line for a user wins
    slots[s] = i + 1;
  }
  const keyBlob = keys.slice(0, keyEnd);
  const entryBlob = entries.slice(0, 3 * count);
  return {
    value: { keys: keyBlob, entries: entryBlob, slots, names, malformed },
    transfer: [keyBlob.buffer, entryBlob.buffer, slots.buffer],
  };
}

/** FNV-1a, 32 bits, over `bytes` (buildUserTable's slot hash). */
function userTableHash(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193);
  return h >>> 0;
}

/** Lookups in a built table. */
export class UserTable {
  private readonly mask: number;
  private readonly encoder = new TextEncoder();

  constructor(private readonly parts: UserTableParts) {
    this.mask = parts.slots.length - 1;
  }

  /** An empty table. */
  static empty(): UserTable {
    return new UserTable(buildUserTable(new Uint8Array(0)).value);
  }

  /** Users with a backend (duplicates counted once). */
  get size(): number {
    let n = 0;
    for (const s of this.parts.slots) if (s !== 0) n++;
    return n;
  }

  get malformed(): number {
    return this.parts.malformed;
  }

  /** The backend for `user`, which must already be lower-cased; undefined when absent. */
  get(user: string): string | undefined {
    const { keys, entries, slots, names } = this.parts;
    const key = this.encoder.encode(user);
    let s = userTableHash(key) & this.mask;
    for (;;) {
      const at = slots[s] ?? 0;
      if (at === 0) return undefined;
      const off = entries[3 * (at - 1)] ?? 0;
      const len = entries[3 * (at - 1) + 1] ?? 0;
      if (len === key.length && Buffer.from(keys.buffer, keys.byteOffset + off, len).equals(key)) return names[entries[3 * (at - 1) + 2] ?? 0];
      s = (s + 1) & this.mask;
    }
  }

  /** Every (user, backend), in file order of first appearance (for tests and small maps). */
  *entries(): IterableIterator<[string, string]> {
    const { keys, entries, slots, names } = this.parts;
    const decoder = new TextDecoder();
    const live: number[] = [];
    for (const s of slots) if (s !== 0) live.push(s - 1);
    live.sort((a, b) => a - b);
    for (const i of live) {
      const off = entries[3 * i] ?? 0;
      const len = entries[3 * i + 1] ?? 0;
      yield [decoder.decode(keys.subarray(off, off + len)), names[entries[3 * i + 2] ?? 0] ?? ''];
    }
  }
}
