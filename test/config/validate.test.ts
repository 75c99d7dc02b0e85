import t from 'tap';
import { parseBackend, parseListen } from '../helpers/parse.js';
import { frontendWithDefaults } from '../../lib/options/build.js';
import type { FrontendDraft } from '../../lib/options/table.js';
import { MAX_PORT_RANGE, MIN_STATE_INTERVAL_MS } from '../../lib/config/defaults.js';
import type { AffinityStep, Config, FrontendConfig } from '../../lib/config/types.js';
import { deepFreeze, validateConfig } from '../../lib/config/validate.js';

interface Spec {
  name?: string;
  listen?: string[];
  backends?: string[];
  affinity?: AffinityStep[];
}

/** A frontend from flag spellings; listen and backends default to a usable pair. */
function fe(s: Spec = {}): FrontendConfig {
  const d: FrontendDraft = {
    listen: (s.listen ?? ['127.0.0.1:7000']).map(parseListen),
    backends: (s.backends ?? ['a=10.0.0.1:7001']).map(parseBackend),
  };
  if (s.name !== undefined) d.name = s.name;
  if (s.affinity !== undefined) d.affinity = s.affinity;
  return frontendWithDefaults(d);
}

const config = (...frontends: FrontendConfig[]): Config => ({ logLevel: 'info', graceMs: 1_000, frontends });
const issuesOf = (...frontends: FrontendConfig[]): string[] =>
  validateConfig(config(...frontends)).map((i) => `${i.path}: ${i.message}`);

const SOURCE: AffinityStep = { kind: 'source', v4Bits: 32, v6Bits: 128 };

t.test('a usable config has no issues', (t) => {
  t.same(issuesOf(fe()), []);
  t.same(
    issuesOf(
      fe({
        name: 'one',
        listen: ['0.0.0.0:143', '[::1]:993'],
        backends: ['a=10.0.0.1', 'b=10.0.0.2,backup'],
        affinity: [SOURCE],
      }),
      fe({ name: 'two', listen: ['127.0.0.1:8080-8090'], backends: ['127.0.0.1:9000', '127.0.0.1:9001'] }),
    ),
    [],
  );
  t.same(
    issuesOf(
      fe({ listen: ['127.0.0.1:0'], backends: ['a=127.0.0.1:7001'] }),
      fe({ name: 'x', listen: ['127.0.0.1:0'] }),
    ),
    [],
    'port 0 listeners never clash',
  );
  t.end();
});

t.test('no frontends, no listen, no backends', (t) => {
  t.same(issuesOf(), ['frontends: at least one frontend is required']);
  t.same(issuesOf(frontendWithDefaults({})), [
    'frontends[0].listen: at least one listen address is required',
    'frontends[0].backends: at least one backend is required',
  ]);
  t.end();
});

t.test('duplicate frontend names', (t) => {
  t.same(issuesOf(fe({ name: 'x', listen: ['127.0.0.1:1'] }), fe({ name: 'x', listen: ['127.0.0.1:2'] })), [
    'frontends[1].name: duplicate frontend name "x"',
  ]);
  t.end();
});

t.test('duplicate backend names', (t) => {
  t.same(issuesOf(fe({ backends: ['a=10.0.0.1:1', 'b=10.0.0.2:1', 'a=10.0.0.3:1'] })), [
    'frontends[0].backends[2]: duplicate backend name "a"; give each a NAME= prefix',
  ]);
  t.same(issuesOf(fe({ backends: ['10.0.0.1:1', '10.0.0.1:1'] })), [
    'frontends[0].backends[1]: duplicate backend name "10.0.0.1:1"; give each a NAME= prefix',
  ]);
  t.end();
});

t.test('every backend a backup', (t) => {
  t.same(issuesOf(fe({ backends: ['a=10.0.0.1:1,backup', 'b=10.0.0.2:1,backup'] })), [
    'frontends[0].backends: every backend is marked backup; at least one must be a primary',
  ]);
  t.end();
});

t.test('affinity chain: none combined with others, duplicate kinds', (t) => {
  t.same(issuesOf(fe({ affinity: [{ kind: 'none' }, SOURCE] })), [
    'frontends[0].affinity: "none" cannot be combined with other key kinds',
  ]);
  t.same(issuesOf(fe({ affinity: [SOURCE, { kind: 'source', v4Bits: 24, v6Bits: 64 }] })), [
    'frontends[0].affinity: a key kind appears twice in the chain',
  ]);
  t.same(issuesOf(fe({ affinity: [{ kind: 'none' }] })), []);
  t.same(issuesOf(fe({ affinity: [] })), [], 'an empty chain is no affinity');
  t.end();
});

t.test('listen addresses may not overlap, across or within frontends', (t) => {
  t.same(issuesOf(fe({ listen: ['127.0.0.1:7000'] }), fe({ name: 'x', listen: ['127.0.0.1:7000'] })), [
    'frontends[1].listen[0]: overlaps frontends[0].listen[0]',
  ]);
  t.same(
    issuesOf(fe({ listen: ['127.0.0.1:7000-7010'] }), fe({ name: 'x', listen: ['127.0.0.1:6990-7000'] })),
    ['frontends[1].listen[0]: overlaps frontends[0].listen[0]'],
    'ranges sharing one port',
  );
  t.same(
    issuesOf(fe({ listen: ['127.0.0.1:7000-7010'] }), fe({ name: 'x', listen: ['127.0.0.1:7011-7020'] })),
    [],
    'adjacent ranges',
  );
  t.same(issuesOf(fe({ listen: ['127.0.0.1:7000', '127.0.0.1:7000'] })), [
    'frontends[0].listen[1]: overlaps frontends[0].listen[0]',
  ]);
  t.same(
    issuesOf(fe({ listen: ['127.0.0.1:7000'] }), fe({ name: 'x', listen: ['127.0.0.2:7000'] })),
    [],
    'different hosts',
  );
  t.same(
    issuesOf(fe({ listen: ['[::1]:7000'] }), fe({ name: 'x', listen: ['[0:0:0:0:0:0:0:1]:7000'] })),
    ['frontends[1].listen[0]: overlaps frontends[0].listen[0]'],
    'one IPv6 address, two spellings',
  );
  t.end();
});

t.test('a wildcard listen overlaps a specific address on the same port', (t) => {
  t.same(issuesOf(fe({ listen: ['0.0.0.0:7000'] }), fe({ name: 'x', listen: ['127.0.0.1:7000'] })), [
    'frontends[1].listen[0]: overlaps frontends[0].listen[0]',
  ]);
  t.same(issuesOf(fe({ listen: ['127.0.0.1:7000'] }), fe({ name: 'x', listen: ['[::]:7000'] })), [
    'frontends[1].listen[0]: overlaps frontends[0].listen[0]',
  ]);
  t.same(issuesOf(fe({ listen: ['0.0.0.0:7000'] }), fe({ name: 'x', listen: ['127.0.0.1:7001'] })), [], 'other port');
  t.end();
});

t.test("a backend that is tether's own listen address loops", (t) => {
  t.same(issuesOf(fe({ listen: ['127.0.0.1:7000'], backends: ['a=127.0.0.1:7000'] })), [
    'frontends[0].backends[0]: backend "a" is tether\'s own listen address 127.0.0.1:7000; connections would loop',
  ]);
  t.same(
    issuesOf(fe({ listen: ['127.0.0.1:7000-7010'], backends: ['a=127.0.0.1:7005'] })),
    ['frontends[0].backends[0]: backend "a" is tether\'s own listen address 127.0.0.1:7000; connections would loop'],
    'inside a listen range',
  );
  t.same(
    issuesOf(fe({ listen: ['0.0.0.0:7000'], backends: ['a=localhost:7000', 'b=[::1]:7000', 'c=10.0.0.1:7000'] })),
    [
      'frontends[0].backends[0]: backend "a" is tether\'s own listen address 0.0.0.0:7000; connections would loop',
      'frontends[0].backends[1]: backend "b" is tether\'s own listen address 0.0.0.0:7000; connections would loop',
    ],
    'a wildcard listen covers the loopback names; a remote host does not loop',
  );
  t.same(issuesOf(fe({ listen: ['127.0.0.1:7000'], backends: ['a=127.0.0.1:7001'] })), [], 'other port');
  t.end();
});

t.test("a port-less backend on tether's own host loops", (t) => {
  t.same(issuesOf(fe({ listen: ['127.0.0.1:143'], backends: ['a=127.0.0.1'] })), [
    'frontends[0].backends[0]: backend "a" is tether\'s own listen address 127.0.0.1:143; connections would loop',
  ]);
  t.same(issuesOf(fe({ listen: ['0.0.0.0:143'], backends: ['a=localhost'] })), [
    'frontends[0].backends[0]: backend "a" is tether\'s own listen address 0.0.0.0:143; connections would loop',
  ]);
  t.same(issuesOf(fe({ listen: ['127.0.0.1:143'], backends: ['a=10.0.0.1'] })), [], 'port fronting to another host');
  t.end();
});

t.test('a port-less backend needs a listen with a fixed port', (t) => {
  t.same(issuesOf(fe({ listen: ['127.0.0.1:0'], backends: ['a=10.0.0.1'] })), [
    'frontends[0].backends[0]: backend "a" has no port, which needs a listen address with a fixed port',
  ]);
  t.same(issuesOf(fe({ listen: ['127.0.0.1:0'], backends: ['a=10.0.0.1:25'] })), [], 'a backend with a port is fine');
  t.end();
});

t.test('a port range may hold at most MAX_PORT_RANGE ports', (t) => {
  t.equal(MAX_PORT_RANGE, 4_096);
  t.same(issuesOf(fe({ listen: ['127.0.0.1:10000-14095'] })), [], 'exactly MAX_PORT_RANGE');
  t.same(issuesOf(fe({ listen: ['127.0.0.1:10000-14096'] })), [
    'frontends[0].listen[0]: port range 10000-14096 is larger than 4096 ports',
  ]);
  t.end();
});

t.test('every issue is reported at once', (t) => {
  t.same(
    issuesOf(
      fe({
        name: 'x',
        listen: ['127.0.0.1:1-5000'],
        backends: ['a=10.0.0.1:1,backup', 'a=10.0.0.2:1,backup'],
        affinity: [{ kind: 'none' }, SOURCE, SOURCE],
      }),
      fe({ name: 'x', listen: ['0.0.0.0:4000'], backends: [] }),
    ),
    [
      'frontends[0].backends[1]: duplicate backend name "a"; give each a NAME= prefix',
      'frontends[0].backends: every backend is marked backup; at least one must be a primary',
      'frontends[0].listen[0]: port range 1-5000 is larger than 4096 ports',
      'frontends[0].affinity: "none" cannot be combined with other key kinds',
      'frontends[0].affinity: a key kind appears twice in the chain',
      'frontends[1].name: duplicate frontend name "x"',
      'frontends[1].backends: at least one backend is required',
      'frontends[1].listen[0]: overlaps frontends[0].listen[0]',
    ],
  );
  t.end();
});

t.test('deepFreeze freezes the config and everything in it', (t) => {
  const cfg = config(fe({ backends: ['a=10.0.0.1:1', 'b=10.0.0.2:1'], affinity: [SOURCE] }));
  t.equal(deepFreeze(cfg), cfg, 'returns its argument');
  const f = cfg.frontends[0]!;
  for (const [what, v] of [
    ['config', cfg],
    ['frontends', cfg.frontends],
    ['frontend', f],
    ['listen list', f.listen],
    ['listen', f.listen[0]],
    ['backends list', f.backends],
    ['backend', f.backends[1]],
    ['affinity list', f.affinity],
    ['affinity step', f.affinity[0]],
  ] as const) {
    t.ok(Object.isFrozen(v), `${what} is frozen`);
  }
  t.throws(() => (f.backends as unknown[]).push({}), TypeError);
  t.throws(() => {
    (f.listen[0] as { portLow: number }).portLow = 1;
  }, TypeError);
  t.equal(f.listen[0]?.portLow, 7000);
  t.end();
});

t.test('deepFreeze reaches inside an object that is already frozen on the surface', (t) => {
  const inner = { n: 1 };
  const value = { outer: Object.freeze({ list: [inner] }) };
  deepFreeze(value);
  t.ok(Object.isFrozen(value.outer.list));
  t.ok(Object.isFrozen(inner));
  t.end();
});

t.test('deepFreeze copes with cycles and primitives', (t) => {
  const a: { self?: unknown; n: number } = { n: 1 };
  a.self = a;
  t.equal(deepFreeze(a), a);
  t.ok(Object.isFrozen(a));
  t.equal(deepFreeze(5), 5);
  t.equal(deepFreeze(null), null);
  t.end();
});

t.test('accept-proxy-protocol and trusted-proxies need each other', (t) => {
  t.same(issuesOf({ ...fe(), acceptProxyProtocol: true }), [
    'frontends[0].accept-proxy-protocol: needs at least one --trusted-proxy: only trusted balancers may set the client address',
  ]);
  t.same(issuesOf({ ...fe(), trustedProxies: ['10.0.0.0/8'] }), ['frontends[0].trusted-proxies: needs --accept-proxy-protocol']);
  t.same(issuesOf({ ...fe(), acceptProxyProtocol: true, trustedProxies: ['10.0.0.0/8'], proxyProtocol: 'v2' }), []);
  t.end();
});

t.test('state-interval needs a state file and is 0 or at least MIN_STATE_INTERVAL_MS', (t) => {
  const issues = (extra: Partial<Config>): string[] => validateConfig({ ...config(fe()), ...extra }).map((i) => `${i.path}: ${i.message}`);
  t.same(issues({ stateFile: '/tmp/s' }), []);
  t.same(issues({ stateFile: '/tmp/s', stateIntervalMs: 0 }), [], '0: only on stop');
  t.same(issues({ stateFile: '/tmp/s', stateIntervalMs: MIN_STATE_INTERVAL_MS }), []);
  t.same(issues({ stateFile: '/tmp/s', stateIntervalMs: MIN_STATE_INTERVAL_MS - 1 }), [`state-interval: must be 0 (save only on stop) or at least ${String(MIN_STATE_INTERVAL_MS)}ms`]);
  t.same(issues({ stateIntervalMs: 60_000 }), ['state-interval: needs --state-file (state-file in a config file)']);
  t.end();
});
