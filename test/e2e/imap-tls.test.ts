// TLS on both sides of the IMAP frontend through `node bin/tether --protocol imap`: STARTTLS
// and implicit TLS toward the client (imaplib, openssl s_client), --require-tls, and TLS or
// STARTTLS toward the backend with certificate verification. Backends a, b, c answer `XWHO`
// with their name and record whether each login arrived over TLS.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';
import forge from 'node-forge';
import { pkiFiles } from '../helpers/e2e-tools.js';
import { runTether, type LogLine, type RunningTether } from '../helpers/run-tether.js';
import {
  HOLD_BOUND_MS,
  imapWire,
  imaplibSessions,
  letGoWithin,
  loginWinner,
  plainResponse,
  rawLogin,
  startImapBackend,
  whoOf,
  type ImapBackend,
  type ImapBackendTls,
} from '../helpers/imap-backend.js';
import { secret } from '../helpers/secrets.js';

const NAMES = ['a', 'b', 'c'] as const;
const hashed = (key: string): string => loginWinner(key, NAMES);
/** The password of every login here (an IMAP atom). */
const PW = secret('mail-atom');

const files = await pkiFiles(t.testdir());
const { pki, file } = files;
const CA = files.ca;
const CERT = files.cert;
const KEY = files.key;
const CLIENT_TLS = ['--tls-cert', CERT, '--tls-key', KEY];

/** A self-signed CA that signed none of the test certificates. */
async function otherCa(): Promise<string> {
  const pair = await new Promise<forge.pki.rsa.KeyPair>((resolve, reject) => {
    forge.pki.rsa.generateKeyPair({ bits: 2048, workers: -1 }, (err: Error | null, p) => {
      if (err) reject(err);
      else resolve(p);
    });
  });
  const cert = forge.pki.createCertificate();
  cert.publicKey = pair.publicKey;
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 86_400_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  const subject = [{ name: 'commonName', value: 'not the tether test CA' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([{ name: 'basicConstraints', cA: true, critical: true }]);
  cert.sign(pair.privateKey, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

async function backends(t: Test, mode: ImapBackendTls = 'none'): Promise<ImapBackend[]> {
  const bs = await Promise.all(NAMES.map((n) => startImapBackend(n, { tls: mode, cert: pki })));
  t.teardown(() => Promise.all(bs.map((b) => b.close())));
  return bs;
}

async function tether(t: Test, bs: readonly ImapBackend[], extra: readonly string[]): Promise<{ rt: RunningTether; port: number }> {
  const rt = await runTether([
    '--listen',
    '127.0.0.1:0',
    '--protocol',
    'imap',
    '--affinity',
    'login',
    ...bs.flatMap((b) => ['--backend', `${b.name}=127.0.0.1:${b.port}`]),
    ...extra,
  ]);
  t.teardown(() => rt.stop());
  return { rt, port: rt.ports[0]! };
}

const closeOf = (rt: RunningTether, user: string): Promise<LogLine> => rt.waitFor((l) => l.event === 'conn.close' && l['user'] === user, 5_000);
const loginsOf = (bs: readonly ImapBackend[], user: string) => bs.flatMap((b) => b.logins.filter((l) => l.user === user).map((l) => ({ ...l, at: b.name })));
const capsOf = (line: string): string[] => /CAPABILITY ([^\]\r\n]*)/.exec(line)?.[1]?.split(' ') ?? [];

/** Runs `openssl s_client -starttls imap` with `script` on stdin; resolves once it exits (killed after 10 s). */
function sClientStarttls(port: number, script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(
    'openssl',
    ['s_client', '-starttls', 'imap', '-connect', `127.0.0.1:${String(port)}`, '-CAfile', CA, '-verify_return_error', '-verify_ip', '127.0.0.1', '-crlf', '-quiet'],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString('latin1')));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('latin1')));
  child.stdin.on('error', () => undefined); // s_client may exit before reading all of it
  // -quiet implies -ign_eof: s_client keeps the connection until the server closes it (LOGOUT).
  child.stdin.end(script);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: stderr + err.message });
    });
  });
}

t.test('TLS toward the client', (t) => {
  t.test('STARTTLS (imaplib): capabilities change, the login goes through, plaintext sent after STARTTLS is dropped', async (t) => {
    const bs = await backends(t);
    const { rt, port } = await tether(t, bs, ['--tls', 'starttls', ...CLIENT_TLS]);
    const [r] = await imaplibSessions(port, [{ tls: 'starttls', cafile: CA, steps: [{ op: 'login', user: 'alice', password: PW }, { op: 'xwho' }, { op: 'logout' }] }]);
    t.equal(r!.error, undefined, 'STARTTLS and certificate verification succeeded');
    t.ok(capsOf(r!.welcome ?? '').includes('STARTTLS'), 'STARTTLS offered in clear');
    t.notOk(r!.caps?.includes('STARTTLS'), `not offered once secure (${(r!.caps ?? []).join(' ')})`);
    t.ok(r!.caps?.includes('AUTH=PLAIN'), 'AUTH=PLAIN offered');
    t.equal(r!.steps[0]!.typ, 'OK');
    t.equal(whoOf(r!), hashed('alice'));
    t.match(await closeOf(rt, 'alice'), { user: 'alice', backend: hashed('alice') });

    // A command injected after STARTTLS in the same packet (CVE-2011-0411 style) must not run.
    const raw = net.connect({ host: '127.0.0.1', port });
    t.teardown(() => raw.destroy());
    let clear = '';
    raw.on('data', (d: Buffer) => (clear += d.toString('latin1')));
    raw.on('error', () => undefined); // the transcript below is what the test checks
    await new Promise<void>((resolve) => raw.once('connect', resolve));
    raw.write(`s1 STARTTLS\r\ninj LOGIN mallory ${PW}\r\n`);
    for (let i = 0; i < 100 && !clear.includes('s1 OK'); i++) await new Promise((r) => setTimeout(r, 20));
    t.match(clear, /^\* OK .*\r\ns1 OK .*\r\n$/, 'only the greeting and the STARTTLS answer in clear');
    raw.removeAllListeners('data');
    const secure = tls.connect({ socket: raw, ca: pki.ca, servername: 'localhost' });
    t.teardown(() => secure.destroy());
    secure.on('error', () => undefined); // a failed handshake shows as a missing answer
    let got = '';
    secure.on('data', (d: Buffer) => (got += d.toString('latin1')));
    await new Promise<void>((resolve) => secure.once('secureConnect', resolve));
    secure.write('s2 NOOP\r\n');
    for (let i = 0; i < 100 && !got.includes('s2 '); i++) await new Promise((r) => setTimeout(r, 20));
    t.equal(got, 's2 OK NOOP completed\r\n', 'after the handshake only our NOOP is answered');
    secure.destroy();
    t.same(loginsOf(bs, 'mallory'), [], 'the injected LOGIN never reached a backend');
  });

  t.test('implicit TLS (imaplib IMAP4_SSL)', async (t) => {
    const bs = await backends(t);
    const { rt, port } = await tether(t, bs, ['--tls', 'implicit', ...CLIENT_TLS]);
    const [r] = await imaplibSessions(port, [{ tls: 'implicit', cafile: CA, steps: [{ op: 'plain', user: 'bob', password: PW }, { op: 'xwho' }, { op: 'logout' }] }]);
    t.equal(r!.error, undefined, 'handshake and verification succeeded');
    t.notOk(capsOf(r!.welcome ?? '').includes('STARTTLS'), 'no STARTTLS on an implicit-TLS port');
    t.equal(r!.steps[0]!.typ, 'OK');
    t.equal(whoOf(r!), hashed('bob'));
    t.match(loginsOf(bs, 'bob'), [{ at: hashed('bob'), mechanism: 'plain', password: PW }]);
    t.match(await closeOf(rt, 'bob'), { user: 'bob', backend: hashed('bob') });
  });

  t.test('--require-tls: LOGINDISABLED and PRIVACYREQUIRED in clear; fine after STARTTLS; openssl s_client', async (t) => {
    const bs = await backends(t);
    const { rt, port } = await tether(t, bs, ['--tls', 'starttls', '--require-tls', ...CLIENT_TLS]);
    const wire = await imapWire(port);
    t.teardown(() => {
      wire.close();
    });
    const greeting = await wire.waitFor(/\r\n/);
    t.ok(capsOf(greeting).includes('LOGINDISABLED') && capsOf(greeting).includes('STARTTLS'), `greeting: ${greeting.trim()}`);
    t.notOk(capsOf(greeting).includes('AUTH=PLAIN'), 'no AUTH=PLAIN in clear');
    wire.send('a1 CAPABILITY\r\n');
    const caps = await wire.waitFor(/^a1 .*\r\n/m);
    t.match(caps, /^\* CAPABILITY .*\bLOGINDISABLED\b.*\r\na1 OK /);
    wire.send(`a2 LOGIN alice ${PW}\r\n`);
    t.match(await wire.waitFor(/\r\n/), /^a2 NO \[PRIVACYREQUIRED\] .*\r\n$/, 'LOGIN in clear: NO [PRIVACYREQUIRED]');
    wire.send(`a3 AUTHENTICATE PLAIN ${plainResponse('alice', PW)}\r\n`);
    t.match(await wire.waitFor(/\r\n/), /^a3 NO \[PRIVACYREQUIRED\] .*\r\n$/, 'AUTHENTICATE in clear: NO');
    wire.close();

    const [plainText] = await imaplibSessions(port, [{ steps: [{ op: 'login', user: 'alice', password: PW }] }]);
    t.match(plainText!.steps[0], { typ: 'NO', text: /PRIVACYREQUIRED/ }, 'imaplib in clear: refused');
    t.equal(bs.reduce((n, b) => n + b.accepted(), 0), 0, 'no backend was dialled for a refused login');
    const [secured] = await imaplibSessions(port, [
      { tls: 'starttls', cafile: CA, steps: [{ op: 'login', user: 'alice', password: PW }, { op: 'xwho' }, { op: 'logout' }] },
    ]);
    t.notOk(secured!.caps?.includes('LOGINDISABLED'), `after STARTTLS: ${(secured!.caps ?? []).join(' ')}`);
    t.ok(secured!.caps?.includes('AUTH=PLAIN'));
    t.equal(secured!.steps[0]!.typ, 'OK', 'login after STARTTLS');
    t.equal(whoOf(secured!), hashed('alice'));

    const s = await sClientStarttls(port, `a1 LOGIN carol ${PW}\na2 XWHO\na3 LOGOUT\n`);
    t.match(s.stdout, new RegExp(`^a1 OK .*${hashed('carol')}: LOGIN completed\\r?$`, 'm'), `s_client logged in (stderr: ${s.stderr.slice(0, 300)})`);
    t.match(s.stdout, new RegExp(`^\\* XWHO ${hashed('carol')}\\r?$`, 'm'), 'and reached the right backend');
    t.match(loginsOf(bs, 'carol'), [{ at: hashed('carol'), password: PW, ok: true }]);
    t.match(await closeOf(rt, 'carol'), { user: 'carol', backend: hashed('carol') });
  });
  t.end();
});

t.test('TLS toward the backend', (t) => {
  t.test('--backend-tls tls with --backend-ca: verified, the login travels encrypted', async (t) => {
    const bs = await backends(t, 'implicit');
    const { rt, port } = await tether(t, bs, ['--backend-tls', 'tls', '--backend-ca', CA]);
    const [r] = await imaplibSessions(port, [{ steps: [{ op: 'login', user: 'dave', password: PW }, { op: 'xwho' }, { op: 'logout' }] }]);
    t.equal(r!.steps[0]!.typ, 'OK', r!.steps[0]!.text);
    t.equal(whoOf(r!), hashed('dave'));
    t.match(loginsOf(bs, 'dave'), [{ at: hashed('dave'), secure: true, password: PW }]);
    t.match(await closeOf(rt, 'dave'), { user: 'dave', backend: hashed('dave'), termination: { cause: 'normal' } });
  });

  t.test('--backend-tls starttls with --backend-ca: STARTTLS first, then the login; the client sees only the login answer', async (t) => {
    const bs = await backends(t, 'starttls');
    const { rt, port } = await tether(t, bs, ['--backend-tls', 'starttls', '--backend-ca', CA]);
    const { wire, answer, who } = await rawLogin(port, `a1 LOGIN erin ${PW}\r\n`, 'a1');
    t.teardown(() => {
      wire.close();
    });
    t.equal(who, hashed('erin'));
    t.equal(answer, `a1 OK [CAPABILITY IMAP4rev1 XWHO] ${who}: LOGIN completed\r\n`, 'nothing of the STARTTLS exchange reached the client');
    const b = bs.find((x) => x.name === who)!;
    t.same(b.lines.slice(0, 3), ['tether0 STARTTLS', `a1 LOGIN erin ${PW}`, 'w1 XWHO'], 'the backend saw STARTTLS, the login, XWHO');
    t.match(loginsOf(bs, 'erin'), [{ at: who, secure: true }]);
    wire.send('z LOGOUT\r\n');
    await wire.closed;
    t.match(await closeOf(rt, 'erin'), { user: 'erin', backend: who });
  });

  t.test('--backend-insecure: no verification', async (t) => {
    const bs = await backends(t, 'implicit');
    const { port } = await tether(t, bs, ['--backend-tls', 'tls', '--backend-insecure']);
    const [r] = await imaplibSessions(port, [{ steps: [{ op: 'login', user: 'fay', password: PW }, { op: 'xwho' }, { op: 'logout' }] }]);
    t.equal(whoOf(r!), hashed('fay'));
    t.match(loginsOf(bs, 'fay'), [{ secure: true }]);
  });

  t.test('a backend certificate from another CA: login fails cleanly, the password is never sent', async (t) => {
    const wrongCa = file('other-ca.pem', await otherCa());
    for (const mode of ['tls', 'starttls'] as const) {
      const bs = await backends(t, mode === 'tls' ? 'implicit' : 'starttls');
      const { rt, port } = await tether(t, bs, ['--backend-tls', mode, '--backend-ca', wrongCa]);
      const wire = await imapWire(port, { holdOpen: true });
      t.teardown(() => {
        wire.close();
      });
      await wire.waitFor(/\r\n/);
      wire.send(`a1 LOGIN gus ${secret('imap-tls-gus')}\r\n`);
      t.equal(await wire.waitFor(/\r\n/), '* BYE [UNAVAILABLE] Backend unavailable, try again later\r\n', `${mode}: the client gets BYE`);
      const cc = await closeOf(rt, 'gus');
      t.match(cc, { user: 'gus', backend: hashed('gus'), termination: { cause: 'backend', stage: 'connect' } }, `${mode}: conn.close`);
      t.match((cc['termination'] as { code?: string }).code, /CERT|SIGNATURE|ISSUER|VERIFY/, `${mode}: code ${String((cc['termination'] as { code?: string }).code)}`);
      t.same(loginsOf(bs, 'gus'), [], `${mode}: no backend got the login`);
      t.notOk(
        bs.some((b) => b.lines.some((l) => l.includes('gus'))),
        `${mode}: not even in clear (${bs.flatMap((b) => b.lines).join(' | ')})`,
      );
      t.ok((await letGoWithin(wire, HOLD_BOUND_MS)) !== undefined, `${mode}: tether lets go of the client`);
      t.equal(rt.child.exitCode, null, `${mode}: tether still running`);
    }
  });
  t.end();
});
