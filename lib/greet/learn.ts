// Stage 2, I/O: learn the login of an imap/pop3 client — tether greets it, runs the dialogue up
// to the login (implicit TLS or STARTTLS on the way), and asks the user directory, if any, which
// backend holds the user. Bytes the client pipelined after its login become the prelude.
import { loginKey } from '../affinity/directory.js';
import type { LoginDomainMode } from '../config/types.js';
import type { Accepted, Learned, Step } from '../conn/connection.js';
import { ended, goOn } from '../conn/connection.js';
import { converse, type ConverseOptions } from './converse.js';

export interface GreetLearnOptions {
  readonly converse: ConverseOptions;
  readonly loginDomain: LoginDomainMode;
  /** The user directory's backend for a login key (--user-map, --user-lookup), if any. */
  readonly lookup?: (key: string) => Promise<string | undefined>;
}

export async function learnByGreet(conn: Accepted, o: GreetLearnOptions): Promise<Step<Learned>> {
  const { client } = conn;
  const g = await converse(client.socket, o.converse);
  client.upgrade(g.client);
  if (!g.ok) {
    // converse only half-closes (BYE, FIN) and leaves the client paused: without this, a
    // client that never closes its side would hold the connection past the login timeout.
    client.refuse();
    return ended(conn, g.termination, { bytesIn: client.raw.bytesRead });
  }
  const key = loginKey(g.login.user, o.loginDomain);
  const named = o.lookup ? await o.lookup(key) : undefined;
  return goOn({
    ...conn,
    prelude: g.leftover.length > 0 ? [g.leftover] : [],
    login: g.login,
    facts: { ...conn.facts, login: named === undefined ? { key } : { key, backend: named } },
  });
}
