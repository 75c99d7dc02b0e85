import t from 'tap';
import { configFromDocument } from '../../lib/config/document.js';
import { frontendWithDefaults } from '../../lib/options/build.js';

const mailWithDefaults = () => frontendWithDefaults({}).mail;
const healthWithDefaults = () => frontendWithDefaults({}).health;
import * as D from '../../lib/config/defaults.js';
import type { FrontendConfig } from '../../lib/config/types.js';

const BACKEND_SYNTAX = '[NAME=]HOST[:PORT][,weight=N][,max-conns=N][,backup][,drain[=DURATION]|,maint]';
const FRONTEND_FIELDS =
  'listen, backends, affinity, balance, affinity-timeout, affinity-max-entries, connect-timeout, idle-timeout, backend-stall-timeout, client-stall-timeout, fin-timeout, retries, hold-down, peek-timeout, insert-cookie, key-module, pools, routes, protocol, tls, tls-cert, tls-key, require-tls, backend-tls, backend-ca, backend-insecure, user-map, user-lookup, user-cache-ttl, login-timeout, login-domain, allow, deny, proxy-protocol, accept-proxy-protocol, trusted-proxies, frontend-max-conns, queue-size, queue-timeout, health-check, health-expect, health-send, health-interval, health-timeout, health-rise, health-fall, name';

/** The issues of `doc`, as `path: message` lines. */
const issuesOf = (doc: unknown): string[] => configFromDocument(doc).issues.map((i) => `${i.path}: ${i.message}`);
/** The issue paths of `doc`. */
const pathsOf = (doc: unknown): string[] => configFromDocument(doc).issues.map((i) => i.path);

const DEFAULTS = {
  affinity: [{ kind: 'none' }],
  balance: 'hash',
  affinityTimeoutMs: D.AFFINITY_TIMEOUT_MS,
  affinityMaxEntries: D.AFFINITY_MAX_ENTRIES,
  connectTimeoutMs: D.CONNECT_TIMEOUT_MS,
  idleTimeoutMs: D.IDLE_TIMEOUT_MS,
  backendStallTimeoutMs: D.BACKEND_STALL_TIMEOUT_MS,
  clientStallTimeoutMs: D.CLIENT_STALL_TIMEOUT_MS,
  finTimeoutMs: D.FIN_TIMEOUT_MS,
  retries: D.RETRIES,
  holdDownMs: D.HOLD_DOWN_MS,
  peekTimeoutMs: D.PEEK_TIMEOUT_MS,
  pools: [],
  routes: [],
  protocol: 'auto',
  mail: mailWithDefaults(),
  allow: [],
  deny: [],
  acceptProxyProtocol: false,
  trustedProxies: [],
  queueSize: D.QUEUE_SIZE,
  queueTimeoutMs: D.QUEUE_TIMEOUT_MS,
  health: healthWithDefaults(),
} as const;

t.test('a full document with two frontends builds the Config, defaults filled in', (t) => {
  const doc = {
    'log-level': 'debug',
    grace: '5s',
    frontends: [
      {
        name: 'imap',
        listen: ['0.0.0.0:143', '[::]:993'],
        backends: [
          'a=10.0.0.1',
          { name: 'b', host: '::1', port: 7002, weight: 3, backup: true },
          { host: '10.0.0.3', port: '7003' },
        ],
        affinity: ['source/24/64'],
        balance: 'leastconn',
        'affinity-timeout': '10m',
        'affinity-max-entries': 500,
        'connect-timeout': 2000,
        'idle-timeout': '2h',
        retries: 0,
        'hold-down': '1.5s',
      },
      { listen: '127.0.0.1:8080-8081', backends: '127.0.0.1:9000', affinity: 'source' },
    ],
  };
  const { config, issues } = configFromDocument(doc);
  t.same(issues, []);
  t.strictSame(config, {
    logLevel: 'debug',
    graceMs: 5_000,
    frontends: [
      {
        name: 'imap',
        listen: [
          { host: '0.0.0.0', portLow: 143, portHigh: 143 },
          { host: '::', portLow: 993, portHigh: 993 },
        ],
        backends: [
          { name: 'a', host: '10.0.0.1', port: undefined, weight: 1, backup: false },
          { name: 'b', host: '::1', port: 7002, weight: 3, backup: true },
          { name: '10.0.0.3:7003', host: '10.0.0.3', port: 7003, weight: 1, backup: false },
        ],
        affinity: [{ kind: 'source', v4Bits: 24, v6Bits: 64 }],
        balance: 'leastconn',
        affinityTimeoutMs: 600_000,
        affinityMaxEntries: 500,
        connectTimeoutMs: 2_000,
        idleTimeoutMs: 7_200_000,
        backendStallTimeoutMs: D.BACKEND_STALL_TIMEOUT_MS,
        clientStallTimeoutMs: D.CLIENT_STALL_TIMEOUT_MS,
        finTimeoutMs: D.FIN_TIMEOUT_MS,
        retries: 0,
        holdDownMs: 1_500,
        peekTimeoutMs: D.PEEK_TIMEOUT_MS,
        pools: [],
        routes: [],
        protocol: 'auto',
        mail: mailWithDefaults(),
        allow: [],
        deny: [],
        acceptProxyProtocol: false,
        trustedProxies: [],
        queueSize: D.QUEUE_SIZE,
        queueTimeoutMs: D.QUEUE_TIMEOUT_MS,
        health: healthWithDefaults(),
      },
      {
        ...DEFAULTS,
        name: 'frontend1',
        listen: [{ host: '127.0.0.1', portLow: 8080, portHigh: 8081 }],
        backends: [{ name: '127.0.0.1:9000', host: '127.0.0.1', port: 9000, weight: 1, backup: false }],
        affinity: [{ kind: 'source', v4Bits: 32, v6Bits: 128 }],
      },
    ],
  });
  t.end();
});

t.test('top-level defaults, and the one unnamed frontend is "default"', (t) => {
  const { config, issues } = configFromDocument({
    frontends: [{ listen: ['127.0.0.1:1'], backends: ['127.0.0.1:2'] }],
  });
  t.same(issues, []);
  t.equal(config.logLevel, 'info');
  t.equal(config.graceMs, D.GRACE_MS);
  t.equal(config.frontends[0]?.name, D.DEFAULT_FRONTEND_NAME);
  t.match(config.frontends[0], DEFAULTS);
  t.end();
});

t.test('frontendWithDefaults fills every field', (t) => {
  const want: FrontendConfig = { ...DEFAULTS, name: 'default', listen: [], backends: [] };
  t.strictSame(frontendWithDefaults({}), want);
  t.equal(frontendWithDefaults({ retries: 0 }).retries, 0, 'zero is a value, not absence');
  t.end();
});

t.test('a document that is not a mapping is one issue at the top level', (t) => {
  t.same(issuesOf([1]), ['(top level): expected a mapping with "frontends", got a list']);
  t.same(issuesOf(null), ['(top level): expected a mapping with "frontends", got null']);
  t.same(issuesOf('frontends'), ['(top level): expected a mapping with "frontends", got string "frontends"']);
  t.same(issuesOf(undefined), ['(top level): expected a mapping with "frontends", got nothing']);
  t.same(configFromDocument(42).config.frontends, []);
  t.end();
});

t.test('frontends must be a list of mappings', (t) => {
  t.same(issuesOf({ frontends: { listen: '127.0.0.1:1' } }), [
    'frontends: expected a list of frontends, got a mapping',
  ]);
  t.same(issuesOf({}), ['frontends: expected a list of frontends, got nothing']);
  t.same(issuesOf({ frontends: [3, null, []] }), [
    'frontends[0]: expected a mapping, got number 3',
    'frontends[1]: expected a mapping, got null',
    'frontends[2]: expected a mapping, got a list',
  ]);
  t.end();
});

t.test('unknown fields are named by path at every level', (t) => {
  t.same(
    issuesOf({
      colour: 'red',
      frontends: [{ listen: '127.0.0.1:1', backends: [{ host: 'h', colour: 'blue' }], colour: 'green' }],
    }),
    [
      'colour: unknown field; expected one of frontends, max-conns, grace, state-file, state-interval, log-level, admin, admin-token-file',
      `frontends[0].colour: unknown field; expected one of ${FRONTEND_FIELDS}`,
      'frontends[0].backends[0].colour: unknown field; expected one of name, host, port, weight, max-conns, backup, state',
    ],
  );
  t.end();
});

t.test("a bad value is reported at its field, with the flag parser's message", (t) => {
  t.same(
    issuesOf({
      'log-level': 'loud',
      grace: '-1s',
      frontends: [
        {
          name: 'bad name',
          listen: ['127.0.0.1:1', '127.0.0.1:65536'],
          backends: ['a=127.0.0.1:1', 'b=127.0.0.1:1,weight=0'],
          affinity: 'snow',
          balance: 'rr',
          'affinity-timeout': '10x',
          'affinity-max-entries': 0,
          'connect-timeout': true,
          'idle-timeout': [],
          retries: 17,
          'hold-down': null,
        },
      ],
    }),
    [
      'grace: expected a duration such as 500ms, 30s, 10m, 1h (a bare number is milliseconds), got "-1s"',
      'log-level: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"',
      'frontends[0].listen[1]: expected ports 1-65535 in HOST:PORT or HOST:PORT-PORT ([::1]:PORT for IPv6), got "127.0.0.1:65536"',
      `frontends[0].backends[1]: expected weight=N with N in 1..1000 in ${BACKEND_SYNTAX}, got "b=127.0.0.1:1,weight=0"`,
      'frontends[0].affinity: expected a comma list of: none, source[/V4BITS[/V6BITS]], sni, tls-session, tls-ticket, http-host, http-header:NAME, http-cookie:NAME, url-param:NAME, xmpp-to, key-module, login, got "snow"',
      'frontends[0].balance: expected one of hash, roundrobin, leastconn, random2, got "rr"',
      'frontends[0].affinity-timeout: expected a duration such as 500ms, 30s, 10m, 1h (a bare number is milliseconds), got "10x"',
      'frontends[0].affinity-max-entries: expected a whole number from 1 to 100000000, got "0"',
      'frontends[0].connect-timeout: expected a string or number, got boolean true',
      'frontends[0].idle-timeout: expected a string or number, got a list',
      'frontends[0].retries: expected a whole number from 0 to 16, got "17"',
      'frontends[0].hold-down: expected a string or number, got null',
      `frontends[0].name: expected a name of letters, digits, '_', '.', '-', got "bad name"`,
    ],
  );
  t.end();
});

t.test('a single listen or backend (not a list) is reported without an index', (t) => {
  t.same(pathsOf({ frontends: [{ listen: '127.0.0.1:x', backends: 'a=' }] }), [
    'frontends[0].listen',
    'frontends[0].backends',
  ]);
  t.end();
});

t.test('issues in the second frontend carry its index', (t) => {
  const ok = { listen: '127.0.0.1:1', backends: ['a=127.0.0.1:2'] };
  t.same(pathsOf({ frontends: [ok, { ...ok, backends: [{ host: 'h', weight: 0 }] }] }), [
    'frontends[1].backends[0].weight',
  ]);
  t.end();
});

t.test('backend object form: {name, host, port, weight, backup}', (t) => {
  const built = (b: unknown) => configFromDocument({ frontends: [{ listen: '127.0.0.1:1', backends: [b] }] });
  t.same(
    built({ name: 'x', host: '2001:db8::1', port: 25, weight: '4', backup: false }).config.frontends[0]?.backends,
    [{ name: 'x', host: '2001:db8::1', port: 25, weight: 4, backup: false }],
  );
  t.same(built({ host: 'mail.example.com' }).config.frontends[0]?.backends, [
    { name: 'mail.example.com', host: 'mail.example.com', port: undefined, weight: 1, backup: false },
  ]);
  const issues = (b: unknown): string[] => built(b).issues.map((i) => `${i.path}: ${i.message}`);
  const at = 'frontends[0].backends[0]';
  t.same(issues({ host: 'h', weight: 0 }), [`${at}.weight: expected a whole number from 1 to 1000, got "0"`]);
  t.same(issues({ host: 'h', weight: 1001 }), [`${at}.weight: expected a whole number from 1 to 1000, got "1001"`]);
  t.same(issues({ host: 'h', weight: 1.5 }), [`${at}.weight: expected a whole number from 1 to 1000, got "1.5"`]);
  t.same(issues({ host: 'h', port: 0 }), [`${at}.port: expected a whole number from 1 to 65535, got "0"`]);
  t.same(issues({ host: 'h', port: 65536 }), [`${at}.port: expected a whole number from 1 to 65535, got "65536"`]);
  t.same(issues({ host: 'h', port: [1] }), [`${at}.port: expected a number, got a list`]);
  t.same(issues({ host: 'h', weight: { n: 1 } }), [`${at}.weight: expected a number, got a mapping`]);
  t.same(issues({ port: 1 }), [`${at}.host: expected a host name or IP address, got nothing`]);
  t.same(issues({ host: 5 }), [`${at}.host: expected a host name or IP address, got number 5`]);
  t.same(issues({ host: 'h', name: 3 }), [`${at}.name: expected a string, got number 3`]);
  t.same(issues({ host: 'h', backup: 'yes' }), [`${at}.backup: expected true or false, got string "yes"`]);
  t.same(issues({ host: 'bad_host' }), [`${at}: expected ${BACKEND_SYNTAX}, got "bad_host"`]);
  t.same(issues({ host: 'h', name: 'bad name' }), [
    `${at}: expected a NAME of letters, digits, '_', '.', '-' in ${BACKEND_SYNTAX}, got "bad name=h"`,
  ]);
  t.end();
});

t.test('backend object fields cannot smuggle in micro-syntax', (t) => {
  const issues = (b: unknown): string[] =>
    configFromDocument({ frontends: [{ listen: '127.0.0.1:1', backends: [b] }] }).issues.map((i) => i.path);
  t.same(issues({ host: 'h,backup' }), ['frontends[0].backends[0].host']);
  t.same(issues({ host: 'x=10.0.0.1' }), ['frontends[0].backends[0].host']);
  t.same(issues({ host: 'h', port: '1,backup' }), ['frontends[0].backends[0].port']);
  t.same(issues({ host: 'h', weight: '2,backup' }), ['frontends[0].backends[0].weight']);
  t.end();
});

t.test('affinity may be a list or a comma string', (t) => {
  const chain = (a: unknown) =>
    configFromDocument({ frontends: [{ listen: '127.0.0.1:1', backends: 'h', affinity: a }] }).config.frontends[0]
      ?.affinity;
  const want = [{ kind: 'source', v4Bits: 24, v6Bits: 128 }, { kind: 'none' }];
  t.same(chain(['source/24', 'none']), want);
  t.same(chain('source/24,none'), want);
  t.end();
});

t.test('PROXY protocol keys', (t) => {
  const { config, issues } = configFromDocument({
    frontends: [{ listen: ['127.0.0.1:1'], backends: ['127.0.0.1:2'], 'proxy-protocol': 'v1', 'accept-proxy-protocol': true, 'trusted-proxies': ['10.0.0.0/8', '192.0.2.1'] }],
  });
  t.same(issues, []);
  t.match(config.frontends[0], { proxyProtocol: 'v1', acceptProxyProtocol: true, trustedProxies: ['10.0.0.0/8', '192.0.2.1/32'] });
  const bad = configFromDocument({ frontends: [{ listen: ['127.0.0.1:1'], backends: ['127.0.0.1:2'], 'proxy-protocol': 'v3', 'accept-proxy-protocol': 'yes', 'trusted-proxies': 'nope' }] });
  t.same(bad.issues.map((i) => i.path), ['frontends[0].proxy-protocol', 'frontends[0].accept-proxy-protocol', 'frontends[0].trusted-proxies']);
  t.end();
});

t.test('state-file and state-interval are top-level keys next to log-level and grace', (t) => {
  const fe = { listen: '127.0.0.1:1', backends: '127.0.0.1:2' };
  const { config, issues } = configFromDocument({ 'state-file': '/var/lib/tether/state.json', 'state-interval': '30s', frontends: [fe] });
  t.same(issues, []);
  t.equal(config.stateFile, '/var/lib/tether/state.json');
  t.equal(config.stateIntervalMs, 30_000);
  const none = configFromDocument({ frontends: [fe] }).config;
  t.notOk('stateFile' in none || 'stateIntervalMs' in none, 'absent unless given');
  t.same(issuesOf({ 'state-file': '', 'state-interval': 'often', frontends: [fe] }), [
    'state-file: expected a file path, got string ""',
    'state-interval: expected a duration such as 500ms, 30s, 10m, 1h (a bare number is milliseconds), got "often"',
  ]);
  t.same(issuesOf({ 'state-file': ['a'], frontends: [fe] }), ['state-file: expected a file path, got a list']);
  t.end();
});
