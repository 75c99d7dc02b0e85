// Config documents with pools, routes and the peek-related keys; then the cross-field rules.
import t, { type Test } from 'tap';
import { parseBackend, parseListen } from '../helpers/parse.js';
import { configFromDocument } from '../../lib/config/document.js';
import { frontendWithDefaults } from '../../lib/options/build.js';
import { PEEK_TIMEOUT_MS } from '../../lib/config/defaults.js';
import type { Config, FrontendConfig, PoolConfig } from '../../lib/config/types.js';
import { validateConfig } from '../../lib/config/validate.js';
import { selectPool } from '../../lib/place/route.js';

/** One frontend document with a usable listen and backend, plus `extra` keys. */
const doc = (extra: Record<string, unknown>): unknown => ({
  frontends: [{ listen: '127.0.0.1:7000', backends: ['a=10.0.0.1:7001'], ...extra }],
});

const issuesOf = (d: unknown): string[] => configFromDocument(d).issues.map((i) => `${i.path}: ${i.message}`);

/** The document's frontend; fails the test on any document issue. */
function frontendOf(t: Test, d: unknown): FrontendConfig {
  const { config, issues } = configFromDocument(d);
  t.same(issues, [], 'the document parses');
  const fe = config.frontends[0];
  if (!fe) throw new Error('no frontend');
  return fe;
}

/** Parse then validate, as the CLI does: every issue of both layers. */
function allIssuesOf(d: unknown): string[] {
  const { config, issues } = configFromDocument(d);
  return [...issues, ...validateConfig(config)].map((i) => `${i.path}: ${i.message}`);
}

const pool = (name: string, backends: string[], balance: PoolConfig['balance'] = 'hash'): PoolConfig => ({ name, backends: backends.map(parseBackend), balance });
const validate = (fe: FrontendConfig): string[] =>
  validateConfig({ logLevel: 'info', graceMs: 1_000, frontends: [fe] } satisfies Config).map((i) => `${i.path}: ${i.message}`);
/** A usable frontend with `pools` (which a document, being a mapping, cannot repeat). */
const fe = (pools: PoolConfig[]): FrontendConfig =>
  frontendWithDefaults({ listen: [parseListen('127.0.0.1:7000')], backends: [parseBackend('a=10.0.0.1:7001')], pools });

t.test('pools and routes parse into the Config', (t) => {
  const got = frontendOf(
    t,
    doc({
      pools: {
        mail: { backends: ['m1=10.0.1.1:993', { name: 'm2', host: '10.0.1.2', port: 993, backup: true }], balance: 'leastconn' },
        web: { backends: 'w1=10.0.2.1:443' },
      },
      routes: [
        { pool: 'mail', protocol: 'tls', sni: 'Mail.Example.COM' },
        { pool: 'web', sni: '*.example.com', alpn: 'h2' },
        { pool: 'web', 'http-host': '*.example.org' },
        { pool: 'default', protocol: 'ssh' },
      ],
    }),
  );
  t.strictSame(got.pools, [
    {
      name: 'mail',
      backends: [
        { name: 'm1', host: '10.0.1.1', port: 993, weight: 1, backup: false },
        { name: 'm2', host: '10.0.1.2', port: 993, weight: 1, backup: true },
      ],
      balance: 'leastconn',
    },
    { name: 'web', backends: [{ name: 'w1', host: '10.0.2.1', port: 443, weight: 1, backup: false }], balance: 'hash' },
  ]);
  t.strictSame(got.routes, [
    { pool: 'mail', protocol: 'tls', sni: 'mail.example.com' },
    { pool: 'web', sni: '*.example.com', alpn: 'h2' },
    { pool: 'web', httpHost: '*.example.org' },
    { pool: 'default', protocol: 'ssh' },
  ]);
  t.same(validateConfig({ logLevel: 'info', graceMs: 1_000, frontends: [got] }), [], 'and validate');
  t.end();
});

t.test('peek-timeout, insert-cookie and key-module keys', (t) => {
  const got = frontendOf(t, doc({ 'peek-timeout': '500ms', 'insert-cookie': 'SRV', 'key-module': './keys.mjs' }));
  t.equal(got.peekTimeoutMs, 500);
  t.equal(got.insertCookie, 'SRV');
  t.equal(got.keyModule, './keys.mjs');
  const defaults = frontendOf(t, doc({}));
  t.equal(defaults.peekTimeoutMs, PEEK_TIMEOUT_MS);
  t.notOk('insertCookie' in defaults, 'no insert-cookie unless given');
  t.notOk('keyModule' in defaults, 'no key-module unless given');
  t.same(issuesOf(doc({ 'peek-timeout': 'soon' })).map((i) => i.split(':')[0]), ['frontends[0].peek-timeout']);
  t.same(issuesOf(doc({ 'insert-cookie': 'bad name;' })), ['frontends[0].insert-cookie: expected a cookie name (letters, digits and !#$%&\'*+.^_`|~-), got "bad name;"']);
  t.same(issuesOf(doc({ 'key-module': '' })), ['frontends[0].key-module: expected a file path, got string ""']);
  t.same(issuesOf(doc({ 'key-module': 3 })), ['frontends[0].key-module: expected a file path, got number 3']);
  t.end();
});

t.test('route problems name their field', (t) => {
  t.same(issuesOf(doc({ routes: [{ pool: 'default', protocol: 'smtp' }] })), [
    'frontends[0].routes[0].protocol: expected one of tls, http, xmpp, ssh, unknown, got string "smtp"',
    'frontends[0].routes[0]: a route needs at least one of protocol, sni, alpn, http-host',
  ]);
  t.same(issuesOf(doc({ routes: [{ pool: 'default' }] })), ['frontends[0].routes[0]: a route needs at least one of protocol, sni, alpn, http-host']);
  t.same(issuesOf(doc({ routes: [{ pool: 'default', sni: 'a.*.com' }] })), [
    'frontends[0].routes[0].sni: expected a host name or *.domain, got "a.*.com"',
    'frontends[0].routes[0]: a route needs at least one of protocol, sni, alpn, http-host',
  ]);
  t.same(issuesOf(doc({ routes: [{ pool: 'default', protocol: 'tls', 'http-host': 'h:80' }] })), ['frontends[0].routes[0].http-host: expected a host name or *.domain, got "h:80"']);
  t.same(issuesOf(doc({ routes: [{ protocol: 'tls' }] })), ['frontends[0].routes[0].pool: expected a pool name, got nothing']);
  t.same(issuesOf(doc({ routes: [{ pool: 'default', protocol: 'tls', alpn: '' }] })), ['frontends[0].routes[0].alpn: expected a protocol name such as h2, got string ""']);
  t.same(issuesOf(doc({ routes: [{ pool: 'default', protocol: 'tls', port: 1 }] })), ['frontends[0].routes[0].port: unknown field; expected one of pool, protocol, sni, alpn, http-host']);
  t.same(issuesOf(doc({ routes: ['default'] })), ['frontends[0].routes[0]: expected a mapping, got string "default"']);
  t.same(issuesOf(doc({ routes: { pool: 'default' } })), ['frontends[0].routes: expected a list of routes, got a mapping']);
  t.end();
});

t.test('a trailing dot in a host pattern is dropped, so it matches SNI and Host as peeked', (t) => {
  const got = frontendOf(t, doc({ routes: [{ pool: 'default', sni: 'Mail.Example.com.' }, { pool: 'default', 'http-host': '*.example.org.' }] }));
  t.strictSame(got.routes, [
    { pool: 'default', sni: 'mail.example.com' },
    { pool: 'default', httpHost: '*.example.org' },
  ]);
  // The ClientHello parser drops the dot from the SNI it reports (client-hello.ts).
  const routes = [{ pool: 'mail', sni: got.routes[0]?.sni ?? '' }];
  const tls = { legacyVersion: 0x0303, sessionId: '', sni: 'mail.example.com', alpn: [], supportedVersions: [], pskIdentities: [] };
  t.equal(selectPool(routes, { protocol: 'tls', tls }), 'mail');
  t.same(issuesOf(doc({ routes: [{ pool: 'default', sni: 'example.com..' }] })).slice(0, 1), ['frontends[0].routes[0].sni: expected a host name or *.domain, got "example.com.."']);
  t.same(issuesOf(doc({ routes: [{ pool: 'default', sni: '*.' }] })).slice(0, 1), ['frontends[0].routes[0].sni: expected a host name or *.domain, got "*."']);
  t.end();
});

t.test('pool problems name their field', (t) => {
  t.same(issuesOf(doc({ pools: { web: ['w1=10.0.0.2'] } })), ['frontends[0].pools.web: expected a mapping with backends, got a list']);
  t.same(issuesOf(doc({ pools: [{ backends: ['w1=10.0.0.2'] }] })), ['frontends[0].pools: expected a mapping of pool names to pools, got a list']);
  t.same(issuesOf(doc({ pools: { web: { backends: ['w1=10.0.0.2'], weight: 2 } } })), ['frontends[0].pools.web.weight: unknown field; expected one of backends, balance']);
  t.same(issuesOf(doc({ pools: { web: { backends: ['w1=10.0.0.2'], balance: 'fastest' } } })), ['frontends[0].pools.web.balance: expected one of hash, roundrobin, leastconn, random2, got "fastest"']);
  t.same(issuesOf(doc({ pools: { web: { backends: ['w1=10.0.0.2', 'w2=nope:99999'] } } })).map((i) => i.split(': ')[0]), ['frontends[0].pools.web.backends[1]']);
  t.same(issuesOf(doc({ pools: { 'bad name': { backends: ['w1=10.0.0.2'] } } })), ['frontends[0].pools.bad name: a pool name is letters, digits, "_", ".", "-"']);
  t.end();
});

t.test('validate: routes must name a pool that exists', (t) => {
  t.same(allIssuesOf(doc({ routes: [{ pool: 'nope', protocol: 'tls' }] })), ['frontends[0].routes[0].pool: no pool named "nope"']);
  t.same(allIssuesOf(doc({ pools: { web: { backends: ['w=10.0.0.2:80'] } }, routes: [{ pool: 'web', protocol: 'http' }, { pool: 'default', protocol: 'tls' }] })), [], 'a pool, and default');
  t.end();
});

t.test('validate: pool names are unique and "default" is taken', (t) => {
  t.same(validate(fe([pool('web', ['w=10.0.0.2:80']), pool('web', ['x=10.0.0.3:80'])])), ['frontends[0].pools.web: duplicate pool name "web" ("default" is the frontend\'s own backends)']);
  t.same(allIssuesOf(doc({ pools: { default: { backends: ['w=10.0.0.2:80'] } } })), ['frontends[0].pools.default: duplicate pool name "default" ("default" is the frontend\'s own backends)']);
  t.end();
});

t.test('validate: a pool needs a primary backend, each named once', (t) => {
  t.same(allIssuesOf(doc({ pools: { web: {} } })), ['frontends[0].pools.web.backends: at least one backend is required']);
  t.same(allIssuesOf(doc({ pools: { web: { backends: ['w1=10.0.0.2:80,backup', 'w2=10.0.0.3:80,backup'] } } })), [
    'frontends[0].pools.web.backends: every backend is marked backup; at least one must be a primary',
  ]);
  t.same(validate(fe([pool('web', ['w=10.0.0.2:80', 'w=10.0.0.3:80'])])), ['frontends[0].pools.web.backends[1]: duplicate backend name "w"']);
  t.end();
});

t.test('validate: insert-cookie may not be an http-cookie key name', (t) => {
  t.same(allIssuesOf(doc({ 'insert-cookie': 'SID', affinity: 'http-cookie:SID,source' })), [
    'frontends[0].insert-cookie: "SID" is also an http-cookie key; tether\'s inserted cookie needs a name of its own',
  ]);
  t.same(allIssuesOf(doc({ 'insert-cookie': 'SRV', affinity: 'http-cookie:SID,source' })), [], 'a different name');
  t.same(allIssuesOf(doc({ 'insert-cookie': 'SID', affinity: 'http-header:SID' })), [], 'only cookies clash');
  t.end();
});
