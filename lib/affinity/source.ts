// Stage 3, pure. The `source[/V4BITS[/V6BITS]]` key: the client's address masked to a network.
import ipaddr from 'ipaddr.js';

/**
 * Returns the client's network as `ADDR/BITS` (e.g. `192.0.2.0/24`), or undefined when
 * `address` is not an IP address. IPv4-mapped IPv6 (`::ffff:192.0.2.7`, which dual-stack
 * listeners report for IPv4 clients) is turned into IPv4 first, so a v4 client gets the same
 * key whichever listener it reached and the V4BITS mask applies to it.
 */
export function sourceNetwork(address: string, v4Bits: number, v6Bits: number): string | undefined {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.process(address); // one parse; throws on anything that is not an address
  } catch {
    return undefined;
  }
  const bits = addr.kind() === 'ipv4' ? v4Bits : v6Bits;
  const bytes = addr.toByteArray();
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    bytes[i] = (bytes[i] ?? 0) & ((0xff << (8 - keep)) & 0xff);
  }
  const masked = ipaddr.fromByteArray(bytes);
  return `${masked.toString()}/${String(bits)}`;
}
