// systemd socket activation, pure part: which file descriptors the LISTEN_* variables hand us
// (sd_listen_fds(3)), and which frontend address each inherited listening socket serves.
import ipaddr from 'ipaddr.js';
import { formatAddress, type BindAddress } from '../accept/port-range.js';

/** The first inherited descriptor (SD_LISTEN_FDS_START): 0-2 are stdin, stdout, stderr. */
export const LISTEN_FDS_START = 3;
/**
 * Most descriptors believed from LISTEN_FDS: one per port of the widest port range a frontend
 * can ask for. A larger count is a corrupt variable, not a socket unit.
 */
export const MAX_LISTEN_FDS = 65_536;

/** One inherited descriptor and its FileDescriptorName= ("unknown" when systemd gave none). */
export interface InheritedFd {
  readonly fd: number;
  readonly name: string;
}

/** The LISTEN_* variables (absent ones undefined). */
export interface ListenEnv {
  readonly LISTEN_PID?: string | undefined;
  readonly LISTEN_FDS?: string | undefined;
  readonly LISTEN_FDNAMES?: string | undefined;
}

/**
 * Reads the LISTEN_* variables as sd_listen_fds_with_names() does: descriptors 3..3+N-1 are
 * ours only when LISTEN_PID is our pid (otherwise they were meant for an ancestor and are
 * silently not ours). Never throws: a malformed variable yields no descriptors and a problem
 * to log. A name list of the wrong length is dropped (every name "unknown").
 */
export function parseListenFds(env: ListenEnv, pid: number): { fds: InheritedFd[]; problems: string[] } {
  const { LISTEN_PID: pidText, LISTEN_FDS: countText, LISTEN_FDNAMES: namesText } = env;
  if (countText === undefined && pidText === undefined) return { fds: [], problems: [] };
  if (pidText === undefined || !/^\d{1,10}$/.test(pidText)) {
    return { fds: [], problems: [`LISTEN_PID=${JSON.stringify(pidText ?? null)} is not a process id: inherited sockets ignored`] };
  }
  if (Number(pidText) !== pid) return { fds: [], problems: [] };
  if (countText === undefined || !/^\d{1,10}$/.test(countText) || Number(countText) > MAX_LISTEN_FDS) {
    return { fds: [], problems: [`LISTEN_FDS=${JSON.stringify(countText ?? null)} is not a count from 0 to ${String(MAX_LISTEN_FDS)}: inherited sockets ignored`] };
  }
  const n = Number(countText);
  const problems: string[] = [];
  let names = namesText === undefined ? [] : namesText.split(':');
  if (namesText !== undefined && names.length !== n) {
    problems.push(`LISTEN_FDNAMES has ${String(names.length)} names for ${String(n)} sockets: names ignored`);
    names = [];
  }
  const fds: InheritedFd[] = [];
  for (let i = 0; i < n; i++) fds.push({ fd: LISTEN_FDS_START + i, name: names[i] ?? 'unknown' });
  return { fds, problems };
}

/** An adopted socket, as matching sees it: its name and the address it is bound to. */
export interface InheritedAddress {
  readonly fd: number;
  readonly name: string;
  /** '' for a socket that is not TCP. */
  readonly host: string;
  readonly port: number;
}

/** What one frontend listens on. */
export interface ListenWants {
  readonly frontend: string;
  readonly addresses: readonly BindAddress[];
}

export interface Matching {
  /** frontend → formatted address (`host:port`) → fd of the socket that serves it. */
  readonly byFrontend: ReadonlyMap<string, ReadonlyMap<string, number>>;
  /** Inherited sockets no listen address took, in fd order. */
  readonly unused: readonly number[];
}

/** The canonical form of an IP literal (`0:0::1` → `::1`); a DNS name stays as written. */
function canonicalHost(host: string): string {
  if (!ipaddr.isValid(host)) return host.toLowerCase();
  return ipaddr.parse(host).toString();
}

const WILDCARDS = new Set(['0.0.0.0', '::']);

/**
 * Assigns inherited sockets to frontend listen addresses. A socket serves an address bound to
 * the same host (IP literals compared in canonical form) and port; failing that, a wildcard
 * address (0.0.0.0 or ::) takes a wildcard socket on its port, because systemd's bare
 * `ListenStream=993` binds [::]:993, which also accepts IPv4 clients. A socket named (by
 * FileDescriptorName=) after a frontend serves only that frontend; others serve any. Each
 * socket serves one address. Port 0 ("any port") never matches: its port is not known ahead.
 */
export function matchInherited(wants: readonly ListenWants[], inherited: readonly InheritedAddress[]): Matching {
  const frontendNames = new Set(wants.map((w) => w.frontend));
  const free = new Map(inherited.map((s) => [s.fd, s]));
  const byFrontend = new Map<string, Map<string, number>>();
  const pick = (frontend: string, addr: BindAddress, exact: boolean): InheritedAddress | undefined => {
    const host = canonicalHost(addr.host);
    for (const s of free.values()) {
      if (s.host === '' || s.port !== addr.port || addr.port === 0) continue;
      if (frontendNames.has(s.name) && s.name !== frontend) continue;
      const sHost = canonicalHost(s.host);
      if (exact ? sHost === host : WILDCARDS.has(sHost) && WILDCARDS.has(host)) return s;
    }
    return undefined;
  };
  // Exact matches first everywhere, so a wildcard fallback never takes a socket that another
  // address names exactly.
  for (const exact of [true, false]) {
    for (const w of wants) {
      const mine = byFrontend.get(w.frontend) ?? new Map<string, number>();
      byFrontend.set(w.frontend, mine);
      for (const addr of w.addresses) {
        const key = formatAddress(addr.host, addr.port);
        if (mine.has(key)) continue;
        const s = pick(w.frontend, addr, exact);
        if (!s) continue;
        mine.set(key, s.fd);
        free.delete(s.fd);
      }
    }
  }
  return { byFrontend, unused: [...free.keys()].sort((a, b) => a - b) };
}
