import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import t from 'tap';
import {
  MAX_PROXY_V1_BYTES,
  MAX_PROXY_V2_BYTES,
  PROXY_V2_SIGNATURE,
  encodeProxyV1,
  encodeProxyV2,
  parseProxyHeader,
  type ProxyHeader,
} from '../../lib/wire/proxy/header.js';
import { seedFastCheck } from '../helpers/fc-seed.js';

seedFastCheck({ numRuns: 300 });

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const FFFF = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
/** §2.1's worst case, the line the 107-byte cap is computed from. */
const WORST_V1 = `PROXY UNKNOWN ${FFFF} ${FFFF} 65535 65535\r\n`;
const SIG = '0d0a0d0a000d0a515549540a';
const TCP6_V1 = 'PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n';

/** Complete headers and what they parse to. */
const HEADERS: readonly (readonly [string, Buffer, ProxyHeader])[] = [
  ['spec §2.1 TCP4 example', b('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n'), { version: 1, command: 'proxy', source: '192.168.0.1', sourcePort: 56324, dest: '192.168.0.11', destPort: 443, length: 47 }],
  ['spec §2.1 longest TCP6 line', b(TCP6_V1), { version: 1, command: 'proxy', source: FFFF, sourcePort: 65535, dest: FFFF, destPort: 65535, length: 104 }],
  ['spec §2.1 worst case: 107 bytes', b(WORST_V1), { version: 1, command: 'local', length: 107 }],
  ['spec §2.1 UNKNOWN', b('PROXY UNKNOWN\r\n'), { version: 1, command: 'local', length: 15 }],
  ['spec §2.1 UNKNOWN with the rest ignored', b('PROXY UNKNOWN ffff:f::f ffff:f::f 65535 65535\r\n'), { version: 1, command: 'local', length: 47 }],
  ['v1 TCP6 compressed, IPv4-mapped source normalised', b('PROXY TCP6 ::ffff:192.0.2.1 2001:DB8::1 1 0\r\n'), { version: 1, command: 'proxy', source: '192.0.2.1', sourcePort: 1, dest: '2001:db8::1', destPort: 0, length: 45 }],
  ['v1 TCP6 all zero', b('PROXY TCP6 :: 1:: 9 9\r\n'), { version: 1, command: 'proxy', source: '::', sourcePort: 9, dest: '1::', destPort: 9, length: 23 }],
  ['v1 TCP6 without "::"', b('PROXY TCP6 2001:db8:1:2:3:4:5:6 1:0:0:2:0:0:0:3 9 9\r\n'), { version: 1, command: 'proxy', source: '2001:db8:1:2:3:4:5:6', sourcePort: 9, dest: '1:0:0:2::3', destPort: 9, length: 53 }],
  ['v2 TCP4 PROXY', hex(`${SIG} 21 11 000c c0000201 c6336401 dc04 01bb`), { version: 2, command: 'proxy', source: '192.0.2.1', sourcePort: 56324, dest: '198.51.100.1', destPort: 443, length: 28 }],
  ['v2 TCP6 PROXY', hex(`${SIG} 21 21 0024 20010db8000000000000000000000001 20010db8000000000000000000000002 0050 1f90`), { version: 2, command: 'proxy', source: '2001:db8::1', sourcePort: 80, dest: '2001:db8::2', destPort: 8080, length: 52 }],
  ['v2 TCP6 with IPv4-mapped addresses', hex(`${SIG} 21 21 0024 00000000000000000000ffff7f000003 00000000000000000000ffff7f000001 0050 1f90`), { version: 2, command: 'proxy', source: '127.0.0.3', sourcePort: 80, dest: '127.0.0.1', destPort: 8080, length: 52 }],
  ['v2 TCP4 with TLVs skipped', hex(`${SIG} 21 11 0014 c0000201 c6336401 dc04 01bb 04 0005 0102030405`), { version: 2, command: 'proxy', source: '192.0.2.1', sourcePort: 56324, dest: '198.51.100.1', destPort: 443, length: 36 }],
  ['v2 LOCAL (a balancer health check)', hex(`${SIG} 20 00 0000`), { version: 2, command: 'local', length: 16 }],
  ['v2 LOCAL ignores its address block', hex(`${SIG} 20 11 000c c0000201 c6336401 dc04 01bb`), { version: 2, command: 'local', length: 28 }],
  ['v2 PROXY over UNIX: socket addresses kept', hex(`${SIG} 21 31 0004 00000000`), { version: 2, command: 'local', length: 20 }],
  ['v2 PROXY UNSPEC', hex(`${SIG} 21 00 0000`), { version: 2, command: 'local', length: 16 }],
];

/** Inputs that are not (acceptable) PROXY headers. */
const NOT_MINE: readonly (readonly [string, Buffer])[] = [
  ['TLS', hex('160301')],
  ['HTTP', b('GET / HTTP/1.1\r\n')],
  ['lower-case proxy', b('proxy TCP4')],
  ['v1 line past 107 bytes', b(`PROXY TCP6 ${'f'.repeat(100)}`)],
  ['v1 CRLF after byte 107', b(`${WORST_V1.slice(0, -2)} \r\n`)],
  ['v1 unknown family', b('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n')],
  ['v1 missing port', b('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n')],
  ['v1 extra field', b('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n')],
  ['v1 TCP4 with an IPv6 address', b('PROXY TCP4 ::1 5.6.7.8 1 2\r\n')],
  ['v1 TCP4 octet above 255', b('PROXY TCP4 1.2.3.4 5.6.7.256 1 2\r\n')],
  ['v1 TCP4 leading zero', b('PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n')],
  ['v1 TCP6 with a bare IPv4 address', b('PROXY TCP6 1.2.3.4 ::1 1 2\r\n')],
  ['v1 TCP6 with a bad dotted tail', b('PROXY TCP6 ::ffff:1.2.3 ::1 1 2\r\n')],
  ['v1 TCP6 two "::"', b('PROXY TCP6 1::2::3 ::1 1 2\r\n')],
  ['v1 TCP6 nine groups', b('PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n')],
  ['v1 TCP6 seven groups', b('PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n')],
  ['v1 TCP6 "::" for no group', b('PROXY TCP6 1:2:3:4::5:6:7:8 ::1 1 2\r\n')],
  ['v1 TCP6 bad group', b('PROXY TCP6 ::12345 ::1 1 2\r\n')],
  ['v1 TCP6 bad tail group', b('PROXY TCP6 ::1 1::g 1 2\r\n')],
  ['v1 port above 65535', b('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n')],
  ['v1 port not decimal', b('PROXY TCP4 1.2.3.4 5.6.7.8 1 0x2\r\n')],
  ['v1 empty family', b('PROXY \r\n')],
  ['v2 wrong signature', hex('0d0a0d0a000d0a5155495400')],
  ['v2 version 1', hex(`${SIG} 11 11 000c`)],
  ['v2 command 2', hex(`${SIG} 22 11 000c`)],
  ['v2 undefined family', hex(`${SIG} 21 41 000c`)],
  ['v2 longer than 16 KiB', hex(`${SIG} 21 11 3ff1`)],
  ['v2 TCP4 address block too short', hex(`${SIG} 21 11 000b c0000201 c6336401 dc04 01`)],
  ['v2 TCP6 address block too short', hex(`${SIG} 21 21 000c c0000201 c6336401 dc04 01bb`)],
];

t.test('parses the spec examples and hand-built v2 headers byte for byte', (t) => {
  for (const [name, input, want] of HEADERS) t.same(parseProxyHeader(input), { kind: 'match', value: want }, name);
  t.end();
});

t.test('returns not-mine for anything that is not a PROXY header', (t) => {
  for (const [name, input] of NOT_MINE) t.equal(parseProxyHeader(input).kind, 'not-mine', name);
  t.end();
});

t.test('returns need-more for a prefix of either version', (t) => {
  for (const s of [b(''), b('P'), b('PROXY'), b('PROXY '), b('PROXY TCP4 1.2.3.4'), b('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r'), hex('0d0a'), hex(SIG), hex(`${SIG} 21 11 000c c0`)]) {
    t.same(parseProxyHeader(s), { kind: 'need-more' }, JSON.stringify(s.toString('latin1')));
  }
  t.end();
});

t.test('the caps are 107 bytes for v1 and 16 KiB for v2', (t) => {
  t.equal(MAX_PROXY_V1_BYTES, 107);
  t.equal(b(WORST_V1).length, MAX_PROXY_V1_BYTES);
  t.equal(MAX_PROXY_V2_BYTES, 16 * 1024);
  t.equal(parseProxyHeader(b(`PROXY UNKNOWN${' '.repeat(92)}\r`)).kind, 'need-more', '106 bytes without LF: one more may be it');
  const biggest = Buffer.concat([hex(`${SIG} 20 00 3ff0`), Buffer.alloc(MAX_PROXY_V2_BYTES - 16)]);
  t.same(parseProxyHeader(biggest), { kind: 'match', value: { version: 2, command: 'local', length: MAX_PROXY_V2_BYTES } });
  t.end();
});

t.test('encodes v1 as the spec writes it', (t) => {
  t.equal(encodeProxyV1({ source: '192.0.2.1', sourcePort: 56324, dest: '198.51.100.1', destPort: 443 }).toString('latin1'), 'PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n');
  t.equal(encodeProxyV1({ source: '2001:db8::1', sourcePort: 1, dest: '2001:DB8:0:0:0:0:0:2', destPort: 2 }).toString('latin1'), 'PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n');
  t.equal(encodeProxyV1({ source: '::ffff:127.0.0.3', sourcePort: 5, dest: '::ffff:127.0.0.1', destPort: 6 }).toString('latin1'), 'PROXY TCP4 127.0.0.3 127.0.0.1 5 6\r\n', 'dual-stack IPv4-mapped addresses go out as TCP4');
  t.equal(encodeProxyV1({ source: '127.0.0.3', sourcePort: 5, dest: '::1', destPort: 6 }).toString('latin1'), 'PROXY TCP6 127.0.0.3 ::1 5 6\r\n', 'mixed families go out as TCP6');
  t.equal(encodeProxyV1({ family: 'tcp6', source: '127.0.0.3', sourcePort: 5, dest: '127.0.0.1', destPort: 6 }).toString('latin1'), 'PROXY TCP6 127.0.0.3 127.0.0.1 5 6\r\n');
  const unknown: readonly (readonly [string, Parameters<typeof encodeProxyV1>[0]])[] = [
    ['family unknown', { family: 'unknown', source: '1.2.3.4', sourcePort: 1, dest: '1.2.3.4', destPort: 2 }],
    ['bad source port', { source: '1.2.3.4', sourcePort: 70000, dest: '1.2.3.4', destPort: 2 }],
    ['bad dest port', { source: '1.2.3.4', sourcePort: 1, dest: '1.2.3.4', destPort: -1 }],
    ['bad source', { source: '', sourcePort: 1, dest: '1.2.3.4', destPort: 2 }],
    ['bad dest', { source: '1.2.3.4', sourcePort: 1, dest: 'localhost', destPort: 2 }],
  ];
  for (const [name, a] of unknown) {
    t.equal(encodeProxyV1(a).toString('latin1'), 'PROXY UNKNOWN\r\n', name);
    t.same(encodeProxyV2(a), hex(`${SIG} 20 00 0000`), `v2 LOCAL: ${name}`);
  }
  t.end();
});

t.test('encodes v2 with signature, 0x21, family, length, addresses and ports', (t) => {
  t.equal(PROXY_V2_SIGNATURE.toString('latin1'), '\r\n\r\n\0\r\nQUIT\n');
  t.same(encodeProxyV2({ source: '192.0.2.1', sourcePort: 56324, dest: '198.51.100.1', destPort: 443 }), hex(`${SIG} 21 11 000c c0000201 c6336401 dc04 01bb`));
  t.same(encodeProxyV2({ source: '2001:db8::1', sourcePort: 80, dest: '2001:db8::2', destPort: 8080 }), hex(`${SIG} 21 21 0024 20010db8000000000000000000000001 20010db8000000000000000000000002 0050 1f90`));
  t.same(encodeProxyV2({ source: '::ffff:7f00:3', sourcePort: 80, dest: '127.0.0.1', destPort: 8080 }), hex(`${SIG} 21 11 000c 7f000003 7f000001 0050 1f90`));
  t.end();
});

const v4 = fc.ipV4();
const v6 = fc.ipV6();
const port = fc.integer({ min: 0, max: 65535 });
const addresses = fc.oneof(
  fc.record({ source: v4, sourcePort: port, dest: v4, destPort: port }),
  fc.record({ source: v6, sourcePort: port, dest: v6, destPort: port }),
);
const encoders = [encodeProxyV1, encodeProxyV2] as const;
const anyHeader = fc.tuple(addresses, fc.constantFrom(...encoders)).map(([a, enc]) => enc(a));

t.test('round trips: parse(encode(a)) gives back the addresses', (t) => {
  fc.assert(
    fc.property(addresses, fc.constantFrom(0, 1), (a, i) => {
      const bytes = (i === 0 ? encodeProxyV1 : encodeProxyV2)(a);
      const r = parseProxyHeader(bytes);
      if (r.kind !== 'match') return false;
      const again = (i === 0 ? encodeProxyV1 : encodeProxyV2)({ source: r.value.source ?? '', sourcePort: r.value.sourcePort ?? -1, dest: r.value.dest ?? '', destPort: r.value.destPort ?? -1 });
      return r.value.command === 'proxy' && r.value.length === bytes.length && r.value.sourcePort === a.sourcePort && r.value.destPort === a.destPort && again.equals(bytes);
    }),
  );
  t.end();
});

t.test('split at every offset: need-more until complete, then the same match', (t) => {
  for (const [name, input, want] of HEADERS) {
    for (let i = 0; i < input.length; i++) {
      if (parseProxyHeader(input.subarray(0, i)).kind !== 'need-more') t.fail(`${name}: not need-more at ${String(i)}`);
    }
    t.same(parseProxyHeader(input), { kind: 'match', value: want }, name);
  }
  t.end();
});

t.test('properties', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      parseProxyHeader(Buffer.from(bytes));
      parseProxyHeader(Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from(bytes)]));
      parseProxyHeader(Buffer.concat([b('PROXY '), Buffer.from(bytes)]));
    }),
    { numRuns: 1000 },
  );
  fc.assert(
    fc.property(anyHeader, fc.nat(), (h, n) => parseProxyHeader(h.subarray(0, n % h.length)).kind === 'need-more'),
  );
  fc.assert(
    fc.property(anyHeader, fc.uint8Array({ maxLength: 64 }), (h, junk) => JSON.stringify(parseProxyHeader(Buffer.concat([h, Buffer.from(junk)]))) === JSON.stringify(parseProxyHeader(h))),
  );
  fc.assert(
    fc.property(anyHeader, fc.integer({ min: 0, max: 0xffff }), (h, len) => {
      if (h.length < 20) return true; // v1
      const c = Buffer.from(h);
      c.writeUInt16BE(len, 14);
      return ['match', 'need-more', 'not-mine'].includes(parseProxyHeader(c).kind);
    }),
  );
  t.end();
});
