// What tether knows about a client before placing it. Pure type. The peek stage adds protocol
// facts (TLS ClientHello, HTTP request head, XMPP stream header) when the chain needs them.
import type { PeekFacts } from './peek/sniff.js';

/** Facts about one client, the input of the affinity stage. */
export interface Facts {
  /** The client's address as the socket reports it (may be ::ffff:-mapped IPv4). */
  readonly source: string;
  readonly sourcePort: number;
  /** The local port the client connected to (port fronting uses it for port-less backends). */
  readonly localPort: number;
  /** What peeking found; undefined when the frontend does not peek. */
  readonly peek?: PeekFacts;
  /** The key computed by `--key-module`, if any. */
  readonly moduleKey?: string;
  /** imap/pop3: the login's key (normalised user) and the directory's backend for it, if any. */
  readonly login?: { readonly key: string; readonly backend?: string };
}
