// connect/health-probe.ts on real loopback sockets: tcp, banner and send checks, and each way a
// check fails (refused, wrong greeting, silence, close, cap, abort), with its code.
import net from 'node:net';
import t, { type Test } from 'tap';
import { probe, type ProbeOptions } from '../../lib/connect/health-probe.js';
import { compileExpect } from '../../lib/health/check.js';
import { deadPort } from '../helpers/named-backend.js';
import { blackHole } from '../helpers/e2e-tools.js';

/** A loopback server running `onConnection`; records what each connection sent. Closed on teardown. */
async function server(t: Test, onConnection: (s: net.Socket) => void): Promise<{ port: number; received: () => string[] }> {
  const got: string[] = [];
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    const i = got.push('') - 1;
    s.on('data', (d: Buffer) => (got[i] = (got[i] ?? '') + d.toString('latin1')));
    s.on('error', () => undefined); // the probe closes abruptly by design
    s.on('close', () => sockets.delete(s));
    onConnection(s);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => {
          r();
        });
      }),
  );
  return { port: (srv.address() as net.AddressInfo).port, received: () => got };
}

const OPTS: ProbeOptions = { timeoutMs: 2_000, maxBytes: 4_096 };
const IMAP = compileExpect('^\\* OK');

t.test('tcp: a listening port passes, a closed one fails with ECONNREFUSED', async (t) => {
  const s = await server(t, () => undefined);
  t.same(await probe('127.0.0.1', s.port, OPTS), { ok: true });
  t.same(await probe('127.0.0.1', await deadPort(), OPTS), { ok: false, code: 'ECONNREFUSED' });
});

t.test('banner: the expected greeting passes; another greeting, silence or a close fail', async (t) => {
  const good = await server(t, (s) => s.write('* OK [CAPABILITY IMAP4rev1] ready\r\n'));
  t.same(await probe('127.0.0.1', good.port, { ...OPTS, expect: IMAP }), { ok: true });

  const split = await server(t, (s) => {
    s.write('*');
    setTimeout(() => s.write(' O'), 30);
    setTimeout(() => s.write('K ready\r\n'), 60);
  });
  t.same(await probe('127.0.0.1', split.port, { ...OPTS, expect: IMAP }), { ok: true }, 'a greeting in three segments');

  const garbage = await server(t, (s) => s.end('HELLO I AM NOT IMAP\r\n'));
  t.same(await probe('127.0.0.1', garbage.port, { ...OPTS, expect: IMAP }), { ok: false, code: 'expect-mismatch' }, 'wrong greeting, then close');

  const silent = await server(t, () => undefined);
  t.same(await probe('127.0.0.1', silent.port, { ...OPTS, timeoutMs: 200, expect: IMAP }), { ok: false, code: 'expect-timeout' }, 'connected, never greeted');

  const wrongOpen = await server(t, (s) => s.write('* BYE busy\r\n'));
  t.same(await probe('127.0.0.1', wrongOpen.port, { ...OPTS, timeoutMs: 200, expect: IMAP }), { ok: false, code: 'expect-timeout' }, 'wrong greeting, left open');

  const flood = await server(t, (s) => s.write('x'.repeat(10_000)));
  t.same(await probe('127.0.0.1', flood.port, { ...OPTS, expect: IMAP }), { ok: false, code: 'expect-mismatch' }, 'the read cap');

  const reset = await server(t, (s) => s.resetAndDestroy());
  t.same(await probe('127.0.0.1', reset.port, { ...OPTS, expect: IMAP }), { ok: false, code: 'ECONNRESET' }, 'a reset');
});

t.test('send: the request (after the preamble) goes out, the answer after the greeting matches', async (t) => {
  const s = await server(t, (sock) => {
    sock.write('* OK ready\r\n');
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (buf.endsWith('a1 NOOP\r\n')) sock.write('a1 OK NOOP completed\r\n');
    });
  });
  const opts = { ...OPTS, preamble: Buffer.from('PROXY UNKNOWN\r\n'), send: Buffer.from('a1 NOOP\r\n'), expect: compileExpect('^a1 OK') };
  t.same(await probe('127.0.0.1', s.port, opts), { ok: true });
  t.equal(s.received()[0], 'PROXY UNKNOWN\r\na1 NOOP\r\n', 'preamble first, then the request, nothing else');
  t.same(await probe('127.0.0.1', s.port, { ...opts, send: Buffer.from('a1 NOPE\r\n'), timeoutMs: 200 }), { ok: false, code: 'expect-timeout' });
});

t.test('tcp with a preamble: written, then the check passes', async (t) => {
  const s = await server(t, () => undefined);
  t.same(await probe('127.0.0.1', s.port, { ...OPTS, preamble: Buffer.from('PROXY UNKNOWN\r\n') }), { ok: true });
  for (let i = 0; i < 100 && s.received()[0] !== 'PROXY UNKNOWN\r\n'; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(s.received()[0], 'PROXY UNKNOWN\r\n');
});

t.test('abort: a check in flight ends with code aborted; an aborted signal starts none', async (t) => {
  const silent = await server(t, () => undefined);
  const ac = new AbortController();
  const p = probe('127.0.0.1', silent.port, { ...OPTS, timeoutMs: 60_000, expect: IMAP, signal: ac.signal });
  setTimeout(() => {
    ac.abort();
  }, 50);
  t.same(await p, { ok: false, code: 'aborted' });
  t.same(await probe('127.0.0.1', silent.port, { ...OPTS, signal: ac.signal }), { ok: false, code: 'aborted' });
});

t.test('no connection within the timeout: ETIMEDOUT', async (t) => {
  const hole = await blackHole();
  if (!hole) {
    t.pass('not tested', { skip: 'no loopback black hole on this OS (a full accept queue does not drop SYNs here)' });
    return;
  }
  t.teardown(() => {
    hole.close();
  });
  t.same(await probe('127.0.0.1', hole.port, { ...OPTS, timeoutMs: 300, expect: IMAP }), { ok: false, code: 'ETIMEDOUT' });
});
