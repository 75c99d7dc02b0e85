// --key-module faults through `node bin/tether --config FILE --admin`: a module whose key()
// rejects, resolves, loops forever, throws an Error whose message getter throws, or that never
// finishes importing. Each time the process stays up, /health answers, clients are served (the
// chain falls back to the source), a reload to a good module works, and SIGTERM stops it.
import t, { type Test } from 'tap';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { runTether, runTetherToExit, type RunningTether } from '../helpers/run-tether.js';
import { waitForCount, keyKind, within } from '../helpers/e2e-tools.js';
import { admin } from '../helpers/admin-client.js';
import { curl, startHttpBackend, type HttpBackend } from '../helpers/http-backend.js';

const NAMES = ['a', 'b', 'c'] as const;

const MODULES = {
  'good.mjs': "export function key(input) { return input.http?.headers['x-tenant']; }\n",
  'rejects.mjs': "export async function key() { throw new Error('async lookup failed'); }\n",
  'resolves.mjs': "export async function key(input) { await null; return input.http?.headers['x-tenant']; }\n",
  'never-settles.mjs': 'export function key() { return new Promise(() => {}); }\n',
  // Loops only when asked, so the same module shows that the restarted worker answers again.
  'loops.mjs': "export function key(input) { if (input.http?.headers['x-loop'] === 'yes') for (;;) {} return input.http?.headers['x-tenant']; }\n",
  'bad-message.mjs':
    'export function key() {\n' +
    "  const e = new Error('x');\n" +
    "  Object.defineProperty(e, 'message', { get() { throw new Error('gotcha'); } });\n" +
    '  throw e;\n' +
    '}\n',
  'never-loads.mjs': 'await new Promise(() => {});\nexport function key() { return "x"; }\n',
  'slow-loads.mjs': 'await new Promise((r) => setTimeout(r, 600_000));\nexport function key() { return "x"; }\n',
};

async function httpBackends(t: Test): Promise<HttpBackend[]> {
  const bs = await Promise.all(NAMES.map((n) => startHttpBackend(n)));
  t.teardown(() => Promise.all(bs.map((b) => b.close())));
  return bs;
}

function config(bs: readonly HttpBackend[], module: string): string {
  return (
    'frontends:\n' +
    '  - name: web\n' +
    '    listen: [127.0.0.1:0]\n' +
    '    backends:\n' +
    bs.map((b) => `      - ${b.name}=127.0.0.1:${String(b.port)}\n`).join('') +
    '    affinity: key-module,source\n' +
    `    key-module: ${module}\n`
  );
}

interface Running {
  readonly rt: RunningTether;
  readonly port: number;
  readonly adminPort: number;
  readonly file: string;
}

async function start(t: Test, dir: string, bs: readonly HttpBackend[], module: string): Promise<Running> {
  const file = path.join(dir, `tether-${path.basename(module, '.mjs')}.yaml`);
  writeFileSync(file, config(bs, path.join(dir, module)));
  const rt = await runTether(['--config', file, '--admin', '127.0.0.1:0']);
  t.teardown(() => rt.stop());
  const adminPort = (await rt.waitFor((l) => l.event === 'admin.ready'))['port'] as number;
  return { rt, port: rt.ports[0]!, adminPort, file };
}

/** The key kind of the `n`th conn.close line (1-based), once it is logged. */
async function nthKeyKind(rt: RunningTether, n: number): Promise<string | undefined> {
  const lines = await waitForCount(rt, (l) => l.event === 'conn.close', n);
  return keyKind(lines[n - 1]!);
}

/** Still up: /health answers, a good reload works, the module's key is used, SIGTERM exits 0. */
async function stillWell(t: Test, dir: string, bs: readonly HttpBackend[], r: Running, closesSoFar: number): Promise<void> {
  const h = await admin(r.adminPort, 'GET', '/health');
  t.equal(h.status, 200, '/health answers');
  writeFileSync(r.file, config(bs, path.join(dir, 'good.mjs')));
  const reload = await admin(r.adminPort, 'POST', '/reload');
  t.equal(reload.status, 200, `a reload to a good module works: ${reload.text}`);
  const got = await curl(r.port, '/', ['-H', 'X-Tenant: acme']);
  t.ok(NAMES.includes(got.backend as (typeof NAMES)[number]), 'served after the reload');
  t.equal(await nthKeyKind(r.rt, closesSoFar + 1), 'key-module', 'the new module gives the key');
  const code = await within(r.rt.stop(), 10_000, 'SIGTERM stops tether');
  t.equal(code, 0, 'SIGTERM: exit status 0');
}

t.test('key-module faults', async (t) => {
  const dir = t.testdir(MODULES);
  const bs = await httpBackends(t);

  for (const [module, err] of [
    ['rejects.mjs', 'async lookup failed'],
    ['never-settles.mjs', 'no answer within 100 ms'],
    ['bad-message.mjs', 'Error whose message cannot be read'],
  ] as const) {
    t.test(`${module}: served by the fallback, one warning with a safe description`, async (t) => {
      const r = await start(t, dir, bs, module);
      for (let i = 0; i < 3; i++) {
        const got = await curl(r.port, '/', ['-H', 'X-Tenant: acme']);
        t.ok(NAMES.includes(got.backend as (typeof NAMES)[number]), `request ${String(i + 1)} served by ${got.backend}`);
        t.equal(await nthKeyKind(r.rt, i + 1), 'source', 'the chain fell back to the source');
      }
      const warns = await waitForCount(r.rt, (l) => l.event === 'key-module.error', 1);
      t.equal(warns[0]!['err'], err, 'the warning describes the failure');
      t.notOk(r.rt.lines.some((l) => l.event === 'internal.error'), 'no internal.error');
      await stillWell(t, dir, bs, r, 3);
    });
  }

  t.test('resolves.mjs: an async key() gives its key', async (t) => {
    const r = await start(t, dir, bs, 'resolves.mjs');
    const first = await curl(r.port, '/', ['-H', 'X-Tenant: acme'], { source: '127.0.0.1' });
    const second = await curl(r.port, '/', ['-H', 'X-Tenant: acme'], { source: '127.0.0.2' });
    t.equal(second.backend, first.backend, 'same tenant, same backend from another source');
    t.equal(await nthKeyKind(r.rt, 1), 'key-module', 'key kind key-module');
    t.equal(await nthKeyKind(r.rt, 2), 'key-module', 'key kind key-module');
    await stillWell(t, dir, bs, r, 2);
  });

  t.test('loops.mjs: a key() that never returns is cut off, its worker replaced', async (t) => {
    const r = await start(t, dir, bs, 'loops.mjs');
    const looped = await curl(r.port, '/', ['-H', 'X-Loop: yes', '-H', 'X-Tenant: acme']);
    t.ok(NAMES.includes(looped.backend as (typeof NAMES)[number]), `the looping call's client is served by ${looped.backend}`);
    t.equal(await nthKeyKind(r.rt, 1), 'source', 'without the key: the source');
    t.equal((await admin(r.adminPort, 'GET', '/health')).status, 200, '/health answers while the worker loops');
    // The replaced worker answers again: bounded retries while it restarts.
    let n = 1;
    let kind: string | undefined;
    for (let i = 0; i < 50 && kind !== 'key-module'; i++) {
      await curl(r.port, '/', ['-H', 'X-Tenant: acme']);
      kind = await nthKeyKind(r.rt, ++n);
      if (kind !== 'key-module') await new Promise((res) => setTimeout(res, 100));
    }
    t.equal(kind, 'key-module', 'a new worker gives keys again');
    await stillWell(t, dir, bs, r, n);
  });

  for (const module of ['never-loads.mjs', 'slow-loads.mjs']) {
    t.test(`${module}: refused at start with status 2`, async (t) => {
      const file = path.join(dir, module);
      const r = await runTetherToExit(['--listen', '127.0.0.1:0', '--backend', 'a=127.0.0.1:9', '--affinity', 'key-module,source', '--key-module', file], 20_000);
      t.equal(r.code, 2, `exit status 2: ${r.stderr}`);
      t.match(r.stderr, /key module .* (did not finish loading within 5000 ms|exited while loading)/, 'says it did not load');
      t.notOk(r.stdout.includes('listen.ready'), 'never listened');
    });

    t.test(`${module}: a reload to it is refused, the old module keeps serving, SIGTERM stops`, async (t) => {
      const r = await start(t, dir, bs, 'good.mjs');
      writeFileSync(r.file, config(bs, path.join(dir, module)));
      const reload = await within(admin(r.adminPort, 'POST', '/reload'), 10_000, 'the reload answers');
      t.not(reload.status, 200, `reload refused (${String(reload.status)})`);
      await curl(r.port, '/', ['-H', 'X-Tenant: acme']);
      t.equal(await nthKeyKind(r.rt, 1), 'key-module', 'the old module still gives keys');
      // A later reload is not stuck behind it.
      await stillWell(t, dir, bs, r, 1);
    });
  }

  t.test('SIGTERM during a reload that waits for a module to load: the stop is not blocked', async (t) => {
    const r = await start(t, dir, bs, 'good.mjs');
    writeFileSync(r.file, config(bs, path.join(dir, 'slow-loads.mjs')));
    r.rt.child.kill('SIGHUP');
    await r.rt.waitFor((l) => l.event === 'signal' && l['signal'] === 'SIGHUP');
    const code = await within(r.rt.stop(), 15_000, 'SIGTERM stops tether');
    t.equal(code, 0, 'exit status 0');
  });
});
