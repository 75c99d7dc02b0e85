// Backends of the bench's peek rows, run as their own process (dist/bench/peek-backend.js). Two
// servers on 127.0.0.1, any free port each:
//   tls   TLS server (node:tls, Node's defaults: TLS 1.3, session tickets on) with a throwaway
//         RSA 2048 leaf from fixtures/pki (generated here at start-up, never written to disk);
//         writes one byte on each secure connection, then echoes what the client sends (the
//         slowpeek section's request/response; the peek-tls clients send nothing) until it closes
//   http  reads one request head, answers a tiny 200 with `Connection: close`, and ends
// Prints one line `{"event":"listen.ready","ports":{"tls":…,"http":…}}`. Exits on SIGTERM, or
// when its stdin ends (the bench that started it is gone).
import net from 'node:net';
import tls from 'node:tls';
import { generatePki } from '../fixtures/pki.js';

/** The TLS server's one byte. */
const HELLO = Buffer.from([0x2a]);
/** somaxconn on the bench machine is 4096; bursts of connects should not overflow the queue. */
const BACKLOG = 4_096;
/** A request head longer than this is not the bench's client: the connection is dropped. */
const MAX_REQUEST_HEAD_BYTES = 16 * 1024;
const HTTP_RESPONSE = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok', 'latin1');

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, backlog: BACKLOG }, () => {
      const a = server.address();
      resolve(a !== null && typeof a === 'object' ? a.port : 0);
    });
  });
}

function http(socket: net.Socket): void {
  let head = '';
  const onData = (d: Buffer): void => {
    head += d.toString('latin1');
    if (head.includes('\r\n\r\n')) {
      socket.off('data', onData);
      socket.resume(); // drop anything after the head; the client only sends the one request
      socket.end(HTTP_RESPONSE);
    } else if (head.length > MAX_REQUEST_HEAD_BYTES) {
      socket.destroy();
    }
  };
  socket.on('data', onData);
}

const pki = await generatePki();
// A client reset only ends that conversation; the load generator counts its own errors.
const tlsServer = tls.createServer({ key: pki.key, cert: pki.cert }, (socket) => {
  socket.on('error', () => undefined);
  socket.write(HELLO);
  // Echo (reading also sees the client's close, so this side closes too).
  socket.on('data', (d: Buffer) => {
    socket.write(d);
  });
  socket.on('end', () => {
    socket.end();
  });
});
tlsServer.on('tlsClientError', () => undefined);
const httpServer = net.createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => undefined);
  http(socket);
});

const ports = { tls: await listen(tlsServer), http: await listen(httpServer) };
process.on('SIGTERM', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
process.stdout.write(`${JSON.stringify({ event: 'listen.ready', ports })}\n`);
