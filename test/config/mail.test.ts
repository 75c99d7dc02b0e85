// Mail options through the flag parsers and validate.ts: every misuse is one named issue.
import t from 'tap';
import { parseAffinityChain, parseBackend, parseListen, parseLookupUrl } from '../helpers/parse.js';
import { frontendWithDefaults } from '../../lib/options/build.js';
import type { FrontendDraft } from '../../lib/options/table.js';
import { validateConfig } from '../../lib/config/validate.js';

const fe = (d: FrontendDraft) =>
  frontendWithDefaults({ listen: [parseListen('127.0.0.1:7000')], backends: [parseBackend('a=10.0.0.1:143')], ...d });
const issuesOf = (d: FrontendDraft): string[] =>
  validateConfig({ logLevel: 'info', graceMs: 1_000, frontends: [fe(d)] }).map((i) => `${i.path}: ${i.message}`);

t.test('a valid imap frontend has no issues', (t) => {
  t.same(issuesOf({ protocol: 'imap', affinity: parseAffinityChain('login'), mail: { tls: 'starttls', tlsCert: 'c.pem', tlsKey: 'k.pem', requireTls: true } }), []);
  t.end();
});

t.test('login needs a mail protocol; peeking kinds, routes and insert-cookie do not fit one', (t) => {
  t.same(issuesOf({ affinity: parseAffinityChain('login') }), ['frontends[0].affinity: "login" needs --protocol imap or pop3']);
  t.same(issuesOf({ protocol: 'pop3', affinity: parseAffinityChain('sni,login') }), [
    `frontends[0].affinity: "sni" reads the client's first bytes, but with --protocol pop3 tether speaks first`,
  ]);
  t.same(issuesOf({ protocol: 'imap', affinity: parseAffinityChain('login'), routes: [{ pool: 'default', protocol: 'tls' }] }), [
    'frontends[0].routes: routes need --protocol auto (imap/pop3 do not peek)',
  ]);
  t.same(issuesOf({ protocol: 'imap', affinity: parseAffinityChain('login'), insertCookie: 'T' }), [
    'frontends[0].insert-cookie: insert-cookie is for HTTP frontends',
  ]);
  t.end();
});

t.test('mail-only options on an auto frontend are refused, each by name', (t) => {
  t.same(issuesOf({ mail: { tls: 'implicit', tlsCert: 'c', tlsKey: 'k', backendTls: 'tls', userMap: 'm' } }), [
    'frontends[0].tls: only for --protocol imap or pop3',
    'frontends[0].backend-tls: only for --protocol imap or pop3',
    'frontends[0].user-map: only for --protocol imap or pop3',
    'frontends[0].affinity: a user directory (--user-map, --user-lookup) needs "login" in the chain',
  ]);
  t.end();
});

t.test('TLS options need each other', (t) => {
  t.same(issuesOf({ protocol: 'imap', affinity: parseAffinityChain('login'), mail: { tls: 'implicit' } }), [
    'frontends[0].tls: --tls implicit needs --tls-cert and --tls-key',
  ]);
  t.same(issuesOf({ protocol: 'imap', affinity: parseAffinityChain('login'), mail: { requireTls: true } }), [
    'frontends[0].require-tls: needs --tls starttls or implicit',
  ]);
  t.end();
});

t.test('--user-lookup takes only http(s) URLs', (t) => {
  t.equal(parseLookupUrl('http://127.0.0.1:8080/lookup'), 'http://127.0.0.1:8080/lookup');
  for (const bad of ['ftp://x/', 'not a url', '']) {
    t.throws(() => parseLookupUrl(bad), { message: `expected an http:// or https:// URL, got ${JSON.stringify(bad)}` }, bad);
  }
  t.end();
});
