// Stage 3, I/O (loads one user module). `--key-module FILE`: site rules no flag covers (F5's
// "universal" persistence). The module exports `key(input)` returning a string or undefined.
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { TetherError } from '../errors.js';

/** What a key module sees: the client address and what peeking found (no payload beyond it). */
export interface KeyModuleInput {
  readonly source: string;
  readonly sourcePort: number;
  readonly localPort: number;
  readonly protocol?: string;
  readonly sni?: string;
  readonly alpn?: readonly string[];
  readonly http?: {
    readonly method: string;
    readonly target: string;
    readonly host?: string;
    readonly headers: Readonly<Record<string, string>>;
    readonly cookies: Readonly<Record<string, string>>;
    readonly query: Readonly<Record<string, string>>;
  };
  readonly xmppTo?: string;
}

export type KeyFunction = (input: KeyModuleInput) => unknown;

/** Imports `file` and returns its `key` export. Rejects with TETHER_ERR_CONFIG when unusable. */
export async function loadKeyModule(file: string): Promise<KeyFunction> {
  let mod: unknown;
  try {
    mod = await import(pathToFileURL(path.resolve(file)).href);
  } catch (e) {
    throw new TetherError('TETHER_ERR_CONFIG', `cannot load key module ${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  const fn = typeof mod === 'object' && mod !== null && 'key' in mod ? mod.key : undefined;
  if (typeof fn !== 'function') throw new TetherError('TETHER_ERR_CONFIG', `key module ${file} does not export a function named key`);
  return fn as KeyFunction;
}

/**
 * Runs the key function; a string (≤ 1 KiB) is the key, anything else or a throw means "no
 * key" — a site rule's bug must not take connections down. Returns the error for logging.
 */
export function runKeyFunction(fn: KeyFunction, input: KeyModuleInput): { key?: string; error?: unknown } {
  try {
    const v = fn(input);
    return typeof v === 'string' && v !== '' && v.length <= 1024 ? { key: v } : {};
  } catch (error) {
    return { error };
  }
}
