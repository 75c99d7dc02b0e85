// systemd socket activation, I/O part: adopt the listening sockets systemd passed (LISTEN_FDS),
// hand each to the frontend address it serves, close the ones no address wants. This lets a
// unit own ports below 1024 (110, 143, 993, 995, 5222) while tether runs without privileges,
// and keeps clients queued in the kernel across a restart.
import { fstatSync } from 'node:fs';
import { adoptListener, type AdoptedListener } from '../accept/listen.js';
import { expandListen, formatAddress, type BindAddress } from '../accept/port-range.js';
import type { FrontendConfig } from '../config/types.js';
import { errorCode } from '../errors.js';
import { EVENTS, flushSoon, type Logger } from '../log.js';
import { matchInherited, type InheritedAddress, type InheritedFd } from './listen-fds.js';

/** The inherited listeners, by the frontend address each serves. */
export interface Activation {
  /** The listener systemd passed for `addr` of frontend `frontend`, if any. */
  take(frontend: string, addr: BindAddress): AdoptedListener | undefined;
}

/** No inherited sockets: every address is bound by tether itself. */
export const NO_ACTIVATION: Activation = { take: () => undefined };

/**
 * Adopts `fds` and matches them to the listen addresses of `frontends` (see matchInherited).
 * Call it before tether opens any socket or child process of its own: until then every
 * socket among `fds` can only be one the supervisor passed. Never rejects. A descriptor that is not a socket is left alone: with a wrong LISTEN_FDS it
 * may be one of Node's own (its event loop's pipes), which must not be touched. A socket that
 * cannot listen (a datagram socket) is left open too, since Node may or may not own it after
 * the failure. An adopted socket no address wants is closed. Each case logs one warning.
 */
export async function adoptInherited(fds: readonly InheritedFd[], frontends: readonly FrontendConfig[], logger: Logger): Promise<Activation> {
  if (fds.length === 0) return NO_ACTIVATION;
  const adopted = new Map<number, { listener: AdoptedListener; name: string }>();
  const warn = (f: InheritedFd, reason: string, address?: string): void => {
    logger.warn({ event: EVENTS.activationIgnored, fd: f.fd, name: f.name, ...(address === undefined ? {} : { address }), reason }, 'inherited socket not used');
  };
  for (const f of fds) {
    let isSocket: boolean;
    try {
      isSocket = fstatSync(f.fd).isSocket();
    } catch (e) {
      warn(f, `not open (${errorCode(e) ?? 'error'})`);
      continue;
    }
    if (!isSocket) {
      warn(f, 'not a socket; left open');
      continue;
    }
    try {
      adopted.set(f.fd, { listener: await adoptListener(f.fd), name: f.name });
    } catch (e) {
      warn(f, `cannot listen on it (${errorCode(e) ?? 'error'}); left open`);
    }
  }
  const inherited: InheritedAddress[] = [...adopted.values()].map(({ listener: l, name }) => ({ fd: l.fd, name, host: l.host, port: l.port }));
  const wants = frontends.map((fc) => ({ frontend: fc.name, addresses: fc.listen.flatMap(expandListen) }));
  const matching = matchInherited(wants, inherited);
  for (const fd of matching.unused) {
    const a = adopted.get(fd);
    if (!a) continue;
    const l = a.listener;
    warn({ fd, name: a.name }, l.host === '' ? 'not a TCP socket; closed' : 'no --listen address matches it; closed', l.host === '' ? undefined : formatAddress(l.host, l.port));
    l.close();
    adopted.delete(fd);
  }
  if (adopted.size < fds.length) flushSoon(logger);
  return {
    take(frontend, addr) {
      const fd = matching.byFrontend.get(frontend)?.get(formatAddress(addr.host, addr.port));
      return fd === undefined ? undefined : adopted.get(fd)?.listener;
    },
  };
}
