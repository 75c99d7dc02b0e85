// Stage 1, pure. Access control by client address, checked at accept — before any byte is read
// from the client. Rules are CIDRs (ipaddr.js); IPv4-mapped IPv6 clients are matched as IPv4.
import ipaddr from 'ipaddr.js';

export interface Acl {
  /** When non-empty, only clients inside one of these networks are served. */
  readonly allow: readonly string[];
  /** Clients inside one of these networks are refused (deny wins over allow). */
  readonly deny: readonly string[];
}

type Net = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** A compiled ACL: `admits(address)` answers in a few comparisons. */
export interface CompiledAcl {
  admits(address: string): boolean;
}

function parse(cidrs: readonly string[]): Net[] {
  return cidrs.map((c) => {
    const [addr, bits] = ipaddr.parseCIDR(c);
    // A v4-mapped network (::ffff:10.0.0.0/104) is the IPv4 network it names.
    if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
      return [(addr as ipaddr.IPv6).toIPv4Address(), bits - 96];
    }
    return [addr, bits];
  });
}

function inside(addr: ipaddr.IPv4 | ipaddr.IPv6, nets: readonly Net[]): boolean {
  return nets.some(([net, bits]) => net.kind() === addr.kind() && addr.match(net, bits));
}

/** Compiles `acl` (CIDRs already validated by the flag parser). */
export function compileAcl(acl: Acl): CompiledAcl {
  const allow = parse(acl.allow);
  const deny = parse(acl.deny);
  return {
    admits(address: string): boolean {
      if (allow.length === 0 && deny.length === 0) return true;
      let addr: ipaddr.IPv4 | ipaddr.IPv6;
      try {
        addr = ipaddr.process(address);
      } catch {
        return false; // no usable address: refuse when rules exist
      }
      if (inside(addr, deny)) return false;
      return allow.length === 0 || inside(addr, allow);
    },
  };
}
