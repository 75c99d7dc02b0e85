// The bench's client of tether's admin API on 127.0.0.1: single requests over a keep-alive
// connection (as a Prometheus scraper holds one), and a bulk pinning of affinity entries by
// pipelined POST /affinity/move requests on one socket. Every wait has a hard timer.
import http from 'node:http';
import net from 'node:net';
import { HttpResponseReader } from './http-responses.js';

const HOST = '127.0.0.1';

export interface AdminReply {
  readonly status: number;
  readonly body: string;
  /** Response body size in bytes. */
  readonly bytes: number;
  /** From the request to the last body byte, ms. */
  readonly ms: number;
}

/** One keep-alive connection, reused by every request through it (one request at a time). */
export function adminAgent(): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: 1 });
}

/** One request; rejects on a transport error or after `timeoutMs` (any status resolves). */
export function adminRequest(agent: http.Agent, port: number, method: string, path: string, timeoutMs = 10_000): Promise<AdminReply> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request({ host: HOST, port, method, path, agent, headers: method === 'GET' ? {} : { 'content-length': '0' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, body: body.toString('utf8'), bytes: body.length, ms: performance.now() - t0 });
      });
      res.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    const timer = setTimeout(() => {
      req.destroy(new Error(`admin ${method} ${path}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end();
  });
}

/** Like adminRequest, but a status other than 200 rejects with the body. */
export async function adminOk(agent: http.Agent, port: number, method: string, path: string, timeoutMs = 10_000): Promise<AdminReply> {
  const r = await adminRequest(agent, port, method, path, timeoutMs);
  if (r.status !== 200) throw new Error(`admin ${method} ${path}: ${r.status} ${r.body.slice(0, 300)}`);
  return r;
}

/** Entries in the default pool's affinity table of tether's only frontend (GET /frontends). */
export async function tableEntries(agent: http.Agent, port: number): Promise<number> {
  const r = await adminOk(agent, port, 'GET', '/frontends');
  const doc = JSON.parse(r.body) as { pools?: { name?: string; table?: { entries?: unknown } }[] }[];
  const pool = doc[0]?.pools?.find((p) => p.name === 'default');
  const n = pool?.table?.entries;
  if (typeof n !== 'number') throw new Error('GET /frontends: no table size for the default pool');
  return n;
}

/** The `i`-th bench source address: 127.1.0.0 + i (never 127.0.0.1, the load's own source). */
export function sourceAddress(i: number): string {
  const n = 0x010000 + i;
  return `127.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

export interface PinResult {
  readonly pinned: number;
  readonly elapsedMs: number;
  readonly perSecond: number;
}

/**
 * Pins sources `from` … `to - 1` (see sourceAddress) as `source` keys, the same table entries a
 * client from that address would leave with `--affinity source`, each on `backends[i % n]`:
 * POST /affinity/move requests pipelined on one connection, `window` unanswered at most. Stops
 * at `to` or at `timeLimitMs`; a non-200 answer rejects.
 */
export function pinSources(port: number, from: number, to: number, backends: readonly string[], window: number, timeLimitMs: number): Promise<PinResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const stopAtMs = t0 + timeLimitMs;
    const reader = new HttpResponseReader();
    const socket = net.connect({ host: HOST, port, noDelay: true });
    let sent = from;
    let answered = from;
    let settled = false;
    const settle = (err: Error | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(stall);
      socket.destroy();
      const elapsedMs = performance.now() - t0;
      if (err !== undefined) reject(err);
      else resolve({ pinned: answered - from, elapsedMs, perSecond: (answered - from) / (elapsedMs / 1000) });
    };
    // The time limit, plus grace for the answers in flight.
    const stall = setTimeout(() => {
      settle(new Error(`pinning on admin port ${port}: ${answered - from} of ${to - from} answered after ${timeLimitMs + 10_000} ms`));
    }, timeLimitMs + 10_000);
    const send = (): void => {
      const last = performance.now() < stopAtMs ? Math.min(to, answered + window) : sent;
      if (last <= sent) return;
      const parts: string[] = [];
      for (; sent < last; sent++) {
        const backend = backends[sent % backends.length] ?? '';
        parts.push(`POST /affinity/move?kind=source&value=${sourceAddress(sent)}&to=${backend} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n`);
      }
      socket.write(parts.join(''));
    };
    socket.on('error', (e) => {
      settle(e);
    });
    socket.on('end', () => {
      settle(new Error(`pinning on admin port ${port}: the server closed after ${answered - from} answers`));
    });
    socket.on('data', (d: Buffer) => {
      let statuses: number[];
      try {
        statuses = reader.push(d);
      } catch (e) {
        settle(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      for (const st of statuses) {
        if (st !== 200) {
          settle(new Error(`POST /affinity/move answered ${st}`));
          return;
        }
      }
      answered += statuses.length;
      if (answered >= sent && (answered >= to || performance.now() >= stopAtMs)) {
        settle(undefined);
        return;
      }
      // Refill once half the window is answered: writes of window/2 requests, not one each.
      if (sent - answered <= window / 2) send();
    });
    socket.once('connect', send);
  });
}
