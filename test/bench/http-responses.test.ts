// The bench's reader of pipelined HTTP responses: statuses in order, bodies skipped by
// Content-Length however the stream is cut, and a clear error for what is not a response.
import http from 'node:http';
import net from 'node:net';
import t from 'tap';
import { HttpResponseReader } from '../../bench/http-responses.js';

const response = (status: number, body: string): string => `HTTP/1.1 ${status} X\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

t.test('statuses in order, across every cut of the stream', (t) => {
  // A body that looks like a response head must be skipped, not parsed.
  const stream = Buffer.from(response(200, '{"a":1}') + response(404, 'HTTP/1.1 500 no\r\n\r\n') + response(200, '') + response(422, '{"é":"ü"}'));
  const wrong: string[] = [];
  for (let cut = 0; cut <= stream.length; cut++) {
    const r = new HttpResponseReader();
    const got = [...r.push(stream.subarray(0, cut)), ...r.push(stream.subarray(cut))];
    if (JSON.stringify(got) !== '[200,404,200,422]') wrong.push(`cut at ${cut}: ${JSON.stringify(got)}`);
  }
  t.same(wrong, [], 'every cut into two chunks');
  const r = new HttpResponseReader();
  const oneByOne = [...stream].flatMap((b) => r.push(Buffer.from([b])));
  t.same(oneByOne, [200, 404, 200, 422], 'one byte at a time');
  t.end();
});

t.test('an incomplete response is not counted until its body is whole', (t) => {
  const r = new HttpResponseReader();
  const whole = Buffer.from(response(200, '0123456789'));
  t.same(r.push(whole.subarray(0, whole.length - 1)), []);
  t.same(r.push(whole.subarray(whole.length - 1)), [200]);
  t.end();
});

t.test('what is not a response with a length is an error', (t) => {
  t.throws(() => new HttpResponseReader().push(Buffer.from('SSH-2.0-x\r\n\r\n')), /not an HTTP response/);
  t.throws(() => new HttpResponseReader().push(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')), /without Content-Length/);
  t.throws(() => new HttpResponseReader().push(Buffer.alloc(9_000, 0x41)), /longer than/);
  t.end();
});

t.test('reads what node:http sends to pipelined requests', async (t) => {
  let n = 0;
  const server = http.createServer((req, res) => {
    n++;
    const body = JSON.stringify({ n, path: req.url });
    res.writeHead(n % 3 === 0 ? 404 : 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      }),
  );
  const port = (server.address() as net.AddressInfo).port;
  const statuses = await new Promise<number[]>((resolve, reject) => {
    const r = new HttpResponseReader();
    const got: number[] = [];
    const socket = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`only ${got.length} responses in 10 s`));
    }, 10_000);
    socket.on('error', reject);
    socket.on('data', (d: Buffer) => {
      got.push(...r.push(d));
      if (got.length === 30) {
        clearTimeout(timer);
        socket.destroy();
        resolve(got);
      }
    });
    socket.write(Array.from({ length: 30 }, (_, i) => `POST /x?i=${i} HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n`).join(''));
  });
  t.same(statuses, Array.from({ length: 30 }, (_, i) => ((i + 1) % 3 === 0 ? 404 : 200)));
});
