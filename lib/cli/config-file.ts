// Reads a config file (YAML or JSON; JSON is YAML) into a Config. I/O (reads one file).
import { readFile } from 'node:fs/promises';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { configFromDocument } from '../config/document.js';
import type { Config } from '../config/types.js';
import { TetherError, errorCode, type ConfigIssue } from '../errors.js';

/**
 * Loads `path`. Rejects with TETHER_ERR_CONFIG_FILE when the file cannot be read or parsed;
 * otherwise returns the config with every schema issue (empty when valid).
 */
export async function loadConfigFile(path: string): Promise<{ config: Config; issues: ConfigIssue[] }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new TetherError('TETHER_ERR_CONFIG_FILE', `cannot read config file ${path}: ${errorCode(e) ?? String(e)}`, { cause: e });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true, maxAliasCount: 100 });
  } catch (e) {
    const where = e instanceof YAMLParseError && e.linePos ? ` at line ${String(e.linePos[0].line)}, column ${String(e.linePos[0].col)}` : '';
    const what = e instanceof YAMLParseError ? e.code : 'parse error';
    throw new TetherError('TETHER_ERR_CONFIG_FILE', `cannot parse config file ${path}${where}: ${what}`, { cause: e });
  }
  return configFromDocument(doc);
}
