// Demo backends, I/O. A TCP server on loopback that answers with its name: an HTTP request gets
// `backend NAME` as a plain-text response; any other client gets a `backend NAME` greeting
// after a short pause (or at its first line) and then each of its lines echoed back prefixed.
import net from 'node:net';

/** Time to wait for a client-first protocol before greeting (nc users type nothing at first). */
const GREET_AFTER_MS = 300;

export interface NamedBackend {
  readonly name: string;
  readonly port: number;
  close(): Promise<void>;
}

const HTTP_METHOD = /^(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH) /;

/** Starts backend `name` on `host`:`port` (0 = any free port). */
export function startNamedBackend(name: string, host = '127.0.0.1', port = 0): Promise<NamedBackend> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined); // a client reset ends this demo conversation; nothing to record
    let greeted = false;
    const greet = (): void => {
      if (greeted || socket.destroyed) return;
      greeted = true;
      socket.write(`backend ${name}\r\n`);
    };
    const timer = setTimeout(greet, GREET_AFTER_MS);
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      clearTimeout(timer);
      if (!greeted && HTTP_METHOD.test(head + chunk.toString('latin1'))) {
        head += chunk.toString('latin1');
        if (!head.includes('\r\n\r\n') && !head.includes('\n\n')) return;
        greeted = true;
        const body = `backend ${name}\n`;
        socket.end(
          `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${String(body.length)}\r\nX-Backend: ${name}\r\nConnection: close\r\n\r\n${body}`,
        );
        return;
      }
      greet();
      for (const line of chunk.toString('utf8').split(/\r?\n/)) if (line !== '') socket.write(`${name}: ${line}\r\n`);
    });
    socket.on('end', () => socket.end());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const addr = server.address();
      resolve({
        name,
        port: addr !== null && typeof addr === 'object' ? addr.port : port,
        close: () =>
          new Promise((r) => {
            server.close(() => {
              r();
            });
            for (const s of sockets) s.destroy();
          }),
      });
    });
  });
}
