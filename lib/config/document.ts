// Turns a parsed config document (YAML/JSON → plain values) into a Config, naming the field path
// of every problem. Pure. Keys are spelled as the flags are (`affinity-timeout`, `log-level`),
// and values use the flags' micro-syntaxes, so one vocabulary serves both: the keys, their
// readers and their defaults are the option table's (lib/options/).
import type { ConfigIssue } from '../errors.js';
import { describe, isRecord } from '../options/file-values.js';
import { TOP_LEVEL, frontendFromObject, topFromObject, topWithDefaults } from '../options/build.js';
import { noteOrigin } from './origin.js';
import type { Config, FrontendConfig } from './types.js';

/**
 * Converts a parsed document into a Config: a mapping with `frontends` (a list of frontend
 * mappings) and the global keys (`log-level`, `grace`, `admin`, …). Never throws; returns every
 * value problem (the cross-field rules are config/validate.ts).
 */
export function configFromDocument(doc: unknown): { config: Config; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  if (!isRecord(doc)) {
    issues.push({ path: TOP_LEVEL, message: `expected a mapping with "frontends", got ${describe(doc)}` });
    return { config: topWithDefaults({}, [], []), issues };
  }
  const top = topFromObject(doc, issues);
  const frontends: FrontendConfig[] = [];
  const fes = doc['frontends'];
  if (!Array.isArray(fes)) {
    issues.push({ path: 'frontends', message: `expected a list of frontends, got ${describe(fes)}` });
  } else {
    fes.forEach((fe, i) => {
      const at = `frontends[${String(i)}]`;
      if (!isRecord(fe)) {
        issues.push({ path: at, message: `expected a mapping, got ${describe(fe)}` });
        return;
      }
      const built = frontendFromObject(fe, at, issues);
      const named = fe['name'] === undefined && fes.length > 1 ? { ...built, name: `frontend${String(i)}` } : built;
      noteOrigin(named, at);
      frontends.push(named);
    });
  }
  return { config: topWithDefaults(top, frontends, issues), issues };
}
