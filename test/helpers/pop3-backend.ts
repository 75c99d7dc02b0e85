// POP3 on real loopback sockets for the e2e tests of the mail frontend (HAProxy reg-test style:
// backends a, b, c each answer with their own name). A small POP3 server that records every
// login exactly as it received it, so tests can check that tether's replay was byte-exact, and
// the real client, Python's poplib, driven by a JSON plan (python3 standard library only).
//
// The server's line handling and PLAIN decoding are written here on purpose, independently of
// lib/wire: a shared parser would share its bugs with the code under test.
import { Buffer } from 'node:buffer';
import net from 'node:net';
import tls from 'node:tls';
import type { KeyAndCert } from '../../fixtures/pki.js';
import { pythonJson } from './python-json.js';
import { CATALOGUE, receivedAtBackend } from './secrets.js';

/** The password every backend refuses. */
export const WRONG_PASSWORD: string = CATALOGUE.wrong.value;
/** The backend drops a client whose line grows past this. */
const MAX_BACKEND_LINE = 64 * 1024;

/** One login attempt as the backend received it. */
export interface Pop3Login {
  readonly mechanism: 'user-pass' | 'plain';
  readonly user: string;
  readonly password: string;
  /** AUTH PLAIN: the authorization identity ('' when absent). */
  readonly authzid: string;
  /** AUTH PLAIN: whether the response came on the AUTH line instead of after "+ ". */
  readonly initialResponse: boolean;
  /** The login's lines exactly as received (USER + PASS, or AUTH + response), latin1. */
  readonly raw: string;
  /** Whether the connection was TLS when the login arrived. */
  readonly secure: boolean;
  /** Whether the backend accepted it (every password but WRONG_PASSWORD). */
  readonly ok: boolean;
}

export interface Pop3Backend {
  readonly name: string;
  readonly port: number;
  /** Every login attempt, in order. */
  readonly logins: Pop3Login[];
  /** Every line received, without its line end. */
  readonly lines: string[];
  /** Connections accepted so far. */
  accepted(): number;
  close(): Promise<void>;
}

function decodePlain(b64: string): { authzid: string; user: string; password: string } | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return undefined;
  const parts = Buffer.from(b64, 'base64').toString('utf8').split('\0');
  if (parts.length !== 3) return undefined;
  const [authzid, user, password] = parts as [string, string, string];
  return { authzid, user, password };
}

interface SessionOptions {
  readonly name: string;
  readonly stls: tls.SecureContext | undefined;
  readonly logins: Pop3Login[];
  readonly lines: string[];
}

/** Runs one POP3 session on `first`. */
function session(first: net.Socket, o: SessionOptions): void {
  let sock = first;
  let secure = false;
  let buf: Buffer = Buffer.alloc(0);
  let user: { name: string; raw: string } | undefined;
  let pendingAuth: string | undefined;
  let authenticated = false;
  const write = (s: string): void => {
    if (!sock.destroyed) sock.write(s);
  };
  const record = (l: Omit<Pop3Login, 'secure' | 'ok'>): void => {
    receivedAtBackend(l.password, `pop3 backend ${o.name}`);
    const ok = l.password !== WRONG_PASSWORD;
    o.logins.push({ ...l, secure, ok });
    if (ok) {
      authenticated = true;
      write(`+OK ${o.name}: ${l.user} logged in\r\n`);
    } else write('-ERR [AUTH] bad password\r\n');
  };
  const plain = (b64: string, raw: string, initialResponse: boolean): void => {
    const creds = decodePlain(b64);
    if (!creds) {
      write(`-ERR ${o.name}: malformed PLAIN response\r\n`);
      return;
    }
    record({ mechanism: 'plain', user: creds.user, password: creds.password, authzid: creds.authzid, initialResponse, raw });
  };
  const onData = (chunk: Buffer): void => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    for (;;) {
      const lf = buf.indexOf(10);
      if (lf < 0) {
        if (buf.length > MAX_BACKEND_LINE) {
          write(`-ERR ${o.name}: line too long\r\n`);
          sock.end();
          buf = Buffer.alloc(0);
        }
        return;
      }
      const raw = buf.subarray(0, lf + 1).toString('latin1');
      buf = buf.subarray(lf + 1);
      const line = raw.replace(/\r?\n$/, '');
      o.lines.push(line);
      if (pendingAuth !== undefined) {
        const authLine = pendingAuth;
        pendingAuth = undefined;
        if (line === '*') write(`-ERR ${o.name}: AUTH cancelled\r\n`);
        else plain(line, authLine + raw, false);
        continue;
      }
      const [word = '', ...args] = line.split(' ');
      switch (word.toUpperCase()) {
        case 'CAPA':
          write(`+OK ${o.name} capabilities\r\nUSER\r\nSASL PLAIN\r\n${o.stls && !secure ? 'STLS\r\n' : ''}XWHO\r\n.\r\n`);
          break;
        case 'NOOP':
          write('+OK\r\n');
          break;
        case 'USER':
          user = { name: line.slice(5), raw };
          write(`+OK ${o.name}: send PASS\r\n`);
          break;
        case 'PASS':
          if (!user) write(`-ERR ${o.name}: USER first\r\n`);
          else record({ mechanism: 'user-pass', user: user.name, password: line.slice(5), authzid: '', initialResponse: false, raw: user.raw + raw });
          user = undefined;
          break;
        case 'AUTH':
          if ((args[0] ?? '').toUpperCase() !== 'PLAIN') write(`-ERR ${o.name}: only PLAIN\r\n`);
          else if (args[1] !== undefined) plain(args[1], raw, true);
          else {
            pendingAuth = raw;
            write('+ \r\n');
          }
          break;
        case 'STLS': {
          const ctx = o.stls;
          if (!ctx || secure) {
            write(`-ERR ${o.name}: STLS not available\r\n`);
            break;
          }
          write(`+OK ${o.name}: begin TLS\r\n`);
          sock.off('data', onData);
          buf = Buffer.alloc(0);
          const t = new tls.TLSSocket(sock, { isServer: true, secureContext: ctx });
          t.on('error', () => undefined); // a failed handshake is the test's to see on the client
          t.once('secure', () => {
            secure = true;
          });
          sock = t;
          sock.on('data', onData);
          return;
        }
        case 'STAT':
          write(authenticated ? '+OK 0 0\r\n' : `-ERR ${o.name}: log in first\r\n`);
          break;
        case 'XWHO':
          write(authenticated ? `+OK ${o.name}\r\n` : `-ERR ${o.name}: log in first\r\n`);
          break;
        case 'QUIT':
          write(`+OK ${o.name} bye\r\n`);
          sock.end();
          return;
        default:
          write(`-ERR ${o.name}: unknown command\r\n`);
      }
    }
  };
  sock.on('data', onData);
  sock.write(`+OK ${o.name} ready\r\n`);
}

/** Starts a POP3 test server named `name` on 127.0.0.1:0; with `stls`, STLS is offered with that certificate. */
export async function startPop3Backend(name: string, opts: { stls?: KeyAndCert } = {}): Promise<Pop3Backend> {
  const ctx = opts.stls ? tls.createSecureContext({ key: opts.stls.key, cert: opts.stls.cert }) : undefined;
  const logins: Pop3Login[] = [];
  const lines: string[] = [];
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined); // tests assert on what the client saw
    session(s, { name, stls: ctx, logins, lines });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    name,
    port: (server.address() as net.AddressInfo).port,
    logins,
    lines,
    accepted: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** One step of a poplib session. */
export type PopStep =
  | { readonly op: 'user'; readonly user: string; readonly password: string }
  /** AUTH PLAIN with the response on the same line (`_shortcmd('AUTH PLAIN <b64>')`). */
  | { readonly op: 'plain-ir'; readonly user: string; readonly password: string; readonly authzid?: string }
  /** AUTH PLAIN, then the response after the "+ " round. */
  | { readonly op: 'plain'; readonly user: string; readonly password: string; readonly authzid?: string }
  | { readonly op: 'xwho' }
  | { readonly op: 'stat' }
  | { readonly op: 'capa' }
  | { readonly op: 'quit' };

export interface PopSession {
  /** Source address to bind (127.0.0.N); default 127.0.0.1. */
  readonly source?: string;
  readonly tls?: 'none' | 'stls' | 'implicit';
  /** CA file the client trusts (stls, implicit). */
  readonly cafile?: string;
  readonly steps: readonly PopStep[];
}

export interface PopStepResult {
  readonly op: string;
  /** `ok`, or `error` when poplib raised (a -ERR answer, a closed connection). */
  readonly status: 'ok' | 'error';
  /** The server's answer (the first line; for capa, the capability names joined by spaces). */
  readonly text: string;
}

export interface PopSessionResult {
  /** The greeting poplib read. */
  readonly welcome?: string;
  readonly steps: PopStepResult[];
  /** Set when connecting (or STLS) failed. */
  readonly error?: string;
}

/** The poplib driver: one JSON plan in argv[1], one JSON result line on stdout. */
const PY_DRIVER = String.raw`
import base64, json, poplib, socket, ssl, sys
plan = json.loads(sys.argv[1])
HOST = '127.0.0.1'

def connect(port, source, mode, cafile):
    def raw(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(source, 0))
    if mode == 'implicit':
        ctx = ssl.create_default_context(cafile=cafile)
        class S(poplib.POP3_SSL):
            def _create_socket(self, timeout):
                return ctx.wrap_socket(raw(self, timeout), server_hostname=self.host)
        return S(HOST, port, timeout=5, context=ctx)
    class P(poplib.POP3):
        _create_socket = raw
    p = P(HOST, port, timeout=5)
    if mode == 'stls':
        p.stls(ssl.create_default_context(cafile=cafile))
    return p

def dec(b):
    return b.decode('utf-8', 'replace') if isinstance(b, bytes) else str(b)

def plain_b64(s):
    msg = (s.get('authzid', '') + '\0' + s['user'] + '\0' + s['password']).encode('utf-8')
    return base64.b64encode(msg).decode('ascii')

def step(p, s):
    op = s['op']
    try:
        if op == 'user':
            p.user(s['user'])
            text = p.pass_(s['password'])
        elif op == 'plain-ir':
            text = p._shortcmd('AUTH PLAIN ' + plain_b64(s))
        elif op == 'plain':
            first = p._shortcmd('AUTH PLAIN')
            if not first.startswith(b'+ ') and first != b'+':
                raise poplib.error_proto(b'expected a "+ " round, got ' + first)
            text = p._shortcmd(plain_b64(s))
        elif op == 'xwho':
            text = p._shortcmd('XWHO')
        elif op == 'stat':
            text = p._shortcmd('STAT')
        elif op == 'capa':
            text = ' '.join(sorted(p.capa().keys()))
        elif op == 'quit':
            text = p.quit()
        else:
            raise ValueError('unknown op ' + op)
        return {'op': op, 'status': 'ok', 'text': dec(text)}
    except Exception as e:
        arg = e.args[0] if e.args else ''
        return {'op': op, 'status': 'error', 'text': dec(arg) if isinstance(e, poplib.error_proto) else type(e).__name__ + ': ' + str(e)}

results = []
for sess in plan['sessions']:
    r = {'steps': []}
    try:
        p = connect(plan['port'], sess.get('source', '127.0.0.1'), sess.get('tls', 'none'), sess.get('cafile'))
        r['welcome'] = dec(p.getwelcome())
        for s in sess['steps']:
            r['steps'].append(step(p, s))
        try:
            p.close()
        except Exception:
            pass
    except Exception as e:
        r['error'] = type(e).__name__ + ': ' + str(e)
    results.append(r)
print(json.dumps(results))
`;

/**
 * Runs `sessions` one after another through 127.0.0.1:`port` with Python's poplib; resolves
 * with one result per session. Rejects when python3 fails or exceeds `timeoutMs` (killed).
 */
export function poplibSessions(port: number, sessions: readonly PopSession[], timeoutMs = 30_000): Promise<PopSessionResult[]> {
  return pythonJson<PopSessionResult[]>(PY_DRIVER, { port, sessions }, timeoutMs);
}
