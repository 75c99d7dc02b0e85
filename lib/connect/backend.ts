// Stage 5, I/O: make a connected backend ready for the splice — the PROXY header first (before
// the prelude and before the backend's greeting is read; Dovecot and Postfix accept it), then,
// for imap/pop3, the login tether read from the client, replayed at the backend (STARTTLS or
// TLS on the way). A backend that fails the login gets its slot back and the client is told,
// in its protocol, to try later.
import type tls from 'node:tls';
import type { ProxyProtocolVersion } from '../config/types.js';
import type { Connected, Step } from '../conn/connection.js';
import { ended, goOn } from '../conn/connection.js';
import { encodeProxyV1, encodeProxyV2 } from '../wire/proxy/header.js';
import { loginAtBackend, type BackendLoginOptions } from './replay.js';
import { unavailableReply } from './unavailable.js';

export interface BackendReadyOptions {
  readonly proxyProtocol?: ProxyProtocolVersion | undefined;
  /** imap/pop3: how to log in at the backend. */
  readonly login?: Omit<BackendLoginOptions, 'tlsOptions'> & { readonly tlsOptions: (host: string) => tls.ConnectionOptions };
}

export async function readyBackend(conn: Connected, o: BackendReadyOptions): Promise<Step<Connected>> {
  const pp = o.proxyProtocol;
  if (pp !== undefined) {
    const endpoints = { source: conn.facts.source, sourcePort: conn.facts.sourcePort, dest: conn.destination.address, destPort: conn.destination.port };
    conn.socket.write(pp === 'v1' ? encodeProxyV1(endpoints) : encodeProxyV2(endpoints));
  }
  if (conn.login === undefined || o.login === undefined) return goOn(conn);
  const bl = await loginAtBackend(conn.socket, conn.login, { ...o.login, tlsOptions: o.login.tlsOptions(conn.backend.spec.host) });
  if (!bl.ok) {
    conn.socket.destroy();
    conn.release();
    // As for a failed dial: FIN, drain, and drop the client after a short wait.
    conn.client.refuse(unavailableReply(o.login.protocol));
    // Logged as placed but with no key (`key: null`), as before: the key never reached a splice.
    const { pool, backend, via, tries } = conn;
    return ended(conn, { cause: 'backend', stage: 'connect', code: bl.code }, { tries, pool, placed: { pool, backend, via, tries }, bytesIn: conn.client.raw.bytesRead });
  }
  conn.client.socket.write(bl.toClient);
  return goOn({ ...conn, socket: bl.socket });
}
