// Fault injection on real loopback sockets for the fault-matrix and cross-talk e2e tests. An
// IMAP backend whose behaviour is chosen per connection: faults before the login (greeting,
// TLS handshake) by the backend itself — it cannot know the user yet, so each such fault has a
// backend of its own, and the test's --user-map sends the fault's user there — and faults from
// the login on by the login user name (`rst-after-login`, `silent-in-login`, …). Every other
// user is served: LOGIN, NOOP, XWHO, and XECHO, which returns a literal byte for byte, so a
// session can check that what crossed tether both ways is exact.
//
// The IMAP parser is written here on purpose, independently of lib/wire/imap (see
// imap-backend.ts): a shared parser would share its bugs with the code under test.
import { Buffer } from 'node:buffer';
import net from 'node:net';
import tls from 'node:tls';
import type { KeyAndCert } from '../../fixtures/pki.js';

/** TLS toward the backend, as tether's --backend-tls names it. */
export type FaultBackendTls = 'none' | 'tls' | 'starttls';

/**
 * What a backend does to every connection before any login: close (FIN), reset or fall silent
 * in its greeting, or in the TLS handshake (after reading the ClientHello; `tls` and `starttls`).
 */
export type PreLoginFault = 'fin-in-greeting' | 'rst-in-greeting' | 'silent-greeting' | 'fin-mid-tls' | 'rst-mid-tls' | 'silent-mid-tls';

export const PRE_LOGIN_FAULTS: readonly PreLoginFault[] = ['fin-in-greeting', 'rst-in-greeting', 'silent-greeting', 'fin-mid-tls', 'rst-mid-tls', 'silent-mid-tls'];

/**
 * Login users with a fault: `*-in-login` at the LOGIN itself (no answer), `*-after-login` at the
 * first command after a successful login. `slow-login` answers the LOGIN after SLOW_LOGIN_MS.
 */
export const LOGIN_FAULT_USERS = [
  'fin-in-login',
  'rst-in-login',
  'silent-in-login',
  'fin-after-login',
  'rst-after-login',
  'silent-after-login',
  'slow-login',
] as const;
export type LoginFaultUser = (typeof LOGIN_FAULT_USERS)[number];

/** How long `slow-login` holds its LOGIN answer: the window for client faults during the replay. */
export const SLOW_LOGIN_MS = 1_000;

/** An XECHO literal the backend accepts at most (a bound on what one session can make it hold). */
const MAX_LITERAL = 1024 * 1024;

export interface FaultBackend {
  readonly name: string;
  readonly port: number;
  /** Connections accepted so far. */
  accepted(): number;
  /** Users whose LOGIN arrived, in order. */
  readonly logins: string[];
  close(): Promise<void>;
}

/** Ends `raw` with a reset (RST), whatever is layered on it. */
function reset(raw: net.Socket): void {
  if (!raw.destroyed) raw.resetAndDestroy();
}

interface SessionOptions {
  readonly name: string;
  readonly tls: FaultBackendTls;
  readonly ctx: tls.SecureContext;
  readonly fault: PreLoginFault | undefined;
  readonly logins: string[];
}

/**
 * Waits for the client's first bytes (its ClientHello) on `raw`, then applies `fault` (a
 * mid-handshake fault) or starts the server side of TLS on it. Resolves with the TLS socket,
 * or undefined once a fault was applied.
 */
function serverTls(raw: net.Socket, ctx: tls.SecureContext, fault: PreLoginFault | undefined): Promise<tls.TLSSocket | undefined> {
  return new Promise((resolve) => {
    if (fault === 'fin-mid-tls' || fault === 'rst-mid-tls' || fault === 'silent-mid-tls') {
      raw.once('data', () => {
        // The ClientHello arrived; the handshake never gets further.
        if (fault === 'fin-mid-tls') raw.end();
        else if (fault === 'rst-mid-tls') reset(raw);
        else raw.on('data', () => undefined);
        resolve(undefined);
      });
      return;
    }
    const t = new tls.TLSSocket(raw, { isServer: true, secureContext: ctx });
    t.on('error', () => undefined); // a client that fails the handshake is the test's to see
    t.once('secure', () => {
      resolve(t);
    });
  });
}

async function session(raw: net.Socket, o: SessionOptions): Promise<void> {
  let sock: net.Socket = raw;
  if (o.tls === 'tls') {
    const t = await serverTls(raw, o.ctx, o.fault);
    if (!t) return;
    sock = t;
  }
  const greeting = `* OK [CAPABILITY IMAP4rev1 LITERAL+${o.tls === 'starttls' ? ' STARTTLS' : ''}] ${o.name} ready\r\n`;
  switch (o.fault) {
    case 'fin-in-greeting':
      sock.end(greeting.slice(0, 6)); // part of a greeting, then FIN
      return;
    case 'rst-in-greeting':
      sock.write(greeting.slice(0, 6), () => {
        reset(raw);
      });
      return;
    case 'silent-greeting':
      sock.on('data', () => undefined);
      return;
    case 'fin-mid-tls':
    case 'rst-mid-tls':
    case 'silent-mid-tls':
      // Applied by serverTls; a starttls backend applies it after its greeting and STARTTLS.
      break;
    case undefined:
      break;
  }
  let buf: Buffer = Buffer.alloc(0);
  let user: string | undefined;
  let afterLogin = 0;
  const write = (s: string | Buffer): void => {
    if (!sock.destroyed && sock.writable) sock.write(s);
  };
  const onData = (chunk: Buffer): void => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    for (;;) {
      const nl = buf.indexOf('\r\n');
      if (nl < 0) return;
      const line = buf.subarray(0, nl).toString('latin1');
      // A non-synchronizing literal at the end of the line (RFC 7888): {n+}, then n bytes.
      const lit = /\{(\d+)\+\}$/.exec(line);
      let literal: Buffer | undefined;
      let used = nl + 2;
      if (lit) {
        const n = Number(lit[1]);
        if (n > MAX_LITERAL) {
          sock.destroy();
          return;
        }
        if (buf.length < used + n) return;
        literal = buf.subarray(used, used + n);
        used += n;
        // The command line ends after the literal (CRLF).
        if (buf.length < used + 2) return;
        used += 2;
      }
      buf = buf.subarray(used);
      const [tag = '*', name = '', ...args] = line.split(' ');
      const cmd = name.toUpperCase();
      if (user !== undefined && cmd !== 'LOGOUT') {
        afterLogin++;
        if (afterLogin === 1 && user.endsWith('-after-login')) {
          sock.off('data', onData);
          if (user === 'fin-after-login') sock.end();
          else if (user === 'rst-after-login') reset(raw);
          else sock.on('data', () => undefined); // silent-after-login: reads, never answers
          return;
        }
      }
      switch (cmd) {
        case 'CAPABILITY':
          write(`* CAPABILITY IMAP4rev1 LITERAL+\r\n${tag} OK CAPABILITY completed\r\n`);
          break;
        case 'NOOP':
          write(`${tag} OK ${o.name}: NOOP completed\r\n`);
          break;
        case 'XWHO':
          write(`* XWHO ${o.name}\r\n${tag} OK XWHO completed\r\n`);
          break;
        case 'XECHO':
          if (!literal) write(`${tag} BAD XECHO needs a literal\r\n`);
          else write(Buffer.concat([Buffer.from(`* XECHO {${String(literal.length)}}\r\n`, 'latin1'), literal, Buffer.from(`\r\n${tag} OK XECHO completed\r\n`, 'latin1')]));
          break;
        case 'LOGOUT':
          write(`* BYE ${o.name} logging out\r\n${tag} OK LOGOUT completed\r\n`);
          sock.end();
          return;
        case 'LOGIN': {
          const u = (args[0] ?? '').replace(/^"|"$/g, '');
          o.logins.push(u);
          if (u === 'fin-in-login') {
            sock.end();
            return;
          }
          if (u === 'rst-in-login') {
            reset(raw);
            return;
          }
          if (u === 'silent-in-login') {
            sock.off('data', onData);
            sock.on('data', () => undefined);
            return;
          }
          const answer = (): void => {
            user = u;
            write(`${tag} OK [CAPABILITY IMAP4rev1 LITERAL+] ${o.name}: logged in\r\n`);
          };
          if (u === 'slow-login') {
            // Whatever else arrives waits for the answer.
            sock.off('data', onData);
            const held: Buffer[] = [buf];
            buf = Buffer.alloc(0);
            const hold = (d: Buffer): void => {
              held.push(d);
            };
            sock.on('data', hold);
            setTimeout(() => {
              sock.off('data', hold);
              answer();
              sock.on('data', onData);
              const rest = Buffer.concat(held);
              if (rest.length > 0) onData(rest);
            }, SLOW_LOGIN_MS).unref();
            return;
          }
          answer();
          break;
        }
        case 'STARTTLS': {
          if (o.tls !== 'starttls' || sock !== raw) {
            write(`${tag} BAD STARTTLS not available\r\n`);
            break;
          }
          write(`${tag} OK begin TLS\r\n`);
          sock.off('data', onData);
          buf = Buffer.alloc(0);
          void serverTls(raw, o.ctx, o.fault).then((t) => {
            if (!t) return;
            sock = t;
            sock.on('data', onData);
          });
          return;
        }
        default:
          write(`${tag} BAD unknown command ${cmd}\r\n`);
      }
    }
  };
  sock.on('data', onData);
  sock.write(greeting);
}

/**
 * Starts a fault backend named `name` on 127.0.0.1:0. `tls: 'tls'` speaks TLS from the first
 * byte, `starttls` offers STARTTLS (both with `cert`). `fault` is applied to every connection.
 */
export async function startFaultBackend(name: string, opts: { tls: FaultBackendTls; cert: KeyAndCert; fault?: PreLoginFault }): Promise<FaultBackend> {
  const ctx = tls.createSecureContext({ key: opts.cert.key, cert: opts.cert.cert });
  const logins: string[] = [];
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((raw) => {
    accepted++;
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
    raw.on('error', () => undefined); // tests assert on what tether logged and the client saw
    void session(raw, { name, tls: opts.tls, ctx, fault: opts.fault, logins });
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
    accepted: () => accepted,
    logins,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** A client connection that reads everything into one latin1 string (binary-safe, 1 char per byte). */
export interface WireClient {
  /** The TCP socket the test created (reset this one to send an RST, even under TLS). */
  readonly raw: net.Socket;
  /** The socket to talk on: `raw`, or the TLS socket once TLS is up. */
  socket(): net.Socket;
  /** Local port of `raw`: how the test finds this connection's conn.close line. */
  readonly localPort: number;
  send(data: string | Buffer): void;
  /** Resolves with what arrived from the previous match's end through the first match of `re`. */
  waitFor(re: RegExp, ms?: number): Promise<string>;
  /** Starts TLS on the connection (implicit TLS, or after a STARTTLS answer). */
  startTls(opts: tls.ConnectionOptions): Promise<void>;
  /** Everything received so far. */
  received(): string;
  readonly closed: Promise<void>;
  isClosed(): boolean;
  gotEnd(): boolean;
  /** The first socket error code seen (ECONNRESET …), if any. */
  error(): string | undefined;
  close(): void;
}

/**
 * Connects to 127.0.0.1:`port`. The client gives up after `lifetimeMs` (destroyed), so nothing
 * a test opens can outlive it.
 */
export function wireClient(port: number, opts: { allowHalfOpen?: boolean; lifetimeMs?: number } = {}): Promise<WireClient> {
  const raw = net.connect({ host: '127.0.0.1', port, allowHalfOpen: opts.allowHalfOpen === true });
  raw.setNoDelay(true);
  let sock: net.Socket = raw;
  let text = '';
  let cursor = 0;
  let ended = false;
  let isClosed = false;
  let err: string | undefined;
  const wake = new Set<() => void>();
  const onData = (d: Buffer): void => {
    text += d.toString('latin1');
    for (const w of [...wake]) w();
  };
  const onError = (e: NodeJS.ErrnoException): void => {
    err ??= e.code ?? 'error';
  };
  raw.on('data', onData);
  raw.on('end', () => {
    ended = true;
  });
  raw.on('error', onError); // a reset shows as a close with the data seen so far
  const closed = new Promise<void>((resolve) => {
    raw.once('close', () => {
      isClosed = true;
      for (const w of [...wake]) w();
      resolve();
    });
  });
  const timer = setTimeout(() => raw.destroy(), opts.lifetimeMs ?? 60_000);
  void closed.then(() => {
    clearTimeout(timer);
  });
  const client: WireClient = {
    raw,
    socket: () => sock,
    get localPort() {
      return localPort;
    },
    send: (data) => {
      if (!sock.destroyed && sock.writable) sock.write(data);
    },
    waitFor: (re, ms = 5_000) =>
      new Promise((resolve, reject) => {
        const g = new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`);
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
            reject(new Error(`closed before ${String(re)}; got ${JSON.stringify(text.slice(cursor, cursor + 200))}`));
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
          reject(new Error(`timed out waiting for ${String(re)}; got ${JSON.stringify(text.slice(cursor, cursor + 200))}`));
        }, ms);
        const done = (): void => {
          clearTimeout(t);
          wake.delete(w);
        };
        wake.add(w);
      }),
    startTls: (tlsOpts) =>
      new Promise((resolve, reject) => {
        raw.off('data', onData);
        const t = tls.connect({ ...tlsOpts, socket: raw });
        t.on('error', onError);
        t.on('data', onData);
        t.on('end', () => {
          ended = true;
        });
        sock = t;
        t.once('secureConnect', () => {
          resolve();
        });
        t.once('error', reject);
        void closed.then(() => {
          reject(new Error('closed during the TLS handshake'));
        });
      }),
    received: () => text,
    closed,
    isClosed: () => isClosed,
    gotEnd: () => ended,
    error: () => err,
    close: () => {
      sock.destroy();
      raw.destroy();
    },
  };
  let localPort = 0;
  return new Promise((resolve, reject) => {
    raw.once('connect', () => {
      localPort = raw.localPort ?? 0;
      resolve(client);
    });
    raw.once('error', reject);
  });
}

/** Deterministic bytes for (`seed`, `n`): what a session sends, so a mix-up or corruption shows. */
export function patternBytes(seed: number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  // xorshift32; seed 0 would stay 0
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/**
 * Faults of a TLS echo backend behind a peeking (`--protocol auto`) frontend, chosen by the
 * client's SNI (tether passes TLS through): `*-mid-tls` once the ClientHello arrived (found in
 * its clear-text server_name), `*-after-hs` at the first bytes after the handshake.
 */
export const SNI_FAULTS = ['fin-mid-tls', 'rst-mid-tls', 'silent-mid-tls', 'fin-after-hs', 'rst-after-hs', 'silent-after-hs'] as const;
export type SniFault = (typeof SNI_FAULTS)[number];

/** The SNI a client sends to ask the TLS echo backend for `fault` (`ok.test`: plain echo). */
export const sniFor = (fault: SniFault | 'ok'): string => `${fault}.test`;

/**
 * Starts a TLS echo backend on 127.0.0.1:0 (certificate `cert`): every byte is written back
 * and a FIN is answered with a FIN, unless the SNI names a fault (SNI_FAULTS).
 */
export async function startTlsEchoBackend(cert: KeyAndCert): Promise<FaultBackend> {
  const ctx = tls.createSecureContext({ key: cert.key, cert: cert.cert });
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((raw) => {
    accepted++;
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
    raw.on('error', () => undefined); // tests assert on what tether logged and the client saw
    raw.once('data', (hello: Buffer) => {
      const text = hello.toString('latin1');
      if (text.includes(sniFor('fin-mid-tls'))) {
        raw.end();
        return;
      }
      if (text.includes(sniFor('rst-mid-tls'))) {
        reset(raw);
        return;
      }
      if (text.includes(sniFor('silent-mid-tls'))) {
        raw.on('data', () => undefined);
        return;
      }
      // Hand the ClientHello back to the stream; the TLS socket reads it from there.
      raw.pause();
      raw.unshift(hello);
      const t = new tls.TLSSocket(raw, { isServer: true, secureContext: ctx });
      t.on('error', () => undefined); // as above
      t.once('data', (first: Buffer) => {
        const sni = (t as tls.TLSSocket & { servername?: string | false }).servername;
        if (sni === sniFor('fin-after-hs')) t.end();
        else if (sni === sniFor('rst-after-hs')) reset(raw);
        else if (sni === sniFor('silent-after-hs')) t.on('data', () => undefined);
        else {
          t.write(first);
          t.on('data', (d: Buffer) => t.write(d));
        }
      });
      t.on('end', () => t.end());
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
    name: 'tls-echo',
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    logins: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** A real ClientHello from this Node's TLS client (SNI `servername`), as its first TCP segment(s). */
export async function captureClientHello(servername: string): Promise<Buffer> {
  let done: (b: Buffer) => void = () => undefined;
  const got = new Promise<Buffer>((resolve) => {
    done = resolve;
  });
  const server = net.createServer((s) => {
    s.once('data', (d: Buffer) => {
      done(d);
      s.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const c = tls.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, servername });
  c.on('error', () => undefined); // the capture server hangs up after the hello
  const hello = await got;
  c.destroy();
  await new Promise<void>((resolve) => server.close(() => { resolve(); }));
  return hello;
}
