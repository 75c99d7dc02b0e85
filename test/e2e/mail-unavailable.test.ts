// A mail client tether cannot give a backend is told so in its protocol before the FIN —
// `* BYE [UNAVAILABLE] …` (IMAP, RFC 9051 §7.1) or `-ERR [SYS/TEMP] …` (POP3, RFC 3206) —
// whether no backend could be dialled, the pool's queue timed out, or the backend's login
// failed. Real clients (Python's imaplib and poplib) and raw sockets for the exact bytes.
import net from 'node:net';
import t, { type Test } from 'tap';
import { runTether, type LogLine, type RunningTether } from '../helpers/run-tether.js';
import { deadPort } from '../helpers/named-backend.js';
import { imaplibSessions, imapWire, startImapBackend } from '../helpers/imap-backend.js';
import { poplibSessions, startPop3Backend } from '../helpers/pop3-backend.js';
import { secret } from '../helpers/secrets.js';

/** The password of every login here (an IMAP atom, from the secret registry). */
const PW = secret('mail-atom');

const IMAP_BYE = '* BYE [UNAVAILABLE] Backend unavailable, try again later\r\n';
const POP3_ERR = '-ERR [SYS/TEMP] Backend unavailable, try again later\r\n';

async function tether(t: Test, protocol: 'imap' | 'pop3', backends: readonly string[], extra: readonly string[] = []): Promise<{ rt: RunningTether; port: number }> {
  const rt = await runTether(['--listen', '127.0.0.1:0', '--protocol', protocol, '--affinity', 'login', ...backends.flatMap((b) => ['--backend', b]), ...extra]);
  t.teardown(() => rt.stop());
  return { rt, port: rt.ports[0]! };
}

const closeWith = (code: string) => (l: LogLine): boolean => l.event === 'conn.close' && (l['termination'] as { code?: string } | undefined)?.code === code;

/** A backend that greets (`greeting`), then hangs up on the client's first command. */
async function hangsUpAfterGreeting(t: Test, greeting: string): Promise<number> {
  const server = net.createServer((s) => {
    s.on('error', () => undefined); // only what tether tells its client matters here
    s.write(greeting);
    s.once('data', () => s.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => { r(); })));
  return (server.address() as net.AddressInfo).port;
}

/** Raw IMAP: greeting, LOGIN, then the exact line tether answers with, and whether a FIN came. */
async function imapLoginAnswer(port: number): Promise<{ line: string; fin: boolean }> {
  const wire = await imapWire(port);
  await wire.waitFor(/\r\n/);
  wire.send(`a1 LOGIN fay ${PW}\r\n`);
  const line = await wire.waitFor(/\r\n/);
  await Promise.race([wire.closed, new Promise((r) => setTimeout(r, 5_000))]);
  const fin = wire.gotEnd();
  wire.close();
  return { line, fin };
}

/** Raw POP3: greeting, USER, PASS, then the line tether answers PASS with, and whether a FIN came. */
function pop3PassAnswer(port: number): Promise<{ lines: string[]; fin: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let got = '';
    let fin = false;
    const timer = setTimeout(() => s.destroy(), 5_000);
    s.on('error', () => undefined); // the bytes received are what is checked
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      const n = got.split('\r\n').length - 1;
      if (n === 1 && !got.includes('USER')) s.write('USER fay\r\n');
      if (n === 2) s.write(`PASS ${PW}\r\n`);
    });
    s.on('end', () => (fin = true));
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ lines: got.split('\r\n').filter((l) => l !== ''), fin });
    });
  });
}

t.test('IMAP: no backend can be dialled → BYE [UNAVAILABLE], then FIN', async (t) => {
  const { rt, port } = await tether(t, 'imap', [`a=127.0.0.1:${String(await deadPort())}`]);
  const raw = await imapLoginAnswer(port);
  t.equal(raw.line, IMAP_BYE, 'the exact line');
  t.ok(raw.fin, 'then a FIN');
  await rt.waitFor(closeWith('ECONNREFUSED'));

  const [r] = await imaplibSessions(port, [{ steps: [{ op: 'login', user: 'gus', password: PW }] }]);
  t.equal(r?.steps[0]?.typ, 'error', 'imaplib: the login fails');
  t.match(r?.steps[0]?.text, /UNAVAILABLE\] Backend unavailable/, `imaplib reports the BYE: ${String(r?.steps[0]?.text)}`);
});

t.test('IMAP: the queue times out → BYE [UNAVAILABLE]', async (t) => {
  const b = await startImapBackend('a');
  t.teardown(() => b.close());
  const { rt, port } = await tether(t, 'imap', [`a=127.0.0.1:${String(b.port)},max-conns=1`], ['--queue-timeout', '300ms']);
  const first = await imapWire(port);
  t.teardown(() => {
    first.close();
  });
  await first.waitFor(/\r\n/);
  first.send(`a1 LOGIN holder ${PW}\r\n`);
  await first.waitFor(/^a1 OK/m);
  const raw = await imapLoginAnswer(port);
  t.equal(raw.line, IMAP_BYE, 'the waiting client gets BYE [UNAVAILABLE]');
  t.ok(raw.fin, 'then a FIN');
  await rt.waitFor(closeWith('queue-timeout'));
});

t.test('IMAP: the backend hangs up during the login → the same BYE [UNAVAILABLE]', async (t) => {
  const port0 = await hangsUpAfterGreeting(t, '* OK ready\r\n');
  const { port } = await tether(t, 'imap', [`a=127.0.0.1:${String(port0)}`]);
  const raw = await imapLoginAnswer(port);
  t.equal(raw.line, IMAP_BYE);
  t.ok(raw.fin, 'then a FIN');
});

t.test('POP3: no backend can be dialled → -ERR [SYS/TEMP], then FIN', async (t) => {
  const { rt, port } = await tether(t, 'pop3', [`a=127.0.0.1:${String(await deadPort())}`]);
  const raw = await pop3PassAnswer(port);
  t.equal(raw.lines.at(-1), POP3_ERR.trimEnd(), `the answer to PASS (${JSON.stringify(raw.lines)})`);
  t.ok(raw.fin, 'then a FIN');
  await rt.waitFor(closeWith('ECONNREFUSED'));

  const [r] = await poplibSessions(port, [{ steps: [{ op: 'user', user: 'gus', password: PW }] }]);
  t.match(r?.steps[0], { status: 'error', text: POP3_ERR.trimEnd() }, 'poplib: PASS fails with the SYS/TEMP answer');
});

t.test('POP3: the backend hangs up during the login → the same -ERR [SYS/TEMP]', async (t) => {
  const port0 = await hangsUpAfterGreeting(t, '+OK ready\r\n');
  const { port } = await tether(t, 'pop3', [`a=127.0.0.1:${String(port0)}`]);
  const raw = await pop3PassAnswer(port);
  t.equal(raw.lines.at(-1), POP3_ERR.trimEnd());
  t.ok(raw.fin, 'then a FIN');
});

t.test('POP3: a backend that works still serves (the answer is only for failures)', async (t) => {
  const b = await startPop3Backend('a');
  t.teardown(() => b.close());
  const { port } = await tether(t, 'pop3', [`a=127.0.0.1:${String(b.port)}`]);
  const [r] = await poplibSessions(port, [{ steps: [{ op: 'user', user: 'gus', password: PW }, { op: 'xwho' }, { op: 'quit' }] }]);
  t.match(r?.steps.map((s) => s.status), ['ok', 'ok', 'ok']);
  t.match(r?.steps[1]?.text, /a/);
});
