// IMAP on real loopback sockets for the e2e tests of the mail frontend (HAProxy reg-test style:
// backends a, b, c each answer with their own name). A small IMAP server that records every
// login exactly as it received it, so tests can check that tether's replay was byte-exact; a
// raw line client for exact transcripts; and the real client, Python's imaplib, driven by a
// JSON plan (python3 only, standard library, no installs).
//
// The server's parser is written here on purpose, independently of lib/wire/imap: a shared
// parser would share its bugs with the code under test.
import { Buffer } from 'node:buffer';
import net from 'node:net';
import tls from 'node:tls';
import type { KeyAndCert } from '../../fixtures/pki.js';
import { tableKey } from '../../lib/affinity/chain.js';
import { rendezvousPick } from '../../lib/place/rendezvous.js';
import { pythonJson } from './python-json.js';
import { CATALOGUE, receivedAtBackend, saslPlain } from './secrets.js';

/** Bound on one client's whole exchange; a loopback login takes milliseconds. */
const CLIENT_TIMEOUT_MS = 10_000;
/** The backend drops a client whose unfinished command grows past this. */
const MAX_BACKEND_COMMAND = 64 * 1024;

/** One login attempt as the backend received it. */
export interface BackendLogin {
  readonly mechanism: 'login' | 'plain';
  readonly user: string;
  readonly password: string;
  /** AUTHENTICATE PLAIN: the authorization identity ('' when absent). */
  readonly authzid: string;
  /** AUTHENTICATE PLAIN: whether the response came with the command (SASL-IR) instead of after "+ ". */
  readonly saslIr: boolean;
  /** The command's bytes as received, literals and their CRLFs included (latin1); for PLAIN also the response line. */
  readonly raw: string;
  /** Whether the connection was TLS when the login arrived. */
  readonly secure: boolean;
  /** Whether the backend accepted it (every password but WRONG_PASSWORD). */
  readonly ok: boolean;
}

export type ImapBackendTls = 'none' | 'starttls' | 'implicit';

export interface ImapBackend {
  readonly name: string;
  readonly port: number;
  readonly tls: ImapBackendTls;
  /** Every login attempt, in order. */
  readonly logins: BackendLogin[];
  /** Every command line received (the first line of each command; literals not included). */
  readonly lines: string[];
  /** Connections accepted so far (TCP; for implicit TLS, secure connections). */
  accepted(): number;
  close(): Promise<void>;
}

/** The password every backend refuses. */
export const WRONG_PASSWORD: string = CATALOGUE.wrong.value;

interface Token {
  readonly kind: 'atom' | 'quoted' | 'literal';
  readonly value: Buffer;
}

type CommandParse =
  | { readonly kind: 'incomplete'; readonly continueAt?: number }
  | { readonly kind: 'command'; readonly tag: string; readonly name: string; readonly args: readonly Token[]; readonly end: number }
  | { readonly kind: 'bad'; readonly tag: string; readonly end: number };

/** One IMAP command at the start of `buf`: atoms, quoted strings ("\"" and "\\" escapes), literals {n} and {n+}. */
function parseCommand(buf: Buffer): CommandParse {
  const tokens: Token[] = [];
  let pos = 0;
  const badLine = (): CommandParse => {
    const lf = buf.indexOf(10, pos);
    const tag = tokens[0]?.value.toString('latin1') ?? '*';
    return lf < 0 ? { kind: 'incomplete' } : { kind: 'bad', tag, end: lf + 1 };
  };
  for (;;) {
    if (pos >= buf.length) return { kind: 'incomplete' };
    const c = buf[pos];
    if (c === 13 || c === 10) {
      if (c === 13 && pos + 1 >= buf.length) return { kind: 'incomplete' };
      if (c === 13 && buf[pos + 1] !== 10) return badLine();
      const end = pos + (c === 13 ? 2 : 1);
      const [tag, name, ...args] = tokens;
      if (tag === undefined || name === undefined) return { kind: 'bad', tag: tag?.value.toString('latin1') ?? '*', end };
      return { kind: 'command', tag: tag.value.toString('latin1'), name: name.value.toString('latin1').toUpperCase(), args, end };
    }
    if (tokens.length > 0) {
      if (c !== 32) return badLine();
      pos++;
      if (pos >= buf.length) return { kind: 'incomplete' };
    }
    const d = buf[pos];
    if (d === 34) {
      const out: number[] = [];
      let i = pos + 1;
      for (;;) {
        if (i >= buf.length) return { kind: 'incomplete' };
        const e = buf[i]!;
        if (e === 13 || e === 10) return badLine();
        if (e === 34) break;
        if (e === 92) {
          if (i + 1 >= buf.length) return { kind: 'incomplete' };
          const f = buf[i + 1]!;
          if (f !== 34 && f !== 92) return badLine();
          out.push(f);
          i += 2;
          continue;
        }
        out.push(e);
        i++;
      }
      tokens.push({ kind: 'quoted', value: Buffer.from(out) });
      pos = i + 1;
    } else if (d === 123) {
      const m = /^\{(\d{1,9})(\+?)\}\r?\n/.exec(buf.subarray(pos, pos + 16).toString('latin1'));
      if (!m) {
        if (buf.indexOf(10, pos) < 0) return { kind: 'incomplete' };
        return badLine();
      }
      const size = Number(m[1]);
      const start = pos + m[0].length;
      if (buf.length < start + size) return m[2] === '+' ? { kind: 'incomplete' } : { kind: 'incomplete', continueAt: start };
      tokens.push({ kind: 'literal', value: buf.subarray(start, start + size) });
      pos = start + size;
    } else {
      let i = pos;
      while (i < buf.length && buf[i] !== 32 && buf[i] !== 13 && buf[i] !== 10) i++;
      if (i >= buf.length) return { kind: 'incomplete' };
      if (i === pos) return badLine();
      tokens.push({ kind: 'atom', value: buf.subarray(pos, i) });
      pos = i;
    }
  }
}

/** Decodes a SASL PLAIN response; undefined when it is not authzid NUL authcid NUL passwd. */
function decodePlain(b64: string): { authzid: string; user: string; password: string } | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return undefined;
  const parts = Buffer.from(b64, 'base64').toString('utf8').split('\0');
  if (parts.length !== 3) return undefined;
  const [authzid, user, password] = parts as [string, string, string];
  return { authzid, user, password };
}

interface SessionOptions {
  readonly name: string;
  readonly starttls: tls.SecureContext | undefined;
  readonly secure: boolean;
  readonly logins: BackendLogin[];
  readonly lines: string[];
  /** The TCP socket beneath `first` (itself, unless `first` is implicit TLS), for XRESET. */
  readonly tcp: net.Socket;
}

/** Runs one IMAP session on `socket` (plain, or already TLS for implicit TLS). */
function session(first: net.Socket, o: SessionOptions): void {
  let sock = first;
  let secure = o.secure;
  let buf: Buffer = Buffer.alloc(0);
  let continued = new Set<number>();
  let authenticated = false;
  let pendingAuth: { tag: string; raw: string } | undefined;
  const write = (s: string): void => {
    if (!sock.destroyed) sock.write(s);
  };
  const record = (l: Omit<BackendLogin, 'secure' | 'ok'>, tag: string): void => {
    receivedAtBackend(l.password, `imap backend ${o.name}`);
    const ok = l.password !== WRONG_PASSWORD;
    o.logins.push({ ...l, secure, ok });
    if (ok) {
      authenticated = true;
      write(`${tag} OK [CAPABILITY IMAP4rev1 XWHO] ${o.name}: ${l.mechanism.toUpperCase()} completed\r\n`);
    } else {
      // An untagged warning first: tether must relay untagged lines of the login too.
      write(`* NO [ALERT] ${o.name}: that password is wrong\r\n`);
      write(`${tag} NO [AUTHENTICATIONFAILED] ${o.name}: invalid credentials\r\n`);
    }
  };
  const plain = (tag: string, b64: string, raw: string, saslIr: boolean): void => {
    const creds = decodePlain(b64);
    if (!creds) {
      write(`${tag} BAD ${o.name}: malformed PLAIN response\r\n`);
      return;
    }
    record({ mechanism: 'plain', user: creds.user, password: creds.password, authzid: creds.authzid, saslIr, raw }, tag);
  };
  const onData = (chunk: Buffer): void => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    for (;;) {
      if (pendingAuth) {
        const lf = buf.indexOf(10);
        if (lf < 0) return;
        const line = buf.subarray(0, lf + 1).toString('latin1');
        buf = buf.subarray(lf + 1);
        const { tag, raw } = pendingAuth;
        pendingAuth = undefined;
        const response = line.replace(/\r?\n$/, '');
        if (response === '*') write(`${tag} BAD ${o.name}: AUTHENTICATE cancelled\r\n`);
        else plain(tag, response, raw + line, false);
        continue;
      }
      const r = parseCommand(buf);
      if (r.kind === 'incomplete') {
        if (r.continueAt !== undefined && !continued.has(r.continueAt)) {
          continued.add(r.continueAt);
          write(`+ ${o.name} ready for literal\r\n`);
        }
        if (buf.length > MAX_BACKEND_COMMAND) {
          write(`* BYE ${o.name}: command too long\r\n`);
          sock.end();
          buf = Buffer.alloc(0);
        }
        return;
      }
      const raw = buf.subarray(0, r.end).toString('latin1');
      const firstLine = raw.slice(0, raw.indexOf('\n') + 1).replace(/\r?\n$/, '');
      buf = buf.subarray(r.end);
      continued = new Set();
      o.lines.push(firstLine);
      if (r.kind === 'bad') {
        write(`${r.tag} BAD ${o.name}: syntax error\r\n`);
        continue;
      }
      const { tag, name, args } = r;
      const arg = (i: number): string => args[i]?.value.toString('utf8') ?? '';
      switch (name) {
        case 'CAPABILITY':
          write(`* CAPABILITY IMAP4rev1 AUTH=PLAIN${o.starttls && !secure ? ' STARTTLS' : ''} XWHO\r\n${tag} OK ${o.name}: CAPABILITY completed\r\n`);
          break;
        case 'XRESET':
          // Answers nothing and closes with an RST (SO_LINGER 0): a backend that crashed.
          o.tcp.resetAndDestroy();
          return;
        case 'NOOP':
          write(`${tag} OK ${o.name}: NOOP completed\r\n`);
          break;
        case 'XWHO':
          write(`* XWHO ${o.name}\r\n${tag} OK ${o.name}: XWHO completed\r\n`);
          break;
        case 'SELECT':
          write(authenticated ? `* 0 EXISTS\r\n${tag} OK [READ-WRITE] ${o.name}: SELECT completed\r\n` : `${tag} NO ${o.name}: log in first\r\n`);
          break;
        case 'LOGOUT':
          write(`* BYE ${o.name} logging out\r\n${tag} OK ${o.name}: LOGOUT completed\r\n`);
          sock.end();
          return;
        case 'LOGIN':
          if (args.length !== 2) write(`${tag} BAD ${o.name}: LOGIN needs two arguments\r\n`);
          else record({ mechanism: 'login', user: arg(0), password: arg(1), authzid: '', saslIr: false, raw }, tag);
          break;
        case 'AUTHENTICATE':
          if (arg(0).toUpperCase() !== 'PLAIN') write(`${tag} NO ${o.name}: only PLAIN\r\n`);
          else if (args.length === 2) plain(tag, arg(1), raw, true);
          else {
            pendingAuth = { tag, raw };
            write('+ \r\n');
          }
          break;
        case 'STARTTLS': {
          const ctx = o.starttls;
          if (!ctx || secure) {
            write(`${tag} BAD ${o.name}: STARTTLS not available\r\n`);
            break;
          }
          write(`${tag} OK ${o.name}: begin TLS\r\n`);
          sock.off('data', onData);
          buf = Buffer.alloc(0);
          const t = new tls.TLSSocket(sock, { isServer: true, secureContext: ctx });
          t.on('error', () => undefined); // a client that fails the handshake is the test's to see
          t.once('secure', () => {
            secure = true;
          });
          sock = t;
          sock.on('data', onData);
          return;
        }
        default:
          write(`${tag} BAD ${o.name}: unknown command ${name}\r\n`);
      }
    }
  };
  sock.on('data', onData);
  sock.write(`* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN STARTTLS] ${o.name} ready\r\n`);
}

/**
 * Starts an IMAP test server named `name` on 127.0.0.1:0. `tls: 'starttls'` answers STARTTLS
 * with `cert` (without it STARTTLS is refused); `implicit` speaks TLS from the first byte.
 */
export async function startImapBackend(name: string, opts: { tls?: ImapBackendTls; cert?: KeyAndCert } = {}): Promise<ImapBackend> {
  const mode = opts.tls ?? 'none';
  const ctx = opts.cert ? tls.createSecureContext({ key: opts.cert.key, cert: opts.cert.cert }) : undefined;
  if (mode === 'implicit' && !ctx) throw new Error('an implicit-TLS backend needs a cert');
  const logins: BackendLogin[] = [];
  const lines: string[] = [];
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  // The TCP socket under each implicit-TLS one, by client port (XRESET resets it).
  const tcpOf = new Map<number, net.Socket>();
  const run = (socket: net.Socket, secure: boolean): void => {
    accepted++;
    socket.on('error', () => undefined); // tests assert on what the client saw
    const tcp = tcpOf.get(socket.remotePort ?? 0) ?? socket;
    session(socket, { name, starttls: mode === 'starttls' ? ctx : undefined, secure, logins, lines, tcp });
  };
  const server: net.Server =
    mode === 'implicit'
      ? tls.createServer({ key: opts.cert?.key, cert: opts.cert?.cert }, (s) => {
          run(s, true);
        })
      : net.createServer((s) => {
          run(s, false);
        });
  // A client that gives up mid-handshake (a refused certificate) is not a backend failure.
  server.on('tlsClientError', () => undefined);
  server.on('connection', (raw: net.Socket) => {
    sockets.add(raw);
    const port = raw.remotePort ?? 0;
    tcpOf.set(port, raw);
    raw.on('close', () => {
      sockets.delete(raw);
      if (tcpOf.get(port) === raw) tcpOf.delete(port);
    });
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
    tls: mode,
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

/** A raw IMAP client: exact bytes out, exact bytes in. */
export interface ImapWire {
  readonly socket: net.Socket;
  /** Everything received so far (latin1). */
  received(): string;
  send(data: string | Buffer): void;
  /**
   * Resolves with the text from the last match's end up to and including the first match of
   * `re` in what arrives; rejects after `ms` or when the connection closes first.
   */
  waitFor(re: RegExp, ms?: number): Promise<string>;
  /** Resolves once the connection has closed (whoever closed it). */
  readonly closed: Promise<void>;
  /** Whether the server's FIN (`end`) arrived. */
  gotEnd(): boolean;
  isClosed(): boolean;
  close(): void;
}

/**
 * Connects a raw client to 127.0.0.1:`port`, optionally from source address `source`. With
 * `holdOpen` the client keeps its side open after the server's FIN (as a careless or hostile
 * client would), so a test can see whether the server lets go of the connection by itself.
 */
export function imapWire(port: number, opts: { source?: string; holdOpen?: boolean } = {}): Promise<ImapWire> {
  const socket = net.connect({
    host: '127.0.0.1',
    port,
    allowHalfOpen: opts.holdOpen === true,
    ...(opts.source === undefined ? {} : { localAddress: opts.source }),
  });
  socket.setNoDelay(true);
  let text = '';
  let cursor = 0;
  let ended = false;
  let isClosed = false;
  const wake = new Set<() => void>();
  socket.on('data', (d: Buffer) => {
    text += d.toString('latin1');
    for (const w of [...wake]) w();
  });
  socket.on('end', () => {
    ended = true;
  });
  socket.on('error', () => undefined); // a reset shows as a close with the data seen so far
  const closed = new Promise<void>((resolve) => {
    socket.once('close', () => {
      isClosed = true;
      for (const w of [...wake]) w();
      resolve();
    });
  });
  const timer = setTimeout(() => socket.destroy(), 3 * CLIENT_TIMEOUT_MS);
  void closed.then(() => {
    clearTimeout(timer);
  });
  const wire: ImapWire = {
    socket,
    received: () => text,
    send: (data) => {
      if (!socket.destroyed) socket.write(data);
    },
    waitFor: (re, ms = 5_000) =>
      new Promise((resolve, reject) => {
        const flags = re.flags.includes('g') ? re.flags : `${re.flags}g`;
        const g = new RegExp(re.source, flags);
        const check = (): boolean => {
          g.lastIndex = cursor;
          const m = g.exec(text);
          if (m) {
            const from = cursor;
            cursor = m.index + m[0].length;
            resolve(text.slice(from, cursor));
            return true;
          }
          if (isClosed) {
            reject(new Error(`closed before ${String(re)}; got ${JSON.stringify(text.slice(cursor))}`));
            return true;
          }
          return false;
        };
        if (check()) return;
        const w = (): void => {
          if (check()) done();
        };
        const t = setTimeout(() => {
          done();
          reject(new Error(`timed out waiting for ${String(re)}; got ${JSON.stringify(text.slice(cursor))}`));
        }, ms);
        const done = (): void => {
          clearTimeout(t);
          wake.delete(w);
        };
        wake.add(w);
      }),
    closed,
    gotEnd: () => ended,
    isClosed: () => isClosed,
    close: () => socket.destroy(),
  };
  return new Promise((resolve, reject) => {
    socket.once('connect', () => {
      resolve(wire);
    });
    socket.once('error', reject);
  });
}

/** One step of an imaplib session. */
export type PyStep =
  /** LOGIN user "password" (imaplib quotes the password, escaping `"` and `\`). */
  | { readonly op: 'login'; readonly user: string; readonly password: string }
  /** LOGIN user {n} with the password as a synchronizing literal (imaplib's `literal`). */
  | { readonly op: 'login-literal'; readonly user: string; readonly password: string }
  /** AUTHENTICATE PLAIN, the response after "+ " (imaplib's `authenticate`). */
  | { readonly op: 'plain'; readonly user: string; readonly password: string; readonly authzid?: string }
  | { readonly op: 'xwho' }
  | { readonly op: 'capability' }
  | { readonly op: 'noop' }
  | { readonly op: 'logout' };

export interface PySession {
  /** Source address to bind (127.0.0.N); default 127.0.0.1. */
  readonly source?: string;
  readonly tls?: 'none' | 'starttls' | 'implicit';
  /** CA file the client trusts (starttls, implicit). */
  readonly cafile?: string;
  readonly steps: readonly PyStep[];
}

export interface PyStepResult {
  readonly op: string;
  /** OK, NO, BAD (from the tagged answer), or `error` when imaplib raised. */
  readonly typ: string;
  readonly text: string;
  /** `xwho`: the backend's name. */
  readonly who?: string;
}

export interface PySessionResult {
  /** The greeting imaplib read. */
  readonly welcome?: string;
  /** imaplib's capabilities after connecting (and after STARTTLS). */
  readonly caps?: string[];
  readonly steps: PyStepResult[];
  /** Set when connecting (or STARTTLS) failed. */
  readonly error?: string;
}

/** The imaplib driver: one JSON plan in argv[1], one JSON result line on stdout. */
const PY_DRIVER = String.raw`
import base64, imaplib, json, socket, ssl, sys
imaplib.Commands['XWHO'] = ('NONAUTH', 'AUTH', 'SELECTED', 'LOGOUT')
plan = json.loads(sys.argv[1])
HOST = '127.0.0.1'

def connect(port, source, mode, cafile):
    def raw(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(source, 0))
    if mode == 'implicit':
        class S(imaplib.IMAP4_SSL):
            def _create_socket(self, timeout):
                return self.ssl_context.wrap_socket(raw(self, timeout), server_hostname=self.host)
        return S(HOST, port, ssl_context=ssl.create_default_context(cafile=cafile), timeout=5)
    class P(imaplib.IMAP4):
        _create_socket = raw
    m = P(HOST, port, timeout=5)
    if mode == 'starttls':
        m.starttls(ssl.create_default_context(cafile=cafile))
    return m

def text(dat):
    return ' '.join(d.decode('utf-8', 'replace') if isinstance(d, bytes) else str(d) for d in (dat or []) if d is not None)

def step(m, s):
    op = s['op']
    try:
        if op == 'login':
            typ, dat = m._simple_command('LOGIN', s['user'], m._quote(s['password']))
        elif op == 'login-literal':
            m.literal = s['password'].encode('utf-8')
            typ, dat = m._simple_command('LOGIN', s['user'])
        elif op == 'plain':
            msg = (s.get('authzid', '') + '\0' + s['user'] + '\0' + s['password']).encode('utf-8')
            m.literal = imaplib._Authenticator(lambda _challenge: msg).process
            typ, dat = m._simple_command('AUTHENTICATE', 'PLAIN')
        elif op == 'xwho':
            typ, dat = m._simple_command('XWHO')
            who = m.untagged_responses.pop('XWHO', [b''])[-1]
            return {'op': op, 'typ': typ, 'text': text(dat), 'who': who.decode('latin1') if isinstance(who, bytes) else ''}
        elif op == 'capability':
            typ, dat = m.capability()
        elif op == 'noop':
            typ, dat = m.noop()
        elif op == 'logout':
            typ, dat = m.logout()
        else:
            raise ValueError('unknown op ' + op)
        if op in ('login', 'login-literal', 'plain') and typ == 'OK':
            m.state = 'AUTH'
        return {'op': op, 'typ': typ, 'text': text(dat)}
    except Exception as e:
        return {'op': op, 'typ': 'error', 'text': type(e).__name__ + ': ' + str(e)}

results = []
for sess in plan['sessions']:
    r = {'steps': []}
    try:
        m = connect(plan['port'], sess.get('source', '127.0.0.1'), sess.get('tls', 'none'), sess.get('cafile'))
        r['welcome'] = m.welcome.decode('latin1')
        r['caps'] = list(m.capabilities)
        for s in sess['steps']:
            r['steps'].append(step(m, s))
        try:
            m.shutdown()
        except Exception:
            pass
    except Exception as e:
        r['error'] = type(e).__name__ + ': ' + str(e)
    results.append(r)
print(json.dumps(results))
`;

/**
 * Runs `sessions` one after another through 127.0.0.1:`port` with Python's imaplib; resolves
 * with one result per session. Rejects when python3 fails or exceeds `timeoutMs` (killed by PID).
 */
export function imaplibSessions(port: number, sessions: readonly PySession[], timeoutMs = 30_000): Promise<PySessionResult[]> {
  return pythonJson<PySessionResult[]>(PY_DRIVER, { port, sessions }, timeoutMs);
}

/** The backend name an imaplib session's last `xwho` step reported ('' when none). */
export function whoOf(r: PySessionResult): string {
  return r.steps.filter((s) => s.op === 'xwho').at(-1)?.who ?? '';
}

/** A SASL PLAIN response, base64 (authzid NUL user NUL password), recorded in the secret registry. */
export const plainResponse = saslPlain;

/**
 * Where tether's `hash` balance (weighted rendezvous, every weight 1) puts login key `key`
 * among backends `names`: what a test expects when no directory or table says otherwise.
 */
export function loginWinner(key: string, names: readonly string[]): string {
  const w = rendezvousPick(
    names.map((name) => ({ name, weight: 1 })),
    tableKey({ kind: 'login', value: key }),
  );
  if (!w) throw new Error('no backends');
  return w.name;
}

/**
 * Connects (from `source`), reads the greeting, sends `login` (whole), waits for the answer
 * tagged `tag`, then asks `w1 XWHO`. The connection stays open.
 */
export async function rawLogin(
  port: number,
  login: string | Buffer,
  tag: string,
  source?: string,
): Promise<{ wire: ImapWire; greeting: string; answer: string; who: string }> {
  const wire = await imapWire(port, source === undefined ? {} : { source });
  const greeting = await wire.waitFor(/\r\n/);
  wire.send(login);
  const answer = await wire.waitFor(new RegExp(`^${tag} .*\\r\\n`, 'm'));
  wire.send('w1 XWHO\r\n');
  const who = /^\* XWHO (\S+)\r\n/m.exec(await wire.waitFor(/^w1 .*\r\n/m))?.[1] ?? '';
  return { wire, greeting, answer, who };
}

/** How long a connection may outlive tether's BYE (tether lingers 2 s to drain, then closes). */
export const HOLD_BOUND_MS = 4_500;

/**
 * For a client that keeps its side open after tether's BYE and FIN: writes a line every 250 ms
 * (a closed peer answers with a reset) until the connection is gone. Resolves with the time
 * that took, or undefined when it was still open after `boundMs`.
 */
export async function letGoWithin(wire: ImapWire, boundMs: number): Promise<number | undefined> {
  const started = Date.now();
  for (let i = 0; i < Math.ceil(boundMs / 250) && !wire.isClosed(); i++) {
    wire.send('x\r\n');
    await Promise.race([wire.closed, new Promise((r) => setTimeout(r, 250))]);
  }
  return wire.isClosed() ? Date.now() - started : undefined;
}
