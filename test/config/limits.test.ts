// Limit settings: `max-conns=N` in a backend spec, `--max-conns` (top level), and the frontend's
// `frontend-max-conns`, `queue-size`, `queue-timeout`, through the flag parsers, the config
// document and validation.
import t from 'tap';
import { parseBackend, parseListen } from '../helpers/parse.js';
import { parseBackend as readBackend } from '../../lib/options/parse.js';
import { configFromDocument } from '../../lib/config/document.js';
import { frontendWithDefaults } from '../../lib/options/build.js';
import * as D from '../../lib/config/defaults.js';
import { validateConfig } from '../../lib/config/validate.js';

const SYNTAX = '[NAME=]HOST[:PORT][,weight=N][,max-conns=N][,backup][,drain[=DURATION]|,maint]';

/** The message parseBackend rejects `text` with, or 'ok'. */
function backendError(text: string): string {
  const p = readBackend(text);
  return p.ok ? 'ok' : p.message;
}

t.test('parseBackend: max-conns=N with other options, in any order', (t) => {
  t.same(parseBackend('a=127.0.0.1:7001,max-conns=100'), { name: 'a', host: '127.0.0.1', port: 7001, weight: 1, backup: false, maxConns: 100 });
  t.same(parseBackend('a=127.0.0.1:7001,weight=2,max-conns=1,backup'), { name: 'a', host: '127.0.0.1', port: 7001, weight: 2, backup: true, maxConns: 1 });
  t.same(parseBackend('b=10.0.0.2,backup,max-conns=10000000'), { name: 'b', host: '10.0.0.2', port: undefined, weight: 1, backup: true, maxConns: D.MAX_CONNS_LIMIT });
  t.notOk('maxConns' in parseBackend('a=127.0.0.1:7001'), 'no max-conns: no field (no limit)');
  t.end();
});

t.test('parseBackend: a bad max-conns names the option and its range', (t) => {
  const range = `expected max-conns=N with N in 1..${String(D.MAX_CONNS_LIMIT)} in ${SYNTAX}`;
  for (const bad of ['0', '10000001', '', '-1', '1.5', 'many', '99999999999']) {
    const text = `a=127.0.0.1:7001,max-conns=${bad}`;
    t.equal(backendError(text), `${range}, got ${JSON.stringify(text)}`, bad);
  }
  t.equal(backendError('a=127.0.0.1:7001,maxconn=5'), `expected ${SYNTAX}, got "a=127.0.0.1:7001,maxconn=5"`, "HAProxy's spelling is not ours");
  t.end();
});

t.test('config document: top-level max-conns, frontend limits, backend max-conns (string and object form)', (t) => {
  const { config, issues } = configFromDocument({
    'max-conns': 5000,
    frontends: [
      {
        listen: '127.0.0.1:1',
        backends: ['a=127.0.0.1:2,max-conns=3', { name: 'b', host: '127.0.0.1', port: 3, 'max-conns': '4' }],
        'frontend-max-conns': 200,
        'queue-size': 0,
        'queue-timeout': '1.5s',
        pools: { p: { backends: [{ name: 'c', host: '127.0.0.1', port: 4, 'max-conns': 7 }] } },
      },
    ],
  });
  t.same(issues, []);
  t.equal(config.maxConns, 5000);
  const fe = config.frontends[0]!;
  t.equal(fe.maxConns, 200);
  t.equal(fe.queueSize, 0, 'zero is a value: nobody waits');
  t.equal(fe.queueTimeoutMs, 1_500);
  t.same(fe.backends.map((b) => b.maxConns), [3, 4]);
  t.equal(fe.pools[0]?.backends[0]?.maxConns, 7);
  t.end();
});

t.test('config document: defaults are no limits, a 128-client queue, 5 s', (t) => {
  const { config } = configFromDocument({ frontends: [{ listen: '127.0.0.1:1', backends: 'h' }] });
  t.notOk('maxConns' in config);
  const fe = config.frontends[0]!;
  t.notOk('maxConns' in fe);
  t.equal(fe.queueSize, 128);
  t.equal(fe.queueTimeoutMs, 5_000);
  t.end();
});

t.test('config document: bad limit values are reported with their field paths', (t) => {
  const issues = configFromDocument({
    'max-conns': 0,
    frontends: [
      {
        listen: '127.0.0.1:1',
        backends: [{ host: 'h', 'max-conns': 0 }, { host: 'i', 'max-conns': [1] }, 'j,max-conns=x'],
        'frontend-max-conns': -5,
        'queue-size': 100_001,
        'queue-timeout': 'soon',
        'max-conns': 10,
      },
    ],
  }).issues.map((i) => `${i.path}: ${i.message}`);
  const at = 'frontends[0]';
  t.same(issues.sort(), [
    `${at}.backends[0].max-conns: expected a whole number from 1 to 10000000, got "0"`,
    `${at}.backends[1].max-conns: expected a number, got a list`,
    `${at}.backends[2]: expected max-conns=N with N in 1..10000000 in ${SYNTAX}, got "j,max-conns=x"`,
    `${at}.frontend-max-conns: expected a whole number from 1 to 10000000, got "-5"`,
    `${at}.max-conns: unknown field; expected one of listen, backends, affinity, balance, affinity-timeout, affinity-max-entries, connect-timeout, idle-timeout, backend-stall-timeout, client-stall-timeout, fin-timeout, retries, hold-down, peek-timeout, insert-cookie, key-module, pools, routes, protocol, tls, tls-cert, tls-key, require-tls, backend-tls, backend-ca, backend-insecure, user-map, user-lookup, user-cache-ttl, login-timeout, login-domain, allow, deny, proxy-protocol, accept-proxy-protocol, trusted-proxies, frontend-max-conns, queue-size, queue-timeout, health-check, health-expect, health-send, health-interval, health-timeout, health-rise, health-fall, name`,
    `${at}.queue-size: expected a whole number from 0 to 100000, got "100001"`,
    `${at}.queue-timeout: expected a duration such as 500ms, 30s, 10m, 1h (a bare number is milliseconds), got "soon"`,
    'max-conns: expected a whole number from 1 to 10000000, got "0"',
  ].sort());
  t.end();
});

t.test('validate: queue-timeout must be at least 1ms', (t) => {
  const fe = frontendWithDefaults({ listen: [parseListen('127.0.0.1:7000')], backends: [parseBackend('a=10.0.0.1:7001,max-conns=1')], queueTimeoutMs: 0 });
  t.same(
    validateConfig({ logLevel: 'info', graceMs: 1_000, frontends: [fe] }).map((i) => `${i.path}: ${i.message}`),
    ['frontends[0].queue-timeout: must be at least 1ms'],
  );
  t.end();
});
