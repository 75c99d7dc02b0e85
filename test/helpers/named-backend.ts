// Test backends on real loopback sockets (HAProxy reg-test style: each answers with its name).
import net from 'node:net';

export interface TestBackend {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: () => number;
  /** The sockets currently open on the backend side. */
  readonly sockets: Set<net.Socket>;
  close(): Promise<void>;
}

export type BackendBehaviour = (socket: net.Socket, name: string) => void;

/** Greets with `NAME\n`, then echoes every byte; ends its side when the client ends. */
export const greetAndEcho: BackendBehaviour = (socket, name) => {
  socket.write(`${name}\n`);
  socket.pipe(socket);
};

/** Echoes every byte (no greeting); half-close aware: ends after the client ends. */
export const echo: BackendBehaviour = (socket) => {
  socket.pipe(socket);
};

/**
 * Starts a backend named `name` on `host` (default 127.0.0.1) and `port` (default any free
 * port) running `behaviour` per connection (default greetAndEcho). allowHalfOpen is on, so
 * tests can check half-close.
 */
export function startBackend(
  name: string,
  opts: { host?: string; port?: number; behaviour?: BackendBehaviour } = {},
): Promise<TestBackend> {
  const host = opts.host ?? '127.0.0.1';
  const behaviour = opts.behaviour ?? greetAndEcho;
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined); // tests look at what the client saw
    behaviour(socket, name);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      const a = server.address() as net.AddressInfo;
      resolve({
        name,
        host,
        port: a.port,
        accepted: () => accepted,
        sockets,
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => {
              r();
            });
          }),
      });
    });
  });
}

/** A free loopback port that nothing listens on (bound then released). */
export async function deadPort(host = '127.0.0.1'): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, host, r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => { r(); }));
  return port;
}

/** Connects, reads the first line (the backend's name), and closes; '' when none came. */
export function whoAnswers(port: number, opts: { host?: string; localAddress?: string } = {}): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: opts.host ?? '127.0.0.1', port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    let got = '';
    s.setTimeout(5_000, () => s.destroy());
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.includes('\n')) s.end();
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      resolve(got.split('\n')[0] ?? '');
    });
  });
}
