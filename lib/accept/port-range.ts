// Stage 1, pure. Expands listen specs into the concrete (host, port) pairs to bind.
import type { ListenSpec } from '../config/types.js';

export interface BindAddress {
  readonly host: string;
  readonly port: number;
}

/** Every (host, port) of `spec`, low to high; a single port yields one pair. */
export function expandListen(spec: ListenSpec): BindAddress[] {
  const out: BindAddress[] = [];
  for (let p = spec.portLow; p <= spec.portHigh; p++) out.push({ host: spec.host, port: p });
  return out;
}

/** Formats an address for logs and messages: `[::1]:80` for IPv6, `host:80` otherwise. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${String(port)}` : `${host}:${String(port)}`;
}
