// Load generators, run in the bench process against 127.0.0.1:PORT (a backend directly, or a
// proxy in front of it). Every loop stops at whichever comes first: its count or its time limit;
// and every wait has a hard timer, so a stalled path ends the bench with an error, not a hang.
import net from 'node:net';
import tls from 'node:tls';

const HOST = '127.0.0.1';
/** Client write size for bulk uploads (Node hands it to one write(2); the kernel splits it). */
const UPLOAD_CHUNK_BYTES = 256 * 1024;
/** Extra time after a loop's time limit for in-flight work to finish before it counts as stalled. */
const STALL_GRACE_MS = 10_000;

const uploadChunk = Buffer.alloc(UPLOAD_CHUNK_BYTES, 0x62);

export const MIB = 1024 * 1024;

function now(): number {
  return performance.now();
}

/** Value at quantile `q` (0..1) of `samples`, nearest rank; NaN when empty. */
export function quantile(samples: Float64Array, q: number): number {
  if (samples.length === 0) return NaN;
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] ?? NaN;
}

export interface BulkResult {
  /** Bytes that reached the far end (upload: counted by the sink; download: read by us). */
  readonly bytes: number;
  readonly elapsedMs: number;
  readonly mibPerS: number;
  /** False when the time limit cut some stream short of its byte count. */
  readonly complete: boolean;
}

/** One upload stream: write up to `bytes` (or until `stopAtMs`), FIN, read the sink's count. */
function uploadOne(port: number, bytes: number, stopAtMs: number): Promise<{ delivered: number; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port, allowHalfOpen: true });
    let sent = 0;
    let reply = Buffer.alloc(0);
    let settled = false;
    const settle = (err: Error | undefined, delivered = 0): void => {
      if (settled) return;
      settled = true;
      clearTimeout(stall);
      socket.destroy();
      if (err) reject(err);
      else resolve({ delivered, complete: sent >= bytes && delivered >= bytes });
    };
    const stall = setTimeout(() => {
      settle(new Error(`upload to port ${port}: no answer ${STALL_GRACE_MS} ms after the time limit`));
    }, stopAtMs - now() + STALL_GRACE_MS);
    socket.on('error', (e) => {
      settle(e);
    });
    socket.on('data', (d: Buffer) => {
      reply = Buffer.concat([reply, d]);
      if (reply.length >= 8) settle(undefined, Number(reply.readBigUInt64BE(0)));
    });
    socket.on('end', () => {
      settle(new Error(`upload to port ${port}: closed before the sink answered`));
    });
    const write = (): void => {
      while (sent < bytes && now() < stopAtMs) {
        const n = Math.min(UPLOAD_CHUNK_BYTES, bytes - sent);
        sent += n;
        if (!socket.write(n === UPLOAD_CHUNK_BYTES ? uploadChunk : uploadChunk.subarray(0, n))) {
          socket.once('drain', write);
          return;
        }
      }
      socket.end();
    };
    socket.once('connect', write);
  });
}

/**
 * `streams` parallel connections each send `bytesPerStream` to the sink (or stop sending at
 * `timeLimitMs`), half-close, and wait for the sink's count. Rate = bytes the sink counted /
 * time from the first connect to the last answer.
 */
export async function bulkUpload(port: number, streams: number, bytesPerStream: number, timeLimitMs: number): Promise<BulkResult> {
  const t0 = now();
  const rs = await Promise.all(Array.from({ length: streams }, () => uploadOne(port, bytesPerStream, t0 + timeLimitMs)));
  const elapsedMs = now() - t0;
  const bytes = rs.reduce((n, r) => n + r.delivered, 0);
  return { bytes, elapsedMs, mibPerS: bytes / MIB / (elapsedMs / 1000), complete: rs.every((r) => r.complete) };
}

/** One download stream: ask the source for `bytes`, read until its FIN (or until `stopAtMs`). */
function downloadOne(port: number, bytes: number, stopAtMs: number): Promise<{ delivered: number; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port });
    let received = 0;
    let settled = false;
    const settle = (err: Error | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(limit);
      socket.destroy();
      if (err) reject(err);
      else resolve({ delivered: received, complete: received >= bytes });
    };
    // At the time limit the stream is cut; what arrived so far is the result.
    const limit = setTimeout(() => {
      settle(undefined);
    }, stopAtMs - now());
    socket.on('error', (e) => {
      settle(e);
    });
    socket.on('data', (d: Buffer) => {
      received += d.length;
    });
    socket.on('end', () => {
      settle(received >= bytes ? undefined : new Error(`download from port ${port}: ended after ${received} of ${bytes} bytes`));
    });
    socket.once('connect', () => {
      const request = Buffer.alloc(8);
      request.writeBigUInt64BE(BigInt(bytes));
      socket.write(request);
    });
  });
}

/** `streams` parallel connections each read `bytesPerStream` from the source, or until `timeLimitMs`. */
export async function bulkDownload(port: number, streams: number, bytesPerStream: number, timeLimitMs: number): Promise<BulkResult> {
  const t0 = now();
  const rs = await Promise.all(Array.from({ length: streams }, () => downloadOne(port, bytesPerStream, t0 + timeLimitMs)));
  const elapsedMs = now() - t0;
  const bytes = rs.reduce((n, r) => n + r.delivered, 0);
  return { bytes, elapsedMs, mibPerS: bytes / MIB / (elapsedMs / 1000), complete: rs.every((r) => r.complete) };
}

/** Connects, waits for the hello byte; resolves with the socket and the latency in ms. */
function connectForHello(port: number, timeoutMs: number): Promise<{ socket: net.Socket; latencyMs: number }> {
  return new Promise((resolve, reject) => {
    const t = now();
    const socket = net.connect({ host: HOST, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no hello byte within ${timeoutMs} ms`));
    }, timeoutMs);
    const onError = (e: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(e);
    };
    socket.once('error', onError);
    socket.once('data', () => {
      const latencyMs = now() - t;
      clearTimeout(timer);
      socket.off('error', onError);
      socket.pause();
      resolve({ socket, latencyMs });
    });
  });
}

export interface ConnectResult {
  readonly connections: number;
  readonly errors: number;
  /** First error's message, if any. */
  readonly firstError: string | undefined;
  readonly elapsedMs: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/**
 * `loops` concurrent loops of: connect, read the hello byte, close; until `maxConnections`
 * have been started or `timeLimitMs` has passed. Latency is connect() to the first byte.
 */
export async function connectRate(port: number, loops: number, maxConnections: number, timeLimitMs: number): Promise<ConnectResult> {
  const r = await attemptLoops(loops, maxConnections, timeLimitMs, async () => {
    const { socket, latencyMs } = await connectForHello(port, STALL_GRACE_MS);
    socket.destroy();
    return { latencyMs, marked: false };
  });
  return { connections: r.completed, errors: r.errors, firstError: r.firstError, elapsedMs: r.elapsedMs, perSecond: r.perSecond, p50Ms: r.p50Ms, p99Ms: r.p99Ms };
}

export interface RoundTripResult {
  readonly roundTrips: number;
  readonly elapsedMs: number;
  readonly perSecond: number;
  readonly p50Us: number;
  readonly p99Us: number;
}

function openEcho(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port, noDelay: true });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

/**
 * Opens `connections` persistent connections to the echo server; on each, sends `messageBytes`
 * and waits for the whole echo before the next, until `maxRoundTrips` in all or `timeLimitMs`.
 */
export async function roundTrips(
  port: number,
  connections: number,
  maxRoundTrips: number,
  timeLimitMs: number,
  messageBytes = 64,
): Promise<RoundTripResult> {
  const message = Buffer.alloc(messageBytes, 0x63);
  const sockets = await Promise.all(Array.from({ length: connections }, () => openEcho(port)));
  const latencies = new Float64Array(maxRoundTrips);
  let started = 0;
  let done = 0;
  const t0 = now();
  const stopAtMs = t0 + timeLimitMs;
  const run = (socket: net.Socket): Promise<void> =>
    new Promise((resolve, reject) => {
      let got = 0;
      let sentAt = 0;
      const stall = setTimeout(() => {
        reject(new Error(`round trips on port ${port}: no echo ${STALL_GRACE_MS} ms after the time limit`));
      }, timeLimitMs + STALL_GRACE_MS);
      const send = (): void => {
        if (started >= maxRoundTrips || now() >= stopAtMs) {
          clearTimeout(stall);
          resolve();
          return;
        }
        started++;
        got = 0;
        sentAt = now();
        socket.write(message);
      };
      socket.on('error', (e) => {
        clearTimeout(stall);
        reject(e);
      });
      socket.on('data', (d: Buffer) => {
        got += d.length;
        if (got < messageBytes) return;
        latencies[done++] = now() - sentAt;
        send();
      });
      send();
    });
  try {
    await Promise.all(sockets.map(run));
  } finally {
    for (const s of sockets) s.destroy();
  }
  const elapsedMs = now() - t0;
  const samples = latencies.subarray(0, done);
  return {
    roundTrips: done,
    elapsedMs,
    perSecond: done / (elapsedMs / 1000),
    p50Us: quantile(samples, 0.5) * 1000,
    p99Us: quantile(samples, 0.99) * 1000,
  };
}

/**
 * Opens up to `count` connections to the hello server (`concurrency` at a time), each waiting
 * for its hello byte, and returns them open and idle; stops early at `timeLimitMs`. The caller
 * destroys them.
 */
export async function openIdle(port: number, count: number, concurrency: number, timeLimitMs: number): Promise<{ sockets: net.Socket[]; errors: number }> {
  const sockets: net.Socket[] = [];
  let started = 0;
  let errors = 0;
  const stopAtMs = now() + timeLimitMs;
  const loop = async (): Promise<void> => {
    while (started < count && now() < stopAtMs) {
      started++;
      try {
        const { socket } = await connectForHello(port, STALL_GRACE_MS);
        // A reset of an idle connection shows up as a missing socket in the count; nothing to do here.
        socket.on('error', () => undefined);
        sockets.push(socket);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return { sockets, errors };
}

/** The byte the echo probes send. */
const ECHO_PROBE = Buffer.from([0x65]);

/** Sends one byte on `socket` and waits for it to come back; false on close, error or `timeoutMs`. */
function echoOnce(socket: net.Socket, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      resolve(ok);
    };
    const onData = (): void => {
      done(true);
    };
    const onClose = (): void => {
      done(false);
    };
    const timer = setTimeout(() => {
      done(false);
    }, timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.resume();
    socket.write(ECHO_PROBE);
  });
}

/** Connects to the echo server and proves the connection spliced with one echoed byte; rejects after `timeoutMs`. */
function connectEchoed(port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port, noDelay: true });
    // A reset of an idle connection shows up in echoAll's count; nothing to do here.
    socket.on('error', () => undefined);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`echo on port ${port}: not connected within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      reject(new Error(`echo on port ${port}: closed before the echo`));
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      void echoOnce(socket, timeoutMs).then((ok) => {
        if (ok) {
          resolve(socket);
          return;
        }
        socket.destroy();
        reject(new Error(`echo on port ${port}: no echo within ${timeoutMs} ms`));
      });
    });
  });
}

/**
 * Opens up to `count` connections to the echo server (`concurrency` at a time), each proven
 * spliced by one echoed byte, and returns them open and idle; stops early at `timeLimitMs`.
 * The caller destroys them.
 */
export async function openEchoIdle(port: number, count: number, concurrency: number, timeLimitMs: number): Promise<{ sockets: net.Socket[]; errors: number }> {
  const sockets: net.Socket[] = [];
  let started = 0;
  let errors = 0;
  const stopAtMs = now() + timeLimitMs;
  const loop = async (): Promise<void> => {
    while (started < count && now() < stopAtMs) {
      started++;
      try {
        sockets.push(await connectEchoed(port, STALL_GRACE_MS));
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return { sockets, errors };
}

/** How many of `sockets` still carry a byte both ways (each gets one echo round trip, all at once). */
export async function echoAll(sockets: readonly net.Socket[], timeoutMs: number): Promise<number> {
  const ok = await Promise.all(sockets.map((s) => (s.destroyed ? Promise.resolve(false) : echoOnce(s, timeoutMs))));
  return ok.filter(Boolean).length;
}

/** What one attempt of a request loop saw: its latency, and whether the reply carried the caller's marker. */
interface Attempt {
  readonly latencyMs: number;
  readonly marked: boolean;
}

export interface LoopResult {
  /** Attempts that completed. */
  readonly completed: number;
  readonly errors: number;
  /** First error's message, if any. */
  readonly firstError: string | undefined;
  readonly elapsedMs: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Completed attempts whose reply carried the marker (see each load). */
  readonly marked: number;
}

/**
 * `loops` concurrent loops of `attempt(i)` (i = 0, 1, 2, … across all loops), until
 * `maxAttempts` have been started or `timeLimitMs` has passed. Each attempt has its own hard
 * timer (STALL_GRACE_MS) inside `attempt`, so the whole run ends within about
 * timeLimitMs + STALL_GRACE_MS.
 */
async function attemptLoops(loops: number, maxAttempts: number, timeLimitMs: number, attempt: (i: number) => Promise<Attempt>): Promise<LoopResult> {
  const latencies = new Float64Array(maxAttempts);
  let started = 0;
  let done = 0;
  let errors = 0;
  let marked = 0;
  let firstError: string | undefined;
  const t0 = now();
  const stopAtMs = t0 + timeLimitMs;
  const loop = async (): Promise<void> => {
    while (started < maxAttempts && now() < stopAtMs) {
      const i = started++;
      try {
        const a = await attempt(i);
        latencies[done++] = a.latencyMs;
        if (a.marked) marked++;
      } catch (e) {
        errors++;
        firstError ??= e instanceof Error ? e.message : String(e);
      }
    }
  };
  await Promise.all(Array.from({ length: loops }, loop));
  const elapsedMs = now() - t0;
  const samples = latencies.subarray(0, done);
  return {
    completed: done,
    errors,
    firstError,
    elapsedMs,
    perSecond: done / (elapsedMs / 1000),
    p50Ms: quantile(samples, 0.5),
    p99Ms: quantile(samples, 0.99),
    marked,
  };
}

/**
 * The ending of the one-attempt clients below: returns `settle(err, value)`, which acts on its
 * first call only (destroys `socket`, clears the hard timer, resolves or rejects). The hard
 * timer settles with an error after `timeoutMs`.
 */
function oneShot<T>(socket: net.Socket, what: string, timeoutMs: number, resolve: (v: T) => void, reject: (e: Error) => void): (err: Error | undefined, value?: T) => void {
  let settled = false;
  const timer = setTimeout(() => {
    settle(new Error(`${what}: no answer within ${timeoutMs} ms`));
  }, timeoutMs);
  // A late error after settling (a reset of a socket we destroyed) has nothing left to report.
  socket.on('error', () => undefined);
  function settle(err: Error | undefined, value?: T): void {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    socket.destroy();
    if (err !== undefined || value === undefined) reject(err ?? new Error(`${what}: no value`));
    else resolve(value);
  }
  return settle;
}

/**
 * One TLS client: full handshake (no session given, so no resumption; the certificate is not
 * verified), read the server's first byte, close. Latency: tls.connect() to that byte.
 */
function tlsHelloOnce(port: number, servername: string | undefined, timeoutMs: number): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    const t = now();
    const socket = tls.connect({ host: HOST, port, rejectUnauthorized: false, ...(servername === undefined ? {} : { servername }) });
    const settle = oneShot<Attempt>(socket, `TLS to port ${port}`, timeoutMs, resolve, reject);
    socket.once('error', (e: Error) => {
      settle(e);
    });
    socket.once('end', () => {
      settle(new Error(`TLS to port ${port}: closed before the first byte`));
    });
    socket.once('data', () => {
      settle(undefined, { latencyMs: now() - t, marked: true });
    });
  });
}

/** `loops` concurrent loops of full TLS handshakes (see tlsHelloOnce); `marked` counts them all. */
export function tlsHelloRate(port: number, servername: string | undefined, loops: number, maxAttempts: number, timeLimitMs: number): Promise<LoopResult> {
  return attemptLoops(loops, maxAttempts, timeLimitMs, () => tlsHelloOnce(port, servername, STALL_GRACE_MS));
}

/** Longest HTTP response the client keeps (the bench server's answer is under 100 bytes). */
const MAX_HTTP_RESPONSE_BYTES = 16 * 1024;

/**
 * One HTTP/1.1 client: connect, send `request`, read the response until the server closes.
 * Latency: net.connect() to the first response byte. Marked when the response head contains
 * `marker` (compared case-insensitively).
 */
function httpRequestOnce(port: number, request: Buffer, marker: string, timeoutMs: number): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    const t = now();
    const socket = net.connect({ host: HOST, port, noDelay: true });
    const settle = oneShot<Attempt>(socket, `HTTP to port ${port}`, timeoutMs, resolve, reject);
    let latencyMs = NaN;
    let response = '';
    socket.once('error', (e) => {
      settle(e);
    });
    socket.on('data', (d: Buffer) => {
      if (Number.isNaN(latencyMs)) latencyMs = now() - t;
      if (response.length < MAX_HTTP_RESPONSE_BYTES) response += d.toString('latin1');
    });
    socket.once('end', () => {
      if (!response.startsWith('HTTP/1.1 200 ')) {
        settle(new Error(`HTTP to port ${port}: unexpected response ${JSON.stringify(response.slice(0, 40))}`));
        return;
      }
      const head = response.slice(0, Math.max(0, response.indexOf('\r\n\r\n'))).toLowerCase();
      settle(undefined, { latencyMs, marked: marker !== '' && head.includes(marker.toLowerCase()) });
    });
    socket.write(request);
  });
}

/** `loops` concurrent loops of one HTTP request per connection (see httpRequestOnce). */
export function httpRequestRate(port: number, request: Buffer, marker: string, loops: number, maxAttempts: number, timeLimitMs: number): Promise<LoopResult> {
  return attemptLoops(loops, maxAttempts, timeLimitMs, () => httpRequestOnce(port, request, marker, STALL_GRACE_MS));
}

/** Longest IMAP line the client accepts (tether's greeting with capabilities is ~100 bytes). */
const MAX_IMAP_LINE_BYTES = 8 * 1024;

/**
 * One IMAP session: connect, read the greeting (`* OK`), `a1 LOGIN user pass`, read the tagged
 * OK (untagged lines before it are skipped), `a2 LOGOUT`, read until the server closes (its
 * `a2 OK` must come first). Latency: net.connect() to the `a1 OK` line. Marked when the logout
 * completed too.
 */
function imapLoginOnce(port: number, user: string, timeoutMs: number): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    const t = now();
    const socket = net.connect({ host: HOST, port, noDelay: true });
    const what = `IMAP to port ${port}`;
    const settle = oneShot<Attempt>(socket, what, timeoutMs, resolve, reject);
    let state: 'greeting' | 'login' | 'logout' = 'greeting';
    let buf = '';
    let latencyMs = NaN;
    let loggedOut = false;
    const onLine = (line: string): void => {
      switch (state) {
        case 'greeting':
          if (!line.startsWith('* OK')) {
            settle(new Error(`${what}: greeting ${JSON.stringify(line)}`));
            return;
          }
          state = 'login';
          socket.write(`a1 LOGIN ${user} pass\r\n`);
          return;
        case 'login':
          if (!line.startsWith('a1 ')) return;
          if (!line.startsWith('a1 OK')) {
            settle(new Error(`${what}: login answered ${JSON.stringify(line)}`));
            return;
          }
          latencyMs = now() - t;
          state = 'logout';
          socket.write('a2 LOGOUT\r\n');
          return;
        case 'logout':
          if (line.startsWith('a2 OK')) loggedOut = true;
          return;
      }
    };
    socket.once('error', (e) => {
      settle(e);
    });
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, nl).replace(/\r$/, ''));
        buf = buf.slice(nl + 1);
      }
      if (buf.length > MAX_IMAP_LINE_BYTES) settle(new Error(`${what}: line longer than ${MAX_IMAP_LINE_BYTES} bytes`));
    });
    socket.once('end', () => {
      if (state !== 'logout') settle(new Error(`${what}: closed during the ${state}`));
      else settle(undefined, { latencyMs, marked: loggedOut });
    });
  });
}

/**
 * `loops` concurrent loops of IMAP login sessions (see imapLoginOnce). Session i logs in as
 * user(i % users) at ports[i % ports.length], so the login key varies and, straight to the
 * servers, the load is spread over them as a login-routing proxy would spread it.
 */
export function imapLoginRate(ports: readonly number[], users: number, loops: number, maxAttempts: number, timeLimitMs: number): Promise<LoopResult> {
  return attemptLoops(loops, maxAttempts, timeLimitMs, (i) => {
    const port = ports[i % ports.length];
    if (port === undefined) return Promise.reject(new Error('no IMAP port'));
    return imapLoginOnce(port, `user${i % users}`, STALL_GRACE_MS);
  });
}
