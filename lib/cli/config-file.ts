// Reads a config file (YAML or JSON; JSON is YAML) into a Config. I/O (reads one file; a big
// one is parsed in a worker, so a reload does not stall traffic).
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import { configFromDocument } from '../config/document.js';
import type { Config } from '../config/types.js';
import { TetherError, type ConfigIssue } from '../errors.js';
import { parseOffThread } from '../files/off-thread.js';
import { describeFileError, readFileBounded } from '../files/read.js';

/**
 * The largest config file read. A config of 1,000 frontends with a few backends each is about
 * 400 KiB; 4 MiB is ten times that. (A 35 MB file took 45 s and 3.9 GB to parse: refused now.)
 */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/**
 * Configs of this size or more are parsed in a worker. YAML costs far more than its size
 * suggests: 227 KB of a repeated broken mapping took 1.2 s and 57 MB; a config is a few KiB,
 * and one of 16 KiB parses inline in well under 100 ms even when it is that bad.
 */
const CONFIG_INLINE_BELOW = 16 * 1024;

/** Where the yaml package's CommonJS entry is, for the worker's `require`. */
const YAML_PATH = createRequire(import.meta.url).resolve('yaml');

/** What parsing the text gave: the document, or where and why it failed. */
type Parsed = { readonly ok: true; readonly doc: unknown } | { readonly ok: false; readonly where: string; readonly what: string };

/**
 * Parses config text (the Parse contract of lib/files/off-thread.ts: no imports, no closure).
 * Duplicate keys are errors; at most 100 aliases (a "billion laughs" document is refused).
 */
function parseConfigText(bytes: Uint8Array, yamlPath: string, req: NodeJS.Require): { value: Parsed; transfer: ArrayBuffer[] } {
  const yaml = req(yamlPath) as typeof Yaml;
  const text = new TextDecoder().decode(bytes);
  try {
    return { value: { ok: true, doc: yaml.parse(text, { uniqueKeys: true, maxAliasCount: 100 }) as unknown }, transfer: [] };
  } catch (e) {
    const err = e as { linePos?: { line: number; col: number }[]; code?: string };
    const pos = e instanceof yaml.YAMLParseError ? err.linePos?.[0] : undefined;
    const where = pos ? ` at line ${String(pos.line)}, column ${String(pos.col)}` : '';
    return { value: { ok: false, where, what: e instanceof yaml.YAMLParseError && typeof err.code === 'string' ? err.code : 'parse error' }, transfer: [] };
  }
}

/**
 * Loads `path`. Rejects with TETHER_ERR_CONFIG_FILE when the file cannot be read or parsed
 * (not a regular file, over MAX_CONFIG_BYTES, unreadable, not YAML); otherwise returns the
 * config with every schema issue (empty when valid).
 */
export async function loadConfigFile(path: string): Promise<{ config: Config; issues: ConfigIssue[] }> {
  let bytes: Buffer;
  try {
    bytes = await readFileBounded(path, { maxBytes: MAX_CONFIG_BYTES });
  } catch (e) {
    throw new TetherError('TETHER_ERR_CONFIG_FILE', `cannot read config file ${path}: ${describeFileError(e)}`, { cause: e });
  }
  let parsed: Parsed;
  try {
    parsed = await parseOffThread(parseConfigText, bytes, YAML_PATH, { inlineBelow: CONFIG_INLINE_BELOW });
  } catch (e) {
    throw new TetherError('TETHER_ERR_CONFIG_FILE', `cannot parse config file ${path}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (!parsed.ok) throw new TetherError('TETHER_ERR_CONFIG_FILE', `cannot parse config file ${path}${parsed.where}: ${parsed.what}`);
  return configFromDocument(parsed.doc);
}
