// SNI affinity, routing by what was peeked, and what tether logs about TLS, through the real
// `node bin/tether` with real TLS backends (node:tls, each answering with its name) and real
// clients (`openssl s_client`, node:tls, curl, a raw SSH-like client). Assertions are about who
// answered and what conn.close says.
import t, { type Test } from 'tap';
import { Buffer } from 'node:buffer';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { runTether, type LogLine, type RunningTether } from '../helpers/run-tether.js';
import { startBackend, type TestBackend } from '../helpers/named-backend.js';
import { isConnClose, waitForCount } from '../helpers/e2e-tools.js';
import { nodeTlsClient, sClient, startTlsBackend, type TlsBackend } from '../helpers/tls-backend.js';

const hash12 = (value: string): string => createHash('sha256').update(value).digest('hex').slice(0, 12);
const keyOf = (l: LogLine): unknown => l['key'];

async function tlsBackends(t: Test, names: readonly string[]): Promise<TlsBackend[]> {
  const bs = await Promise.all(names.map((n) => startTlsBackend(n)));
  t.teardown(() => Promise.all(bs.map((b) => b.close())));
  return bs;
}

async function tether(t: Test, args: readonly string[]): Promise<{ rt: RunningTether; port: number }> {
  const rt = await runTether(['--grace', '1s', ...args]);
  t.teardown(() => rt.stop());
  return { rt, port: rt.ports[0]! };
}

const frontendFlags = (bs: readonly TlsBackend[]): string[] => [
  '--listen',
  '127.0.0.1:0',
  ...bs.flatMap((b) => ['--backend', `${b.name}=127.0.0.1:${b.port}`]),
];

/** node:tls with SNI `servername` (the leaf is for localhost, so the name check is skipped). */
const withSni = (port: number, servername: string, localAddress = '127.0.0.1'): Promise<string> =>
  nodeTlsClient(port, { servername, localAddress, checkServerIdentity: () => undefined }).then((r) => r.name);

const ABC = ['a', 'b', 'c'] as const;

t.test('sni: the same SNI reaches the same backend every time, from any source, on any tether', async (t) => {
  const bs = await tlsBackends(t, ABC);
  const { rt, port } = await tether(t, [...frontendFlags(bs), '--affinity', 'sni', '--balance', 'hash']);
  const first = new Map<string, string>();
  for (const sni of ['alpha.example.com', 'bravo.example.com']) {
    const got: string[] = [];
    for (let i = 0; i < 10; i++) got.push(await withSni(port, sni, `127.0.0.${String(i + 1)}`));
    t.ok(ABC.includes(got[0] as (typeof ABC)[number]), `${sni}: answered by ${got[0]!}`);
    t.same(new Set(got).size, 1, `${sni}: one backend over 10 connections from 10 sources (${got.join(' ')})`);
    const o = await sClient(port, ['-servername', sni], { names: ABC, bind: '127.0.0.11' });
    t.equal(o.name, got[0], `${sni}: openssl s_client too`);
    first.set(sni, got[0]!);
  }
  const b = bs.find((x) => x.name === first.get('alpha.example.com'))!;
  t.ok(b.conns.every((c) => c.servername === 'alpha.example.com' || c.servername === 'bravo.example.com'), 'the backend saw the SNI (passthrough)');

  const closes = await waitForCount(rt, isConnClose(), 22);
  t.ok(
    closes.every((l) => l['protocol'] === 'tls' && (l['key'] as { kind?: string } | null)?.kind === 'sni'),
    'every connection was placed by its SNI',
  );

  // Hashing, not the table: many SNIs spread, and a second tether places each the same way.
  const snis = Array.from({ length: 12 }, (_, i) => `tenant${String(i)}.example.org`);
  const here: string[] = [];
  for (const sni of snis) here.push(await withSni(port, sni));
  t.ok(new Set(here).size > 1, `12 SNIs spread over more than one backend (${here.join(' ')})`);
  const other = await tether(t, [...frontendFlags(bs), '--affinity', 'sni', '--balance', 'hash']);
  const there: string[] = [];
  for (const sni of snis) there.push(await withSni(other.port, sni));
  t.same(there, here, 'a second tether with the same pool agrees on every SNI');
});

t.test('sni,source: without SNI the chain falls back to the source', async (t) => {
  const bs = await tlsBackends(t, ABC);
  // roundrobin: an un-keyed client would move on every connection.
  const { rt, port } = await tether(t, [...frontendFlags(bs), '--affinity', 'sni,source', '--balance', 'roundrobin']);
  const viaOpenssl: string[] = [];
  for (let i = 0; i < 4; i++) viaOpenssl.push((await sClient(port, ['-noservername'], { names: ABC, bind: '127.0.0.1' })).name ?? '');
  t.ok(ABC.includes(viaOpenssl[0] as (typeof ABC)[number]), `answered by ${viaOpenssl[0]!}`);
  t.same(new Set(viaOpenssl).size, 1, `openssl -noservername from 127.0.0.1 sticks (${viaOpenssl.join(' ')})`);
  const viaNode: string[] = [];
  for (let i = 0; i < 4; i++) viaNode.push((await nodeTlsClient(port, { servername: '', localAddress: '127.0.0.2' })).name);
  t.same(new Set(viaNode).size, 1, `node:tls without SNI from 127.0.0.2 sticks (${viaNode.join(' ')})`);
  // Per source, sorted: conn.close lines are logged as connections end, not as they began.
  for (const src of ['127.0.0.1', '127.0.0.2']) {
    const closes = await waitForCount(rt, (l) => isConnClose()(l) && String(l['client']).startsWith(`${src}:`), 4);
    t.same(closes.map((l) => keyOf(l)), Array<unknown>(4).fill({ kind: 'source', hash: hash12(`${src}/32`) }), `${src}: placed by the source key`);
    t.same(closes.map((l) => l['via']).sort(), ['balance', 'table', 'table', 'table'], `${src}: placed once, then from the table`);
  }
  t.equal(await withSni(port, 'with.sni.example', '127.0.0.1'), await withSni(port, 'with.sni.example', '127.0.0.2'), 'with SNI the source no longer matters');
  const withKey = await waitForCount(rt, (l) => isConnClose()(l) && (l['key'] as { kind?: string } | null)?.kind === 'sni', 2);
  t.same(withKey.map((l) => keyOf(l)), [{ kind: 'sni', hash: hash12('with.sni.example') }, { kind: 'sni', hash: hash12('with.sni.example') }]);
});

/** An HTTP/1.x backend answering every request head with `NAME\n`, then closing. */
const httpBehaviour = (socket: net.Socket, name: string): void => {
  let head = '';
  socket.on('data', (d: Buffer) => {
    head += d.toString('latin1');
    if (!head.includes('\r\n\r\n')) return;
    socket.removeAllListeners('data');
    socket.on('data', () => undefined);
    const body = `${name}\n`;
    socket.end(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${String(body.length)}\r\nConnection: close\r\n\r\n${body}`);
  });
};

/** An SSH-like server: sends its banner at once, records what the client sends. */
function sshBehaviour(received: Buffer[]): (socket: net.Socket) => void {
  return (socket) => {
    socket.write('SSH-2.0-test\r\n');
    socket.on('data', (d: Buffer) => received.push(d));
    socket.on('end', () => socket.end());
  };
}

function curl(port: number): Promise<string> {
  return new Promise((resolve) => {
    execFile('curl', ['-s', '--max-time', '5', `http://127.0.0.1:${String(port)}/`], (_err, stdout) => {
      resolve(stdout);
    });
  });
}

/** Sends `hello`; resolves with what came back once `until` matches, the peer closes, or 5 s pass. */
function exchange(port: number, hello: Buffer, until: (got: string) => boolean): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let got = '';
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, 5_000);
    s.on('error', () => undefined); // what came back (or not) is the assertion
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (until(got)) done();
    });
    s.on('close', done);
    s.write(hello);
  });
}

t.test('one port, routed by what was peeked: ssh, SNI wildcard, ALPN, http, default', async (t) => {
  const [tlsPool, h2Pool, def] = await Promise.all([tlsBackends(t, ['t1', 't2']), tlsBackends(t, ['h2']), tlsBackends(t, ['d'])]);
  const web = await Promise.all(['w1', 'w2'].map((n) => startBackend(n, { behaviour: httpBehaviour })));
  const sshReceived: Buffer[] = [];
  const ssh = await startBackend('s1', { behaviour: sshBehaviour(sshReceived) });
  t.teardown(() => Promise.all([...web, ssh].map((b: TestBackend) => b.close())));

  const item = (b: { name: string; port: number }): string => `{ name: ${b.name}, host: 127.0.0.1, port: ${String(b.port)} }`;
  const yaml = [
    'frontends:',
    '  - name: shared',
    '    listen: 127.0.0.1:0',
    '    affinity: sni,source',
    '    peek-timeout: 1s',
    `    backends: [${def.map(item).join(', ')}]`,
    '    pools:',
    `      tls: { backends: [${tlsPool.map(item).join(', ')}], balance: roundrobin }`,
    `      h2: { backends: [${h2Pool.map(item).join(', ')}] }`,
    `      web: { backends: [${web.map(item).join(', ')}] }`,
    `      ssh: { backends: [${item(ssh)}] }`,
    '    routes:',
    '      - { pool: ssh, protocol: ssh }',
    "      - { pool: tls, sni: '*.example.com' }",
    '      - { pool: h2, alpn: h2 }',
    '      - { pool: web, protocol: http }',
    '',
  ].join('\n');
  const file = path.join(t.testdir({}), 'tether.yaml');
  writeFileSync(file, yaml);
  const { rt, port } = await tether(t, ['--config', file]);
  const all = ['t1', 't2', 'h2', 'd'];

  const cases: { label: string; args: string[]; pool: string; names: readonly string[] }[] = [
    { label: 'SNI www.example.com', args: ['-servername', 'www.example.com'], pool: 'tls', names: ['t1', 't2'] },
    { label: 'SNI a.b.example.com', args: ['-servername', 'a.b.example.com'], pool: 'tls', names: ['t1', 't2'] },
    { label: 'SNI www.example.com + ALPN h2 (the first matching route wins)', args: ['-servername', 'www.example.com', '-alpn', 'h2'], pool: 'tls', names: ['t1', 't2'] },
    { label: 'SNI other.test + ALPN h2', args: ['-servername', 'other.test', '-alpn', 'h2,http/1.1'], pool: 'h2', names: ['h2'] },
    { label: 'SNI example.com (the apex is not *.example.com)', args: ['-servername', 'example.com'], pool: 'default', names: ['d'] },
    { label: 'SNI other.test + ALPN http/1.1', args: ['-servername', 'other.test', '-alpn', 'http/1.1'], pool: 'default', names: ['d'] },
    { label: 'no SNI', args: ['-noservername'], pool: 'default', names: ['d'] },
  ];
  for (const [i, c] of cases.entries()) {
    // A source address of its own, to find this client's conn.close line.
    const bind = `127.0.0.${String(20 + i)}`;
    const r = await sClient(port, c.args, { names: all, bind });
    t.ok(r.name !== undefined && c.names.includes(r.name), `${c.label}: answered by ${String(r.name)} (pool ${c.pool})`);
    const l = await rt.waitFor((x) => isConnClose()(x) && String(x['client']).startsWith(`${bind}:`));
    t.same([l['protocol'], l['pool'], l['backend']], ['tls', c.pool, r.name], `${c.label}: conn.close`);
  }
  t.ok(tlsPool.every((b) => b.conns.length > 0), 'the tls pool balanced (roundrobin) over t1 and t2');

  const body = await curl(port);
  t.ok(body === 'w1\n' || body === 'w2\n', `curl reached the web pool (${JSON.stringify(body)})`);
  const httpClose = await rt.waitFor((l) => isConnClose()(l) && l['protocol'] === 'http');
  t.same([httpClose['pool'], httpClose['backend']], ['web', body.trim()]);

  const banner = Buffer.from('SSH-2.0-client\r\n');
  const sshGot = await exchange(port, banner, (g) => g.includes('\r\n'));
  t.equal(sshGot, 'SSH-2.0-test\r\n', 'the SSH client got the ssh pool banner');
  const sshClose = await rt.waitFor((l) => isConnClose()(l) && l['protocol'] === 'ssh');
  t.same([sshClose['pool'], sshClose['backend']], ['ssh', 's1']);
  t.ok(Buffer.concat(sshReceived).equals(banner), 'the SSH backend received exactly the client banner');

  const junk = randomBytes(64);
  junk[0] = junk[0]! | 0x80;
  await exchange(port, junk, () => false);
  const unknownClose = await rt.waitFor((l) => isConnClose()(l) && l['protocol'] === 'unknown');
  t.same([unknownClose['pool'], unknownClose['backend']], ['default', 'd'], 'anything else goes to the default pool');
});

t.test('conn.close of a TLS connection names protocol and key kind, and logs the SNI only as a hash', async (t) => {
  const bs = await tlsBackends(t, ABC);
  const { rt, port } = await tether(t, [...frontendFlags(bs), '--affinity', 'sni,source', '--log-level', 'debug']);
  const sni = 'secret-tenant.example.net';
  const o = await sClient(port, ['-servername', sni], { names: ABC });
  const n = await withSni(port, sni);
  t.equal(n, o.name, 'both clients on one backend');
  const closes = await waitForCount(rt, isConnClose(), 2);
  for (const l of closes) {
    t.equal(l['protocol'], 'tls');
    t.equal(l['peek'], 'verdict');
    t.same(keyOf(l), { kind: 'sni', hash: hash12(sni) });
    t.equal(l['backend'], o.name);
    t.same(l['termination'], { cause: 'normal', stage: 'splice' });
  }
  await rt.stop();
  t.notOk(rt.stdout().includes('secret-tenant'), 'the SNI never appears in the log (debug level)');
  t.notOk(rt.stderr().includes('secret-tenant'), 'nor on stderr');
});
