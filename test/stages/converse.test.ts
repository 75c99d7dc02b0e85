// Stage 2b on real loopback sockets: converse() greets a scripted IMAP/POP3 client itself and
// reads up to the login, with STARTTLS toward a real node:tls client.
import { Buffer } from 'node:buffer';
import net from 'node:net';
import tls from 'node:tls';
import t, { type Test } from 'tap';
import { generatePki } from '../../fixtures/pki.js';
import { converse, type ConverseOptions } from '../../lib/greet/converse.js';
import { userPassword } from '../helpers/secrets.js';
import { within } from '../helpers/e2e-tools.js';

const pki = await generatePki();

/** A paused accepted client (`raw`, as listen.ts accepts them) and the scripted peer `user`. */
async function pair(t: Test): Promise<{ raw: net.Socket; user: net.Socket; heard: () => string }> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const rawP = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const user = net.connect(port, '127.0.0.1');
  user.on('error', () => undefined);
  let text = '';
  user.on('data', (d: Buffer) => (text += d.toString('latin1')));
  const raw = await rawP;
  raw.on('error', () => undefined);
  t.teardown(() => {
    user.destroy();
    raw.destroy();
    return new Promise<void>((resolve) => server.close(() => { resolve(); }));
  });
  return { raw, user, heard: () => text };
}

const OPTS: ConverseOptions = { protocol: 'imap', tls: 'none', requireTls: false, loginTimeoutMs: 10_000, maxCommands: 20, maxBad: 3 };

t.test('IMAP LOGIN is captured after tether greets; the password is only in the replay steps', async (t) => {
  const { raw, user, heard } = await pair(t);
  const pw = userPassword('alice');
  const r = converse(raw, OPTS);
  user.write(`a1 LOGIN alice "${pw}"\r\n`);
  const res = await within(r, 20_000, 'the login');
  t.match(heard(), /^\* OK/, 'tether greeted first');
  t.equal(res.ok, true);
  if (!res.ok) return;
  t.equal(res.login.user, 'alice');
  t.equal(res.login.tag, 'a1');
  t.equal(res.secure, false);
  t.ok(Buffer.concat(res.login.steps.map((s) => s.bytes)).toString('latin1').includes(pw), 'the password is in the steps to replay');
  t.notOk(JSON.stringify({ ...res.login, steps: [] }).includes(pw), 'and nowhere else in the login');
  t.notOk(heard().includes(pw), 'nor echoed to the client');
});

t.test('POP3 USER/PASS is captured', async (t) => {
  const { raw, user, heard } = await pair(t);
  const pw = userPassword('carol');
  const r = converse(raw, { ...OPTS, protocol: 'pop3' });
  user.write('USER carol\r\n');
  user.write(`PASS ${pw}\r\n`);
  const res = await within(r, 20_000, 'the login');
  t.match(heard(), /^\+OK/);
  t.equal(res.ok, true);
  if (!res.ok) return;
  t.equal(res.login.user, 'carol');
  t.equal(res.login.mechanism, 'user-pass');
});

t.test('LOGIN before STARTTLS is refused when TLS is required; after STARTTLS with a real TLS client it is accepted', async (t) => {
  const { raw, user, heard } = await pair(t);
  const pw = userPassword('dave');
  const r = converse(raw, { ...OPTS, tls: 'starttls', requireTls: true, secureContext: tls.createSecureContext({ key: pki.key, cert: pki.cert }) });
  await within(new Promise((r2) => user.once('data', r2)), 20_000, 'the greeting');
  user.write(`a1 LOGIN dave "${pw}"\r\n`);
  await within(new Promise((r2) => user.once('data', r2)), 20_000, 'the refusal');
  t.match(heard(), /^a1 (NO|BAD)/m, 'LOGIN refused in clear text');
  user.write('a2 STARTTLS\r\n');
  await within(new Promise((r2) => user.once('data', r2)), 20_000, 'the STARTTLS answer');
  t.match(heard(), /^a2 OK/m);
  user.removeAllListeners('data');
  const secure = tls.connect({ socket: user, ca: pki.ca, servername: 'localhost' });
  secure.on('error', () => undefined);
  t.teardown(() => { secure.destroy(); });
  await within(new Promise((r2) => secure.once('secureConnect', r2)), 20_000, 'the TLS handshake');
  secure.write(`a3 LOGIN dave "${pw}"\r\n`);
  const res = await within(r, 20_000, 'the login');
  t.equal(res.ok, true);
  if (!res.ok) return;
  t.teardown(() => { res.client.destroy(); });
  t.equal(res.secure, true);
  t.equal(res.login.user, 'dave');
});

t.test('a silent client hits the login timeout', async (t) => {
  const { raw } = await pair(t);
  const res = await within(converse(raw, { ...OPTS, loginTimeoutMs: 300 }), 20_000, 'the timeout');
  t.equal(res.ok, false);
  if (res.ok) return;
  t.same(res.termination, { cause: 'client-timeout', stage: 'greet', code: 'login-timeout' });
});

t.test('garbage lines end the dialogue cleanly after maxBad', async (t) => {
  const { raw, user } = await pair(t);
  const r = converse(raw, OPTS);
  for (let i = 0; i < 10; i++) user.write('\x00\x01garbage\r\n');
  const res = await within(r, 20_000, 'the end');
  t.equal(res.ok, false);
  if (res.ok) return;
  t.equal(res.termination.stage, 'greet');
  t.equal(res.termination.cause, 'client');
});

t.test('an oversized line ends the dialogue cleanly', async (t) => {
  const { raw, user } = await pair(t);
  const r = converse(raw, OPTS);
  user.write(`a1 ${'x'.repeat(1024 * 1024)}`);
  const res = await within(r, 20_000, 'the end');
  t.equal(res.ok, false);
  if (res.ok) return;
  t.equal(res.termination.stage, 'greet');
});
