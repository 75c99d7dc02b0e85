// HTTP/1.1 test backends and clients for the e2e affinity tests. Backends are node:http servers
// named a, b, c that answer with their name (body and `X-Backend`), close after every response
// (so tether peeks every request), send no Date header (so responses are byte-for-byte
// repeatable) and may set a session cookie. Clients: a raw-socket one that returns the exact
// bytes received, node:http with `agent: false`, and curl with a cookie jar.
import http from 'node:http';
import net from 'node:net';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { register } from './secrets.js';

/** Which session cookie a backend sets on a request that does not carry it. */
export type SessionCookie =
  /** `Set-Cookie: JSESSIONID=<random>.<name>; Path=/` (Tomcat jvmRoute style). */
  | 'jsessionid'
  /** `Set-Cookie: SESSION=<random>; Path=/` (no route in the value). */
  | 'session'
  | 'none';

/** One request as the backend saw it. */
export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
}

export interface HttpBackend {
  readonly name: string;
  readonly port: number;
  readonly requests: SeenRequest[];
  /** The session cookie values this backend issued (each recorded in the secret registry). */
  readonly issued: string[];
  close(): Promise<void>;
}

/** Size of the `/big` body: more than 1 MiB, and not a multiple of any buffer size. */
export const BIG_BODY_BYTES = 1536 * 1024 + 7;

/** A deterministic body of `n` bytes (a SHA-256 counter stream), the same on every call. */
export function deterministicBytes(n: number, seed: string): Buffer {
  const out = Buffer.alloc(n);
  let at = 0;
  for (let i = 0; at < n; i++) at += createHash('sha256').update(`${seed}:${String(i)}`).digest().copy(out, at);
  return out;
}

const BIG = deterministicBytes(BIG_BODY_BYTES, 'big');

/** Pieces of the `/chunked` body, written with pauses so they travel as separate chunks. */
export const CHUNKS: readonly string[] = ['first chunk;', ' second\r\n', '', ' third: ', 'x'.repeat(70_000), ' end'];

function cookieOf(req: http.IncomingMessage, name: string): string | undefined {
  for (const pair of (req.headers.cookie ?? '').split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
  }
  return undefined;
}

let nextSession = 1;

/**
 * Starts an HTTP backend `name` on 127.0.0.1 (any free port). Paths: `/big` (BIG_BODY_BYTES of
 * deterministic bytes with Content-Length), `/chunked` (CHUNKS, chunked encoding, written over
 * several ticks), anything else: the body `NAME\n`. Every response carries `X-Backend: NAME`
 * and `Connection: close`.
 */
export function startHttpBackend(name: string, opts: { cookie?: SessionCookie } = {}): Promise<HttpBackend> {
  const cookie = opts.cookie ?? 'none';
  const requests: SeenRequest[] = [];
  const issued: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    res.sendDate = false;
    res.setHeader('X-Backend', name);
    res.setHeader('Connection', 'close');
    res.setHeader('Content-Type', 'text/plain');
    // A random value per session, as a real application server would issue.
    const session = `s${String(nextSession++)}x${randomBytes(8).toString('hex')}`;
    if (cookie === 'jsessionid' && cookieOf(req, 'JSESSIONID') === undefined) {
      issued.push(register('cookie', `${session}.${name}`, 'issued'));
      res.setHeader('Set-Cookie', `JSESSIONID=${session}.${name}; Path=/; HttpOnly`);
    }
    if (cookie === 'session' && cookieOf(req, 'SESSION') === undefined) {
      issued.push(register('cookie', session, 'issued'));
      res.setHeader('Set-Cookie', `SESSION=${session}; Path=/`);
    }
    req.resume();
    req.on('end', () => {
      if (req.url === '/big') {
        res.setHeader('Content-Length', String(BIG.length));
        res.end(BIG);
        return;
      }
      if (req.url === '/chunked') {
        res.setHeader('X-Chunked', 'yes');
        res.flushHeaders();
        let i = 0;
        const next = (): void => {
          const piece = CHUNKS[i++];
          if (piece === undefined) {
            res.end();
            return;
          }
          res.write(piece);
          setTimeout(next, 5);
        };
        setTimeout(next, 5);
        return;
      }
      res.end(`${name}\n`);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      resolve({
        name,
        port,
        requests,
        issued,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => {
              r();
            });
          }),
      });
    });
  });
}

/** What a raw exchange returned: every byte the client received, and how the response splits. */
export interface RawResponse {
  readonly raw: Buffer;
  readonly head: string;
  readonly body: Buffer;
  /** Header lines (without the status line), as received. */
  readonly headerLines: readonly string[];
  /** `X-Backend` (or '' when absent). */
  readonly backend: string;
  /** Every `Set-Cookie` line's value. */
  readonly setCookies: readonly string[];
}

/** Splits raw response bytes at the first empty line. */
export function splitResponse(raw: Buffer): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  const head = end < 0 ? raw.toString('latin1') : raw.subarray(0, end).toString('latin1');
  const body = end < 0 ? Buffer.alloc(0) : raw.subarray(end + 4);
  const headerLines = head.split('\r\n').slice(1);
  const value = (l: string): string => l.slice(l.indexOf(':') + 1).trim();
  const backend = headerLines.find((l) => l.toLowerCase().startsWith('x-backend:'));
  return {
    raw,
    head,
    body,
    headerLines,
    backend: backend === undefined ? '' : value(backend),
    setCookies: headerLines.filter((l) => l.toLowerCase().startsWith('set-cookie:')).map(value),
  };
}

/**
 * Sends `request` (raw bytes, written in the given pieces with a pause between them) to
 * 127.0.0.1:`port` from `localAddress`, and resolves with everything received until the server
 * closes. Gives up (destroying the socket) after `ms`.
 */
export function rawExchange(
  port: number,
  request: string | Buffer | readonly (string | Buffer)[],
  opts: { localAddress?: string; ms?: number; pauseMs?: number } = {},
): Promise<RawResponse> {
  const pieces = Array.isArray(request) ? (request as readonly (string | Buffer)[]) : [request as string | Buffer];
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }) });
    s.setNoDelay(true);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy(new Error(`no close from 127.0.0.1:${String(port)} within ${String(opts.ms ?? 10_000)} ms`));
    }, opts.ms ?? 10_000);
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.on('close', (hadError) => {
      clearTimeout(timer);
      if (!hadError) resolve(splitResponse(Buffer.concat(chunks)));
    });
    s.once('connect', () => {
      void (async () => {
        for (const [i, p] of pieces.entries()) {
          if (i > 0) await new Promise((r) => setTimeout(r, opts.pauseMs ?? 20));
          if (s.destroyed) return;
          s.write(p);
        }
      })();
    });
  });
}

/** `GET PATH` with `headers`, as raw request bytes (Host: 127.0.0.1 unless given). */
export function getRequest(path: string, headers: Readonly<Record<string, string>> = {}): string {
  const all: Record<string, string> = { Host: '127.0.0.1', ...headers };
  return `GET ${path} HTTP/1.1\r\n${Object.entries(all)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
}

/** What node:http saw. */
export interface NodeResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  readonly backend: string;
}

/** One request with node:http (`agent: false`: a new connection, `Connection: close`). */
export function nodeGet(
  port: number,
  path: string,
  opts: { localAddress?: string; headers?: Readonly<Record<string, string>>; ms?: number } = {},
): Promise<NodeResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        agent: false,
        headers: { ...opts.headers },
        ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          const xb = res.headers['x-backend'];
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), backend: typeof xb === 'string' ? xb : '' });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(opts.ms ?? 10_000, () => req.destroy(new Error('node:http request timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** What curl printed (`-i`: the head, then the body). */
export interface CurlResponse extends RawResponse {
  readonly stderr: string;
}

/**
 * Runs curl 7.x against 127.0.0.1:`port` with `args` (URL options, `-H`, `-b`/`-c` jar, …)
 * and `--interface` for the source address. `path` may carry `;`, `?`, `$` (curl is run with
 * --globoff and without a shell, so nothing is expanded).
 */
export function curl(port: number, path: string, args: readonly string[] = [], opts: { source?: string; url?: string } = {}): Promise<CurlResponse> {
  const url = opts.url ?? `http://127.0.0.1:${String(port)}${path}`;
  const argv = ['-sS', '-i', '--globoff', '--max-time', '10', '--http1.1', ...(opts.source === undefined ? [] : ['--interface', opts.source]), ...args, url];
  return new Promise((resolve, reject) => {
    execFile('curl', argv, { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024, timeout: 15_000 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`curl ${argv.join(' ')} failed: ${err.message} ${stderr.toString()}`));
        return;
      }
      resolve({ ...splitResponse(stdout), stderr: stderr.toString() });
    });
  });
}

/**
 * POSTs `body` with `Expect: 100-continue` through node:http (`agent: false`) and sends the
 * body only once the `100 Continue` has arrived, as RFC 9110 §10.1.1 lets a client do: a proxy
 * that held the interim response would stall it (the timeout then rejects).
 */
export function nodePostExpectingContinue(
  port: number,
  path: string,
  body: Buffer,
  opts: { localAddress?: string; headers?: Readonly<Record<string, string>>; ms?: number } = {},
): Promise<NodeResponse & { readonly continued: boolean }> {
  return new Promise((resolve, reject) => {
    let continued = false;
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent: false,
        headers: { ...opts.headers, Expect: '100-continue', 'Content-Length': String(body.length) },
        ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          const xb = res.headers['x-backend'];
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), backend: typeof xb === 'string' ? xb : '', continued });
        });
        res.on('error', reject);
      },
    );
    req.on('continue', () => {
      continued = true;
      req.end(body);
    });
    req.setTimeout(opts.ms ?? 5_000, () => req.destroy(new Error('no 100 Continue or no response in time')));
    req.on('error', reject);
  });
}

/**
 * Raw bytes: sends `head` (with `Expect: 100-continue`), waits for the end of the first
 * response head (the interim 100), then sends `body`; resolves with every byte received
 * until the server closes. Rejects after `ms`, e.g. when the 100 never comes.
 */
export function rawExpectExchange(port: number, head: string, body: Buffer, ms = 5_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let sent = false;
    const timer = setTimeout(() => {
      s.destroy(new Error(`no close within ${String(ms)} ms (body sent: ${String(sent)})`));
    }, ms);
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      if (!sent && Buffer.concat(chunks).includes('\r\n\r\n')) {
        sent = true;
        s.write(body);
      }
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.on('close', (hadError) => {
      clearTimeout(timer);
      if (!hadError) resolve(Buffer.concat(chunks));
    });
    s.once('connect', () => s.write(head));
  });
}
