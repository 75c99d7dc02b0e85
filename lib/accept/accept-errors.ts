// I/O (logging). One `accept.error` line a second per tether, whatever reports it.
import type { Clock } from '../clock.js';
import { EVENTS, flushSoon, type Logger } from '../log.js';
import { isFdShortage } from './fd-watch.js';

/** What noteAcceptError needs of a tether's deps; the object itself keys the throttle. */
export interface AcceptErrorDeps {
  readonly logger: Logger;
  readonly clock: Clock;
}

/** When each tether (its deps object) last logged accept.error (see noteAcceptError). */
const LAST_ACCEPT_ERROR = new WeakMap<AcceptErrorDeps, number>();

/**
 * Logs `accept.error` for an fd shortage or an accept failure, at most once a second per
 * tether whatever its source (a listener's error, the fd watch, a dial): under a storm each
 * would repeat once per client.
 */
export function noteAcceptError(deps: AcceptErrorDeps, code: string | undefined, where?: { readonly frontend: string; readonly address: string }): void {
  const now = deps.clock.now();
  if (now - (LAST_ACCEPT_ERROR.get(deps) ?? -Infinity) < 1_000) return;
  LAST_ACCEPT_ERROR.set(deps, now);
  deps.logger.error({ event: EVENTS.acceptError, ...where, code: code ?? null }, isFdShortage(code) ? 'out of file descriptors; new clients are refused' : 'accept failed');
  flushSoon(deps.logger);
}
