// Stage 5 on real loopback sockets: dial() resolves with a connected socket or a failure code,
// never rejecting.
import type { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import net from 'node:net';
import t from 'tap';
import { dial } from '../../lib/connect/dial.js';

/** Rejects after `ms` so no wait is unbounded. */
function bounded<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`timed out waiting for ${what}`));
    }, ms);
  });
  return Promise.race([p, limit]).finally(() => {
    clearTimeout(timer);
  });
}

t.test('connects to a listening loopback port; the socket is half-open capable and carries bytes', async (t) => {
  const server = net.createServer((s) => { s.end('hi'); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  t.teardown(() => new Promise<void>((resolve) => server.close(() => { resolve(); })));
  const r = await bounded(dial('127.0.0.1', port, 5_000), 'dial');
  t.equal(r.ok, true);
  if (!r.ok) return;
  t.teardown(() => { r.socket.destroy(); });
  t.equal(r.socket.allowHalfOpen, true);
  t.equal(r.socket.remotePort, port);
  const got = await bounded(new Promise<string>((resolve) => {
    let s = '';
    r.socket.on('data', (d: Buffer) => (s += d.toString()));
    r.socket.once('end', () => { resolve(s); });
  }), 'the backend bytes');
  t.equal(got, 'hi');
});

t.test('a refused port resolves with ECONNREFUSED (no rejection, no timeout)', async (t) => {
  // Bind then close: the port is free and nothing listens on it.
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => { resolve(); }));
  const r = await bounded(dial('127.0.0.1', port, 5_000), 'dial');
  t.same(r, { ok: false, code: 'ECONNREFUSED', timeout: false });
});

t.test('::1 refused resolves likewise, or is skipped without IPv6', async (t) => {
  const r = await bounded(dial('::1', 1, 5_000), 'dial');
  t.equal(r.ok, false);
  if (r.ok) return;
  t.ok(['ECONNREFUSED', 'EADDRNOTAVAIL', 'ENETUNREACH'].includes(r.code), `code ${r.code}`);
  t.equal(r.timeout, false);
});

// A connect timeout needs a SYN that is never answered, on loopback only: a listener that
// never accepts (python3, listen(0)) with its accept queue filled makes Linux drop further SYNs
// (tcp_conn_request: accept queue full → drop), so the connect stays pending.
t.test('connect timeout resolves with ETIMEDOUT and timeout: true', async (t) => {
  const py = spawn('python3', ['-c', 'import socket,sys\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const fill: net.Socket[] = [];
  t.teardown(() => {
    for (const f of fill) f.destroy();
    py.stdin.end();
    py.kill();
  });
  const port = Number(await bounded(new Promise<string>((resolve) => py.stdout.once('data', (d: Buffer) => { resolve(d.toString().trim()); })), 'the python listener'));
  t.ok(port > 0);
  const firstIn = new Promise<void>((resolve) => {
    for (let i = 0; i < 4; i++) {
      const f = net.connect(port, '127.0.0.1');
      f.on('error', () => undefined);
      f.once('connect', () => { resolve(); });
      fill.push(f);
    }
  });
  await bounded(firstIn, 'the accept queue to fill');
  const r = await bounded(dial('127.0.0.1', port, 500), 'dial');
  t.same(r, { ok: false, code: 'ETIMEDOUT', timeout: true });
});
