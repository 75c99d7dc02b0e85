// Stage 5 on real loopback sockets: holdWhile() reading a client accepted paused (as
// lib/accept/listen.ts accepts them) while it waits for a backend slot.
import { Buffer } from 'node:buffer';
import net from 'node:net';
import t, { type Test } from 'tap';
import { holdWhile } from '../../lib/connect/hold.js';

/** A connected pair on 127.0.0.1, closed in teardown. */
async function connectPair(t: Test): Promise<{ accepted: net.Socket; client: net.Socket }> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const acceptedP = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect(port, '127.0.0.1');
  client.on('error', () => undefined); // resets are the point of one test
  const accepted = await acceptedP;
  accepted.on('error', () => undefined); // proxy.ts records client errors; here they only need a listener
  t.teardown(() => {
    client.destroy();
    accepted.destroy();
    return new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
    });
  });
  return { accepted, client };
}

/** Resolves when `signal` aborts, or with 'released' when `release` is called. */
function waiter(): { during: (signal: AbortSignal) => Promise<string>; release: () => void } {
  let release = (): void => undefined;
  return {
    during: (signal) =>
      new Promise((resolve) => {
        release = () => {
          resolve('released');
        };
        if (signal.aborted) resolve('aborted');
        signal.addEventListener('abort', () => {
          resolve('aborted');
        });
      }),
    release: () => {
      release();
    },
  };
}

/** Polls `cond` every 10 ms for up to 5 s. */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
}

t.test('bytes the client sends while held are returned in order, and the wait runs to its end', async (t) => {
  const { accepted, client } = await connectPair(t);
  const w = waiter();
  let seen = 0;
  accepted.on('data', (d: Buffer) => (seen += d.length));
  const held = holdWhile(accepted, 1_024, w.during);
  client.write('one ');
  await until(() => seen >= 4);
  client.write('two');
  await until(() => seen >= 7);
  w.release();
  const r = await held;
  t.equal(r.result, 'released');
  t.equal(r.gone, undefined);
  t.equal(Buffer.concat(r.sent).toString(), 'one two');
  t.ok(accepted.isPaused(), 'left paused for the splice');
});

t.test("a client's FIN while held aborts the wait: gone 'ended'", async (t) => {
  const { accepted, client } = await connectPair(t);
  const w = waiter();
  const held = holdWhile(accepted, 1_024, w.during);
  client.end('bye');
  const r = await held;
  t.equal(r.result, 'aborted');
  t.equal(r.gone, 'ended');
  t.equal(Buffer.concat(r.sent).toString(), 'bye');
});

t.test("a client's reset while held aborts the wait: gone 'closed'", async (t) => {
  const { accepted, client } = await connectPair(t);
  const w = waiter();
  const held = holdWhile(accepted, 1_024, w.during);
  client.resetAndDestroy();
  const r = await held;
  t.equal(r.result, 'aborted');
  t.equal(r.gone, 'closed');
});

t.test('an already destroyed client aborts at once', async (t) => {
  const { accepted } = await connectPair(t);
  accepted.destroy();
  const r = await holdWhile(accepted, 1_024, waiter().during);
  t.same([r.result, r.gone], ['aborted', 'closed']);
});

t.test('reading stops at maxBytes: later bytes stay in the socket for the splice', async (t) => {
  const { accepted, client } = await connectPair(t);
  const w = waiter();
  const held = holdWhile(accepted, 4, w.during);
  client.write('abcdef');
  await until(() => accepted.isPaused());
  t.ok(accepted.isPaused(), 'paused once 4 or more bytes were read');
  client.write('ghij');
  client.end();
  w.release();
  const r = await held;
  t.equal(r.result, 'released');
  t.equal(Buffer.concat(r.sent).toString(), 'abcdef');
  const rest = await new Promise<string>((resolve) => {
    let got = '';
    accepted.on('data', (d: Buffer) => (got += d.toString()));
    accepted.once('end', () => {
      resolve(got);
    });
    accepted.resume();
  });
  t.equal(rest, 'ghij', 'nothing lost, nothing read twice');
});
