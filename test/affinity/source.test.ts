import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import t from 'tap';
import { chainLookups, tableKey, type AffinityKey } from '../../lib/affinity/chain.js';
import { sourceNetwork } from '../../lib/affinity/source.js';
import type { AffinityStep } from '../../lib/config/types.js';
import type { Facts } from '../../lib/facts.js';

const facts = (source: string): Facts => ({ source, sourcePort: 50_000, localPort: 443 });

/** The key placement would try first (source and none never need the affinity table). */
function firstKey(chain: readonly AffinityStep[], f: Facts): AffinityKey | undefined {
  const l = chainLookups(chain, f, { backendNames: new Set() })[0];
  return l === undefined ? undefined : { kind: l.kind, value: l.value };
}
const source = (v4Bits: number, v6Bits: number): AffinityStep => ({ kind: 'source', v4Bits, v6Bits });

t.test('IPv4 masks', (t) => {
  const cases: [string, number, string][] = [
    ['192.0.2.7', 32, '192.0.2.7/32'],
    ['192.0.2.7', 24, '192.0.2.0/24'],
    ['192.0.2.7', 16, '192.0.0.0/16'],
    ['198.51.100.200', 20, '198.51.96.0/20'],
    ['198.51.100.200', 1, '128.0.0.0/1'],
    ['192.0.2.7', 0, '0.0.0.0/0'],
    ['10.255.255.255', 8, '10.0.0.0/8'],
  ];
  for (const [addr, bits, want] of cases) t.equal(sourceNetwork(addr, bits, 128), want, `${addr}/${String(bits)}`);
  t.equal(sourceNetwork('192.0.2.7', 24, 0), '192.0.2.0/24', 'V6BITS does not apply to IPv4');
  t.end();
});

t.test('IPv6 masks', (t) => {
  const addr = '2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff';
  const cases: [number, string][] = [
    [128, '2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff/128'],
    [64, '2001:db8:aaaa:bbbb::/64'],
    [56, '2001:db8:aaaa:bb00::/56'],
    [48, '2001:db8:aaaa::/48'],
    [33, '2001:db8:8000::/33'],
    [0, '::/0'],
  ];
  for (const [bits, want] of cases) t.equal(sourceNetwork(addr, 32, bits), want, `/${String(bits)}`);
  t.equal(sourceNetwork('::1', 32, 128), '::1/128');
  t.equal(sourceNetwork('2001:DB8::1', 32, 128), '2001:db8::1/128', 'written in one canonical form');
  t.equal(sourceNetwork('2001:db8:0:0:0:0:0:1', 0, 64), '2001:db8::/64', 'V4BITS does not apply to IPv6');
  t.end();
});

t.test('IPv4-mapped IPv6 gives the IPv4 key and uses V4BITS', (t) => {
  t.equal(sourceNetwork('::ffff:192.0.2.7', 24, 48), '192.0.2.0/24');
  t.equal(sourceNetwork('::ffff:192.0.2.7', 24, 48), sourceNetwork('192.0.2.7', 24, 48));
  t.equal(sourceNetwork('::ffff:192.0.2.7', 32, 128), '192.0.2.7/32');
  t.equal(sourceNetwork('::ffff:c000:0207', 32, 128), '192.0.2.7/32', 'the hex spelling too');
  fc.assert(
    fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 128 }), (v4, v4Bits, v6Bits) => {
      return sourceNetwork(`::ffff:${v4}`, v4Bits, v6Bits) === sourceNetwork(v4, v4Bits, v6Bits);
    }),
  );
  t.end();
});

t.test('a masked network contains the address and has its host bits zero', (t) => {
  const address = fc.oneof(fc.ipV4(), fc.ipV6());
  fc.assert(
    fc.property(address, fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 128 }), (addr, v4Bits, v6Bits) => {
      const net = sourceNetwork(addr, v4Bits, v6Bits);
      if (net === undefined) return false;
      const [base, bits] = ipaddr.parseCIDR(net);
      const ip = ipaddr.process(addr);
      return (
        ip.kind() === base.kind() &&
        bits === (ip.kind() === 'ipv4' ? v4Bits : v6Bits) &&
        ip.match(base, bits) &&
        sourceNetwork(base.toString(), v4Bits, v6Bits) === net
      );
    }),
    { numRuns: 1_000 },
  );
  t.pass('1,000 random addresses and masks');
  t.end();
});

t.test('anything but an IP address gives no key', (t) => {
  for (const bad of ['', 'not-an-ip', 'example.com', '192.0.2.256', '2001:db8::g', '192.0.2.7/24', ':::1']) {
    t.equal(sourceNetwork(bad, 24, 64), undefined, JSON.stringify(bad));
  }
  t.end();
});

t.test('firstKey takes the first step that yields a key', (t) => {
  t.same(firstKey([source(24, 64)], facts('192.0.2.7')), { kind: 'source', value: '192.0.2.0/24' });
  t.same(firstKey([source(24, 64), source(32, 128)], facts('192.0.2.7')), { kind: 'source', value: '192.0.2.0/24' });
  t.same(firstKey([source(32, 128), source(24, 64)], facts('2001:db8::7')), {
    kind: 'source',
    value: '2001:db8::7/128',
  });
  t.same(
    firstKey([{ kind: 'none' }, source(16, 32)], facts('192.0.2.7')),
    { kind: 'source', value: '192.0.0.0/16' },
    'none yields nothing and the chain goes on',
  );
  t.end();
});

t.test('firstKey gives undefined for none, an empty chain or no usable fact', (t) => {
  t.equal(firstKey([{ kind: 'none' }], facts('192.0.2.7')), undefined);
  t.equal(firstKey([], facts('192.0.2.7')), undefined);
  t.equal(firstKey([source(24, 64)], facts('unix-socket')), undefined);
  t.end();
});

t.test('tableKey namespaces the value by kind', (t) => {
  t.equal(tableKey({ kind: 'source', value: '192.0.2.0/24' }), 'source\u0000192.0.2.0/24');
  // Kinds that later issues add; cast because AffinityKey only admits today's kinds.
  const kinds = [
    'source',
    'sni',
    'tls-session',
    'http-host',
    'http-cookie',
    'http-header',
    'url-param',
    'login',
    'xmpp-to',
  ];
  const keyOf = (kind: string, value: string): string => tableKey({ kind, value });
  t.not(keyOf('sni', 'example.com'), keyOf('http-host', 'example.com'));
  t.not(keyOf('login', 'source\u0000x'), keyOf('source', 'x'));
  fc.assert(
    fc.property(fc.constantFrom(...kinds), fc.string(), fc.constantFrom(...kinds), fc.string(), (k1, v1, k2, v2) => {
      return (keyOf(k1, v1) === keyOf(k2, v2)) === (k1 === k2 && v1 === v2);
    }),
    { numRuns: 2_000 },
  );
  t.end();
});
