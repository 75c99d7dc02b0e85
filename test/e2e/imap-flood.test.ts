// A flooding IMAP backend through `node bin/tether --protocol imap`: the backend answers the
// replayed LOGIN with endless untagged lines (`* OK x`). Tether holds a bounded amount (its RSS
// stays near where it started), fails the login with `backend-flood`, gives the client the
// usual "backend unavailable" BYE, and stays up for the next client.
import t from 'tap';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { runTether } from '../helpers/run-tether.js';
import { imapWire } from '../helpers/imap-backend.js';
import { waitForCount, within } from '../helpers/e2e-tools.js';
import { secret } from '../helpers/secrets.js';

/** The password of every login here (an IMAP atom, from the secret registry). */
const PW = secret('mail-atom');

/** How long the fake backend floods one connection at most (tether's login deadline is longer). */
const FLOOD_MS = 15_000;

/** The flood, 64 KiB of `* OK x` lines per write. */
const BLOCK = Buffer.from('* OK x\r\n'.repeat(8 * 1024), 'latin1');

/** How far tether's RSS may grow over its idle size while the floods run (it held 2.8 GB before). */
const RSS_GROWTH_BOUND_BYTES = 96 * 1024 * 1024;

/** An IMAP-ish backend: greets, then answers a LOGIN with untagged lines until the client goes. */
async function floodingBackend(): Promise<{ port: number; bytesSent: () => number; close: () => Promise<void> }> {
  let sent = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined); // tether cutting the flood off shows as a reset
    s.on('close', () => sockets.delete(s));
    s.write('* OK [CAPABILITY IMAP4rev1] flood ready\r\n');
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (!/LOGIN/i.test(got)) return;
      got = '';
      const started = Date.now();
      const pump = (): void => {
        while (!s.destroyed && Date.now() - started < FLOOD_MS) {
          sent += BLOCK.length;
          if (!s.write(BLOCK)) {
            s.once('drain', pump);
            return;
          }
        }
        s.destroy();
      };
      pump();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    bytesSent: () => sent,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${String(pid)}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

t.test('a backend flooding untagged lines after LOGIN', async (t) => {
  const b = await floodingBackend();
  t.teardown(() => b.close());
  const rt = await runTether(['--listen', '127.0.0.1:0', '--protocol', 'imap', '--affinity', 'login', '--backend', `f=127.0.0.1:${String(b.port)}`]);
  t.teardown(() => rt.stop());
  const pid = rt.child.pid!;
  const port = rt.ports[0]!;
  const idle = rssBytes(pid);
  let peak = idle;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssBytes(pid));
  }, 50);
  t.teardown(() => { clearInterval(sampler); });
  for (let i = 1; i <= 3; i++) {
    const w = await imapWire(port);
    t.teardown(() => { w.close(); });
    await w.waitFor(/^\* OK.*\r\n/m);
    w.send(`a${String(i)} LOGIN user${String(i)} ${PW}\r\n`);
    const bye = await w.waitFor(/\r\n/, 12_000);
    t.match(bye, /^\* BYE \[UNAVAILABLE\] Backend unavailable/, `client ${String(i)} gets a clean BYE`);
    await within(w.closed, 10_000, 'tether closes the client');
    const closes = await waitForCount(rt, (l) => l.event === 'conn.close', i, 10_000);
    t.match(closes[i - 1], { termination: { cause: 'backend', stage: 'connect', code: 'backend-flood' } }, 'termination backend-flood');
    t.equal(rt.child.exitCode, null, 'tether is still running');
  }
  clearInterval(sampler);
  peak = Math.max(peak, rssBytes(pid));
  t.ok(peak - idle < RSS_GROWTH_BOUND_BYTES, `RSS grew by ${String(Math.round((peak - idle) / 1024))} KiB (idle ${String(Math.round(idle / 1024))} KiB; the backend sent ${String(Math.round(b.bytesSent() / 1024))} KiB)`);
  t.notOk(rt.stdout().includes(PW), 'the password is not logged');
  t.equal(await within(rt.stop(), 10_000, 'SIGTERM stops tether'), 0, 'exit status 0');
});
