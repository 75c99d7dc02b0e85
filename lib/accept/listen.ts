// Stage 1, I/O. Bind one net.Server per (host, port), paused on accept so no client byte is
// read before tether decides to, and half-open capable so a client's FIN can be passed on.
// A listening socket inherited from systemd (socket activation) is adopted with the same
// options and takes the place of the bind for its address.
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
  /** Inherited from the supervisor (systemd socket activation) rather than bound by tether. */
  readonly activated: boolean;
}

/** Called for each accepted client; must not throw. */
export type OnClient = (client: net.Socket) => void;
/** Called for server-level errors after binding (e.g. EMFILE on accept); must not throw. */
export type OnServerError = (err: Error, listener: BindAddress) => void;

/** The options of every listener, bound or adopted: the stages after accept rely on them. */
const SERVER_OPTIONS: net.ServerOpts = { allowHalfOpen: true, pauseOnConnect: true, noDelay: true };
/** Accept queue length; Linux caps it at net.core.somaxconn. */
const BACKLOG = 1024;
/**
 * Clients an adopted listener holds before a frontend claims it (between adoption and the
 * frontend's start, systemd may already have queued connections). More are closed.
 */
const MAX_UNCLAIMED_CLIENTS = BACKLOG;

function bindOne(addr: BindAddress, onClient: OnClient, onError: OnServerError): Promise<Listener> {
  return new Promise((resolve, reject) => {
    const server = net.createServer(SERVER_OPTIONS, onClient);
    const onListenError = (err: Error): void => {
      const code = errorCode(err) ?? 'ELISTEN';
      reject(new TetherError('TETHER_ERR_LISTEN', `cannot listen on ${formatAddress(addr.host, addr.port)}: ${code}`, { cause: err }));
    };
    server.once('error', onListenError);
    server.listen({ host: addr.host, port: addr.port, backlog: BACKLOG }, () => {
      server.off('error', onListenError);
      server.on('error', (err) => {
        onError(err, addr);
      });
      const bound = server.address();
      const port = bound !== null && typeof bound === 'object' ? bound.port : addr.port;
      resolve({ server, requested: addr, host: addr.host, port, activated: false });
    });
  });
}

/** A listening socket inherited by file descriptor, adopted but not yet serving a frontend. */
export interface AdoptedListener {
  readonly fd: number;
  readonly server: net.Server;
  /** The bound address; host is '' for a socket that is not TCP (an AF_UNIX stream socket). */
  readonly host: string;
  readonly port: number;
  /** Serves `addr` of a frontend from now on, first with the clients that arrived meanwhile. */
  claim(addr: BindAddress, onClient: OnClient, onError: OnServerError): Listener;
  /** Closes the socket (not claimed by any frontend). */
  close(): void;
}

/**
 * Adopts the listening socket at `fd` (the caller has checked that it is a socket). Rejects
 * with Node's error (EINVAL for a datagram socket, for example); the fd is then not owned.
 */
export function adoptListener(fd: number): Promise<AdoptedListener> {
  return new Promise((resolve, reject) => {
    const waiting: net.Socket[] = [];
    let deliver: OnClient | undefined;
    let onServerError: ((err: Error) => void) | undefined;
    const server = net.createServer(SERVER_OPTIONS, (client) => {
      if (deliver) deliver(client);
      else if (waiting.length < MAX_UNCLAIMED_CLIENTS) waiting.push(client);
      else client.destroy();
    });
    const onListenError = (err: Error): void => {
      reject(err);
    };
    server.once('error', onListenError);
    server.listen({ fd, backlog: BACKLOG }, () => {
      server.off('error', onListenError);
      // Until a frontend claims it, an accept error (EMFILE) has nobody to report to; the
      // frontend's own handler takes over in claim().
      server.on('error', (err) => {
        onServerError?.(err);
      });
      const bound = server.address();
      const host = bound !== null && typeof bound === 'object' ? bound.address : '';
      const port = bound !== null && typeof bound === 'object' ? bound.port : 0;
      resolve({
        fd,
        server,
        host,
        port,
        claim(addr, onClient, onError) {
          deliver = onClient;
          onServerError = (err) => {
            onError(err, addr);
          };
          for (const c of waiting.splice(0)) onClient(c);
          return { server, requested: addr, host, port, activated: true };
        },
        close() {
          for (const c of waiting.splice(0)) c.destroy();
          server.close();
        },
      });
    });
  });
}

/** The inherited listener to use for `addr`, if any (see lib/systemd/activation.ts). */
export type TakeInherited = (addr: BindAddress) => AdoptedListener | undefined;

/**
 * Binds every address of `specs`, or claims the inherited listener `take` returns for it.
 * Rejects with TETHER_ERR_LISTEN (cause: Node's error, with its code such as EADDRINUSE) after
 * closing whatever it had already bound.
 */
export async function listenAll(specs: readonly ListenSpec[], onClient: OnClient, onError: OnServerError, take?: TakeInherited): Promise<Listener[]> {
  const listeners: Listener[] = [];
  try {
    for (const spec of specs) {
      for (const addr of expandListen(spec)) {
        const inherited = take?.(addr);
        listeners.push(inherited ? inherited.claim(addr, onClient, onError) : await bindOne(addr, onClient, onError));
      }
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
