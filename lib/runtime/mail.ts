// I/O. What an imap/pop3 frontend needs at run time: its TLS context, the backend CA, the user
// directory. The loaders are shared with checkRuntime (runtime/check.ts), so `tether check`
// reads the files exactly as a start does.
import net from 'node:net';
import tls from 'node:tls';
import { UserDirectory } from '../affinity/directory.js';
import type { FrontendConfig } from '../config/types.js';
import { TetherError } from '../errors.js';
import { describeFileError, MAX_PEM_BYTES, readFileBounded } from '../files/read.js';
import { MAX_BAD_BEFORE_LOGIN, MAX_COMMANDS_BEFORE_LOGIN } from '../greet/dialogue.js';
import { EVENTS } from '../log.js';
import type { Deps, MailRuntime } from './types.js';

/** Time for a backend's greeting, STARTTLS and login answer, on top of the connect timeout. */
const BACKEND_LOGIN_EXTRA_MS = 10_000;

/** Reads one PEM file (`what` names its flag). Rejects with TETHER_ERR_CONFIG. */
export async function readPem(file: string, what: string): Promise<Buffer> {
  try {
    return await readFileBounded(file, { maxBytes: MAX_PEM_BYTES });
  } catch (e) {
    throw new TetherError('TETHER_ERR_CONFIG', `cannot read ${what} ${file}: ${describeFileError(e)}`, { cause: e });
  }
}

/** The certificate and key pair as one context; a key that does not match its cert rejects with TETHER_ERR_CONFIG. */
export function secureContextOf(cert: Buffer, key: Buffer): tls.SecureContext {
  try {
    return tls.createSecureContext({ cert, key });
  } catch (e) {
    throw new TetherError('TETHER_ERR_CONFIG', `--tls-cert/--tls-key: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/** Whether the frontend terminates TLS towards its clients (and so needs --tls-cert/--tls-key). */
export function servesTls(m: FrontendConfig['mail']): m is FrontendConfig['mail'] & { readonly tlsCert: string; readonly tlsKey: string } {
  return m.tls !== 'none' && m.tlsCert !== undefined && m.tlsKey !== undefined;
}

/** A user directory for the frontend's --user-map/--user-lookup, unloaded; undefined when it has neither. */
export function userDirectory(config: FrontendConfig, deps: Pick<Deps, 'clock' | 'logger'>): UserDirectory | undefined {
  const m = config.mail;
  if (m.userMap === undefined && m.userLookup === undefined) return undefined;
  return new UserDirectory({
    ...(m.userMap === undefined ? {} : { mapFile: m.userMap }),
    ...(m.userLookup === undefined ? {} : { lookupUrl: m.userLookup }),
    ttlMs: m.userCacheTtlMs,
    clock: deps.clock,
    onError: (what, err) => {
      deps.logger.warn({ event: EVENTS.directoryError, frontend: config.name, source: what, err: what === 'user-map' ? describeFileError(err) : err instanceof Error ? err.message : 'error' }, 'user directory failed');
    },
  });
}

/** Loads the directory's map file (if any). Rejects with TETHER_ERR_CONFIG. */
export async function loadUserDirectory(directory: UserDirectory, config: FrontendConfig): Promise<void> {
  try {
    await directory.load();
  } catch (e) {
    throw new TetherError('TETHER_ERR_CONFIG', `cannot read --user-map ${config.mail.userMap ?? ''}: ${describeFileError(e)}`, { cause: e });
  }
}

/** Reads the TLS files and the user map of an imap/pop3 frontend. Rejects with TETHER_ERR_CONFIG. */
export async function mailRuntime(config: FrontendConfig, deps: Deps): Promise<MailRuntime | undefined> {
  const protocol = config.protocol;
  if (protocol === 'auto') return undefined;
  const m = config.mail;
  let secureContext: tls.SecureContext | undefined;
  if (servesTls(m)) {
    // In order, so a run missing both files always names --tls-cert first (Promise.all would
    // report whichever read failed first).
    const cert = await readPem(m.tlsCert, '--tls-cert');
    const key = await readPem(m.tlsKey, '--tls-key');
    secureContext = secureContextOf(cert, key);
  }
  const ca = m.backendCa === undefined ? undefined : await readPem(m.backendCa, '--backend-ca');
  const directory = userDirectory(config, deps);
  if (directory) await loadUserDirectory(directory, config);
  return {
    converse: {
      protocol,
      tls: m.tls,
      ...(secureContext === undefined ? {} : { secureContext }),
      requireTls: m.requireTls,
      loginTimeoutMs: m.loginTimeoutMs,
      maxCommands: MAX_COMMANDS_BEFORE_LOGIN,
      maxBad: MAX_BAD_BEFORE_LOGIN,
    },
    ...(directory === undefined ? {} : { directory }),
    backendLogin: { protocol, backendTls: m.backendTls, timeoutMs: config.connectTimeoutMs + BACKEND_LOGIN_EXTRA_MS },
    backendTlsOptions: (host) => ({
      rejectUnauthorized: m.backendVerify,
      ...(ca === undefined ? {} : { ca }),
      ...(net.isIP(host) === 0 ? { servername: host } : {}),
    }),
  };
}
