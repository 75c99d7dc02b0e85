// A real consumer of tether's PROXY protocol headers: nginx from Debian's packages, with
// `listen … proxy_protocol` in a stream server (the module from libnginx-mod-stream) and an
// http server, each answering with the addresses the header carried. The client connects from
// 127.0.0.2 (or ::1), so nginx can only name it if it read tether's header: the TCP peer nginx
// sees is tether at 127.0.0.1. Without nginx the tests skip, naming why — except under CI=true,
// where .ci/run installs nginx (.ci/install-nginx) and its absence is a failure.
import net from 'node:net';
import t, { type Test } from 'tap';
import { runTether } from '../helpers/run-tether.js';
import { deadPort } from '../helpers/named-backend.js';
import { findNginx, startNginx, type RunningNginx } from '../helpers/nginx.js';
import { needTool } from '../helpers/tools.js';

const install = findNginx();

/** Why the nginx tests cannot run here, if they cannot. */
function unavailable(): string | undefined {
  if (install === undefined) return 'nginx is not installed (bash .ci/install-nginx installs it from Debian packages)';
  if (install.stream.kind === 'absent') return `${install.version} has no stream module (Debian: libnginx-mod-stream)`;
  return undefined;
}

/**
 * Connects from `localAddress`, sends `payload`, reads until the connection closes; resolves
 * with what came, the client's port, and the error code if it ended in one (a reset).
 */
function exchange(host: string, port: number, localAddress: string, payload: string): Promise<{ text: string; clientPort: number; error?: string }> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, localAddress });
    let text = '';
    let clientPort = 0;
    let error: string | undefined;
    s.setTimeout(8_000, () => s.destroy(new Error('no close from nginx within 8s')));
    s.on('connect', () => {
      clientPort = s.localPort ?? 0;
      s.write(payload);
    });
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    s.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
    });
    s.on('close', () => {
      resolve(error === undefined ? { text, clientPort } : { text, clientPort, error });
    });
  });
}

/** Starts tether on `host`:0 in front of nginx at 127.0.0.1:`backendPort`; stopped on teardown. */
async function tether(t: Test, host: string, backendPort: number, extra: readonly string[]): Promise<number> {
  const listen = host.includes(':') ? `[${host}]:0` : `${host}:0`;
  const rt = await runTether(['--listen', listen, '--backend', `nginx=127.0.0.1:${String(backendPort)}`, '--grace', '1s', ...extra]);
  t.teardown(() => rt.stop());
  return rt.ports[0] ?? 0;
}

/** Whether ::1 can be bound here (IPv6 may be off in a container). */
async function hasIpv6Loopback(): Promise<boolean> {
  const s = net.createServer();
  return new Promise((resolve) => {
    s.once('error', () => {
      resolve(false);
    });
    s.listen(0, '::1', () => {
      s.close(() => {
        resolve(true);
      });
    });
  });
}

const skipReason = needTool(unavailable());
{
  t.test('nginx reads the client address from tether\'s PROXY header', { skip: skipReason }, async (t) => {
    if (install === undefined) return;
    const streamPort = await deadPort();
    const httpPort = await deadPort();
    const STREAM_ANSWER = '"$proxy_protocol_addr $proxy_protocol_port $proxy_protocol_server_addr $proxy_protocol_server_port $remote_addr\\n"';
    const nginx: RunningNginx = await startNginx(t, install, t.testdir(), {
      stream: `server { listen 127.0.0.1:${String(streamPort)} proxy_protocol; return ${STREAM_ANSWER}; }`,
      http: `server { listen 127.0.0.1:${String(httpPort)} proxy_protocol; location / { return 200 "$proxy_protocol_addr $proxy_protocol_port $remote_addr\\n"; } }`,
    });
    t.comment(`${install.version}, pid ${String(nginx.pid)}`);

    for (const version of ['v1', 'v2'] as const) {
      t.test(`stream server, --proxy-protocol ${version}`, async (t) => {
        const port = await tether(t, '127.0.0.1', streamPort, ['--proxy-protocol', version]);
        const got = await exchange('127.0.0.1', port, '127.0.0.2', 'hello\n');
        t.same(got, { text: `127.0.0.2 ${String(got.clientPort)} 127.0.0.1 ${String(port)} 127.0.0.1\n`, clientPort: got.clientPort }, 'nginx names the client and tether\'s address; its TCP peer is tether');
      });

      t.test(`http server, --proxy-protocol ${version}`, async (t) => {
        const port = await tether(t, '127.0.0.1', httpPort, ['--proxy-protocol', version]);
        const got = await exchange('127.0.0.1', port, '127.0.0.2', 'GET / HTTP/1.0\r\nHost: tether.test\r\n\r\n');
        t.match(got.text, /^HTTP\/1\.1 200 OK\r\n/);
        t.equal(got.text.split('\r\n\r\n')[1], `127.0.0.2 ${String(got.clientPort)} 127.0.0.1\n`);
      });
    }

    const ipv6 = (await hasIpv6Loopback()) ? false : '::1 cannot be bound here';
    t.test('an IPv6 client (TCP6 in v1, AF_INET6 in v2)', { skip: ipv6 }, async (t) => {
      for (const version of ['v1', 'v2'] as const) {
        const port = await tether(t, '::1', streamPort, ['--proxy-protocol', version]);
        const got = await exchange('::1', port, '::1', 'hello\n');
        t.equal(got.text, `::1 ${String(got.clientPort)} ::1 ${String(port)} 127.0.0.1\n`, version);
      }
    });

    t.test('without --proxy-protocol nginx refuses the connection (the header is what it reads)', async (t) => {
      const port = await tether(t, '127.0.0.1', streamPort, []);
      const got = await exchange('127.0.0.1', port, '127.0.0.2', 'hello\n');
      t.equal(got.text, '', 'closed (or reset) without an answer');
      const deadline = Date.now() + 5_000;
      while (!nginx.errorLog().includes('broken header') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      t.match(nginx.errorLog(), /broken header: "hello/, 'nginx logged the missing header');
    });
  });
}
