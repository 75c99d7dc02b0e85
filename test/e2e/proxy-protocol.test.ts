// PROXY protocol through the real binary: --proxy-protocol v1|v2 toward backends (the header
// goes first, with the client's real address), and --accept-proxy-protocol from a trusted
// balancer (played by this test), whose carried address becomes the client address.
import { Buffer } from 'node:buffer';
import net from 'node:net';
import t, { type Test } from 'tap';
import { runTether, type RunningTether } from '../helpers/run-tether.js';
import { imapWire } from '../helpers/imap-backend.js';
import { secret } from '../helpers/secrets.js';

interface Recording {
  readonly port: number;
  readonly accepted: () => number;
  /** Resolves with everything the next connection sent, once it has ended. */
  next(): Promise<Buffer>;
  close(): Promise<void>;
}

/** A backend that records each connection's bytes until the client's FIN, then ends. */
function recordingBackend(): Promise<Recording> {
  const done: Buffer[] = [];
  const waiters: ((b: Buffer) => void)[] = [];
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', () => undefined); // the test checks what arrived
    s.on('end', () => {
      s.end();
      const all = Buffer.concat(chunks);
      const w = waiters.shift();
      if (w) w(all);
      else done.push(all);
    });
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        accepted: () => accepted,
        next: () => {
          const d = done.shift();
          return d ? Promise.resolve(d) : new Promise((r) => waiters.push(r));
        },
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => {
              r();
            });
          }),
      });
    });
  });
}

/** Connects from `localAddress`, sends `bytes`, half-closes; resolves with the client's port and when it closed. */
function sendAndEnd(port: number, bytes: Buffer | string, localAddress = '127.0.0.1'): Promise<{ clientPort: number; closed: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress });
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('error', () => undefined); // a reset counts as closed
    const closed = new Promise<string>((r) => s.once('close', () => { r(got); }));
    s.setTimeout(8_000, () => s.destroy());
    s.once('connect', () => {
      s.write(bytes);
      s.end();
      resolve({ clientPort: s.localPort ?? 0, closed });
    });
    s.once('error', reject);
  });
}

async function start(t: Test, backendPort: number, extra: readonly string[]): Promise<{ rt: RunningTether; port: number }> {
  const rt = await runTether(['--listen', '127.0.0.1:0', '--backend', `a=127.0.0.1:${String(backendPort)}`, '--log-level', 'info', '--grace', '1s', ...extra]);
  t.teardown(() => rt.stop());
  return { rt, port: rt.ports[0] ?? 0 };
}

const code = (c: string) => (l: { event?: string; [k: string]: unknown }): boolean =>
  l.event === 'conn.close' && (l['termination'] as { code?: string } | undefined)?.code === c;

const SIG = '0d0a0d0a000d0a515549540a';
const u16 = (n: number): string => n.toString(16).padStart(4, '0');

t.test('--proxy-protocol v1: the backend reads the header, then the client bytes', async (t) => {
  const b = await recordingBackend();
  t.teardown(() => b.close());
  const { port } = await start(t, b.port, ['--proxy-protocol', 'v1']);
  const c = await sendAndEnd(port, 'hello', '127.0.0.3');
  t.equal((await b.next()).toString('latin1'), `PROXY TCP4 127.0.0.3 127.0.0.1 ${String(c.clientPort)} ${String(port)}\r\nhello`);
});

t.test('--proxy-protocol v2: the binary header, then the client bytes', async (t) => {
  const b = await recordingBackend();
  t.teardown(() => b.close());
  const { port } = await start(t, b.port, ['--proxy-protocol', 'v2']);
  const c = await sendAndEnd(port, 'hello', '127.0.0.3');
  const want = Buffer.concat([Buffer.from(`${SIG}2111000c7f0000037f000001${u16(c.clientPort)}${u16(port)}`, 'hex'), Buffer.from('hello')]);
  t.same(await b.next(), want);
});

t.test('a trusted balancer\'s header sets the client address for affinity, the backend and the log', async (t) => {
  const b = await recordingBackend();
  t.teardown(() => b.close());
  const { rt, port } = await start(t, b.port, ['--accept-proxy-protocol', '--trusted-proxy', '127.0.0.0/8', '--affinity', 'source', '--proxy-protocol', 'v1']);
  const v1 = `PROXY TCP4 198.51.100.7 127.0.0.1 40000 ${String(port)}\r\n`;
  await sendAndEnd(port, `${v1}hello`);
  t.equal((await b.next()).toString('latin1'), `${v1}hello`, 'v1 in: the carried address goes on, the bytes after the header are kept');
  const line = await rt.waitFor((l) => l.event === 'conn.close' && l['client'] === '198.51.100.7:40000');
  t.match(line, { backend: 'a', key: { kind: 'source' }, termination: { cause: 'normal' } });
  const v2 = Buffer.from(`${SIG}2111000cc6336407c000020109c4${u16(port)}`, 'hex');
  const c = await sendAndEnd(port, Buffer.concat([v2, Buffer.from('world')]));
  await c.closed;
  t.equal((await b.next()).toString('latin1'), `PROXY TCP4 198.51.100.7 192.0.2.1 2500 ${String(port)}\r\nworld`, 'v2 in, v1 out');
});

t.test('--deny applies to the address a trusted header carries, not to the balancer', async (t) => {
  const b = await recordingBackend();
  t.teardown(() => b.close());
  const { rt, port } = await start(t, b.port, ['--accept-proxy-protocol', '--trusted-proxy', '127.0.0.1', '--deny', '198.51.100.0/24', '--allow', '192.0.2.0/24']);
  const denied = await sendAndEnd(port, `PROXY TCP4 198.51.100.7 127.0.0.1 40000 ${String(port)}\r\nhello`);
  t.equal(await denied.closed, '');
  t.match(await rt.waitFor(code('acl-deny')), { client: '198.51.100.7:40000', backend: null, termination: { cause: 'client', stage: 'accept' } });
  t.equal(b.accepted(), 0, 'no backend was dialled');
  await sendAndEnd(port, `PROXY TCP4 192.0.2.9 127.0.0.1 40001 ${String(port)}\r\nhello`);
  t.match((await b.next()).toString('latin1'), /^hello$/, 'an allowed carried address is served (balancer outside --allow)');
});

t.test('a header from an untrusted source is refused; plain clients from there are served', async (t) => {
  const b = await recordingBackend();
  t.teardown(() => b.close());
  const { rt, port } = await start(t, b.port, ['--accept-proxy-protocol', '--trusted-proxy', '127.0.0.5', '--affinity', 'sni,source', '--peek-timeout', '300ms']);
  const c = await sendAndEnd(port, `PROXY TCP4 198.51.100.7 127.0.0.1 40000 ${String(port)}\r\nhello`);
  t.equal(await c.closed, '', 'closed without a byte');
  const line = await rt.waitFor(code('proxy-untrusted'));
  t.match(line, { backend: null, termination: { cause: 'client', stage: 'accept', code: 'proxy-untrusted' } });
  t.equal(b.accepted(), 0, 'no backend was dialled');
  await sendAndEnd(port, 'hello');
  t.equal((await b.next()).toString('latin1'), 'hello');
});

t.test('a trusted source that sends garbage instead of a header is closed', async (t) => {
  const b = await recordingBackend();
  t.teardown(() => b.close());
  const { rt, port } = await start(t, b.port, ['--accept-proxy-protocol', '--trusted-proxy', '127.0.0.0/8']);
  const c = await sendAndEnd(port, 'GET / HTTP/1.0\r\n\r\n');
  t.equal(await c.closed, '');
  const line = await rt.waitFor(code('proxy-header'));
  t.match(line, { backend: null, termination: { cause: 'client', stage: 'accept', code: 'proxy-header' } });
  t.equal(b.accepted(), 0, 'no backend was dialled');
});

t.test('imap: the header goes out before the backend greeting is read', async (t) => {
  const firstLines: string[] = [];
  const server = net.createServer((s) => {
    let buf = '';
    let greeted = false;
    s.on('error', () => undefined); // the test checks the transcript
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let nl;
      while ((nl = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (!greeted) {
          firstLines.push(line);
          greeted = true;
          s.write(line.startsWith('PROXY TCP4 ') ? '* OK backend ready\r\n' : '* BYE header first\r\n');
        } else {
          s.write(`${line.split(' ')[0] ?? '*'} OK done\r\n`);
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => { r(); })));
  const bport = (server.address() as net.AddressInfo).port;
  const { port } = await start(t, bport, ['--protocol', 'imap', '--affinity', 'login', '--proxy-protocol', 'v1']);
  const wire = await imapWire(port, { source: '127.0.0.3' });
  t.teardown(() => { wire.close(); });
  await wire.waitFor(/\r\n/);
  wire.send(`a1 LOGIN alice ${secret('mail-atom')}\r\n`);
  t.match(await wire.waitFor(/^a1 .*\r\n/m), /a1 OK/);
  t.same(firstLines, [`PROXY TCP4 127.0.0.3 127.0.0.1 ${String(wire.socket.localPort)} ${String(port)}`]);
});
