// Resets in the splice when tether speaks TLS (`node bin/tether --protocol imap`): a reset on
// one side is passed on as a reset to the other, even when that side is a TLS socket (which
// Node cannot reset itself: resetAndDestroy() throws ERR_INVALID_HANDLE_TYPE on a TLSSocket).
// After each reset tether is still running, serves a fresh client, and the conn.close line
// names the side that reset. The backend's XRESET closes its TCP socket with an RST.
import t, { type Test } from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import { pkiFiles } from '../helpers/e2e-tools.js';
import { runTether, type LogLine, type RunningTether } from '../helpers/run-tether.js';
import { startImapBackend, type ImapBackendTls } from '../helpers/imap-backend.js';
import { secret } from '../helpers/secrets.js';

const files = await pkiFiles(t.testdir());
const { pki } = files;
const CA = files.ca;
const CLIENT_TLS = ['--tls', 'implicit', '--tls-cert', files.cert, '--tls-key', files.key];
const BACKEND_TLS = ['--backend-tls', 'tls', '--backend-ca', CA];

/** A line client over plain TCP or TLS; `tcp` is the TCP socket (to reset it). */
interface Wire {
  readonly tcp: net.Socket;
  send(text: string): void;
  /** Resolves with everything received once it matches `re`; rejects after 5 s or on close. */
  waitFor(re: RegExp): Promise<string>;
  /** Resolves with the error code the connection ended with ('' for a clean close). */
  readonly ended: Promise<string>;
}

async function connect(t: Test, port: number, secure: boolean): Promise<Wire> {
  const tcp = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    tcp.once('connect', resolve);
    tcp.once('error', reject);
  });
  const s: net.Socket = secure ? tls.connect({ socket: tcp, ca: pki.ca, servername: 'localhost' }) : tcp;
  t.teardown(() => {
    s.destroy();
    tcp.destroy();
  });
  let text = '';
  let errCode = '';
  s.on('data', (d: Buffer) => (text += d.toString('latin1')));
  s.on('error', (e: NodeJS.ErrnoException) => (errCode ||= e.code ?? 'error')); // what `ended` reports
  const ended = new Promise<string>((resolve) => {
    s.once('close', () => {
      resolve(errCode);
    });
  });
  const waitFor = async (re: RegExp): Promise<string> => {
    for (let i = 0; i < 250 && !re.test(text); i++) {
      if (s.destroyed) throw new Error(`closed before ${String(re)}; got ${JSON.stringify(text)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    if (!re.test(text)) throw new Error(`timed out waiting for ${String(re)}; got ${JSON.stringify(text)}`);
    return text;
  };
  return { tcp, send: (x) => s.write(x), waitFor, ended };
}

/** Connects, logs in as `user` and checks the backend answers XWHO. */
async function loggedIn(t: Test, port: number, secure: boolean, user: string): Promise<Wire> {
  const w = await connect(t, port, secure);
  await w.waitFor(/^\* OK .*\r\n/);
  w.send(`a1 LOGIN ${user} ${secret('mail-atom')}\r\n`);
  await w.waitFor(/^a1 OK .*\r\n/m);
  w.send('a2 XWHO\r\n');
  await w.waitFor(/^a2 OK .*\r\n/m);
  return w;
}

async function tether(t: Test, backendTls: ImapBackendTls, extra: readonly string[]): Promise<RunningTether> {
  const b = await startImapBackend('a', { tls: backendTls, cert: pki });
  t.teardown(() => b.close());
  const rt = await runTether(['--listen', '127.0.0.1:0', '--protocol', 'imap', '--backend', `a=127.0.0.1:${String(b.port)}`, ...extra]);
  t.teardown(() => rt.stop());
  return rt;
}

const closeOf = (rt: RunningTether, user: string): Promise<LogLine> => rt.waitFor((l) => l.event === 'conn.close' && l['user'] === user, 5_000);

/** Tether is still running and serves a fresh client end to end. */
async function stillServes(t: Test, rt: RunningTether, secure: boolean, user: string): Promise<void> {
  t.equal(rt.child.exitCode, null, `still running (stderr: ${rt.stderr().slice(0, 300)})`);
  const w = await loggedIn(t, rt.ports[0]!, secure, user);
  w.send('z LOGOUT\r\n');
  t.equal(await w.ended, '', 'a fresh client is served and logged out');
  t.match(await closeOf(rt, user), { termination: { cause: 'normal' } });
}

const CASES = [
  { name: 'TLS toward the client', clientTls: true, backendTls: 'none', flags: CLIENT_TLS },
  { name: 'TLS toward the backend', clientTls: false, backendTls: 'implicit', flags: BACKEND_TLS },
  { name: 'TLS on both sides', clientTls: true, backendTls: 'implicit', flags: [...CLIENT_TLS, ...BACKEND_TLS] },
] as const;

for (const c of CASES) {
  t.test(`${c.name}: the backend resets`, async (t) => {
    const rt = await tether(t, c.backendTls, c.flags);
    const w = await loggedIn(t, rt.ports[0]!, c.clientTls, 'rob');
    w.send('a3 XRESET\r\n');
    t.equal(await w.ended, 'ECONNRESET', 'the reset reached the client as a reset');
    t.match(await closeOf(rt, 'rob'), { termination: { cause: 'backend', stage: 'splice', code: 'ECONNRESET' } });
    await stillServes(t, rt, c.clientTls, 'next');
  });

  t.test(`${c.name}: the client resets`, async (t) => {
    const rt = await tether(t, c.backendTls, c.flags);
    const w = await loggedIn(t, rt.ports[0]!, c.clientTls, 'cid');
    w.tcp.resetAndDestroy();
    t.match(await closeOf(rt, 'cid'), { termination: { cause: 'client', stage: 'splice', code: 'ECONNRESET' } });
    await stillServes(t, rt, c.clientTls, 'next');
  });
}
