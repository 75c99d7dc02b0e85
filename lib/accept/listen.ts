// Stage 1, I/O. Bind one net.Server per (host, port), paused on accept so no client byte is
// read before tether decides to, and half-open capable so a client's FIN can be passed on.
import net from 'node:net';
import { TetherError, errorCode } from '../errors.js';
import type { ListenSpec } from '../config/types.js';
import { expandListen, formatAddress, type BindAddress } from './port-range.js';

export interface Listener {
  readonly server: net.Server;
  /** The address asked for (port may be 0). */
  readonly requested: BindAddress;
  /** The address actually bound. */
  readonly host: string;
  readonly port: number;
}

/** Called for each accepted client; must not throw. */
export type OnClient = (client: net.Socket) => void;
/** Called for server-level errors after binding (e.g. EMFILE on accept); must not throw. */
export type OnServerError = (err: Error, listener: BindAddress) => void;

function bindOne(addr: BindAddress, onClient: OnClient, onError: OnServerError): Promise<Listener> {
  return new Promise((resolve, reject) => {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, onClient);
    const onListenError = (err: Error): void => {
      const code = errorCode(err) ?? 'ELISTEN';
      reject(new TetherError('TETHER_ERR_LISTEN', `cannot listen on ${formatAddress(addr.host, addr.port)}: ${code}`, { cause: err }));
    };
    server.once('error', onListenError);
    server.listen({ host: addr.host, port: addr.port, backlog: 1024 }, () => {
      server.off('error', onListenError);
      server.on('error', (err) => {
        onError(err, addr);
      });
      const bound = server.address();
      const port = bound !== null && typeof bound === 'object' ? bound.port : addr.port;
      resolve({ server, requested: addr, host: addr.host, port });
    });
  });
}

/**
 * Binds every address of `specs`. Rejects with TETHER_ERR_LISTEN (cause: Node's error, with its
 * code such as EADDRINUSE) after closing whatever it had already bound.
 */
export async function listenAll(specs: readonly ListenSpec[], onClient: OnClient, onError: OnServerError): Promise<Listener[]> {
  const listeners: Listener[] = [];
  try {
    for (const spec of specs) {
      for (const addr of expandListen(spec)) listeners.push(await bindOne(addr, onClient, onError));
    }
  } catch (e) {
    await closeListeners(listeners);
    throw e;
  }
  return listeners;
}

/**
 * Stops accepting on every listener; open connections are not touched. (server.close()'s own
 * callback waits for every open connection to end, so it is not awaited here.)
 */
export function closeListeners(listeners: readonly Listener[]): Promise<void> {
  for (const l of listeners) {
    if (l.server.listening) l.server.close();
  }
  return Promise.resolve();
}
