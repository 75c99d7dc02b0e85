// Hot reload through `node bin/tether --config FILE`: SIGHUP (and the admin call) re-read the
// file. Unchanged listeners keep their sockets, open connections are untouched, the affinity
// table survives, added backends and frontends serve, removed ones get no new clients, and a
// broken file is refused while the old configuration keeps serving. Then 20 reloads under a
// client loop, with zero failed connections.
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import t, { type Test } from 'tap';
import { runTether, type LogLine, type RunningTether } from '../helpers/run-tether.js';
import { startBackend, whoAnswers, type TestBackend } from '../helpers/named-backend.js';
import { holdConnection, waitForCount, type HeldConnection } from '../helpers/e2e-tools.js';
import { admin, parseExposition, sampleValue } from '../helpers/admin-client.js';

async function backends(t: Test, names: readonly string[]): Promise<Record<string, TestBackend>> {
  const bs = await Promise.all(names.map((n) => startBackend(n)));
  t.teardown(() => Promise.all(bs.map((b) => b.close())));
  return Object.fromEntries(bs.map((b) => [b.name, b]));
}

const spec = (b: TestBackend, extra = ''): string => `${b.name}=127.0.0.1:${String(b.port)}${extra}`;

/** A YAML config: frontends as name → { listen, backends, more keys }. */
function yaml(frontends: readonly { name: string; listen: string[]; backends: string[]; extra?: string }[], top = ''): string {
  return `${top}frontends:\n${frontends
    .map((f) => `  - name: ${f.name}\n    listen: [${f.listen.join(', ')}]\n    backends:\n${f.backends.map((x) => `      - ${x}\n`).join('')}    affinity: source\n${f.extra ?? ''}`)
    .join('')}`;
}

/** Sends SIGHUP and waits for the `n`th reload.done or reload.failed line. */
async function hangup(rt: RunningTether, n: number): Promise<LogLine> {
  rt.child.kill('SIGHUP');
  const lines = await waitForCount(rt, (l) => l.event === 'reload.done' || l.event === 'reload.failed', n, 10_000);
  return lines[n - 1]!;
}

/** Whether a held connection still carries bytes both ways (the backends echo). */
function stillEchoes(h: HeldConnection, probe: string): Promise<boolean> {
  return new Promise((resolve) => {
    let got = '';
    const timer = setTimeout(() => {
      resolve(false);
    }, 3_000);
    const onData = (d: Buffer): void => {
      got += d.toString();
      if (got.includes(probe)) {
        clearTimeout(timer);
        h.socket.off('data', onData);
        resolve(true);
      }
    };
    h.socket.on('data', onData);
    h.socket.write(probe);
  });
}

/** Resolves true when nothing accepts on host:port (connection refused). */
function refused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      resolve(e.code === 'ECONNREFUSED');
    });
  });
}

t.test('SIGHUP: listeners, connections, table and backends across reloads', async (t) => {
  const b = await backends(t, ['a', 'b', 'c', 'd']);
  const file = path.join(t.testdir(), 'tether.yaml');
  const v1 = yaml([{ name: 'web', listen: ['127.0.0.1:0'], backends: [spec(b['a']!), spec(b['b']!)] }]);
  writeFileSync(file, v1);
  const rt = await runTether(['--config', file]);
  t.teardown(() => rt.stop());
  const port = rt.ports[0]!;

  const sources = Array.from({ length: 12 }, (_, i) => `127.0.0.${String(20 + i)}`);
  const before = new Map<string, string>();
  for (const s of sources) before.set(s, await whoAnswers(port, { localAddress: s }));
  const held = await holdConnection(port, { localAddress: '127.0.0.7' });

  // v2: backend c added, a second listener, a second frontend.
  writeFileSync(
    file,
    yaml([
      { name: 'web', listen: ['127.0.0.1:0', '127.0.0.2:0'], backends: [spec(b['a']!), spec(b['b']!), spec(b['c']!)] },
      { name: 'chat', listen: ['127.0.0.3:0'], backends: [spec(b['d']!)] },
    ]),
  );
  const r2 = await hangup(rt, 1);
  t.equal(r2.event, 'reload.done');
  t.same(r2['listeners'], { kept: 1, moved: 0, added: 2, closed: 0 }, 'the unchanged listener kept its socket');
  t.same(r2['frontends'], { added: ['chat'], removed: [], kept: ['web'] });
  t.same((r2['backends'] as { added: string[] }).added, ['web/default/c', 'chat/default/d']);
  t.equal(rt.lines.filter((l) => l.event === 'listen.ready' && l['port'] === port).length, 1, 'no second bind of the kept port');
  t.ok(await stillEchoes(held, 'after-v2'), 'the open connection still carries bytes');
  for (const s of sources) t.equal(await whoAnswers(port, { localAddress: s }), before.get(s), `${s} keeps its backend (table survived)`);
  const second = rt.ports.find((p, i) => i > 0 && rt.lines.some((l) => l.event === 'listen.ready' && l['port'] === p && l['host'] === '127.0.0.2'))!;
  t.ok(['a', 'b', 'c'].includes(await whoAnswers(second, { host: '127.0.0.2' })), 'the new listener serves');
  const chatPort = rt.ports.find((p) => rt.lines.some((l) => l.event === 'listen.ready' && l['port'] === p && l['frontend'] === 'chat'))!;
  t.equal(await whoAnswers(chatPort, { host: '127.0.0.3' }), 'd', 'the new frontend serves');
  const chatHeld = await holdConnection(chatPort, { host: '127.0.0.3' });
  const fresh = await Promise.all(Array.from({ length: 20 }, (_, i) => whoAnswers(port, { localAddress: `127.0.1.${String(i + 1)}` })));
  t.ok(fresh.includes('c'), 'new keys reach the added backend');

  // v2b: the chat frontend renamed talk, same address: the bound socket is handed over.
  writeFileSync(
    file,
    yaml([
      { name: 'web', listen: ['127.0.0.1:0', '127.0.0.2:0'], backends: [spec(b['a']!), spec(b['b']!), spec(b['c']!)] },
      { name: 'talk', listen: [`127.0.0.3:${String(chatPort)}`], backends: [spec(b['d']!)] },
    ]),
  );
  const rename = await hangup(rt, 2);
  t.equal(rename.event, 'reload.done', `renamed (${JSON.stringify(rename['errors'] ?? '')})`);
  t.same(rename['listeners'], { kept: 2, moved: 1, added: 0, closed: 0 }, 'the socket moved to the renamed frontend, no re-bind');
  t.same(rename['frontends'], { added: ['talk'], removed: ['chat'], kept: ['web'] });
  t.equal(await whoAnswers(chatPort, { host: '127.0.0.3' }), 'd', 'the moved socket serves the renamed frontend');
  t.ok(await stillEchoes(chatHeld, 'chat-after-rename'), 'the old frontend\'s open connection runs on');

  // v3: backend b removed, the talk frontend removed, the second listener removed.
  writeFileSync(file, yaml([{ name: 'web', listen: ['127.0.0.1:0'], backends: [spec(b['a']!), spec(b['c']!)] }]));
  const r3 = await hangup(rt, 3);
  t.same(r3['listeners'], { kept: 1, moved: 0, added: 0, closed: 2 });
  t.same(r3['frontends'], { added: [], removed: ['talk'], kept: ['web'] });
  t.same((r3['backends'] as { removed: string[] }).removed, ['web/default/b', 'talk/default/d']);
  t.ok(await stillEchoes(held, 'after-v3'), 'the connection opened before v2 still carries bytes');
  t.ok(await stillEchoes(chatHeld, 'chat-after-v3'), 'a removed frontend\'s open connection runs on');
  t.ok(await refused('127.0.0.3', chatPort), 'the removed frontend\'s listener is closed');
  t.ok(await refused('127.0.0.2', second), 'the removed listener is closed');
  // A removed backend drains: its pinned sources still reach it, new ones never do.
  t.ok([...before.values()].includes('b'), 'some sources were pinned to b (else this proves nothing)');
  for (const s of sources) t.equal(await whoAnswers(port, { localAddress: s }), before.get(s), `${s} keeps its backend`);
  const newcomers = await Promise.all(Array.from({ length: 20 }, (_, i) => whoAnswers(port, { localAddress: `127.0.3.${String(i + 1)}` })));
  t.notOk(newcomers.includes('b'), `no new key reaches the removed backend (${newcomers.join(' ')})`);

  // v4: broken → refused with every problem; the running config stays.
  writeFileSync(file, 'frontends:\n  - listen: 127.0.0.1:0\n    backends: [nonsense=:::]\n    balance: fastest\n');
  const r4 = await hangup(rt, 4);
  t.equal(r4.event, 'reload.failed');
  t.equal(r4['code'], 'TETHER_ERR_CONFIG');
  const errors = r4['errors'] as string[];
  t.ok(errors.some((e) => e.includes('balance')) && errors.some((e) => e.includes('backends')), `every problem listed: ${errors.join(' | ')}`);
  t.ok(['a', 'c'].includes(await whoAnswers(port)), 'still serving the old configuration');
  t.ok(await stillEchoes(held, 'after-bad'), 'and the open connection with it');

  // v5: a listener that cannot be bound → refused as a whole; nothing half-applied.
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => blocker.close(() => { r(); })));
  const busy = (blocker.address() as net.AddressInfo).port;
  writeFileSync(file, yaml([{ name: 'web', listen: ['127.0.0.1:0', `127.0.0.1:${String(busy)}`], backends: [spec(b['d']!)] }]));
  const r5 = await hangup(rt, 5);
  t.equal(r5.event, 'reload.failed');
  t.equal(r5['code'], 'TETHER_ERR_LISTEN');
  t.ok(['a', 'c'].includes(await whoAnswers(port)), 'old backends still serve after a failed bind');
  held.close();
  chatHeld.close();
});

t.test('the admin reload call: 200 with the report, 422 with the problems', async (t) => {
  const b = await backends(t, ['a', 'b']);
  const file = path.join(t.testdir(), 'tether.yaml');
  writeFileSync(file, yaml([{ name: 'web', listen: ['127.0.0.1:0'], backends: [spec(b['a']!)] }], 'admin: 127.0.0.1:0\n'));
  const rt = await runTether(['--config', file]);
  t.teardown(() => rt.stop());
  const adminPort = (await rt.waitFor((l) => l.event === 'admin.ready'))['port'] as number;
  writeFileSync(file, yaml([{ name: 'web', listen: ['127.0.0.1:0'], backends: [spec(b['b']!)] }], 'admin: 127.0.0.1:0\n'));
  const ok = await admin(adminPort, 'POST', '/reload');
  t.equal(ok.status, 200);
  t.match(ok.json, { status: 'reloaded', report: { backends: { added: ['web/default/b'], removed: ['web/default/a'] } } });
  t.equal(await whoAnswers(rt.ports[0]!), 'b');
  writeFileSync(file, 'frontends: 3\n');
  const bad = await admin(adminPort, 'POST', '/reload');
  const m = parseExposition((await admin(adminPort, 'GET', '/metrics')).text);
  t.equal(sampleValue(m, 'tether_reloads_total', { result: 'ok' }), 1);
  t.equal(sampleValue(m, 'tether_reloads_total', { result: 'failed' }), 1);
  t.equal(bad.status, 422);
  t.match(bad.json, { error: 'TETHER_ERR_CONFIG', issues: [/frontends/] });
  t.equal(await whoAnswers(rt.ports[0]!), 'b', 'old config still serving');
});

t.test('20 reloads under a client loop: zero failed connections', async (t) => {
  const b = await backends(t, ['a', 'b', 'c']);
  const file = path.join(t.testdir(), 'tether.yaml');
  const variant = (i: number): string =>
    yaml([{ name: 'web', listen: ['127.0.0.1:0'], backends: [spec(b['a']!, `,weight=${String(1 + (i % 3))}`), spec(b['b']!), ...(i % 2 === 0 ? [spec(b['c']!)] : [])], extra: `    balance: ${i % 2 === 0 ? 'hash' : 'roundrobin'}\n` }]);
  writeFileSync(file, variant(0));
  const rt = await runTether(['--config', file]);
  t.teardown(() => rt.stop());
  const port = rt.ports[0]!;
  const idle = await holdConnection(port, { localAddress: '127.0.0.9' });

  let reloads = 0;
  let stop = false;
  const failures: string[] = [];
  let served = 0;
  const deadline = Date.now() + 60_000;
  const client = async (id: number): Promise<void> => {
    for (let i = 0; !stop && i < 5_000 && Date.now() < deadline; i++) {
      const name = await whoAnswers(port, { localAddress: `127.0.2.${String(1 + ((id * 50 + i) % 200))}` });
      if (['a', 'b', 'c'].includes(name)) served++;
      else failures.push(`client ${String(id)} #${String(i)}: ${JSON.stringify(name)}`);
    }
  };
  const loops = Promise.all([0, 1, 2, 3].map((id) => client(id)));
  for (let i = 1; i <= 20 && Date.now() < deadline; i++) {
    writeFileSync(file, variant(i));
    const r = await hangup(rt, i);
    if (r.event === 'reload.done') reloads++;
    await new Promise((r) => setTimeout(r, 50));
  }
  stop = true;
  await loops;
  t.equal(reloads, 20, '20 reloads applied');
  t.ok(served >= 100, `${String(served)} connections served during the reloads`);
  t.same(failures, [], 'no connection failed');
  t.ok(await stillEchoes(idle, 'idle-after-20'), 'an idle connection outlived all 20 reloads');
  t.equal(rt.lines.filter((l) => l.event === 'listen.ready').length, 1, 'the listener was bound once');
  idle.close();
});
