// What tether knows about a client before placing it. Pure type. Peek and greet (later issues)
// add protocol facts; today it carries the client's address and the local port it reached.

/** Facts about one client, the input of the affinity stage. */
export interface Facts {
  /** The client's address as the socket reports it (may be ::ffff:-mapped IPv4). */
  readonly source: string;
  readonly sourcePort: number;
  /** The local port the client connected to (port fronting uses it for port-less backends). */
  readonly localPort: number;
}
