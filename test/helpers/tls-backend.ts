// Real TLS on loopback for the e2e tests of TLS affinity: node:tls backends that answer each
// secure connection with their name (HAProxy reg-test style), each with its own ticket keys and
// its own TLS 1.2 session-ID store; and the two real clients that talk to them through tether,
// `openssl s_client` (spawned) and node:tls.
import type { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import tls from 'node:tls';
import { generatePki } from '../../fixtures/pki.js';

/** The name the pki leaf is issued for (clients that verify use it as servername). */
export const CERT_NAME = 'localhost';

/** Bound on one client's whole exchange; a loopback handshake takes milliseconds. */
const CLIENT_TIMEOUT_MS = 10_000;

/** One secure connection as the backend saw it. */
export interface TlsBackendConn {
  readonly reused: boolean;
  readonly protocol: string | null;
  readonly servername: string | undefined;
}

export interface TlsBackend {
  readonly name: string;
  readonly port: number;
  /** The key_name its tickets start with (hex): Node's ticketKeys are name(16) hmac(16) aes(16). */
  readonly ticketKeyName: string;
  /** Secure connections so far (tether's own ticket-key probes included), in order. */
  readonly conns: TlsBackendConn[];
  /** Secure connections that resumed a session. */
  resumed(): number;
  close(): Promise<void>;
}

/**
 * Starts a node:tls server named `name` on 127.0.0.1:0 with the pki leaf and its own random
 * 48-byte ticketKeys, so a ticket one backend issued cannot be resumed at another. TLS 1.2
 * session IDs are kept in a per-backend store (Node has none of its own, see the fixture's
 * note), so an ID is resumable at its issuer only. Each secure connection gets `NAME\n`; the
 * backend then reads and drops what the client sends and ends its side when the client does.
 */
export async function startTlsBackend(name: string, options: tls.TlsOptions = {}): Promise<TlsBackend> {
  const pki = await generatePki();
  const conns: TlsBackendConn[] = [];
  const sockets = new Set<net.Socket>();
  const ticketKeys = randomBytes(48);
  const server = tls.createServer({ key: pki.key, cert: pki.cert, ticketKeys, ...options }, (socket) => {
    conns.push({
      reused: socket.isSessionReused(),
      protocol: socket.getProtocol(),
      servername: typeof socket.servername === 'string' ? socket.servername : undefined,
    });
    socket.on('error', () => undefined); // clients vanish mid-test; the test asserts on what they saw
    socket.on('data', () => undefined);
    socket.on('end', () => socket.end());
    socket.write(`${name}\n`);
  });
  server.on('connection', (raw: net.Socket) => {
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
  });
  // A client that gives up mid-handshake (a peek test, a replayed hello) is not a backend failure.
  server.on('tlsClientError', () => undefined);
  const store = new Map<string, Buffer>();
  server.on('newSession', (id: Buffer, data: Buffer, done: () => void) => {
    store.set(id.toString('hex'), data);
    done();
  });
  server.on('resumeSession', (id: Buffer, done: (err: Error | null, data: Buffer | null) => void) => {
    done(null, store.get(id.toString('hex')) ?? null);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    name,
    port,
    ticketKeyName: ticketKeys.subarray(0, 16).toString('hex'),
    conns,
    resumed: () => conns.filter((c) => c.reused).length,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** What one `openssl s_client` run showed. */
export interface SClientResult {
  /** The first output line that is one of the expected backend names; undefined if none. */
  readonly name: string | undefined;
  /** "Reused, …" (true) or "New, …" (false) in s_client's connection summary. */
  readonly reused: boolean;
  /** The protocol from that summary line (TLSv1.2, TLSv1.3), if printed. */
  readonly protocol: string | undefined;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `openssl s_client -connect 127.0.0.1:PORT [-bind SOURCE:0] ...args` with stdin a pipe.
 * Once a line naming one of `names` has been printed (the backend's greeting, which follows the
 * handshake and, in TLS 1.3, its session tickets, so `-sess_out` is written by then), stdin is
 * closed and s_client sends close_notify and exits. Killed (by PID) after CLIENT_TIMEOUT_MS.
 */
export function sClient(port: number, args: readonly string[], opts: { names: readonly string[]; bind?: string }): Promise<SClientResult> {
  const argv = ['s_client', '-connect', `127.0.0.1:${port}`, ...(opts.bind === undefined ? [] : ['-bind', `${opts.bind}:0`]), ...args];
  const child = spawn('openssl', argv, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let name: string | undefined;
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), CLIENT_TIMEOUT_MS);
    child.stdin.on('error', () => undefined); // s_client may exit before we close its stdin
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('latin1');
      if (name !== undefined) return;
      // Complete lines only: a chunk may end inside a line of base64 that starts like a name.
      name = stdout.split(/\r?\n/).slice(0, -1).find((l) => opts.names.includes(l));
      if (name !== undefined) child.stdin.end();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('latin1');
    });
    const settle = (): void => {
      clearTimeout(timer);
      const summary = /^(New|Reused), (TLSv[\d.]+),/m.exec(stdout);
      resolve({ name, reused: summary?.[1] === 'Reused', protocol: summary?.[2], stdout, stderr });
    };
    child.on('close', settle);
    // No openssl to spawn: the result has no name, which every caller asserts on.
    child.on('error', (err) => {
      stderr += err.message;
      settle();
    });
  });
}

/** What one node:tls client run showed. */
export interface NodeTlsResult {
  /** The backend's greeting line; '' when none came. */
  readonly name: string;
  readonly reused: boolean;
  readonly protocol: string | null;
  /** The session to resume later: TLS 1.3's first ticket ('session' event), else getSession(). */
  readonly session: Buffer | undefined;
}

/** tls.connect's options; `localAddress` (the source address) is passed on to net.connect. */
export type NodeTlsOptions = tls.ConnectionOptions & { localAddress?: string };

/**
 * Connects a node:tls client (trusting the test CA; servername `localhost` unless given),
 * reads the greeting line, makes sure a TLS 1.3 full handshake has delivered its ticket, then
 * ends and waits for the close.
 */
export async function nodeTlsClient(port: number, options: NodeTlsOptions = {}): Promise<NodeTlsResult> {
  const pki = await generatePki();
  const socket = tls.connect({ host: '127.0.0.1', port, ca: pki.ca, servername: CERT_NAME, ...options });
  let ticketSession: Buffer | undefined;
  const gotTicket = new Promise<void>((resolve) => {
    socket.once('session', (s: Buffer) => {
      ticketSession = s;
      resolve();
    });
  });
  let line = '';
  const greeted = new Promise<void>((resolve) => {
    socket.on('data', (d: Buffer) => {
      line += d.toString('latin1');
      if (line.includes('\n')) resolve();
    });
    socket.once('close', () => {
      resolve();
    });
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => {
    resolve();
  }));
  socket.on('error', () => undefined); // a failed handshake shows as an empty name
  const timer = setTimeout(() => socket.destroy(), CLIENT_TIMEOUT_MS);
  try {
    await greeted;
    const protocol = socket.getProtocol();
    const reused = socket.isSessionReused();
    if (protocol === 'TLSv1.3' && !reused && ticketSession === undefined) {
      await Promise.race([gotTicket, closed]);
    }
    const session = protocol === 'TLSv1.3' ? ticketSession : socket.getSession();
    socket.end();
    await closed;
    return { name: line.split('\n')[0] ?? '', reused, protocol, session };
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
}
