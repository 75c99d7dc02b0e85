// The option table row by row: every file key refuses a wrong type at its own path, every flag
// refuses a bad value with the flag's own line, every shown default reads back as the default,
// and a frontend with no settings is exactly the table's defaults.
import t from 'tap';
import { configFromDocument } from '../../lib/config/document.js';
import * as D from '../../lib/config/defaults.js';
import { attributeOf, configFromFlags, flagPath, frontendWithDefaults, reported } from '../../lib/options/build.js';
import { OPTIONS } from '../../lib/options/table.js';

const BASE = { listen: '127.0.0.1:7000', backends: ['a=10.0.0.1:7001'] };

t.test('a frontend with no settings is the defaults', (t) => {
  t.strictSame(frontendWithDefaults({}), {
    name: 'default', listen: [], backends: [], affinity: [{ kind: 'none' }], balance: 'hash',
    affinityTimeoutMs: D.AFFINITY_TIMEOUT_MS, affinityMaxEntries: D.AFFINITY_MAX_ENTRIES, connectTimeoutMs: D.CONNECT_TIMEOUT_MS,
    idleTimeoutMs: D.IDLE_TIMEOUT_MS, backendStallTimeoutMs: D.BACKEND_STALL_TIMEOUT_MS, clientStallTimeoutMs: D.CLIENT_STALL_TIMEOUT_MS,
    finTimeoutMs: D.FIN_TIMEOUT_MS, retries: D.RETRIES, holdDownMs: D.HOLD_DOWN_MS, peekTimeoutMs: D.PEEK_TIMEOUT_MS,
    pools: [], routes: [], protocol: 'auto',
    mail: { tls: 'none', requireTls: false, backendTls: 'none', backendVerify: true, userCacheTtlMs: D.USER_CACHE_TTL_MS, loginTimeoutMs: D.LOGIN_TIMEOUT_MS, loginDomain: 'keep' },
    allow: [], deny: [], acceptProxyProtocol: false, trustedProxies: [], queueSize: D.QUEUE_SIZE, queueTimeoutMs: D.QUEUE_TIMEOUT_MS,
    health: { check: 'none', intervalMs: D.HEALTH_INTERVAL_MS, timeoutMs: D.HEALTH_TIMEOUT_MS, rise: D.HEALTH_RISE, fall: D.HEALTH_FALL },
  });
  t.strictSame(configFromFlags({}).config.frontends[0], frontendWithDefaults({}), 'no flags: the same defaults');
  t.end();
});

t.test('every file key refuses a wrong type at its own path', (t) => {
  for (const row of OPTIONS) {
    if (row.key === undefined) continue;
    const doc = row.scope === 'global' ? { [row.key]: [[]], frontends: [BASE] } : { frontends: [{ ...BASE, [row.key]: [[]] }] };
    const at = row.scope === 'global' ? row.key : `frontends[0].${row.key}`;
    const { issues } = configFromDocument(doc);
    t.equal(issues.length, 1, `${row.key}: one issue (${JSON.stringify(issues)})`);
    t.ok(issues[0]?.path.startsWith(at), `${row.key}: at ${at} (${issues[0]?.path ?? 'none'})`);
    t.match(issues[0]?.message, /^expected /, `${row.key}: says what it expected`);
  }
  t.end();
});

t.test('every flag with a value refuses a bad one with its own line, and says nothing else', (t) => {
  for (const row of OPTIONS) {
    if (row.flag === undefined || row.flags?.includes('<') !== true || row.scope === 'cli' || row.takesFile) continue;
    const bad = '\u0001(';
    const attr = attributeOf(row.flag);
    const raw = { listen: ['127.0.0.1:7000'], backend: ['a=10.0.0.1:7001'], [attr]: row.repeatable ? [bad] : bad };
    const { issues } = configFromFlags(raw);
    // A free-text value (none today but the file paths, skipped above) would parse; every other refuses.
    t.same(issues.map((i) => i.line), [`option '${row.flags}' argument '${bad}' is invalid. ${issues[0]?.message ?? ''}`], row.flag);
    t.match(issues[0]?.message, /^expected .*, got "\\u0001\("$/, `${row.flag}: says what it expected`);
  }
  t.end();
});

t.test('every default as --help shows it reads back as that default', (t) => {
  const defaults = frontendWithDefaults({});
  for (const row of OPTIONS) {
    if (row.key === undefined || row.defaultText === undefined || row.defaultText === 'no limit' || row.scope !== 'frontend') continue;
    const { config, issues } = configFromDocument({ frontends: [{ [row.key]: row.defaultText }] });
    t.same(issues, [], `${row.key}: ${row.defaultText} parses`);
    t.strictSame(config.frontends[0], defaults, `${row.key}: ${row.defaultText} is the default`);
  }
  t.end();
});

t.test('flag names in messages come from the table', (t) => {
  t.equal(flagPath('frontends[0].backends[1]'), '--backend #2');
  t.equal(flagPath('frontends[0].trusted-proxies'), '--trusted-proxy');
  t.equal(flagPath('frontends[0].health-expect'), '--health-expect');
  t.equal(flagPath('state-interval'), '--state-interval');
  t.equal(flagPath('frontends[0].pools.x.backends'), 'pools.x.backends', 'a file-only key stays a key');
  t.end();
});

t.test('a cross-field problem that follows from a value problem is not reported again', (t) => {
  const value = { path: 'frontends[0].health-expect', message: 'expected a regular expression', line: 'x' };
  const cross = [
    { path: 'frontends[0].health-check', message: '--health-check banner needs --health-expect (imap/pop3 frontends default to their greeting)' },
    { path: 'frontends[0].backends', message: 'at least one backend is required' },
    { path: 'frontends[1].health-check', message: '--health-check banner needs --health-expect' },
  ];
  t.same(reported([value], cross), [value, cross[1], cross[2]], 'same frontend and flag: dropped; others kept');
  const item = { path: 'frontends[0].backends[0]', message: 'expected a port' };
  t.same(reported([item], [{ path: 'frontends[0].backends', message: 'at least one backend is required' }]), [item], 'the list of a bad item');
  t.same(reported([{ path: '(top level)', message: 'expected a mapping' }], [{ path: 'frontends', message: 'at least one frontend is required' }]).length, 1);
  t.end();
});
