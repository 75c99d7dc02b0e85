// The secrets the mail and HTTP tests send through tether — passwords, SASL PLAIN responses as
// sent, cookie, header and url-param values, admin tokens — in one place, so the privacy check
// (test/privacy/) knows what must never appear in a log line. A secret is recorded when a test
// takes it: in memory, and in this test file's folder under the tether log dir
// (tether-logs.ts), where the check finds it after the run.
import { appendFileSync } from 'node:fs';
import { Buffer } from 'node:buffer';
import path from 'node:path';
import { testFileDir } from './tether-logs.js';

export type SecretKind = 'password' | 'sasl' | 'cookie' | 'header' | 'url-param' | 'token';

export interface Secret {
  readonly kind: SecretKind;
  readonly value: string;
  /** The catalogue name, or what the value was made from (`user:alice`, `issued`). */
  readonly name: string;
}

/**
 * Shorter values cannot be searched for without false alarms (`pw` is in every `pwd`), so
 * each secret is at least this long; its base64 needles are then at least 10 characters.
 */
export const MIN_SECRET_LENGTH = 8;

/** The fixed secrets, by name. Tests take them with `secret(name)`. */
export const CATALOGUE = {
  // IMAP passwords whose syntax matters: imaplib quotes " and \, literals, UTF-8.
  'imap-quoted': { kind: 'password', value: 'pa"ss\\ w0rd-q1' },
  'imap-plain': { kind: 'password', value: 'hunter 2"p2' },
  'imap-literal-utf8': { kind: 'password', value: 'pässwörd "x" {3}\\' },
  'imap-two-literals': { kind: 'password', value: 'se cr"t3' },
  'imap-nonsync-literal': { kind: 'password', value: 'p4 {x} +lit' },
  'imap-sasl-ir': { kind: 'password', value: 'Fr@nk pw5' },
  'imap-sasl-continued': { kind: 'password', value: 'gr8-pw6-heidi' },
  'imap-escaped': { kind: 'password', value: 'p\\a ss7-grace' },
  'imap-retry-good': { kind: 'password', value: 'right-pw8' },
  'imaplib-retry-good': { kind: 'password', value: 'ivan-pw9' },
  'imap-tls-gus': { kind: 'password', value: 'secret-gus' },
  /** Every IMAP and POP3 test backend refuses this one. */
  wrong: { kind: 'password', value: 'wrong-pw-Zx0' },
  /** A password that is an IMAP atom: raw `LOGIN user PASSWORD` lines, s_client scripts, POP3 PASS. */
  'mail-atom': { kind: 'password', value: 'Atom-pw-7Kq2' },
  // HTTP affinity values.
  /** JSESSIONID values are `<this><route>1.<route>` (Tomcat jvmRoute style). */
  'http-routed-session': { kind: 'cookie', value: 'jsid-Q7xK' },
  /** A JSESSIONID whose suffix names no backend: `<this>.nosuch`. */
  'http-unrouted-session': { kind: 'cookie', value: 'jsid-Nz4w' },
  /** The ;jsessionid= path parameter: `<this>.<route>`. */
  'http-path-session': { kind: 'url-param', value: 'pathsess-Tq8w' },
  'http-server-id': { kind: 'url-param', value: 'srvid-Xw3p' },
  'http-user-alice': { kind: 'header', value: 'alice-7q-Hdr' },
  'http-user-bob': { kind: 'header', value: 'bob-9z-Hdr' },
  'tenant-acme': { kind: 'header', value: 'acme-corp' },
  'tenant-globex': { kind: 'header', value: 'globex-inc' },
  'tenant-initech': { kind: 'header', value: 'initech-Ltd' },
  'key-module-cookie': { kind: 'cookie', value: 'two-Ck9zq' },
  /** The admin explain's SID cookie: `<this>.c`. */
  'admin-sid': { kind: 'cookie', value: 'sid-Adm1n-4r' },
  'admin-token': { kind: 'token', value: 's3cret-token' },
  'admin-token-rotated': { kind: 'token', value: 'rotated-token-2' },
  /** An affinity-table key value written to the state file (test/state). */
  'state-cookie': { kind: 'cookie', value: 'secret-cookie' },
} as const satisfies Record<string, { readonly kind: SecretKind; readonly value: string }>;

export type SecretName = keyof typeof CATALOGUE;

/** The catalogue as Secret values. */
export function catalogueSecrets(): Secret[] {
  return Object.entries(CATALOGUE).map(([name, s]) => ({ kind: s.kind, value: s.value, name }));
}

/** The file this process records its secrets in. */
export function secretsFile(): string {
  return path.join(testFileDir(), `secrets-${String(process.pid)}.jsonl`);
}

const used = new Map<string, Secret>();

/** Records `value` as a secret of `kind` this process sends; returns it. Rejects short values. */
export function register(kind: SecretKind, value: string, name: string = kind): string {
  if (value.length < MIN_SECRET_LENGTH) throw new Error(`secret ${JSON.stringify(value)} is shorter than ${String(MIN_SECRET_LENGTH)} characters`);
  if (used.has(value)) return value;
  const s: Secret = { kind, value, name };
  used.set(value, s);
  appendFileSync(secretsFile(), JSON.stringify(s) + '\n');
  return value;
}

/** The catalogue secret `name`, recorded as used. */
export function secret(name: SecretName): string {
  const s = CATALOGUE[name];
  return register(s.kind, s.value, name);
}

/** A distinct password for mail user `user`, recorded as used. */
export function userPassword(user: string): string {
  return register('password', `pw-${user}-S3cr3t!`, `user:${user}`);
}

/** A SASL PLAIN response as sent, base64 (authzid NUL user NUL password), recorded as used. */
export function saslPlain(user: string, password: string, authzid = ''): string {
  return register('sasl', Buffer.from(`${authzid}\0${user}\0${password}`, 'utf8').toString('base64'), `plain:${user}`);
}

const catalogueByValue = new Map<string, SecretName>(Object.entries(CATALOGUE).map(([name, v]) => [v.value, name as SecretName]));
const sightings = new Set<string>();

/**
 * Called by the IMAP and POP3 test backends with each password they receive, so the registry
 * knows the secret really went through tether. A catalogue password is recorded as used; one
 * that no test took from this module is recorded as a stray, which fails the privacy check (an
 * ad-hoc literal like `pw` could be in the logs and nobody would look for it).
 */
export function receivedAtBackend(password: string, where: string): void {
  if (sightings.has(password)) return;
  sightings.add(password);
  const name = catalogueByValue.get(password);
  if (name !== undefined) secret(name);
  const line: BackendSighting = used.has(password) ? { seen: password, where } : { stray: password, where };
  appendFileSync(secretsFile(), JSON.stringify(line) + '\n');
}

/** A line of the secrets file that records what a test backend received. */
export type BackendSighting = { readonly seen: string; readonly where: string } | { readonly stray: string; readonly where: string };

/** The secrets this process has recorded so far. */
export function secretsUsed(): Secret[] {
  return [...used.values()];
}
