// I/O. Binds a frontend's listeners, each with a binding that says which frontend its clients
// go to, so a reload can hand a bound socket to another frontend (renamed, or the address moved)
// instead of binding it anew (which would fail with EADDRINUSE).
import type net from 'node:net';
import { noteAcceptError } from '../accept/accept-errors.js';
import { socketFd } from '../accept/fd-watch.js';
import { closeListeners, listenAll, type Listener } from '../accept/listen.js';
import { expandListen, formatAddress, type BindAddress } from '../accept/port-range.js';
import type { FrontendConfig } from '../config/types.js';
import { errorCode } from '../errors.js';
import { EVENTS, flushSoon } from '../log.js';
import type { Activation } from '../systemd/activation.js';
import { buildFrontend, startTimers } from './frontend.js';
import type { Deps, Frontend, RunningFrontend, Shared } from './types.js';

/**
 * Carries one client from accept to close (the flow, lib/proxy.ts's handleConnection). Passed
 * in, so the runtime never imports the flow. Rejects only on a bug.
 */
export type Serve = (raw: net.Socket, fe: Frontend, deps: Deps) => Promise<void>;

/** An address as a map key: `host|port`. */
export const addressKey = (a: BindAddress): string => `${a.host}|${String(a.port)}`;

/** Where a listener sends its clients; a reload may point it at another frontend. */
export interface Binding {
  name: string;
  current: () => Frontend | undefined;
}

/** Each listener's binding (see Binding), so a reload can hand a bound socket to another frontend. */
const BINDINGS = new WeakMap<Listener, Binding>();

/** Points a bound listener at another frontend (a reload's hand-over); false when it has no binding. */
export function rebind(l: Listener, name: string, current: () => Frontend | undefined): boolean {
  const b = BINDINGS.get(l);
  if (!b) return false;
  b.name = name;
  b.current = current;
  return true;
}

/**
 * Binds `addresses` (one listener each), each with its own binding to `current()`. Rejects with
 * TETHER_ERR_LISTEN after closing what it bound.
 */
export async function bindFor(name: string, current: () => Frontend | undefined, addresses: readonly BindAddress[], deps: Deps, serve: Serve, activation?: Activation): Promise<Listener[]> {
  const bound: Listener[] = [];
  try {
    for (const a of addresses) {
      const binding: Binding = { name, current };
      const [l] = await bindAddress(binding, a, deps, serve, activation);
      if (l) {
        BINDINGS.set(l, binding);
        bound.push(l);
      }
    }
  } catch (e) {
    await closeListeners(bound);
    throw e;
  }
  return bound;
}

function bindAddress(binding: Binding, a: BindAddress, deps: Deps, serve: Serve, activation?: Activation): Promise<Listener[]> {
  return listenAll(
    [{ host: a.host, portLow: a.port, portHigh: a.port }],
    (client) => {
      const fe = binding.current();
      fe?.shared.fdWatch?.sawFd(socketFd(client));
      fe?.shared.fdWatch?.soon();
      if (!fe) {
        client.destroy();
        return;
      }
      serve(client, fe, deps).catch((err: unknown) => {
        // A bug (HAProxy's "should never happen"): end this connection, keep serving the rest.
        fe.open.delete(client);
        client.destroy();
        deps.logger.error(
          { event: EVENTS.internalError, frontend: binding.name, code: 'TETHER_ERR_INTERNAL', err: err instanceof Error ? err.stack : String(err) },
          'internal error; connection closed',
        );
      });
    },
    (err, addr) => {
      // Rare: libuv reports EMFILE/ENFILE on accept only when its spare fd is gone too (see
      // accept/fd-watch.ts, which notices the usual case).
      noteAcceptError(deps, errorCode(err), { frontend: binding.name, address: formatAddress(addr.host, addr.port) });
    },
    activation && ((addr) => activation.take(binding.name, addr)),
  );
}

/** One `listen.ready` line per listener. */
export function logListening(name: string, listeners: readonly Listener[], deps: Deps): void {
  for (const l of listeners) {
    deps.logger.info(
      { event: EVENTS.listenReady, frontend: name, address: formatAddress(l.host, l.port), host: l.host, port: l.port, ...(l.activated ? { activated: true } : {}) },
      'listening',
    );
  }
}

/** Binds one frontend's listeners and starts serving. Rejects with TETHER_ERR_CONFIG or TETHER_ERR_LISTEN. */
export async function startFrontend(config: FrontendConfig, deps: Deps, shared: Shared, serve: Serve, activation: Activation | undefined): Promise<RunningFrontend> {
  const current = await buildFrontend(config, deps, shared);
  const rf: RunningFrontend = { name: config.name, current, listeners: [], stopTimers: () => undefined };
  rf.listeners = await bindFor(config.name, () => rf.current, config.listen.flatMap(expandListen), deps, serve, activation);
  rf.stopTimers = startTimers(current, deps);
  logListening(config.name, rf.listeners, deps);
  flushSoon(deps.logger);
  return rf;
}
