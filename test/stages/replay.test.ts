// Stage 5 on real loopback sockets: loginAtBackend() replays a login read from the client at a
// test IMAP/POP3 backend (plain, STARTTLS, implicit TLS) and at scripted misbehaving ones.
import { Buffer } from 'node:buffer';
import net from 'node:net';
import t, { type Test } from 'tap';
import { generatePki } from '../../fixtures/pki.js';
import { loginAtBackend, MAX_UNTAGGED_BYTES, type BackendLoginOptions } from '../../lib/connect/replay.js';
import type { Login } from '../../lib/greet/dialogue.js';
import { startImapBackend, WRONG_PASSWORD } from '../helpers/imap-backend.js';
import { startPop3Backend } from '../helpers/pop3-backend.js';
import { userPassword } from '../helpers/secrets.js';
import { within } from '../helpers/e2e-tools.js';

const pki = await generatePki();

async function connect(t: Test, port: number): Promise<net.Socket> {
  const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  t.teardown(() => {
    s.destroy();
  });
  await within(new Promise((r) => s.once('connect', r)), 20_000, 'the backend connect');
  return s;
}

const imapLogin = (user: string, password: string): Login => ({
  user,
  mechanism: 'login',
  tag: 'a1',
  steps: [{ bytes: Buffer.from(`a1 LOGIN ${user} "${password}"\r\n`), expect: 'final' }],
});

const opts = (o: Partial<BackendLoginOptions>): BackendLoginOptions => ({
  protocol: 'imap',
  backendTls: 'none',
  tlsOptions: { ca: pki.ca, servername: 'localhost' },
  timeoutMs: 10_000,
  now: () => performance.now(),
  ...o,
});

for (const mode of ['none', 'starttls', 'tls'] as const) {
  t.test(`IMAP login succeeds at a backend with backend TLS ${mode}`, async (t) => {
    const be = await startImapBackend('a', { tls: mode === 'tls' ? 'implicit' : mode, cert: pki });
    t.teardown(() => be.close());
    const sock = await connect(t, be.port);
    const pw = userPassword('alice');
    const r = await within(loginAtBackend(sock, imapLogin('alice', pw), opts({ backendTls: mode })), 20_000, 'the login');
    t.equal(r.ok, true);
    if (!r.ok) return;
    t.teardown(() => { r.socket.destroy(); });
    t.match(r.toClient.toString('latin1'), /^a1 OK/m, 'the tagged OK is relayed to the client');
    t.equal(be.logins.length, 1);
    t.equal(be.logins[0]?.user, 'alice');
    t.equal(be.logins[0]?.password, pw);
    t.equal(be.logins[0]?.secure, mode !== 'none', 'TLS before the login when the mode asks for it');
  });
}

t.test('a backend refusing the login: its NO is relayed for the client', async (t) => {
  const be = await startImapBackend('a');
  t.teardown(() => be.close());
  const sock = await connect(t, be.port);
  const r = await within(loginAtBackend(sock, imapLogin('bob', WRONG_PASSWORD), opts({})), 20_000, 'the login');
  t.equal(r.ok, true);
  if (!r.ok) return;
  t.teardown(() => { r.socket.destroy(); });
  t.match(r.toClient.toString('latin1'), /^a1 NO/m);
  t.equal(be.logins[0]?.ok, false);
});

t.test('POP3 USER/PASS succeeds', async (t) => {
  const be = await startPop3Backend('p');
  t.teardown(() => be.close());
  const sock = await connect(t, be.port);
  const pw = userPassword('carol');
  const login: Login = {
    user: 'carol',
    mechanism: 'user-pass',
    steps: [
      { bytes: Buffer.from('USER carol\r\n'), expect: 'continue' },
      { bytes: Buffer.from(`PASS ${pw}\r\n`), expect: 'final' },
    ],
  };
  const r = await within(loginAtBackend(sock, login, opts({ protocol: 'pop3' })), 20_000, 'the login');
  t.equal(r.ok, true);
  if (!r.ok) return;
  t.teardown(() => { r.socket.destroy(); });
  t.match(r.toClient.toString('latin1'), /^\+OK/);
});

/** A scripted backend: `script` gets each accepted socket. */
async function scripted(t: Test, script: (s: net.Socket) => void): Promise<number> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    script(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => { resolve(); }));
  });
  return (server.address() as net.AddressInfo).port;
}

t.test('a bad greeting fails with backend-greeting', async (t) => {
  const port = await scripted(t, (s) => s.write('HELLO I AM NOT IMAP\r\n'));
  const r = await within(loginAtBackend(await connect(t, port), imapLogin('dan', userPassword('dan')), opts({})), 20_000, 'the login');
  t.same(r, { ok: false, code: 'backend-greeting' });
});

t.test('a silent backend fails with backend-silent at the timeout', async (t) => {
  const port = await scripted(t, () => undefined);
  const r = await within(loginAtBackend(await connect(t, port), imapLogin('dan', userPassword('dan')), opts({ timeoutMs: 300 })), 20_000, 'the login');
  t.same(r, { ok: false, code: 'backend-silent' });
});

t.test('a backend flooding untagged lines fails with backend-flood', async (t) => {
  const port = await scripted(t, (s) => {
    s.write('* OK IMAP4rev1 ready\r\n');
    s.once('data', () => {
      const line = `* ${'x'.repeat(1000)}\r\n`;
      const flood = line.repeat(Math.ceil((MAX_UNTAGGED_BYTES * 2) / line.length));
      s.write(flood);
    });
  });
  const r = await within(loginAtBackend(await connect(t, port), imapLogin('erin', userPassword('erin')), opts({})), 20_000, 'the login');
  t.same(r, { ok: false, code: 'backend-flood' });
});
