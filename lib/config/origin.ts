// Where a parsed config item came from. A list item that fails to parse is left out of its
// list, so an item's index in the Config is not always its index in the flags or the file;
// the readers note each item's own path here, and validate.ts names items by it. Pure.

const ORIGINS = new WeakMap<object, string>();

/** Notes that `item` was read at `path` (`frontends[1].backends[2]`). */
export function noteOrigin(item: object, path: string): void {
  ORIGINS.set(item, path);
}

/** The path `item` was read at, or `fallback` (its index here) for an item built in code. */
export function pathOf(item: object, fallback: string): string {
  return ORIGINS.get(item) ?? fallback;
}
