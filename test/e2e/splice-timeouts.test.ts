// The splice's timeouts and bounds through `node bin/tether`: a side that takes none of the
// bytes waiting toward it (write-stall), a half-closed connection whose other side stays silent
// (fin-timeout), and a backend answering 100 Continue forever to a client that does not read
// (tether's memory stays bounded). Backends are raw loopback servers, so each test controls
// exactly who reads and who closes. The timeouts are set short; assertions are on the
// termination and on byte counts, never on how long something took.
import t, { type Test } from 'tap';
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { tetherOnLoopback, within } from '../helpers/e2e-tools.js';
import type { LogLine, RunningTether } from '../helpers/run-tether.js';

/** A loopback server running `onClient` on each socket; allowHalfOpen so it never FINs by itself. */
async function rawBackend(t: Test, onClient: (s: net.Socket) => void): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('error', () => undefined); // tether closing the connection is what the tests look at
    s.on('close', () => sockets.delete(s));
    onClient(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          resolve();
        });
      }),
  );
  return (server.address() as net.AddressInfo).port;
}

async function client(t: Test, port: number): Promise<net.Socket> {
  const c = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  c.on('error', () => undefined); // the termination in conn.close is what is checked
  t.teardown(() => c.destroy());
  await new Promise<void>((resolve) => c.once('connect', resolve));
  return c;
}

const firstClose = (rt: RunningTether): Promise<LogLine> => rt.waitFor((l) => l.event === 'conn.close', 15_000);

/** Writes up to `maxBytes` in 64 KiB chunks, waiting for drain, until `s` closes. */
async function flood(s: net.Socket, maxBytes: number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let sent = 0;
  while (sent < maxBytes && !s.destroyed) {
    sent += chunk.length;
    if (!s.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          s.off('drain', done);
          s.off('close', done);
          resolve();
        };
        s.once('drain', done);
        s.once('close', done);
      });
    }
  }
  return sent;
}

const STALL = ['--backend-stall-timeout', '400ms', '--client-stall-timeout', '400ms'];

t.test('write-stall: a backend that accepts and never reads', async (t) => {
  const port = await rawBackend(t, (s) => s.pause());
  const { rt, port: front } = await tetherOnLoopback(t, ['--backend', `127.0.0.1:${String(port)}`, ...STALL]);
  const c = await client(t, front);
  void flood(c, 512 * 1024 * 1024);
  t.match(await firstClose(rt), { termination: { cause: 'backend-timeout', stage: 'splice', code: 'write-stall' } });
});

t.test('write-stall: a client that never reads', async (t) => {
  const port = await rawBackend(t, (s) => void flood(s, 512 * 1024 * 1024));
  const { rt, port: front } = await tetherOnLoopback(t, ['--backend', `127.0.0.1:${String(port)}`, ...STALL]);
  const c = await client(t, front);
  c.pause();
  t.match(await firstClose(rt), { termination: { cause: 'client-timeout', stage: 'splice', code: 'write-stall' } });
});

t.test('a slow but moving reader is not a stall; an idle connection is not one either', async (t) => {
  const TOTAL = 24 * 1024 * 1024;
  const port = await rawBackend(t, (s) => {
    s.once('data', () => {
      void flood(s, TOTAL).then(() => s.end());
    });
  });
  // Stall timeouts of 1.5 s against pauses of 150 ms: a ten-fold margin, so a loaded machine's
  // late timers cannot turn the slow reader into a stall (400 ms failed once at load 12).
  const SLOW_STALL = ['--backend-stall-timeout', '1500ms', '--client-stall-timeout', '1500ms'];
  /** One slow read of TOTAL bytes; `frozen` when this process itself stopped reading for 1 s. */
  const attempt = async (): Promise<{ got: number; frozen: boolean; close: LogLine }> => {
    const { rt, port: front } = await tetherOnLoopback(t, ['--backend', `127.0.0.1:${String(port)}`, ...SLOW_STALL]);
    const c = await client(t, front);
    // Idle past the stall timeouts with nothing waiting either way, then ask.
    await new Promise((r) => setTimeout(r, 2_000));
    c.write('go');
    let got = 0;
    c.on('data', (d: Buffer) => (got += d.length));
    const ended = new Promise<void>((resolve) => c.once('end', resolve));
    // Read in bursts: 150 ms paused (less than the stall timeout), then 20 ms reading. A burst
    // must free enough of this socket's receive buffer for the kernel to reopen its window:
    // one event-loop turn (a 64 KiB read, or none under load) did not, and tether then saw no
    // byte taken for 1.5 s — rightly, as it sees only what the kernel takes.
    let longest = 0;
    for (let i = 0; i < 2_000 && got < TOTAL && !c.destroyed && !c.readableEnded; i++) {
      const began = Date.now();
      c.pause();
      await new Promise((r) => setTimeout(r, 150));
      c.resume();
      await new Promise((r) => setTimeout(r, 20));
      longest = Math.max(longest, Date.now() - began);
    }
    await within(Promise.race([ended, new Promise((r) => c.once('close', r))]), 10_000, 'the backend FIN');
    c.end();
    return { got, frozen: longest > 1_000, close: await firstClose(rt) };
  };
  // The claim holds for a reader that kept its pace. A machine busy enough to stop this process
  // for 1 s of the 1.5 s did not test it, so that run is repeated (at most three runs).
  let run = await attempt();
  for (let i = 1; i < 3 && run.frozen && run.got !== TOTAL; i++) {
    t.comment(`run ${String(i)}: this process stopped reading for over 1 s; running again`);
    run = await attempt();
  }
  t.equal(run.got, TOTAL, 'every byte arrived');
  t.match(run.close, { termination: { cause: 'normal', stage: 'splice' } });
});

t.test('fin-timeout: the client sent its request and FIN, the backend never answers', async (t) => {
  const port = await rawBackend(t, (s) => s.resume());
  const { rt, port: front } = await tetherOnLoopback(t, ['--backend', `127.0.0.1:${String(port)}`, '--fin-timeout', '400ms']);
  const c = await client(t, front);
  c.end('GET / HTTP/1.0\r\n\r\n');
  t.match(await firstClose(rt), { termination: { cause: 'backend-timeout', stage: 'splice', code: 'fin-timeout' } });
});

t.test('fin-timeout: the backend answered and sent its FIN, the client stays silent and open', async (t) => {
  const port = await rawBackend(t, (s) => {
    s.once('data', () => s.end('bye\n'));
  });
  const { rt, port: front } = await tetherOnLoopback(t, ['--backend', `127.0.0.1:${String(port)}`, '--fin-timeout', '400ms']);
  const c = await client(t, front);
  c.resume();
  c.write('hi\n');
  t.match(await firstClose(rt), { termination: { cause: 'client-timeout', stage: 'splice', code: 'fin-timeout' } });
});

/** tether's resident set size in bytes (Linux /proc). */
function rssOf(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${String(pid)}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN) * 1024;
}

t.test('100 Continue forever to a client that does not read: tether stays bounded', async (t) => {
  const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n'.repeat(2_000), 'latin1');
  let sent = 0;
  const port = await rawBackend(t, (s) => {
    s.resume();
    void (async () => {
      // Bounded: at most 4 GiB, and it ends when tether closes the socket.
      for (let i = 0; i < 80_000 && !s.destroyed; i++) {
        sent += CONTINUE.length;
        if (!s.write(CONTINUE)) await new Promise<void>((resolve) => {
          s.once('drain', resolve);
          s.once('close', resolve);
        });
      }
    })();
  });
  const { rt, port: front } = await tetherOnLoopback(t, ['--backend', `127.0.0.1:${String(port)}`, '--insert-cookie', 'SRV']);
  const pid = rt.child.pid!;
  const before = rssOf(pid);
  const c = await client(t, front);
  c.pause();
  c.write('POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n');
  let peak = before;
  for (let i = 0; i < 30; i++) {
    await new Promise((r) => setTimeout(r, 100));
    peak = Math.max(peak, rssOf(pid));
  }
  const mib = (n: number): string => (n / 1024 / 1024).toFixed(1);
  t.comment(`tether VmRSS before ${mib(before)} MiB, peak ${mib(peak)} MiB; the backend had written ${mib(sent)} MiB`);
  t.ok(peak - before < 64 * 1024 * 1024, `growth ${mib(peak - before)} MiB < 64 MiB`);
  t.equal(rt.child.exitCode, null, 'tether still running');
});
