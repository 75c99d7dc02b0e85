// Small tools for the e2e tests of the CLI, config files, placement and failover, on top of
// run-tether.ts and named-backend.ts: stderr problem lines, log-line counting, a client that
// stays open, a client that watches how it is closed, and a loopback black hole.
import net from 'node:net';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { generatePki, type Pki } from '../../fixtures/pki.js';
import { spawn } from 'node:child_process';
import type { Test } from 'tap';
import { runTether, type LogLine, type RunningTether } from './run-tether.js';

/** The hint commander prints after a usage error. */
export const USAGE_HINT = '(run tether --help for usage)';

/** The `tether: error: …` lines of stderr (one per problem). */
export function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('tether: error:'));
}

/** Lines of stderr that are neither a problem line, the usage hint, nor empty. */
export function otherLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l !== '' && l !== USAGE_HINT && !l.startsWith('tether: error:'));
}

/** The log lines of `rt` seen so far that match `pred`. */
export function linesWhere(rt: RunningTether, pred: (l: LogLine) => boolean): LogLine[] {
  return rt.lines.filter(pred);
}

/** Resolves with the first `n` lines matching `pred` once that many were logged; rejects after `ms`. */
export async function waitForCount(rt: RunningTether, pred: (l: LogLine) => boolean, n: number, ms = 5_000): Promise<LogLine[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = rt.lines.filter(pred);
    if (got.length >= n) return got.slice(0, n);
    if (Date.now() > deadline) throw new Error(`saw ${String(got.length)} of ${String(n)} expected log lines; stderr: ${rt.stderr()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** conn.close lines of frontend `frontend` (any, when omitted). */
export const isConnClose =
  (frontend?: string) =>
  (l: LogLine): boolean =>
    l.event === 'conn.close' && (frontend === undefined || l['frontend'] === frontend);

/** Waits until something accepts on 127.0.0.1:`port` (for runs whose log level hides listen.ready). */
export async function waitAccepting(port: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => {
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing accepted on 127.0.0.1:${String(port)} within ${String(ms)}ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A client that read its backend's name and stays connected until `close()`. */
export interface HeldConnection {
  readonly name: string;
  readonly socket: net.Socket;
  close(): void;
}

/** Connects, reads the first line (the backend's name) and keeps the connection open. */
export function holdConnection(port: number, opts: { host?: string; localAddress?: string } = {}): Promise<HeldConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: opts.host ?? '127.0.0.1', port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    let got = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no greeting within 5s'));
    }, 5_000);
    socket.on('error', () => undefined); // a failure shows as a missing greeting
    socket.on('data', (d: Buffer) => {
      got += d.toString();
      const nl = got.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        socket.removeAllListeners('data');
        resolve({ name: got.slice(0, nl), socket, close: () => socket.destroy() });
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      reject(new Error(`closed before a greeting (got ${JSON.stringify(got)})`));
    });
  });
}

/** How the proxy ended a client that sends nothing. */
export interface ClientEnd {
  readonly data: string;
  /** Milliseconds from connect to close. */
  readonly ms: number;
  /** The error code if the socket errored (e.g. ECONNRESET); undefined for a clean FIN. */
  readonly error: string | undefined;
  /** Whether the peer's FIN (`end`) arrived. */
  readonly gotEnd: boolean;
}

/** Connects to `port`, sends nothing, and reports how and when the connection was closed (gives up after `ms`). */
export function watchClose(port: number, ms = 5_000): Promise<ClientEnd> {
  return new Promise((resolve) => {
    const started = Date.now();
    const s = net.connect({ host: '127.0.0.1', port });
    let data = '';
    let error: string | undefined;
    let gotEnd = false;
    const timer = setTimeout(() => s.destroy(), ms);
    s.on('data', (d: Buffer) => (data += d.toString()));
    s.on('end', () => (gotEnd = true));
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? 'error'));
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ data, ms: Date.now() - started, error, gotEnd });
    });
  });
}

/** A loopback port where connection attempts hang (SYNs dropped), for connect-timeout tests. */
export interface BlackHole {
  readonly port: number;
  close(): void;
}

/**
 * Builds a loopback black hole, or returns undefined when this OS does not give one: a child
 * process listens with backlog 1 and stops itself (SIGSTOP), so it never accepts; the test then
 * fills the kernel's accept queue. On Linux, once that queue is full, further SYNs are dropped,
 * so a connect hangs until its timeout. Checked by a probe connect that must not complete.
 */
export async function blackHole(): Promise<BlackHole | undefined> {
  const script =
    "const s=require('net').createServer().listen({port:0,host:'127.0.0.1',backlog:1},()=>{" +
    "process.stdout.write(s.address().port+'\\n');process.kill(process.pid,'SIGSTOP')})";
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  const fillers: net.Socket[] = [];
  const close = (): void => {
    for (const s of fillers) s.destroy();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const port = await new Promise<number | undefined>((resolve) => {
    let out = '';
    const t = setTimeout(() => {
      resolve(undefined);
    }, 5_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) {
        clearTimeout(t);
        resolve(Number(out.trim()));
      }
    });
    child.once('exit', () => {
      clearTimeout(t);
      resolve(undefined);
    });
  });
  if (port === undefined) {
    close();
    return undefined;
  }
  // Fill the accept queue: connects complete until it is full; the first one that hangs
  // shows the port is now a black hole (it stays open, holding its place in the SYN queue).
  for (let i = 0; i < 16; i++) {
    const r = await new Promise<'connected' | 'hang' | 'error'>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      fillers.push(s);
      s.on('error', () => undefined); // outcome is read from the 'error' once-listener below
      const t = setTimeout(() => {
        resolve('hang');
      }, 400);
      s.once('connect', () => {
        clearTimeout(t);
        resolve('connected');
      });
      s.once('error', () => {
        clearTimeout(t);
        resolve('error');
      });
    });
    if (r === 'hang') return { port, close };
    if (r === 'error') break;
  }
  close();
  return undefined;
}

/** Starts tether on 127.0.0.1:0 with `args`, stopped on teardown. */
export async function tetherOnLoopback(t: Test, args: readonly string[]): Promise<{ rt: RunningTether; port: number }> {
  const rt = await runTether(['--listen', '127.0.0.1:0', ...args]);
  t.teardown(() => rt.stop());
  return { rt, port: rt.ports[0]! };
}

/** The first `n` conn.close lines, in connection order (a line is logged after both sides close). */
export async function connCloses(rt: RunningTether, n: number): Promise<LogLine[]> {
  await waitForCount(rt, (l) => l.event === 'conn.close', n);
  return rt.lines
    .filter((l) => l.event === 'conn.close')
    .sort((x, y) => Number(x['conn']) - Number(y['conn']))
    .slice(0, n);
}

/** The affinity key kind a conn.close line names, if any. */
export const keyKind = (l: LogLine): string | undefined => (l['key'] as { kind?: string } | null)?.kind;

/** Rejects when `p` has not settled within `ms`, naming `what`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`timed out after ${ms} ms: ${what}`));
    }, ms);
  });
  return Promise.race([p, guard]).finally(() => {
    clearTimeout(timer);
  });
}

/** A fresh test PKI written to `dir` (a tap testdir) as ca.pem, cert.pem and key.pem, and a writer for more files there. */
export async function pkiFiles(dir: string): Promise<{ pki: Pki; ca: string; cert: string; key: string; file: (name: string, text: string) => string }> {
  const pki = await generatePki();
  const file = (name: string, text: string): string => {
    const f = path.join(dir, name);
    writeFileSync(f, text);
    return f;
  };
  return { pki, ca: file('ca.pem', pki.ca), cert: file('cert.pem', pki.cert), key: file('key.pem', pki.key), file };
}
