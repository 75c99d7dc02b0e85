// --key-module through `node bin/tether`: a user module's key(input) is the `key-module` affinity
// key. Same tenant → same backend from any source; what the module sees; a module that throws
// leaves connections served (the chain falls back) with a key-module.error warning (at most one
// a second, with a count); an unusable
// module stops tether at startup with exit status 2.
import t, { type Test } from 'tap';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { runTetherToExit } from '../helpers/run-tether.js';
import { waitForCount, tetherOnLoopback as tether, connCloses as closes, keyKind } from '../helpers/e2e-tools.js';
import { curl, nodeGet, startHttpBackend, type HttpBackend } from '../helpers/http-backend.js';
import { secret } from '../helpers/secrets.js';

const NAMES = ['a', 'b', 'c'] as const;
const SOURCES = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];

async function httpBackends(t: Test): Promise<HttpBackend[]> {
  const bs = await Promise.all(NAMES.map((n) => startHttpBackend(n)));
  t.teardown(() => Promise.all(bs.map((b) => b.close())));
  return bs;
}

const backendFlags = (bs: readonly HttpBackend[]): string[] => bs.flatMap((b) => ['--backend', `${b.name}=127.0.0.1:${String(b.port)}`]);

const MODULES = {
  'tenant.mjs': "export function key(input) { return input.http?.headers['x-tenant']; }\n",
  'inspect.mjs':
    "import { appendFileSync } from 'node:fs';\n" +
    'export function key(input) {\n' +
    "  appendFileSync(new URL('./inputs.jsonl', import.meta.url), JSON.stringify(input) + '\\n');\n" +
    '  return undefined;\n' +
    '}\n',
  'throws.mjs': "export function key(input) { if (input.http?.headers['x-ok'] === 'yes') return 'fine'; throw new Error('tenant lookup failed'); }\n",
  'no-key.mjs': 'export function keys() { return "x"; }\nexport const key = "not a function";\n',
  'broken.mjs': 'export function key(input) { return input.http?.headers[; }\n',
};

t.test('key-module', async (t) => {
  const dir = t.testdir(MODULES);
  const bs = await httpBackends(t);

  t.test('same tenant, same backend from any source; no tenant falls back to the source', async (t) => {
    // Round robin: without the module's key, the source fallback would spread these requests.
    const { rt, port } = await tether(t, [...backendFlags(bs), '--affinity', 'key-module,source', '--key-module', path.join(dir, 'tenant.mjs'), '--balance', 'roundrobin']);
    const acme: string[] = [];
    const globex: string[] = [];
    for (const src of SOURCES) {
      acme.push((await curl(port, '/', ['-H', `X-Tenant: ${secret('tenant-acme')}`], { source: src })).backend);
      globex.push((await nodeGet(port, '/', { headers: { 'X-Tenant': secret('tenant-globex') }, localAddress: src })).backend);
    }
    t.ok(NAMES.includes(acme[0] as (typeof NAMES)[number]), `${secret('tenant-acme')} answered by ${acme[0]!}`);
    t.same(new Set(acme).size, 1, `${secret('tenant-acme')} on one backend (${acme.join(' ')})`);
    t.same(new Set(globex).size, 1, `${secret('tenant-globex')} on one backend (${globex.join(' ')})`);
    t.not(acme[0], globex[0], 'round robin placed the two tenants apart');
    const none: string[] = [];
    for (let i = 0; i < 3; i++) none.push((await curl(port, '/', [], { source: '127.0.0.9' })).backend);
    t.same(new Set(none).size, 1, `no tenant: the source sticks (${none.join(' ')})`);
    const lines = await closes(rt, 13);
    t.ok(lines.slice(0, 10).every((l) => keyKind(l) === 'key-module'), 'key kind key-module');
    t.same(lines.slice(0, 10).map((l) => l['via']), ['balance', 'balance', ...Array<string>(8).fill('table')], 'two placements, then the table');
    t.same(lines.slice(10).map(keyKind), ['source', 'source', 'source'], 'no tenant: key kind source');
    const out = rt.stdout();
    for (const secret of ['acme', 'globex']) t.notOk(out.includes(secret), `the log does not contain ${secret}`);
  });

  t.test('the module sees the client address and the parsed request', async (t) => {
    const { port } = await tether(t, [...backendFlags(bs), '--affinity', 'key-module', '--key-module', path.join(dir, 'inspect.mjs')]);
    const tenant = secret('tenant-initech');
    const cookie = secret('key-module-cookie');
    const r = await curl(port, '/shop/cart?t=1&u=x%20y', ['-H', 'Host: Shop.Example:8080', '-H', `X-Tenant: ${tenant}`, '-b', `a=1; b=${cookie}`], { source: '127.0.0.3' });
    t.ok(NAMES.includes(r.backend as (typeof NAMES)[number]), 'served');
    const inputs = readFileSync(path.join(dir, 'inputs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    t.equal(inputs.length, 1, 'key() ran once for the one connection');
    const input = inputs[0]!;
    t.match(input, {
      source: '127.0.0.3',
      sourcePort: Number,
      localPort: port,
      protocol: 'http',
      http: {
        method: 'GET',
        target: '/shop/cart?t=1&u=x%20y',
        host: 'shop.example',
        headers: { host: 'Shop.Example:8080', 'x-tenant': tenant },
        cookies: { a: '1', b: cookie },
        query: { t: '1', u: 'x y' },
      },
    });
  });

  t.test('a module whose key() throws: connections are still served, and a warning is logged', async (t) => {
    const { rt, port } = await tether(t, [...backendFlags(bs), '--affinity', 'key-module,source', '--key-module', path.join(dir, 'throws.mjs')]);
    const got: string[] = [];
    for (const src of SOURCES.slice(0, 3)) {
      const r = await curl(port, '/', [], { source: src });
      t.equal(r.body.toString(), `${r.backend}\n`, `from ${src}: served by ${r.backend}`);
      got.push(r.backend);
    }
    t.ok(got.every((n) => NAMES.includes(n as (typeof NAMES)[number])), 'every request answered');
    got.push((await curl(port, '/', ['-H', 'X-Ok: yes'])).backend);
    const warns = await waitForCount(rt, (l) => l.event === 'key-module.error', 1);
    t.ok(warns.every((l) => l['level'] === 'warn' && l['err'] === 'tenant lookup failed'), 'key-module.error at warn level with the error message');
    const lines = await closes(rt, 4);
    t.same(lines.map(keyKind), ['source', 'source', 'source', 'key-module'], 'the chain fell back to the source; a returned key still counts');
    // At most one a second; a later line carries how many were held back since the previous one.
    const all = rt.lines.filter((l) => l.event === 'key-module.error');
    t.ok(all.length >= 1 && all.length <= 3, `3 failing calls, ${String(all.length)} warning line(s)`);
    t.equal(all[0]?.['held'], 0, 'the first warning held nothing back');
  });

  const start = (file: string): string[] => ['--listen', '127.0.0.1:0', '--backend', 'a=127.0.0.1:9', '--affinity', 'key-module,source', '--key-module', file];

  t.test('a missing module file stops tether with status 2', async (t) => {
    const file = path.join(dir, 'nosuch.mjs');
    const r = await runTetherToExit(start(file));
    t.equal(r.code, 2, 'exit status 2');
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    t.equal(lines.length, 1, `one line on stderr: ${r.stderr}`);
    t.ok(lines[0]?.startsWith(`tether: error: cannot load key module ${file}: `), `names the file: ${lines[0] ?? ''}`);
    t.match(lines[0] ?? '', /: ENOENT$/, 'and says why');
    t.notOk(r.stdout.includes('listen.ready'), 'never listened');
  });

  t.test('a module without a key function stops tether with status 2', async (t) => {
    const file = path.join(dir, 'no-key.mjs');
    const r = await runTetherToExit(start(file));
    t.equal(r.code, 2, 'exit status 2');
    t.equal(r.stderr, `tether: error: key module ${file} does not export a function named key\n`);
    t.notOk(r.stdout.includes('listen.ready'), 'never listened');
  });

  t.test('a module with a syntax error stops tether with status 2', async (t) => {
    const file = path.join(dir, 'broken.mjs');
    const r = await runTetherToExit(start(file));
    t.equal(r.code, 2, 'exit status 2');
    t.ok(r.stderr.startsWith(`tether: error: cannot load key module ${file}: `), r.stderr);
  });
});
