import fc from 'fast-check';
import t, { type Test } from 'tap';
import { formatAddress } from '../../lib/accept/port-range.js';
import {
  parseAffinityChain,
  parseBackend,
  parseBalance,
  parseCount,
  parseDuration,
  parseListen,
  parseLogLevel,
  parseName,
  parseExpect,
  parseSendString,
  parseAdminAddress,
} from '../helpers/parse.js';
import { ParseRejected } from '../helpers/parse.js';
import * as P from '../../lib/options/parse.js';

const LISTEN_SYNTAX = 'HOST:PORT or HOST:PORT-PORT ([::1]:PORT for IPv6)';
const BACKEND_SYNTAX = '[NAME=]HOST[:PORT][,weight=N][,max-conns=N][,backup][,drain[=DURATION]|,maint]';
const AFFINITY_SYNTAX =
  'a comma list of: none, source[/V4BITS[/V6BITS]], sni, tls-session, tls-ticket, http-host, http-header:NAME, http-cookie:NAME, url-param:NAME, xmpp-to, key-module, login';
const DURATION_SYNTAX = 'a duration such as 500ms, 30s, 10m, 1h (a bare number is milliseconds)';

/** Asserts that the parser rejects `input` (with `message`, if given). */
function rejects(t: Test, parse: (s: string) => unknown, input: string, message?: string): void {
  try {
    const got = parse(input);
    t.fail(`${JSON.stringify(input)} was accepted as ${JSON.stringify(got)}`);
  } catch (e) {
    if (!(e instanceof ParseRejected)) {
      t.fail(`${JSON.stringify(input)} threw ${String(e)}, not a rejection`);
      return;
    }
    if (message !== undefined) t.equal(e.message, message, JSON.stringify(input));
  }
}

t.test('parseListen accepts HOST:PORT, [V6]:PORT and ranges', (t) => {
  const cases: [string, { host: string; portLow: number; portHigh: number }][] = [
    ['127.0.0.1:80', { host: '127.0.0.1', portLow: 80, portHigh: 80 }],
    ['0.0.0.0:443', { host: '0.0.0.0', portLow: 443, portHigh: 443 }],
    ['localhost:8080', { host: 'localhost', portLow: 8080, portHigh: 8080 }],
    ['proxy.example.com:1', { host: 'proxy.example.com', portLow: 1, portHigh: 1 }],
    ['[::1]:80', { host: '::1', portLow: 80, portHigh: 80 }],
    ['[::]:65535', { host: '::', portLow: 65535, portHigh: 65535 }],
    ['[2001:db8::1]:993', { host: '2001:db8::1', portLow: 993, portHigh: 993 }],
    ['127.0.0.1:0', { host: '127.0.0.1', portLow: 0, portHigh: 0 }],
    ['127.0.0.1:7000-7010', { host: '127.0.0.1', portLow: 7000, portHigh: 7010 }],
    ['[::1]:7000-7000', { host: '::1', portLow: 7000, portHigh: 7000 }],
    ['127.0.0.1:1-65535', { host: '127.0.0.1', portLow: 1, portHigh: 65535 }],
    ['  127.0.0.1:80  ', { host: '127.0.0.1', portLow: 80, portHigh: 80 }],
  ];
  for (const [input, want] of cases) t.same(parseListen(input), want, JSON.stringify(input));
  t.end();
});

t.test('parseListen rejects bad listen addresses', (t) => {
  const bad = [
    '',
    '80',
    ':80',
    '127.0.0.1',
    '127.0.0.1:',
    '127.0.0.1:http',
    '127.0.0.1:-1',
    '127.0.0.1:65536',
    '127.0.0.1:100000',
    '127.0.0.1:0-10',
    '127.0.0.1:10-0',
    '127.0.0.1:7010-7000',
    '127.0.0.1:7001-7000',
    '127.0.0.1:80-',
    '::1:80',
    '::1',
    '[::1]',
    '[::1]80',
    '[::1:80',
    '[127.0.0.1]:80',
    'bad_host:80',
    '-a.example:80',
    '127.0.0.1:80,81',
    'host name:80',
  ];
  for (const input of bad) rejects(t, parseListen, input);
  rejects(t, parseListen, '::1:80', `expected ${LISTEN_SYNTAX}, got "::1:80"`);
  rejects(t, parseListen, '127.0.0.1:65536', `expected ports 1-65535 in ${LISTEN_SYNTAX}, got "127.0.0.1:65536"`);
  rejects(t, parseListen, '127.0.0.1:0-10', `expected ports 1-65535 in ${LISTEN_SYNTAX}, got "127.0.0.1:0-10"`);
  rejects(
    t,
    parseListen,
    '127.0.0.1:7010-7000',
    `expected a range LOW-HIGH with LOW <= HIGH in ${LISTEN_SYNTAX}, got "127.0.0.1:7010-7000"`,
  );
  t.end();
});

t.test('parseBackend accepts names, IPv6, port-less backends and options', (t) => {
  const cases: [string, { name: string; host: string; port: number | undefined; weight: number; backup: boolean }][] = [
    ['a=127.0.0.1:7001', { name: 'a', host: '127.0.0.1', port: 7001, weight: 1, backup: false }],
    ['127.0.0.1:7001', { name: '127.0.0.1:7001', host: '127.0.0.1', port: 7001, weight: 1, backup: false }],
    [
      'db.example.com:5432',
      { name: 'db.example.com:5432', host: 'db.example.com', port: 5432, weight: 1, backup: false },
    ],
    ['a=[::1]:7001,weight=2,backup', { name: 'a', host: '::1', port: 7001, weight: 2, backup: true }],
    ['b=10.0.0.5,backup,weight=1000', { name: 'b', host: '10.0.0.5', port: undefined, weight: 1000, backup: true }],
    ['10.0.0.5', { name: '10.0.0.5', host: '10.0.0.5', port: undefined, weight: 1, backup: false }],
    [
      'mail.example.com',
      { name: 'mail.example.com', host: 'mail.example.com', port: undefined, weight: 1, backup: false },
    ],
    ['::1', { name: '::1', host: '::1', port: undefined, weight: 1, backup: false }],
    ['[::1]:7001', { name: '[::1]:7001', host: '::1', port: 7001, weight: 1, backup: false }],
    ['[2001:db8::5]', { name: '2001:db8::5', host: '2001:db8::5', port: undefined, weight: 1, backup: false }],
    ['node_1.eu-west=127.0.0.1:1', { name: 'node_1.eu-west', host: '127.0.0.1', port: 1, weight: 1, backup: false }],
    [' a=127.0.0.1:65535,weight=7 ', { name: 'a', host: '127.0.0.1', port: 65535, weight: 7, backup: false }],
  ];
  for (const [input, want] of cases) t.same(parseBackend(input), want, JSON.stringify(input));
  t.end();
});

t.test('parseBackend rejects bad backends', (t) => {
  const bad = [
    '',
    '=127.0.0.1:7001',
    '-a=127.0.0.1:7001',
    'a b=127.0.0.1:7001',
    `${'n'.repeat(65)}=127.0.0.1:1`,
    'a=',
    'a=127.0.0.1:',
    'a=127.0.0.1:0',
    'a=127.0.0.1:65536',
    'a=127.0.0.1:x',
    'a=[::1]:',
    'a=[::1]7001',
    'a=127.0.0.1:7001,weight=0',
    'a=127.0.0.1:7001,weight=1001',
    'a=127.0.0.1:7001,weight=10000',
    'a=127.0.0.1:7001,weight=',
    'a=127.0.0.1:7001,weight=-1',
    'a=127.0.0.1:7001,weight=1.5',
    'a=127.0.0.1:7001,primary',
    'a=127.0.0.1:7001,,backup',
    'a=127.0.0.1:7001,',
    'a=127.0.0.1:7001,BACKUP',
    'a=bad_host:1',
    ',weight=2',
  ];
  for (const input of bad) rejects(t, parseBackend, input);
  rejects(
    t,
    parseBackend,
    'a=127.0.0.1:7001,weight=0',
    `expected weight=N with N in 1..1000 in ${BACKEND_SYNTAX}, got "a=127.0.0.1:7001,weight=0"`,
  );
  rejects(
    t,
    parseBackend,
    'a=127.0.0.1:7001,weight=1001',
    `expected weight=N with N in 1..1000 in ${BACKEND_SYNTAX}, got "a=127.0.0.1:7001,weight=1001"`,
  );
  rejects(
    t,
    parseBackend,
    'a=127.0.0.1:7001,colour=red',
    `expected ${BACKEND_SYNTAX}, got "a=127.0.0.1:7001,colour=red"`,
  );
  rejects(
    t,
    parseBackend,
    'my backend=127.0.0.1:7001',
    `expected a NAME of letters, digits, '_', '.', '-' in ${BACKEND_SYNTAX}, got "my backend=127.0.0.1:7001"`,
  );
  rejects(t, parseBackend, 'a=127.0.0.1:0', `expected a port 1-65535 in ${BACKEND_SYNTAX}, got "a=127.0.0.1:0"`);
  t.end();
});

t.test('parseBackend: operator states ,drain[=DURATION] and ,maint', (t) => {
  const base = { name: 'a', host: '127.0.0.1', port: 7001, weight: 1, backup: false };
  t.strictSame(parseBackend('a=127.0.0.1:7001,drain'), { ...base, admin: 'drain' });
  t.strictSame(parseBackend('a=127.0.0.1:7001,maint'), { ...base, admin: 'maint' });
  t.strictSame(parseBackend('a=127.0.0.1:7001,ready'), base, 'ready is the default, left out');
  t.strictSame(parseBackend('a=127.0.0.1:7001,drain=10m'), { ...base, admin: 'drain', drainMs: 600_000 });
  t.strictSame(parseBackend('a=127.0.0.1:7001,weight=2,backup,drain=1s'), { ...base, weight: 2, backup: true, admin: 'drain', drainMs: 1_000 });
  t.strictSame(parseBackend('a=127.0.0.1:7001,maint,weight=3'), { ...base, weight: 3, admin: 'maint' }, 'options in any order');
  const states = 'one of ready, drain, maint in ' + BACKEND_SYNTAX;
  rejects(t, parseBackend, 'a=127.0.0.1:7001,drain,maint', `expected ${states}, got "a=127.0.0.1:7001,drain,maint"`);
  rejects(t, parseBackend, 'a=127.0.0.1:7001,maint,maint', `expected ${states}, got "a=127.0.0.1:7001,maint,maint"`);
  const drainMs = `drain=DURATION with a duration of at least 1ms in ${BACKEND_SYNTAX}`;
  rejects(t, parseBackend, 'a=127.0.0.1:7001,drain=0', `expected ${drainMs}, got "a=127.0.0.1:7001,drain=0"`);
  rejects(t, parseBackend, 'a=127.0.0.1:7001,drain=soon', `expected ${drainMs}, got "a=127.0.0.1:7001,drain=soon"`);
  rejects(t, parseBackend, 'a=127.0.0.1:7001,drain=', `expected ${drainMs}, got "a=127.0.0.1:7001,drain="`);
  rejects(t, parseBackend, 'a=127.0.0.1:7001,maint=1s', `expected ${BACKEND_SYNTAX}, got "a=127.0.0.1:7001,maint=1s"`);
  rejects(t, parseBackend, 'a=127.0.0.1:7001,DRAIN', `expected ${BACKEND_SYNTAX}, got "a=127.0.0.1:7001,DRAIN"`);
  t.end();
});

t.test('parseExpect: a regular expression, checked by compiling it', (t) => {
  t.equal(parseExpect('^\\* OK'), '^\\* OK');
  t.equal(parseExpect('^\\+OK'), '^\\+OK');
  t.equal(parseExpect('^220'), '^220');
  t.equal(parseExpect(' spaces kept '), ' spaces kept ');
  rejects(t, parseExpect, '', 'expected a non-empty regular expression such as ^\\* OK, got ""');
  rejects(t, parseExpect, '(', 'expected a regular expression (Invalid regular expression: /(/m: Unterminated group), got "("');
  rejects(t, parseExpect, '[a-', 'expected a regular expression (Invalid regular expression: /[a-/m: Unterminated character class), got "[a-"');
  rejects(t, parseExpect, '*OK');
  t.end();
});

t.test('parseSendString: escapes resolved, one byte per char', (t) => {
  t.equal(parseSendString('a1 NOOP\\r\\n'), 'a1 NOOP\r\n');
  t.equal(parseSendString('QUIT\\n'), 'QUIT\n');
  t.equal(parseSendString('x\\ty\\\\z'), 'x\ty\\z');
  t.equal(parseSendString('\\x00\\xff\\x0D\\x0a'), '\x00\xff\r\n');
  t.equal(parseSendString('PING\r\n'), 'PING\r\n', 'real CR LF (a YAML double-quoted string) pass');
  t.equal(parseSendString('x'.repeat(1_024)).length, 1_024);
  const syntax = 'expected at most 1024 printable ASCII characters with \\r, \\n, \\t, \\\\ and \\xHH escapes';
  for (const bad of ['', 'a\\', 'a\\q', '\\x1', '\\xg0', 'caf\u00e9', 'bell\u0007', 'x'.repeat(1_025), '\\x4'.repeat(2)]) {
    rejects(t, parseSendString, bad, `${syntax}, got ${JSON.stringify(bad)}`);
  }
  t.end();
});

t.test('parseAffinityChain', (t) => {
  const cases: [string, unknown][] = [
    ['none', [{ kind: 'none' }]],
    ['source', [{ kind: 'source', v4Bits: 32, v6Bits: 128 }]],
    ['source/24', [{ kind: 'source', v4Bits: 24, v6Bits: 128 }]],
    ['source/24/64', [{ kind: 'source', v4Bits: 24, v6Bits: 64 }]],
    ['source/0/0', [{ kind: 'source', v4Bits: 0, v6Bits: 0 }]],
    ['source/32/128', [{ kind: 'source', v4Bits: 32, v6Bits: 128 }]],
    // Syntax only: combining kinds is judged by validate.ts, which knows the whole chain.
    [' source/16 , none ', [{ kind: 'source', v4Bits: 16, v6Bits: 128 }, { kind: 'none' }]],
  ];
  for (const [input, want] of cases) t.same(parseAffinityChain(input), want, JSON.stringify(input));
  for (const input of [
    '',
    'None',
    'snow',
    'source/',
    'source//64',
    'source/24/',
    'source/a',
    'source,',
    ',source',
    'source/24/64/1',
    'source/-1',
  ]) {
    rejects(t, parseAffinityChain, input);
  }
  rejects(t, parseAffinityChain, 'snow', `expected ${AFFINITY_SYNTAX}, got "snow"`);
  rejects(t, parseAffinityChain, 'source/33', 'expected V4BITS in 0..32 in source/V4BITS/V6BITS, got "source/33"');
  rejects(
    t,
    parseAffinityChain,
    'source/24/129',
    'expected V6BITS in 0..128 in source/V4BITS/V6BITS, got "source/24/129"',
  );
  t.end();
});

t.test('parseBalance', (t) => {
  for (const kind of ['hash', 'roundrobin', 'leastconn', 'random2']) t.equal(parseBalance(kind), kind);
  t.equal(parseBalance(' leastconn '), 'leastconn');
  for (const input of ['', 'Hash', 'round-robin', 'rr', 'random', 'random2 x']) rejects(t, parseBalance, input);
  rejects(t, parseBalance, 'rr', 'expected one of hash, roundrobin, leastconn, random2, got "rr"');
  t.end();
});

t.test('parseDuration', (t) => {
  const cases: [string, number][] = [
    ['500ms', 500],
    ['30s', 30_000],
    ['1.5m', 90_000],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['250', 250],
    ['0', 0],
    ['0s', 0],
    ['0.5s', 500],
    [' 5s ', 5_000],
    ['1.0005s', 1_001],
    ['24d', 2_073_600_000],
    ['2147483647', 2_147_483_647],
    ['2147483647ms', 2_147_483_647],
  ];
  for (const [input, want] of cases) t.equal(parseDuration(input), want, JSON.stringify(input));
  for (const input of [
    '',
    ' ',
    '10x',
    '-1s',
    '1 s',
    's',
    '.5s',
    '1.s',
    '1e3',
    '1S',
    '1sec',
    '0x10',
    'Infinity',
    'NaN',
    '25d',
    '2147483648',
    `${'9'.repeat(400)}ms`,
  ]) {
    rejects(t, parseDuration, input);
  }
  rejects(t, parseDuration, '10x', `expected ${DURATION_SYNTAX}, got "10x"`);
  rejects(t, parseDuration, '-1s', `expected ${DURATION_SYNTAX}, got "-1s"`);
  rejects(t, parseDuration, '', `expected ${DURATION_SYNTAX}, got ""`);
  rejects(t, parseDuration, '25d', `expected ${DURATION_SYNTAX}, at most 24d, got "25d"`);
  t.end();
});

t.test('parseCount', (t) => {
  const oneToTen = parseCount(1, 10);
  t.equal(oneToTen('1'), 1);
  t.equal(oneToTen('10'), 10);
  t.equal(oneToTen(' 7 '), 7);
  t.equal(oneToTen('007'), 7);
  t.equal(parseCount(0, 16)('0'), 0);
  for (const input of ['', '0', '11', '-1', '1.0', '1e1', '+3', 'ten', '0x5', '9'.repeat(400)])
    rejects(t, oneToTen, input);
  rejects(t, oneToTen, '11', 'expected a whole number from 1 to 10, got "11"');
  rejects(t, oneToTen, '-1', 'expected a whole number from 1 to 10, got "-1"');
  t.end();
});

t.test('parseLogLevel', (t) => {
  for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    t.equal(parseLogLevel(level), level);
  for (const input of ['', 'INFO', 'warning', 'verbose']) rejects(t, parseLogLevel, input);
  rejects(t, parseLogLevel, 'verbose', 'expected one of fatal, error, warn, info, debug, trace, silent, got "verbose"');
  t.end();
});

t.test('parseName', (t) => {
  for (const name of ['default', 'imap', 'web-1', 'a.b_c', 'x'.repeat(64)]) t.equal(parseName(name), name);
  for (const input of ['', '-x', 'a b', 'x'.repeat(65), 'é']) rejects(t, parseName, input);
  rejects(t, parseName, 'a b', `expected a name of letters, digits, '_', '.', '-', got "a b"`);
  t.end();
});

t.test('every parser returns a Parsed and never throws, whatever the input', (t) => {
  const parsers: [string, P.Parser<unknown>][] = [
    ['parseListen', P.parseListen],
    ['parseBackend', P.parseBackend],
    ['parseAffinityChain', P.parseAffinityChain],
    ['parseBalance', P.parseBalance],
    ['parseDuration', P.parseDuration],
    ['parseCount', P.parseCount(0, 16)],
    ['parseLogLevel', P.parseLogLevel],
    ['parseName', P.parseName],
    ['parseExpect', P.parseExpect],
    ['parseSendString', P.parseSendString],
    ['parseCidr', P.parseCidr],
    ['parseLookupUrl', P.parseLookupUrl],
    ['parseAdminAddress', P.parseAdminAddress],
    ['parseCookieName', P.parseCookieName],
    ['parseHostPattern', P.parseHostPattern],
  ];
  // Strings built from the grammars' own characters reach deeper than uniform noise does.
  const grammar = fc.string({ unit: fc.constantFrom(...'0123456789abcdefmsh.:[]=,/-_ x\\()*+?{}|^$'.split('')), maxLength: 40 });
  // Any code point, lone surrogates included. (fc.string({ unit: 'binary' }) is the same idea
  // but takes over a second to build in fast-check 4.)
  const codePoint = fc.integer({ min: 0, max: 0x10ffff }).map((c) => String.fromCodePoint(c));
  const input = fc.oneof(fc.string(), fc.string({ unit: codePoint }), grammar);
  for (const [name, parse] of parsers) {
    fc.assert(
      fc.property(input, (s) => {
        const p = parse(s);
        // A rejection says what was expected and quotes what came.
        return p.ok || (p.message.startsWith('expected ') && p.message.endsWith(`got ${JSON.stringify(s)}`));
      }),
      { numRuns: 1_000 },
    );
    t.pass(name);
  }
  t.end();
});

t.test('parseListen(formatAddress(host, port)) round-trips', (t) => {
  const host = fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain(), fc.constant('localhost'));
  fc.assert(
    fc.property(host, fc.integer({ min: 0, max: 65535 }), (h, port) => {
      const got = parseListen(formatAddress(h, port));
      return got.host === h && got.portLow === port && got.portHigh === port;
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.ipV4(), fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 0, max: 4095 }), (h, low, span) => {
      const high = Math.min(65535, low + span);
      const got = parseListen(`${formatAddress(h, low)}-${String(high)}`);
      return got.host === h && got.portLow === low && got.portHigh === high;
    }),
    { numRuns: 200 },
  );
  t.pass();
  t.end();
});

t.test('parseDuration(`${n}ms`) === n', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 2_147_483_647 }),
      (n) => parseDuration(`${String(n)}ms`) === n && parseDuration(String(n)) === n,
    ),
    { numRuns: 1_000 },
  );
  fc.assert(fc.property(fc.integer({ min: 0, max: 596 }), (h) => parseDuration(`${String(h)}h`) === h * 3_600_000));
  t.pass();
  t.end();
});

t.test('parseAdminAddress: HOST:PORT, or a bare port on loopback', (t) => {
  t.same(parseAdminAddress('9900'), { host: '127.0.0.1', port: 9900 });
  t.same(parseAdminAddress('0'), { host: '127.0.0.1', port: 0 });
  t.same(parseAdminAddress('[::1]:9900'), { host: '::1', port: 9900 });
  t.same(parseAdminAddress('0.0.0.0:9900'), { host: '0.0.0.0', port: 9900 });
  for (const bad of ['', '127.0.0.1', '99999', '127.0.0.1:9900-9901', 'x:y', ':9900']) t.throws(() => parseAdminAddress(bad), /\[HOST:\]PORT/, JSON.stringify(bad));
  t.end();
});
