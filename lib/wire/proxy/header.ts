// HAProxy's PROXY protocol header, versions 1 and 2: encode toward a backend, parse from an
// upstream balancer. Pure. (Spec: haproxy.org/download/2.9/doc/proxy-protocol.txt.)
//
//   v1 (§2.1), one text line of at most 107 bytes with its CRLF:
//     "PROXY" SP ("TCP4" | "TCP6") SP src SP dst SP srcport SP dstport CRLF
//     "PROXY" SP "UNKNOWN" [anything] CRLF          (the sender does not know the addresses)
//   v2 (§2.2), binary:
//     [0..11]  signature  0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A   ("\r\n\r\n\0\r\nQUIT\n")
//     [12]     version (high nibble, 2) | command (low nibble: 0 LOCAL, 1 PROXY)
//     [13]     family (high nibble: 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX)
//              | transport (low nibble: 0 UNSPEC, 1 STREAM, 2 DGRAM)
//     [14..15] length of what follows, big-endian
//     [16..]   TCP4: src 4, dst 4, srcport 2, dstport 2 (12 bytes)
//              TCP6: src 16, dst 16, srcport 2, dstport 2 (36 bytes)
//              then TLVs (§2.2.7), which tether skips: `length` covers them
import { Buffer } from 'node:buffer';
import { NEED_MORE, match, notMine, type Parse } from '../parse.js';

/** §2.1: "a receiver … can read at most 107 bytes" — the longest TCP6 line with its CRLF. */
export const MAX_PROXY_V1_BYTES = 107;
/** The v2 header (16 bytes + addresses + TLVs) we wait for at most; the spec caps nothing, and
 *  16 KiB is tether's prelude cap (caddy-l4's MaxMatchingBytes). */
export const MAX_PROXY_V2_BYTES = 16 * 1024;

/** §2.2: the 12-byte v2 signature. */
export const PROXY_V2_SIGNATURE = Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1');
const PROXY_V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const V2_HEADER_BYTES = 16;
const V2_VERSION_PROXY = 0x21; // version 2, command PROXY
const V2_VERSION_LOCAL = 0x20; // version 2, command LOCAL
const V2_TCP4 = 0x11; // AF_INET, STREAM
const V2_TCP6 = 0x21; // AF_INET6, STREAM
const V2_UNSPEC = 0x00;
/** Every family/transport byte §2.2 defines; anything else is refused. */
const V2_FAMILIES: ReadonlySet<number> = new Set([0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32]);
const V2_TCP4_ADDRESS_BYTES = 12;
const V2_TCP6_ADDRESS_BYTES = 36;

/** A connection's real endpoints, as the accepted socket reports them. */
export interface ProxyAddresses {
  /** `unknown` sends v1 `PROXY UNKNOWN` / v2 LOCAL; omitted, the addresses decide. */
  readonly family?: 'tcp4' | 'tcp6' | 'unknown';
  readonly source: string;
  readonly sourcePort: number;
  readonly dest: string;
  readonly destPort: number;
}

/** A parsed header. `local` (v2 LOCAL, v1 UNKNOWN, v2 non-TCP families) carries no addresses:
 *  the receiver keeps the socket's own. */
export interface ProxyHeader {
  readonly version: 1 | 2;
  readonly command: 'proxy' | 'local';
  readonly source?: string;
  readonly sourcePort?: number;
  readonly dest?: string;
  readonly destPort?: number;
  /** Bytes the header takes; the client's own bytes start here. */
  readonly length: number;
}

const IPV4_PART = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

function parseIpv4(text: string): Buffer | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => IPV4_PART.test(p))) return undefined;
  return Buffer.from(parts.map(Number));
}

function hexGroups(text: string): number[] | undefined {
  if (text === '') return [];
  const groups = text.split(':');
  if (!groups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  return groups.map((g) => parseInt(g, 16));
}

function parseIpv6(text: string): Buffer | undefined {
  let s = text;
  if (s.includes('.')) {
    // A trailing dotted quad (::ffff:192.0.2.1) stands for the last two groups.
    const at = s.lastIndexOf(':');
    const v4 = parseIpv4(s.slice(at + 1));
    if (at < 0 || !v4) return undefined;
    s = `${s.slice(0, at + 1)}${v4.readUInt16BE(0).toString(16)}:${v4.readUInt16BE(2).toString(16)}`;
  }
  const gap = s.indexOf('::');
  if (gap !== s.lastIndexOf('::')) return undefined;
  const head = hexGroups(gap < 0 ? s : s.slice(0, gap));
  const tail = hexGroups(gap < 0 ? '' : s.slice(gap + 2));
  if (!head || !tail) return undefined;
  const zeros = 8 - head.length - tail.length;
  // "::" stands for at least one group (RFC 4291 §2.2); without it there must be exactly 8.
  if (gap >= 0 ? zeros < 1 : zeros !== 0) return undefined;
  const out = Buffer.alloc(16);
  [...head, ...new Array<number>(zeros).fill(0), ...tail].forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

function isIpv4Mapped(addr: Buffer): boolean {
  // ::ffff:a.b.c.d (RFC 4291 §2.5.5.2), what dual-stack listeners report for IPv4 clients.
  return addr.subarray(0, 10).every((x) => x === 0) && addr.readUInt16BE(10) === 0xffff;
}

/** An address as 4 bytes (IPv4, IPv4-mapped included) or 16; undefined if it is neither. */
function addressBytes(text: string): Buffer | undefined {
  const v4 = parseIpv4(text);
  if (v4) return v4;
  const v6 = parseIpv6(text);
  return v6 && isIpv4Mapped(v6) ? v6.subarray(12) : v6;
}

function formatAddress(addr: Buffer): string {
  if (addr.length === 4) return [...addr].join('.');
  if (isIpv4Mapped(addr)) return formatAddress(addr.subarray(12));
  const groups = Array.from({ length: 8 }, (_, i) => addr.readUInt16BE(i * 2));
  // RFC 5952 §4.2: the longest run of two or more zero groups (the first on a tie) becomes "::".
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8; i++) {
    let len = 0;
    while (i + len < 8 && groups[i + len] === 0) len++;
    if (len > best.len) best = { at: i, len };
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  return best.at < 0 ? hex(groups) : `${hex(groups.slice(0, best.at))}::${hex(groups.slice(best.at + best.len))}`;
}

function toIpv6(addr: Buffer): Buffer {
  return addr.length === 16 ? addr : Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]), addr]);
}

function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 65535;
}

/** The endpoints as raw bytes of one family, or undefined when they are unknown. */
function endpoints(a: ProxyAddresses): { src: Buffer; dst: Buffer } | undefined {
  if (a.family === 'unknown' || !isPort(a.sourcePort) || !isPort(a.destPort)) return undefined;
  const src = addressBytes(a.source);
  const dst = addressBytes(a.dest);
  if (!src || !dst) return undefined;
  // Mixed families (an IPv4 client on an IPv6 listener address) go out as TCP6, IPv4-mapped.
  if (src.length === 4 && dst.length === 4 && a.family !== 'tcp6') return { src, dst };
  return { src: toIpv6(src), dst: toIpv6(dst) };
}

/**
 * The v1 line for `a`: `PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n` (TCP6 for IPv6);
 * `PROXY UNKNOWN\r\n` when the family is unknown or an address or port does not parse.
 */
export function encodeProxyV1(a: ProxyAddresses): Buffer {
  const e = endpoints(a);
  if (!e) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  const family = e.src.length === 4 ? 'TCP4' : 'TCP6';
  return Buffer.from(`PROXY ${family} ${formatAddress(e.src)} ${formatAddress(e.dst)} ${String(a.sourcePort)} ${String(a.destPort)}\r\n`, 'latin1');
}

/** The v2 header for `a`, without TLVs; LOCAL with family UNSPEC when the endpoints are unknown. */
export function encodeProxyV2(a: ProxyAddresses): Buffer {
  const e = endpoints(a);
  const addressBytesLen = !e ? 0 : e.src.length === 4 ? V2_TCP4_ADDRESS_BYTES : V2_TCP6_ADDRESS_BYTES;
  const out = Buffer.alloc(V2_HEADER_BYTES + addressBytesLen);
  PROXY_V2_SIGNATURE.copy(out, 0);
  out.writeUInt8(e ? V2_VERSION_PROXY : V2_VERSION_LOCAL, 12);
  out.writeUInt8(!e ? V2_UNSPEC : e.src.length === 4 ? V2_TCP4 : V2_TCP6, 13);
  out.writeUInt16BE(addressBytesLen, 14);
  if (e) {
    e.src.copy(out, 16);
    e.dst.copy(out, 16 + e.src.length);
    out.writeUInt16BE(a.sourcePort, 16 + 2 * e.src.length);
    out.writeUInt16BE(a.destPort, 18 + 2 * e.src.length);
  }
  return out;
}

/** Whether `buf` starts like `prefix` for as many bytes as it has. */
function startsLike(buf: Buffer, prefix: Buffer): boolean {
  const n = Math.min(buf.length, prefix.length);
  return buf.subarray(0, n).equals(prefix.subarray(0, n));
}

function parseV1(buf: Buffer): Parse<ProxyHeader> {
  const end = buf.subarray(0, MAX_PROXY_V1_BYTES).indexOf('\r\n');
  if (end < 0) return buf.length >= MAX_PROXY_V1_BYTES ? notMine('v1 line longer than 107 bytes') : NEED_MORE;
  const length = end + 2;
  const words = buf.toString('latin1', 0, end).split(' ');
  // §2.1: after UNKNOWN the receiver ignores the rest of the line and keeps the socket's addresses.
  if (words[1] === 'UNKNOWN') return match({ version: 1, command: 'local', length });
  if (words.length !== 6 || (words[1] !== 'TCP4' && words[1] !== 'TCP6')) return notMine('v1 line is not PROXY TCP4|TCP6 src dst sport dport');
  const [, family, src, dst, srcPort, dstPort] = words as [string, string, string, string, string, string];
  const parseAddr = family === 'TCP4' ? parseIpv4 : parseIpv6;
  const s = parseAddr(src);
  const d = parseAddr(dst);
  // §2.1: ports are decimal, 0..65535.
  const port = (p: string): number => (/^\d{1,5}$/.test(p) ? Number(p) : -1);
  const sp = port(srcPort);
  const dp = port(dstPort);
  if (!s || !d || !isPort(sp) || !isPort(dp)) return notMine('v1 address or port does not parse');
  return match({ version: 1, command: 'proxy', source: formatAddress(s), sourcePort: sp, dest: formatAddress(d), destPort: dp, length });
}

function parseV2(buf: Buffer): Parse<ProxyHeader> {
  if (buf.length < V2_HEADER_BYTES) return NEED_MORE;
  const versionCommand = buf.readUInt8(12);
  const family = buf.readUInt8(13);
  const length = V2_HEADER_BYTES + buf.readUInt16BE(14);
  if (versionCommand !== V2_VERSION_PROXY && versionCommand !== V2_VERSION_LOCAL) return notMine('v2 version/command is not 0x20 or 0x21');
  if (!V2_FAMILIES.has(family)) return notMine('v2 family/transport undefined by the spec');
  if (length > MAX_PROXY_V2_BYTES) return notMine('v2 header longer than 16 KiB');
  if (buf.length < length) return NEED_MORE;
  // §2.2: LOCAL (health checks from the balancer itself), and families we do not proxy for
  // (UNSPEC, UDP, UNIX), keep the socket's own addresses.
  if (versionCommand === V2_VERSION_LOCAL || (family !== V2_TCP4 && family !== V2_TCP6)) return match({ version: 2, command: 'local', length });
  const size = family === V2_TCP4 ? 4 : 16;
  if (length - V2_HEADER_BYTES < 2 * size + 4) return notMine('v2 address block shorter than its family');
  const at = V2_HEADER_BYTES;
  return match({
    version: 2,
    command: 'proxy',
    source: formatAddress(buf.subarray(at, at + size)),
    sourcePort: buf.readUInt16BE(at + 2 * size),
    dest: formatAddress(buf.subarray(at + size, at + 2 * size)),
    destPort: buf.readUInt16BE(at + 2 * size + 2),
    length,
  });
}

/**
 * Parses a PROXY header (v1 or v2) at the start of `buf`. need-more until the header is
 * complete; not-mine for anything that is not one, a v1 line past 107 bytes, or a v2 header
 * past MAX_PROXY_V2_BYTES. TLVs are skipped; IPv4-mapped addresses come back as IPv4.
 * Bytes after `length` are the client's and are not looked at. Never throws.
 */
export function parseProxyHeader(buf: Buffer): Parse<ProxyHeader> {
  if (buf.length === 0) return NEED_MORE;
  if (startsLike(buf, PROXY_V1_PREFIX)) return buf.length < PROXY_V1_PREFIX.length ? NEED_MORE : parseV1(buf);
  if (startsLike(buf, PROXY_V2_SIGNATURE)) return parseV2(buf);
  return notMine('not a PROXY protocol header');
}
