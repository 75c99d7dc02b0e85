// Stage 1 on real loopback sockets: listenAll() binds, hands accepted clients (paused) to the
// handler, reports a busy address as TETHER_ERR_LISTEN, and closeListeners() stops accepting.
import type { Buffer } from 'node:buffer';
import net from 'node:net';
import t, { type Test } from 'tap';
import { TetherError } from '../../lib/errors.js';
import { closeListeners, listenAll, type Listener } from '../../lib/accept/listen.js';
import { within } from '../helpers/e2e-tools.js';

/** Closes every listener and every socket in teardown. */
function own(t: Test, listeners: readonly Listener[], sockets: net.Socket[]): void {
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await closeListeners(listeners);
  });
}

const ipv6 = await new Promise<boolean>((resolve) => {
  const s = net.createServer();
  s.once('error', () => {
    resolve(false);
  });
  s.listen(0, '::1', () => {
    s.close(() => {
      resolve(true);
    });
  });
});

for (const host of ['127.0.0.1', '::1']) {
  t.test(`binds ${host} port 0 and hands a paused, half-open client to the handler`, { skip: host === '::1' && !ipv6 ? '::1 unavailable' : false }, async (t) => {
    const sockets: net.Socket[] = [];
    let onAccept: (c: net.Socket) => void = () => undefined;
    const listeners = await listenAll([{ host, portLow: 0, portHigh: 0 }], (c) => {
      sockets.push(c);
      onAccept(c);
    }, () => undefined);
    own(t, listeners, sockets);
    t.equal(listeners.length, 1);
    const l = listeners[0];
    if (!l) throw new Error('no listener');
    t.ok(l.port > 0, 'the bound port is reported');
    t.equal(l.host, host);
    t.equal(l.activated, false);
    const accepted = new Promise<net.Socket>((resolve) => {
      onAccept = resolve;
    });
    const c = net.connect(l.port, host);
    c.on('error', () => undefined);
    sockets.push(c);
    c.write('ping');
    const a = await within(accepted, 10_000, 'the accepted client');
    t.equal(a.isPaused(), true, 'accepted paused: no byte read before tether decides to');
    t.equal(a.allowHalfOpen, true, 'half-open capable');
    const data = await within(new Promise<Buffer>((resolve) => {
      a.once('data', resolve);
      a.resume();
    }), 10_000, 'the client bytes');
    t.equal(data.toString(), 'ping');
  });
}

t.test('an address already in use rejects with TETHER_ERR_LISTEN and the EADDRINUSE cause, without a crash', async (t) => {
  const busy = net.createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const { port } = busy.address() as net.AddressInfo;
  t.teardown(() => new Promise<void>((resolve) => busy.close(() => { resolve(); })));
  // A first address that binds, then the busy one: the first is closed again on failure.
  const err: unknown = await listenAll(
    [{ host: '127.0.0.1', portLow: 0, portHigh: 0 }, { host: '127.0.0.1', portLow: port, portHigh: port }],
    () => undefined,
    () => undefined,
  ).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof TetherError, 'a TetherError');
  if (!(err instanceof TetherError)) return;
  t.equal(err.code, 'TETHER_ERR_LISTEN');
  t.equal((err.cause as NodeJS.ErrnoException).code, 'EADDRINUSE');
});

t.test('closeListeners() stops accepting and resolves', async (t) => {
  const sockets: net.Socket[] = [];
  const listeners = await listenAll([{ host: '127.0.0.1', portLow: 0, portHigh: 0 }], (c) => sockets.push(c), () => undefined);
  own(t, listeners, sockets);
  const l = listeners[0];
  if (!l) throw new Error('no listener');
  const closedP = new Promise<void>((resolve) => l.server.once('close', () => { resolve(); }));
  await within(closeListeners(listeners), 10_000, 'closeListeners');
  t.equal(l.server.listening, false, 'not listening any more');
  await within(closedP, 10_000, 'the server close');
  const refused = await within(new Promise<string>((resolve) => {
    const c = net.connect(l.port, '127.0.0.1');
    sockets.push(c);
    c.once('connect', () => { resolve('connected'); });
    c.once('error', (e: NodeJS.ErrnoException) => { resolve(e.code ?? 'error'); });
  }), 10_000, 'a connect after close');
  t.equal(refused, 'ECONNREFUSED');
  t.equal(sockets.length, 1, 'the handler got no client after close');
});
