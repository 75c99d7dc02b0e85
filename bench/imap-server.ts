// The IMAP test server of the bench's login row, run as its own process
// (dist/bench/imap-server.js NAME); the bench starts two, as backends a and b. Just enough IMAP
// for a login: greets `* OK ready`, answers `TAG LOGIN user pass` with `TAG OK logged in` (any
// user, any password), `TAG LOGOUT` with `* BYE` and `TAG OK` and closes, CAPABILITY and NOOP;
// anything else gets `TAG BAD`. Atoms only (no quoted strings or literals: the bench's client
// and tether's replay of its LOGIN send none). Prints one line
// `{"event":"listen.ready","port":…}`. Exits on SIGTERM, or when its stdin ends.
import net from 'node:net';

/** somaxconn on the bench machine is 4096; bursts of connects should not overflow the queue. */
const BACKLOG = 4_096;
/** A command line longer than this is not the bench's client: the connection is dropped. */
const MAX_LINE_BYTES = 8 * 1024;

const name = process.argv[2] ?? 'imap';

function answer(socket: net.Socket, line: string): void {
  const [tag = '*', command = '', ...args] = line.split(' ');
  switch (command.toUpperCase()) {
    case 'LOGIN':
      socket.write(args.length === 2 ? `${tag} OK logged in\r\n` : `${tag} BAD LOGIN expects user and password\r\n`);
      return;
    case 'LOGOUT':
      socket.end(`* BYE ${name} logging out\r\n${tag} OK LOGOUT completed\r\n`);
      return;
    case 'CAPABILITY':
      socket.write(`* CAPABILITY IMAP4rev1\r\n${tag} OK CAPABILITY completed\r\n`);
      return;
    case 'NOOP':
      socket.write(`${tag} OK NOOP completed\r\n`);
      return;
    default:
      socket.write(`${tag} BAD unknown command\r\n`);
  }
}

const server = net.createServer({ noDelay: true }, (socket) => {
  // A client reset only ends that conversation; the load generator counts its own errors.
  socket.on('error', () => undefined);
  let buf = '';
  socket.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0 && !socket.writableEnded) {
      answer(socket, buf.slice(0, nl).replace(/\r$/, ''));
      buf = buf.slice(nl + 1);
    }
    if (buf.length > MAX_LINE_BYTES) socket.destroy();
  });
  socket.write('* OK ready\r\n');
});

server.listen({ host: '127.0.0.1', port: 0, backlog: BACKLOG }, () => {
  const a = server.address();
  const port = a !== null && typeof a === 'object' ? a.port : 0;
  process.stdout.write(`${JSON.stringify({ event: 'listen.ready', port })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
