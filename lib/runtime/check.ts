// I/O. `tether check`'s second half: after the config validates, load every file a start would
// load, through the start's own loaders (mail.ts, KeyModule.load, checkStateFile, readToken),
// so a config that `check` passes does not then fail to start on a file, and a failure reads in
// the same words as the start's error. Unlike a start, it goes on past a failure: every problem
// is reported, each once.
import { readToken } from '../admin/token.js';
import { KeyModule } from '../affinity/key-module.js';
import { realClock, type Clock } from '../clock.js';
import type { Config, FrontendConfig } from '../config/types.js';
import { TetherError, type ConfigIssue } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { checkStateFile } from '../state/state-file.js';
import { loadUserDirectory, readPem, secureContextOf, servesTls, userDirectory } from './mail.js';

/** What checkRuntime may be handed; the real clock and a logger that drops every line otherwise. */
export interface CheckDeps {
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/** One load's outcome: its value, or the start's error message. */
type Loaded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string };

/**
 * Runs `load`; a TetherError (what the loaders reject with) becomes its message. Anything else
 * is a bug in a loader, not a problem of the config, and is rethrown.
 */
async function settle<T>(load: () => Promise<T>): Promise<Loaded<T>> {
  try {
    return { ok: true, value: await load() };
  } catch (e) {
    if (e instanceof TetherError) return { ok: false, message: e.message };
    throw e;
  }
}

/**
 * Loads everything a start of `config` would load and returns every problem, in the order a
 * start meets them (so the first is the error a start would stop with): the state file's
 * folder, the admin token file, then each frontend's key module, TLS certificate and key (read,
 * then as one context), backend CA and user map. Only imap/pop3 frontends read mail files, as
 * at start. A file named twice (two frontends sharing a certificate) is loaded and reported
 * once, at its first path. A key module is started, then closed; a user directory has no timers
 * or watchers (it re-reads only on lookup) and is dropped. Paths are the config file's
 * (`frontends[1].tls-cert`, `state-file`); a key that does not match its certificate is on
 * `frontends[i].tls-key` (`tls` is --tls, the mode). Never rejects on a config problem.
 */
export async function checkRuntime(config: Config, deps: CheckDeps = {}): Promise<ConfigIssue[]> {
  const clock = deps.clock ?? realClock;
  const logger = deps.logger ?? createLogger('silent', { write: () => undefined });
  const issues: ConfigIssue[] = [];
  // Keyed by what is loaded and from which file(s): the same load is run and reported once.
  const loads = new Map<string, Promise<Loaded<unknown>>>();
  const once = async <T>(what: readonly string[], path: string, load: () => Promise<T>): Promise<T | undefined> => {
    const key = JSON.stringify(what);
    let p = loads.get(key) as Promise<Loaded<T>> | undefined;
    const first = p === undefined;
    if (p === undefined) {
      p = settle(load);
      loads.set(key, p);
    }
    const r = await p;
    if (r.ok) return r.value;
    if (first) issues.push({ path, message: r.message });
    return undefined;
  };

  if (config.stateFile !== undefined) {
    const file = config.stateFile;
    await once(['state-file', file], 'state-file', () => checkStateFile(file));
  }
  const tokenFile = config.admin?.tokenFile;
  if (tokenFile !== undefined) await once(['admin-token-file', tokenFile], 'admin-token-file', () => readToken(tokenFile));
  for (const [i, fe] of config.frontends.entries()) await checkFrontend(fe, `frontends[${String(i)}]`, once, { clock, logger });
  return issues;
}

type Once = <T>(what: readonly string[], path: string, load: () => Promise<T>) => Promise<T | undefined>;

/** One frontend's files, in buildFrontend's order (key module, then mailRuntime's). */
async function checkFrontend(fe: FrontendConfig, at: string, once: Once, deps: { readonly clock: Clock; readonly logger: Logger }): Promise<void> {
  const moduleFile = fe.keyModule;
  if (moduleFile !== undefined) {
    await once(['key-module', moduleFile], `${at}.key-module`, async () => {
      const module = await KeyModule.load(moduleFile);
      await module.close();
    });
  }
  // An auto frontend reads no mail file at start (mailRuntime returns at once), so none here.
  if (fe.protocol === 'auto') return;
  const m = fe.mail;
  if (servesTls(m)) {
    const cert = await once(['tls-cert', m.tlsCert], `${at}.tls-cert`, () => readPem(m.tlsCert, '--tls-cert'));
    const key = await once(['tls-key', m.tlsKey], `${at}.tls-key`, () => readPem(m.tlsKey, '--tls-key'));
    if (cert !== undefined && key !== undefined) {
      await once(['tls', m.tlsCert, m.tlsKey], `${at}.tls-key`, () => Promise.resolve().then(() => secureContextOf(cert, key)));
    }
  }
  const ca = m.backendCa;
  if (ca !== undefined) await once(['backend-ca', ca], `${at}.backend-ca`, () => readPem(ca, '--backend-ca'));
  const mapFile = m.userMap;
  if (mapFile !== undefined) {
    await once(['user-map', mapFile], `${at}.user-map`, async () => {
      const directory = userDirectory(fe, deps);
      if (directory) await loadUserDirectory(directory, fe);
    });
  }
}
