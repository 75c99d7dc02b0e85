// Bench backends, run as their own process (dist/bench/backend.js) so they do not share an event
// loop with the load generator or the proxy. Four servers on 127.0.0.1, any free port each:
//   sink   reads everything; when the client half-closes, answers the byte count (u64 BE) and ends
//   source reads a u64 BE byte count, then streams that many bytes and ends
//   hello  writes one byte on accept, then stays open until the client closes
//   echo   writes back every byte it reads
// Prints one line `{"event":"listen.ready","ports":{…}}`. Exits on SIGTERM, or when its stdin
// ends (the bench that started it is gone).
import net from 'node:net';

/** Write size of the source server: large enough that per-write overhead does not dominate. */
const SOURCE_CHUNK_BYTES = 256 * 1024;
/** The hello server's one byte. */
const HELLO = Buffer.from([0x2a]);
/** somaxconn on the bench machine is 4096; bursts of connects should not overflow the queue. */
const BACKLOG = 4_096;

const sourceChunk = Buffer.alloc(SOURCE_CHUNK_BYTES, 0x61);

function sink(socket: net.Socket): void {
  let bytes = 0;
  socket.on('data', (d: Buffer) => {
    bytes += d.length;
  });
  socket.on('end', () => {
    const reply = Buffer.alloc(8);
    reply.writeBigUInt64BE(BigInt(bytes));
    socket.end(reply);
  });
}

function pump(socket: net.Socket, remaining: number): void {
  let left = remaining;
  while (left > 0) {
    if (socket.destroyed) return;
    const n = Math.min(SOURCE_CHUNK_BYTES, left);
    left -= n;
    if (!socket.write(n === SOURCE_CHUNK_BYTES ? sourceChunk : sourceChunk.subarray(0, n))) {
      socket.once('drain', () => {
        pump(socket, left);
      });
      return;
    }
  }
  socket.end();
}

function source(socket: net.Socket): void {
  let head = Buffer.alloc(0);
  const onData = (d: Buffer): void => {
    head = Buffer.concat([head, d]);
    if (head.length < 8) return;
    socket.off('data', onData);
    socket.resume(); // drop anything after the request
    pump(socket, Number(head.readBigUInt64BE(0)));
  };
  socket.on('data', onData);
}

function hello(socket: net.Socket): void {
  socket.write(HELLO);
  socket.resume(); // see the client's FIN, so this side closes too
}

function echo(socket: net.Socket): void {
  socket.on('data', (d: Buffer) => {
    socket.write(d);
  });
}

const SERVERS = { sink, source, hello, echo } as const;

function listen(serve: (s: net.Socket) => void): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    // A client reset only ends that conversation; the load generator counts its own errors.
    socket.on('error', () => undefined);
    // allowHalfOpen is for the sink (it answers after the client's FIN); the others end with the client.
    if (serve !== sink) socket.on('end', () => socket.end());
    serve(socket);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, backlog: BACKLOG }, () => {
      const a = server.address();
      resolve(a !== null && typeof a === 'object' ? a.port : 0);
    });
  });
}

const ports: Record<string, number> = {};
for (const [name, serve] of Object.entries(SERVERS)) ports[name] = await listen(serve);
process.on('SIGTERM', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
process.stdout.write(`${JSON.stringify({ event: 'listen.ready', ports })}\n`);
