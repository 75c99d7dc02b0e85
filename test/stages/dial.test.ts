// Stage 5 on real loopback sockets: dial() resolves with a connected socket or a failure code,
// never rejecting.
import type { Buffer } from 'node:buffer';
import net from 'node:net';
import t from 'tap';
import { dial } from '../../lib/connect/dial.js';
import { blackHole, within } from '../helpers/e2e-tools.js';

t.test('connects to a listening loopback port; the socket is half-open capable and carries bytes', async (t) => {
  const server = net.createServer((s) => { s.end('hi'); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  t.teardown(() => new Promise<void>((resolve) => server.close(() => { resolve(); })));
  const r = await within(dial('127.0.0.1', port, 5_000), 10_000, 'dial');
  t.equal(r.ok, true);
  if (!r.ok) return;
  t.teardown(() => { r.socket.destroy(); });
  t.equal(r.socket.allowHalfOpen, true);
  t.equal(r.socket.remotePort, port);
  const got = await within(new Promise<string>((resolve) => {
    let s = '';
    r.socket.on('data', (d: Buffer) => (s += d.toString()));
    r.socket.once('end', () => { resolve(s); });
  }), 10_000, 'the backend bytes');
  t.equal(got, 'hi');
});

t.test('a refused port resolves with ECONNREFUSED (no rejection, no timeout)', async (t) => {
  // Bind then close: the port is free and nothing listens on it.
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => { resolve(); }));
  const r = await within(dial('127.0.0.1', port, 5_000), 10_000, 'dial');
  t.same(r, { ok: false, code: 'ECONNREFUSED', timeout: false });
});

t.test('::1 refused resolves likewise, or is skipped without IPv6', async (t) => {
  const r = await within(dial('::1', 1, 5_000), 10_000, 'dial');
  t.equal(r.ok, false);
  if (r.ok) return;
  t.ok(['ECONNREFUSED', 'EADDRNOTAVAIL', 'ENETUNREACH'].includes(r.code), `code ${r.code}`);
  t.equal(r.timeout, false);
});

// A connect timeout needs a SYN that is never answered, on loopback only: e2e-tools' blackHole
// (a listener that never accepts, its accept queue filled) makes Linux drop further SYNs.
t.test('connect timeout resolves with ETIMEDOUT and timeout: true', async (t) => {
  const hole = await blackHole();
  if (!hole) {
    t.pass('not tested', { skip: 'no loopback black hole on this OS (a full accept queue does not drop SYNs here)' });
    return;
  }
  t.teardown(() => { hole.close(); });
  const r = await within(dial('127.0.0.1', hole.port, 500), 10_000, 'dial');
  t.same(r, { ok: false, code: 'ETIMEDOUT', timeout: true });
});
