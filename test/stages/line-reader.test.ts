// connect/line-reader.ts in-process on real loopback sockets: lines split across writes come
// out whole; a line longer than MAX_BACKEND_LINE ends the read; and a backend that sends far
// more than is being read is paused: the reader holds at most the cap plus a chunk.
import t, { type Test } from 'tap';
import net from 'node:net';
import { LineReader, MAX_BACKEND_LINE } from '../../lib/connect/line-reader.js';

/** A loopback pair: `server` is what the backend writes on, `client` is what the reader reads. */
async function pair(t: Test): Promise<{ server: net.Socket; client: net.Socket }> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<net.Socket>((resolve) => srv.once('connection', resolve));
  const client = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((resolve) => client.once('connect', resolve));
  const server = await accepted;
  server.on('error', () => undefined); // the reader's side closing first shows as a reset
  t.teardown(() => {
    client.destroy();
    server.destroy();
    srv.close();
  });
  return { server, client };
}

const never = (): number => 0;
const deadline = (): number => 10_000;

t.test('lines written a few bytes at a time come out whole, CRLF included', async (t) => {
  const { server, client } = await pair(t);
  server.setNoDelay(true);
  const r = new LineReader(client);
  const lines = ['* OK hello\r\n', `* CAPABILITY ${'X'.repeat(3000)}\r\n`, 'a1 OK done\r\n'];
  const bytes = Buffer.from(lines.join(''), 'latin1');
  void (async () => {
    for (let i = 0; i < bytes.length; i += 7) {
      server.write(bytes.subarray(i, i + 7));
      if (i % 700 === 0) await new Promise((res) => setImmediate(res));
    }
  })();
  for (const want of lines) t.equal((await r.line(deadline(), never))?.toString('latin1'), want);
  t.equal(r.detach().length, 0, 'nothing left over');
});

t.test('a line longer than MAX_BACKEND_LINE ends the read', async (t) => {
  const { server, client } = await pair(t);
  const r = new LineReader(client);
  server.write(Buffer.alloc(MAX_BACKEND_LINE + 10, 0x78));
  t.equal(await r.line(deadline(), never), undefined, 'no line');
});

t.test('a backend sending megabytes while nothing reads: at most the cap plus a chunk is held', async (t) => {
  const { server, client } = await pair(t);
  const r = new LineReader(client);
  const block = Buffer.from('* OK x\r\n'.repeat(8 * 1024), 'latin1');
  const BLOCKS = 32; // 2 MiB
  let written = 0;
  const writeAll = (async () => {
    for (let i = 0; i < BLOCKS; i++) {
      written += block.length;
      if (!server.write(block)) await new Promise((res) => server.once('drain', res));
    }
  })();
  // Give the flood a moment to arrive (a bound on bytes, not on time, is what is asserted).
  for (let i = 0; i < 20; i++) await new Promise((res) => setTimeout(res, 25));
  t.ok(client.bytesRead <= MAX_BACKEND_LINE + 4 * 64 * 1024, `read ${String(client.bytesRead)} bytes of the ${String(written)} written so far`);
  t.ok(written > client.bytesRead, 'the rest waits in the kernel and the backend');
  // Reading resumes the socket: every line arrives.
  let count = 0;
  while (count < BLOCKS * 8 * 1024) {
    const line = await r.line(deadline(), never);
    if (line?.toString('latin1') !== '* OK x\r\n') break;
    count++;
  }
  t.equal(count, BLOCKS * 8 * 1024, 'every line read');
  await writeAll;
});
