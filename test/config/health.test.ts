// Config for health checks and operator states: the health-* keys and backend `state` in config
// documents, their defaults (imap/pop3 banner checks expect the greeting), and the cross-field
// rules of validate.ts.
import t from 'tap';
import { configFromDocument } from '../../lib/config/document.js';
import { frontendWithDefaults } from '../../lib/options/build.js';

const healthWithDefaults = () => frontendWithDefaults({}).health;
import * as D from '../../lib/config/defaults.js';
import { validateConfig } from '../../lib/config/validate.js';

const BASE = { listen: '127.0.0.1:7000', backends: ['a=10.0.0.1:7001'] };

/** Parse and validation issues of one frontend `fields` on top of BASE, as `path: message`. */
function issuesOf(fields: Readonly<Record<string, unknown>>): string[] {
  const { config, issues } = configFromDocument({ frontends: [{ ...BASE, ...fields }] });
  const all = issues.length > 0 ? issues : validateConfig(config);
  return all.map((i) => `${i.path}: ${i.message}`);
}

const healthOf = (fields: Readonly<Record<string, unknown>>) => configFromDocument({ frontends: [{ ...BASE, ...fields }] }).config.frontends[0]!.health;

t.test('defaults: no checks; HAProxy-like interval, timeout, rise and fall', (t) => {
  t.strictSame(healthWithDefaults(), {
    check: 'none',
    intervalMs: D.HEALTH_INTERVAL_MS,
    timeoutMs: D.HEALTH_TIMEOUT_MS,
    rise: D.HEALTH_RISE,
    fall: D.HEALTH_FALL,
  });
  t.same([D.HEALTH_INTERVAL_MS, D.HEALTH_TIMEOUT_MS, D.HEALTH_RISE, D.HEALTH_FALL], [2_000, 2_000, 2, 3]);
  t.strictSame(healthOf({}), healthWithDefaults());
  t.end();
});

t.test('every health key in a config document', (t) => {
  t.strictSame(
    healthOf({
      'health-check': 'send',
      'health-expect': '^a1 OK',
      'health-send': 'a1 NOOP\\r\\n',
      'health-interval': '500ms',
      'health-timeout': 300,
      'health-rise': 1,
      'health-fall': '5',
    }),
    { check: 'send', expect: '^a1 OK', send: 'a1 NOOP\r\n', intervalMs: 500, timeoutMs: 300, rise: 1, fall: 5 },
  );
  t.same(issuesOf({ 'health-check': 'send', 'health-expect': '^a1 OK', 'health-send': 'a1 NOOP\\r\\n' }), []);
  t.equal(healthOf({ 'health-send': 'PING\r\n' }).send, 'PING\r\n', 'a YAML double-quoted CR LF arrives as real bytes');
  t.end();
});

t.test('imap/pop3 banner checks expect the greeting unless told otherwise', (t) => {
  t.equal(healthOf({ protocol: 'imap', 'health-check': 'banner' }).expect, '^\\* OK');
  t.equal(healthOf({ protocol: 'pop3', 'health-check': 'banner' }).expect, '^\\+OK');
  t.equal(healthOf({ protocol: 'imap', 'health-check': 'banner', 'health-expect': '^\\* OK \\[' }).expect, '^\\* OK \\[');
  t.equal(healthOf({ protocol: 'imap', 'health-check': 'tcp' }).expect, undefined, 'a tcp check reads nothing');
  t.equal(healthOf({ protocol: 'imap', 'health-check': 'send', 'health-send': 'a NOOP\\r\\n' }).expect, undefined, 'a send check says what it expects');
  t.same(issuesOf({ protocol: 'imap', 'health-check': 'banner', affinity: 'login' }), []);
  t.same(issuesOf({ protocol: 'pop3', 'health-check': 'banner', affinity: 'login' }), []);
  t.end();
});

t.test('bad values are reported at their key with the flag parser\'s message', (t) => {
  t.same(issuesOf({ 'health-check': 'http' }), ['frontends[0].health-check: expected one of none, tcp, banner, send, got "http"']);
  t.same(issuesOf({ 'health-check': 'banner', 'health-expect': '(' }), [
    'frontends[0].health-expect: expected a regular expression (Invalid regular expression: /(/m: Unterminated group), got "("',
  ]);
  t.same(issuesOf({ 'health-check': 'send', 'health-expect': 'x', 'health-send': 'a\\q' }), [
    'frontends[0].health-send: expected at most 1024 printable ASCII characters with \\r, \\n, \\t, \\\\ and \\xHH escapes, got "a\\\\q"',
  ]);
  t.same(issuesOf({ 'health-interval': 'often' }), ['frontends[0].health-interval: expected a duration such as 500ms, 30s, 10m, 1h (a bare number is milliseconds), got "often"']);
  t.same(issuesOf({ 'health-rise': 0, 'health-fall': 101 }), [
    'frontends[0].health-rise: expected a whole number from 1 to 100, got "0"',
    'frontends[0].health-fall: expected a whole number from 1 to 100, got "101"',
  ]);
  t.same(issuesOf({ 'health-expect': ['^x'] }), ['frontends[0].health-expect: expected a string or number, got a list']);
  t.end();
});

t.test('each check kind takes exactly the settings it uses', (t) => {
  t.same(issuesOf({ 'health-expect': '^x' }), ['frontends[0].health-expect: needs --health-check banner or send']);
  t.same(issuesOf({ 'health-check': 'tcp', 'health-expect': '^x' }), ['frontends[0].health-expect: needs --health-check banner or send']);
  t.same(issuesOf({ 'health-check': 'tcp', 'health-send': 'x' }), ['frontends[0].health-send: needs --health-check send']);
  t.same(issuesOf({ 'health-check': 'banner', 'health-expect': '^x', 'health-send': 'x' }), ['frontends[0].health-send: needs --health-check send']);
  t.same(issuesOf({ 'health-check': 'banner' }), ['frontends[0].health-check: --health-check banner needs --health-expect (imap/pop3 frontends default to their greeting)']);
  t.same(issuesOf({ 'health-check': 'send' }), [
    'frontends[0].health-check: --health-check send needs --health-expect',
    'frontends[0].health-check: --health-check send needs --health-send',
  ]);
  t.same(issuesOf({ 'health-check': 'tcp' }), []);
  t.end();
});

t.test('limits: interval at least 50ms, timeout at least 1ms', (t) => {
  t.same(issuesOf({ 'health-check': 'tcp', 'health-interval': '49ms', 'health-timeout': 0 }), [
    'frontends[0].health-interval: must be at least 50ms',
    'frontends[0].health-timeout: must be at least 1ms',
  ]);
  t.same(issuesOf({ 'health-check': 'tcp', 'health-interval': '50ms', 'health-timeout': 1 }), []);
  t.end();
});

t.test('a banner check cannot read a TLS backend', (t) => {
  t.same(issuesOf({ protocol: 'imap', affinity: 'login', 'backend-tls': 'tls', 'backend-insecure': true, 'health-check': 'banner' }), [
    'frontends[0].health-check: a banner check speaks plain text, but --backend-tls tls backends start with a TLS handshake; use --health-check tcp',
  ]);
  t.same(issuesOf({ protocol: 'imap', affinity: 'login', 'backend-tls': 'tls', 'backend-insecure': true, 'health-check': 'tcp' }), []);
  t.same(issuesOf({ protocol: 'imap', affinity: 'login', 'backend-tls': 'starttls', 'backend-insecure': true, 'health-check': 'banner' }), [], 'STARTTLS backends greet in plain text');
  t.end();
});

t.test('backend state: in the string form and as the object key `state`', (t) => {
  const backends = configFromDocument({
    frontends: [
      {
        listen: '127.0.0.1:7000',
        backends: [
          'a=10.0.0.1:1,drain',
          'b=10.0.0.2:1,maint',
          { name: 'c', host: '10.0.0.3', port: 1, state: 'drain=30m' },
          { name: 'd', host: '10.0.0.4', port: 1, state: 'maint', backup: true },
          { name: 'e', host: '10.0.0.5', port: 1, state: 'ready' },
        ],
      },
    ],
  }).config.frontends[0]!.backends;
  t.same(
    backends.map((b) => [b.name, b.admin ?? 'ready', b.drainMs ?? null, b.backup]),
    [
      ['a', 'drain', null, false],
      ['b', 'maint', null, false],
      ['c', 'drain', 1_800_000, false],
      ['d', 'maint', null, true],
      ['e', 'ready', null, false],
    ],
  );
  const bad = (state: unknown): string[] => issuesOf({ backends: [{ host: '10.0.0.1', port: 1, state }] });
  const expected = 'frontends[0].backends[0].state: expected one of ready, drain, drain=DURATION, maint, got';
  t.same(bad('down'), [`${expected} string "down"`]);
  t.same(bad(true), [`${expected} boolean true`]);
  t.same(bad('maint=1s'), [`${expected} string "maint=1s"`]);
  t.same(bad('drain,backup'), [`${expected} string "drain,backup"`], 'no smuggled micro-syntax');
  t.match(bad('drain=0')[0], /^frontends\[0\]\.backends\[0\]: expected drain=DURATION with a duration of at least 1ms/);
  t.end();
});
