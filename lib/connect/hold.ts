// Stage 5, I/O. Hold a client while it waits for a backend slot (the pool's wait queue): read
// what it sends meanwhile, up to a cap, so that its FIN or reset is noticed — a paused socket
// would not see either until the wait ended, and a client that gave up would keep its place
// and then take a backend slot for nothing. The bytes read are kept for replay after the
// prelude, never written anywhere else.
import type { Buffer } from 'node:buffer';
import type net from 'node:net';

export interface Held<T> {
  readonly result: T;
  /** What the client sent while held, in order (to be replayed after the prelude). */
  readonly sent: readonly Buffer[];
  /** Set when the client ended its side or closed while held. */
  readonly gone?: 'ended' | 'closed';
}

/**
 * Runs `during(signal)` while reading `client` (paused, not destroyed): `signal` aborts when
 * the client sends its FIN or closes. Reads at most `maxBytes`, then stops reading (the client
 * is then only watched for a close). Leaves the client paused, unread bytes kept in the socket.
 *
 * A FIN counts as gone, as with HAProxy's `option abortonclose`: a client still waiting for a
 * backend has had no answer yet, and on the protocols tether carries (TLS, HTTP/1.x, mail) a
 * client that half-closes before any answer is one that gave up.
 */
export async function holdWhile<T>(client: net.Socket, maxBytes: number, during: (signal: AbortSignal) => Promise<T>): Promise<Held<T>> {
  const ac = new AbortController();
  const sent: Buffer[] = [];
  let size = 0;
  let gone: 'ended' | 'closed' | undefined;
  const onData = (chunk: Buffer): void => {
    sent.push(chunk);
    size += chunk.length;
    if (size >= maxBytes) client.pause();
  };
  const onEnd = (): void => {
    gone ??= 'ended';
    ac.abort();
  };
  const onClose = (): void => {
    gone ??= 'closed';
    ac.abort();
  };
  client.on('data', onData);
  client.once('end', onEnd);
  client.once('close', onClose);
  if (client.destroyed) onClose();
  else client.resume();
  try {
    const result = await during(ac.signal);
    return gone === undefined ? { result, sent } : { result, sent, gone };
  } finally {
    client.off('data', onData);
    client.off('end', onEnd);
    client.off('close', onClose);
    client.pause();
  }
}
