// The baseline: the naive socket.pipe() proxy every Node tutorial shows, run as its own process
// (dist/bench/naive-proxy.js LISTEN_PORT BACKEND_PORT). No placement, affinity, timeouts or logs;
// allowHalfOpen so a client's FIN is passed on (the bench's sink answers after it).
import net from 'node:net';

const [listenPort = '0', backendPort = ''] = process.argv.slice(2);

const server = net.createServer({ allowHalfOpen: true }, (client) => {
  const backend = net.connect({ host: '127.0.0.1', port: Number(backendPort), allowHalfOpen: true });
  client.on('error', () => {
    backend.destroy();
  });
  backend.on('error', () => {
    client.destroy();
  });
  client.pipe(backend);
  backend.pipe(client);
});

server.listen({ host: '127.0.0.1', port: Number(listenPort), backlog: 1_024 }, () => {
  const a = server.address();
  const port = a !== null && typeof a === 'object' ? a.port : 0;
  process.stdout.write(`${JSON.stringify({ event: 'listen.ready', port })}\n`);
});
