// Everything derived from the option table (table.ts): the defaults, a frontend and the top
// level from flags or from a config file's mapping, the flags given, the flag names in
// messages. Pure. Every value problem is collected in one pass; `reported` then merges in the
// cross-field rules (config/validate.ts) without repeating a field already named.
import { MAIL_BANNER_EXPECT } from '../config/defaults.js';
import type { Config, FrontendConfig } from '../config/types.js';
import type { ConfigIssue } from '../errors.js';
import { unknownKeys } from './file-values.js';
import { OPTIONS, type Drafts, type FrontendDraft, type OptionRow, type TopDraft, type ValueIssue } from './table.js';

/** The path of a problem with the document as a whole. */
export const TOP_LEVEL = '(top level)';

const FRONTEND_ROWS = OPTIONS.filter((r) => r.scope === 'frontend');
const GLOBAL_ROWS = OPTIONS.filter((r) => r.scope === 'global');

/** The keys of a frontend mapping in a config file. */
export const FRONTEND_KEYS: readonly string[] = FRONTEND_ROWS.flatMap((r) => (r.key === undefined ? [] : [r.key]));
/** The top-level keys of a config file. */
export const TOP_KEYS: readonly string[] = ['frontends', ...GLOBAL_ROWS.flatMap((r) => (r.key === undefined ? [] : [r.key]))];

function emptyDrafts(): Drafts {
  return { fe: { mail: {}, health: {} }, top: {} };
}

/** Drops the keys whose value is undefined (optional fields are absent, never undefined). */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

const DEFAULTS: Drafts = (() => {
  const d = emptyDrafts();
  for (const r of OPTIONS) r.putDefault(d);
  return d;
})();

/** Fills in every default of the table for a frontend draft; an imap/pop3 banner check expects its greeting. */
export function frontendWithDefaults(d: FrontendDraft): FrontendConfig {
  const base = DEFAULTS.fe;
  const fe = { ...base, ...defined(d), mail: { ...base.mail, ...defined(d.mail ?? {}) }, health: { ...base.health, ...defined(d.health ?? {}) } };
  const protocol = fe.protocol ?? 'auto';
  if (fe.health.expect === undefined && fe.health.check === 'banner' && protocol !== 'auto') fe.health.expect = MAIL_BANNER_EXPECT[protocol];
  // Every required field has its row's default (test/options/table.test.ts holds that).
  return fe as FrontendConfig;
}

/** The top level from its draft over the defaults; `admin-token-file` needs `admin`. */
export function topWithDefaults(top: TopDraft, frontends: readonly FrontendConfig[], issues: ConfigIssue[]): Config {
  const { admin, adminTokenFile, ...rest } = { ...DEFAULTS.top, ...defined(top) };
  if (adminTokenFile !== undefined && admin === undefined) issues.push({ path: 'admin-token-file', message: 'needs --admin (the address of the admin API)' });
  return {
    ...(rest as Omit<Config, 'frontends' | 'admin'>),
    ...(admin === undefined ? {} : { admin: { host: admin.host, port: admin.port, ...(adminTokenFile === undefined ? {} : { tokenFile: adminTokenFile }) } }),
    frontends,
  };
}

/** The top level of a Config as a draft, so flags can be laid over a file's settings. */
function topOf(config: Config): TopDraft {
  const { admin, stateFile, stateIntervalMs, maxConns, logLevel, graceMs } = config;
  return { ...(defined({ stateFile, stateIntervalMs, maxConns, logLevel, graceMs }) as TopDraft), ...(admin === undefined ? {} : { admin: { host: admin.host, port: admin.port }, ...(admin.tokenFile === undefined ? {} : { adminTokenFile: admin.tokenFile }) }) };
}

/** The commander attribute of a long flag (`--queue-timeout` → `queueTimeout`). */
export function attributeOf(flag: string): string {
  return flag.slice(2).replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

function readFlags(rows: readonly OptionRow[], raw: Readonly<Record<string, unknown>>, d: Drafts, issues: ValueIssue[]): void {
  for (const r of rows) {
    if (r.flag === undefined) continue;
    const v = raw[attributeOf(r.flag)];
    if (v === undefined) continue;
    const at = r.scope === 'global' ? (r.key ?? r.flag) : `frontends[0].${r.key ?? r.flag}`;
    r.fromFlag(v, at, d, issues);
  }
}

/** The frontend flags given (`--listen`, `--retries`, …), in table order. */
export function frontendFlagsGiven(raw: Readonly<Record<string, unknown>>): string[] {
  return FRONTEND_ROWS.flatMap((r) => (r.flag !== undefined && raw[attributeOf(r.flag)] !== undefined ? [r.flag] : []));
}

/** A Config from flags alone (commander's values, unparsed), every value problem in `issues`. */
export function configFromFlags(raw: Readonly<Record<string, unknown>>): { config: Config; issues: ValueIssue[] } {
  const d = emptyDrafts();
  const issues: ValueIssue[] = [];
  readFlags(OPTIONS, raw, d, issues);
  const config = topWithDefaults(d.top, [frontendWithDefaults(d.fe)], issues);
  return { config, issues };
}

/** `config` (from a file) with the global flags given laid over it. */
export function withGlobalFlags(config: Config, raw: Readonly<Record<string, unknown>>): { config: Config; issues: ValueIssue[] } {
  const d = emptyDrafts();
  const issues: ValueIssue[] = [];
  readFlags(GLOBAL_ROWS, raw, d, issues);
  return { config: topWithDefaults({ ...topOf(config), ...defined(d.top) }, config.frontends, issues), issues };
}

/** A frontend from a config file's mapping at `at` (`frontends[1]`). */
export function frontendFromObject(o: Readonly<Record<string, unknown>>, at: string, issues: ConfigIssue[]): FrontendConfig {
  unknownKeys(o, FRONTEND_KEYS, at, issues);
  const d = emptyDrafts();
  for (const r of FRONTEND_ROWS) {
    if (r.key !== undefined && o[r.key] !== undefined) r.fromFile(o[r.key], `${at}.${r.key}`, d, issues);
  }
  return frontendWithDefaults(d.fe);
}

/** The top-level settings of a config file's mapping. */
export function topFromObject(o: Readonly<Record<string, unknown>>, issues: ConfigIssue[]): TopDraft {
  unknownKeys(o, TOP_KEYS, '', issues);
  const d = emptyDrafts();
  for (const r of GLOBAL_ROWS) {
    if (r.key !== undefined && o[r.key] !== undefined) r.fromFile(o[r.key], r.key, d, issues);
  }
  return d.top;
}

/** Whether one of two paths is the other or inside it (`a.backends` and `a.backends[1]`); `(top level)` holds all. */
function related(a: string, b: string): boolean {
  if (a === TOP_LEVEL || b === TOP_LEVEL) return true;
  const within = (x: string, y: string): boolean => x === y || x.startsWith(`${y}.`) || x.startsWith(`${y}[`);
  return within(a, b) || within(b, a);
}

/** The frontend (`frontends[1]`) and the flag (`--health-expect`) of a value problem's path. */
function fieldOf(path: string): { readonly frontend: string; readonly flag: string } | undefined {
  const m = /^(frontends\[\d+\])\.([\w-]+)/.exec(path);
  const flag = m?.[2] === undefined ? undefined : FLAG_OF_KEY.get(m[2]);
  return m?.[1] === undefined || flag === undefined ? undefined : { frontend: m[1], flag };
}

/** Whether a cross-field problem follows from a value problem: same field, or it names that field's flag in its frontend. */
function follows(cross: ConfigIssue, value: ValueIssue): boolean {
  if (related(value.path, cross.path)) return true;
  const f = fieldOf(value.path);
  return f !== undefined && cross.path.startsWith(f.frontend) && new RegExp(`${f.flag}(?![\\w-])`).test(cross.message);
}

/**
 * The value problems, then the cross-field ones that do not follow from them (a backend list
 * whose one item did not parse is not also "empty"; a --health-expect that did not parse is not
 * also "missing"): every problem, each once.
 */
export function reported(values: readonly ValueIssue[], cross: readonly ConfigIssue[]): ValueIssue[] {
  return [...values, ...cross.filter((c) => !values.some((v) => follows(c, v)))];
}

const FLAG_OF_KEY = new Map(FRONTEND_ROWS.flatMap((r) => (r.key !== undefined && r.flag !== undefined ? [[r.key, r.flag] as const] : [])));
const GLOBAL_FLAG_OF_KEY = new Map(GLOBAL_ROWS.flatMap((r) => (r.key !== undefined && r.flag !== undefined ? [[r.key, r.flag] as const] : [])));

/** A config path as flags say it: `frontends[0].backends[1]` → `--backend #2`, `grace` → `--grace`. */
export function flagPath(path: string): string {
  const global = GLOBAL_FLAG_OF_KEY.get(path);
  if (global !== undefined) return global;
  const m = /^frontends\[0\]\.([\w-]+)(?:\[(\d+)\])?(.*)$/.exec(path);
  if (!m?.[1]) return path;
  const flag = FLAG_OF_KEY.get(m[1]) ?? m[1];
  return m[2] === undefined ? `${flag}${m[3] ?? ''}` : `${flag} #${String(Number(m[2]) + 1)}${m[3] ?? ''}`;
}
