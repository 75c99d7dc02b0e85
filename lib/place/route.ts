// Stage 4, pure. Pick a frontend's pool from what was peeked: the first rule whose every
// condition holds, else the `default` pool (sslh-style sharing of one port).
import type { RouteRule } from '../config/types.js';
import type { PeekFacts } from '../peek/sniff.js';

/** `*.example.com` matches any name below example.com (not example.com itself); else exact. */
export function hostMatches(pattern: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  const h = host.toLowerCase();
  return pattern.startsWith('*.') ? h.endsWith(pattern.slice(1)) && h.length > pattern.length - 1 : h === pattern;
}

/** The pool for these facts: the first matching rule's, else 'default'. */
export function selectPool(routes: readonly RouteRule[], peek: PeekFacts | undefined): string {
  for (const r of routes) {
    if (r.protocol !== undefined && peek?.protocol !== r.protocol) continue;
    if (r.sni !== undefined && !hostMatches(r.sni, peek?.tls?.sni)) continue;
    if (r.alpn !== undefined && !(peek?.tls?.alpn.includes(r.alpn) ?? false)) continue;
    if (r.httpHost !== undefined && !hostMatches(r.httpHost, peek?.http?.host)) continue;
    return r.pool;
  }
  return 'default';
}
