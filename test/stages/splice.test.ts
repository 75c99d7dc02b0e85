// Stage 6 on real loopback sockets: splice() between a client accepted paused (as
// lib/accept/listen.ts accepts them) and a dialed backend, each with a scripted peer.
import { Buffer } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import t, { type Test } from 'tap';
import { splice, type SpliceOptions } from '../../lib/splice/splice.js';
import { within } from '../helpers/e2e-tools.js';

/** A connected pair on 127.0.0.1: `near` is the accepted (paused, half-open) side. */
async function pair(t: Test): Promise<{ near: net.Socket; far: net.Socket }> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const nearP = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const far = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  far.on('error', () => undefined); // resets are the point of some tests
  const near = await nearP;
  t.teardown(() => {
    far.destroy();
    near.destroy();
    return new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
    });
  });
  return { near, far };
}

/** `user` is the client's peer, `server` the backend's; splice runs between client and backend. */
async function setup(t: Test): Promise<{ client: net.Socket; backend: net.Socket; user: net.Socket; server: net.Socket }> {
  const c = await pair(t);
  const b = await pair(t);
  // The backend side is spliced from the dialing end, as dial() returns it; the accepted end plays the backend.
  b.near.resume();
  return { client: c.near, user: c.far, backend: b.far, server: b.near };
}

const OPTS: SpliceOptions = { idleMs: 30_000, backendStallMs: 30_000, clientStallMs: 30_000, finMs: 30_000 };

/** Everything `s` sends until its FIN, hashed, with its length. */
function collect(s: net.Socket): Promise<{ bytes: number; sha: string; head: Buffer }> {
  return new Promise((resolve) => {
    const h = createHash('sha256');
    let bytes = 0;
    let head = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      h.update(d);
      bytes += d.length;
      if (head.length < 64) head = Buffer.concat([head, d]).subarray(0, 64);
    });
    s.once('end', () => {
      resolve({ bytes, sha: h.digest('hex'), head });
    });
  });
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const closed = (s: net.Socket): Promise<void> => (s.closed ? Promise.resolve() : new Promise((r) => s.once('close', () => { r(); })));

t.test('the prelude reaches the backend once, before the piped bytes; megabytes pass intact both ways; client half-closes first', async (t) => {
  const { client, backend, user, server } = await setup(t);
  const prelude = [Buffer.from('PRELUDE-1|'), Buffer.from('PRELUDE-2|')];
  const up = randomBytes(3 * 1024 * 1024);
  const down = randomBytes(2 * 1024 * 1024);
  const atServer = collect(server);
  const atUser = collect(user);
  const s = splice(client, backend, prelude, OPTS);
  user.end(up);
  const got = await within(atServer, 20_000, 'the client bytes at the backend');
  t.equal(got.bytes, 20 + up.length, 'prelude + client bytes, nothing doubled');
  t.equal(got.sha, sha(Buffer.concat([...prelude, up])), 'prelude first, then the client bytes in order');
  // The client has finished sending; the backend still answers, and the client receives it all.
  server.end(down);
  const back = await within(atUser, 20_000, 'the backend bytes at the client');
  t.equal(back.bytes, down.length);
  t.equal(back.sha, sha(down));
  const r = await within(s.done, 20_000, 'the splice to end');
  t.same(r.termination, { cause: 'normal', stage: 'splice' });
  t.equal(r.bytesIn, up.length, 'bytesIn counts what was read from the client socket');
  t.equal(r.bytesOut, down.length);
  t.ok(client.destroyed && backend.destroyed, 'both sides closed');
});

t.test('backend half-closes first: the client keeps sending and the backend receives it all', async (t) => {
  const { client, backend, user, server } = await setup(t);
  const down = randomBytes(1024 * 1024);
  const up = randomBytes(1024 * 1024);
  const atUser = collect(user);
  const atServer = collect(server);
  const s = splice(client, backend, [], OPTS);
  server.end(down);
  const back = await within(atUser, 20_000, 'the backend bytes at the client');
  t.equal(back.sha, sha(down));
  t.notOk(client.destroyed, 'the client direction still open after the backend FIN');
  user.end(up);
  const got = await within(atServer, 20_000, 'the client bytes at the backend');
  t.equal(got.sha, sha(up));
  const r = await within(s.done, 20_000, 'the splice to end');
  t.same(r.termination, { cause: 'normal', stage: 'splice' });
  t.equal(r.bytesIn, up.length);
  t.equal(r.bytesOut, down.length);
});

t.test('a reset from the client destroys the backend socket; the result names the client', async (t) => {
  const { client, backend, user, server } = await setup(t);
  server.on('error', () => undefined);
  const s = splice(client, backend, [Buffer.from('x')], OPTS);
  await within(new Promise((r) => server.once('data', r)), 20_000, 'the prelude at the backend');
  user.resetAndDestroy();
  const r = await within(s.done, 20_000, 'the splice to end');
  t.equal(r.termination.cause, 'client');
  t.equal(r.termination.stage, 'splice');
  t.equal(r.termination.code, 'ECONNRESET');
  t.ok(backend.destroyed, 'backend socket destroyed');
  await within(closed(server), 20_000, 'the backend peer to see the close');
});

t.test('a reset from the backend destroys the client socket; the result names the backend', async (t) => {
  const { client, backend, user, server } = await setup(t);
  const s = splice(client, backend, [], OPTS);
  user.write('hello');
  await within(new Promise((r) => server.once('data', r)), 20_000, 'bytes at the backend');
  server.resetAndDestroy();
  const r = await within(s.done, 20_000, 'the splice to end');
  t.equal(r.termination.cause, 'backend');
  t.equal(r.termination.code, 'ECONNRESET');
  t.ok(client.destroyed, 'client socket destroyed');
  await within(closed(user), 20_000, 'the client peer to see the close');
});

t.test('silence both ways ends the splice at idleMs as client-timeout/idle', async (t) => {
  const { client, backend } = await setup(t);
  const s = splice(client, backend, [], { ...OPTS, idleMs: 300 });
  const r = await within(s.done, 20_000, 'the idle timeout');
  t.same(r.termination, { cause: 'client-timeout', stage: 'splice', code: 'idle' });
  t.ok(client.destroyed && backend.destroyed);
});

t.test('a client that stops reading pauses the backend (bounded buffering), then the stall timeout ends it', async (t) => {
  const { client, backend, user, server } = await setup(t);
  user.pause(); // the client never reads
  server.on('error', () => undefined);
  let offered = 0;
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let writing = true;
  const pump = (): void => {
    while (writing && offered < 256 * 1024 * 1024) {
      offered += chunk.length;
      if (!server.write(chunk)) {
        server.once('drain', pump);
        return;
      }
    }
  };
  const s = splice(client, backend, [], { ...OPTS, clientStallMs: 1_000 });
  pump();
  let maxWaiting = 0;
  const sample = setInterval(() => {
    maxWaiting = Math.max(maxWaiting, client.writableLength);
  }, 20);
  t.teardown(() => {
    clearInterval(sample);
    writing = false;
  });
  const r = await within(s.done, 20_000, 'the stall timeout');
  clearInterval(sample);
  writing = false;
  t.same(r.termination, { cause: 'client-timeout', stage: 'splice', code: 'write-stall' });
  // Kernel buffers on loopback take some MB; tether itself holds at most about a highWaterMark
  // per direction, so what it read from the backend stays far below what was offered.
  t.ok(maxWaiting <= 1024 * 1024, `tether's buffer toward the client stayed bounded (${String(maxWaiting)} bytes)`);
  t.ok(backend.bytesRead < 64 * 1024 * 1024, `bytes read from the backend bounded (${String(backend.bytesRead)})`);
  t.ok(r.bytesOut <= backend.bytesRead);
});

t.test('a few KiB waiting toward a backend that reads nothing (below the high-water mark, so nothing pauses) still end at the stall timeout', async (t) => {
  const { client, backend, user, server } = await setup(t);
  server.pause(); // the backend never reads
  server.on('error', () => undefined);
  user.on('error', () => undefined);
  const s = splice(client, backend, [], { ...OPTS, backendStallMs: 1_000 });
  const chunk = Buffer.alloc(1024, 0x62);
  // 8 KiB a turn until tether holds bytes the kernel would not take: then at most 8 KiB wait,
  // below the 16 KiB high-water mark, so no write returns false and the client is not paused.
  const deadline = Date.now() + 15_000;
  while (backend.writableLength === 0 && Date.now() < deadline) {
    for (let i = 0; i < 8; i++) user.write(chunk);
    await new Promise((r) => setTimeout(r, 1));
  }
  t.ok(backend.writableLength > 0, `bytes wait in tether toward the backend (${String(backend.writableLength)})`);
  t.ok(backend.writableLength < backend.writableHighWaterMark && !client.isPaused(), 'below the high-water mark: only the write itself can arm the watch');
  const r = await within(s.done, 20_000, 'the stall timeout');
  t.same(r.termination, { cause: 'backend-timeout', stage: 'splice', code: 'write-stall' });
});

t.test('cut() ends both sides as tether/shutdown', async (t) => {
  const { client, backend } = await setup(t);
  const s = splice(client, backend, [], OPTS);
  s.cut();
  const r = await within(s.done, 20_000, 'the cut');
  t.same(r.termination, { cause: 'tether', stage: 'shutdown', code: 'shutdown' });
});
