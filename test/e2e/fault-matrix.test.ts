// The fault matrix: {client, backend} × {FIN, RST, silence, close mid-TLS handshake} at each
// stage a connection goes through (peek, greet, TLS, login replay, splice), for every client
// TLS mode (none, STARTTLS, implicit) × backend TLS mode (none, --backend-tls tls, starttls) of
// the IMAP frontend, plus one peeking (`--protocol auto --affinity sni`) frontend passing TLS
// through. A cell exists only where its fault can happen (no TLS-handshake fault without a
// handshake on that side; no greeting fault on a peeking frontend).
//
// One tether per frontend configuration, many cells per tether; the ten run side by side. For
// every cell: the one conn.close line of the faulty connection has the expected termination,
// the process is alive, a fresh client is served (login and an XECHO round trip, byte-exact),
// and the three sessions transferring data on the same tether during the fault were not
// disturbed — they finish byte-exact at the end. A tether that dies is restarted (so later
// cells still say something), and the cell that killed it fails with the crash from stderr.
//
// Cells that wait for a timeout (silence) run together first; the others one at a time.
import t from 'tap';
import { appendFileSync } from 'node:fs';
import { pkiFiles } from '../helpers/e2e-tools.js';
import { runTether, type LogLine, type RunningTether } from '../helpers/run-tether.js';
import {
  LOGIN_FAULT_USERS,
  PRE_LOGIN_FAULTS,
  captureClientHello,
  patternBytes,
  sniFor,
  startFaultBackend,
  startTlsEchoBackend,
  wireClient,
  type FaultBackendTls,
  type PreLoginFault,
  type SniFault,
  type WireClient,
} from '../helpers/fault-backend.js';
import { secret } from '../helpers/secrets.js';

/** The password of every login here (an IMAP atom, from the secret registry). */
const PW = secret('mail-atom');

const files = await pkiFiles(t.testdir());
const { pki, file } = files;
const CA = files.ca;
const CERT = files.cert;
const KEY = files.key;
/** Half a real ClientHello: a handshake that never completes. */
const HALF_HELLO = (await captureClientHello('localhost')).subarray(0, 60);

/** Timeouts given to every tether, short so the silence cells end quickly. */
const LOGIN_TIMEOUT_MS = 2_000;
const IDLE_TIMEOUT_MS = 3_000;
/** tether allows a backend login connect-timeout + 10 s (BACKEND_LOGIN_EXTRA_MS in lib/runtime/mail.ts). */
const CONNECT_TIMEOUT_MS = 200;
const BACKEND_LOGIN_MS = CONNECT_TIMEOUT_MS + 10_000;
/** How long a cell waits for its conn.close line beyond the timeout it provokes. */
const CLOSE_SLACK_MS = 5_000;
/**
 * How long a client waits after half a ClientHello before its fault, so that tether has read
 * the bytes and is mid-handshake (or mid-peek). Without it, a reset can arrive before tether
 * even reads the client's address: a valid case of its own (`client rst at peek`), logged
 * with no address the cell could find its conn.close line by.
 */
const MID_HELLO_MS = 200;
/** From SIGTERM to exit with --grace 500ms. */
const STOP_BOUND_MS = 5_000;

const CLIENT_TLS = { ca: pki.ca, servername: 'localhost' } as const;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type ClientMode = 'none' | 'starttls' | 'implicit';
type Side = 'client' | 'backend';
type Fault = 'fin' | 'rst' | 'silence';
type Stage = 'peek' | 'greet' | 'tls' | 'replay' | 'splice';

/** The termination a cell expects; an array lists the values accepted (debatable ones). */
interface Expect {
  readonly cause: string;
  readonly stage: string;
  readonly code?: string | readonly string[];
}

interface Cell {
  readonly side: Side;
  readonly fault: Fault;
  readonly stage: Stage;
  readonly expect: Expect;
  /** Waits for a timeout: run with the other slow cells, concurrently. */
  readonly slow: boolean;
  /** How long the conn.close line may take after the fault. */
  readonly closeWithinMs: number;
  /** Injects the fault; resolves with the faulty connection's client and what it saw. */
  run(port: number): Promise<{ client: WireClient; checks?: readonly string[] }>;
}

const cellName = (c: Cell): string => `${c.side} ${c.fault} at ${c.stage}`;

/** What one cell observed. */
interface CellResult {
  readonly name: string;
  readonly expect: Expect;
  readonly termination?: unknown;
  /** Why no conn.close line was found, when none was. */
  readonly noClose?: string;
  readonly checks: readonly string[];
  readonly alive: boolean;
  readonly crash?: string;
  readonly fresh?: string;
  readonly inflight: readonly string[];
}

/** A frontend configuration of the matrix. */
interface Config {
  readonly name: string;
  readonly cells: readonly Cell[];
  /** Starts its backends; resolves with the tether arguments after --listen. */
  setup(): Promise<{ args: string[]; close: () => Promise<void> }>;
  /** One healthy session; `rounds` round trips (`rounds` undefined: until `stop()`). */
  session(port: number, seed: number): Session;
}

/** A healthy session transferring data: `done` resolves with a failure text, or undefined. */
interface Session {
  stop(): void;
  readonly done: Promise<string | undefined>;
}

// ---------------------------------------------------------------- IMAP through tether

const ROUND_BYTES = 8 * 1024;
/** An in-flight session lasts for all the cells of its tether; the file's timeout bounds it. */
const SESSION_LIFETIME_MS = 240_000;

/** Connects and gets through the client's TLS (if any) to tether's greeting. */
async function imapConnect(port: number, mode: ClientMode, lifetimeMs?: number): Promise<WireClient> {
  const c = await wireClient(port, lifetimeMs === undefined ? {} : { lifetimeMs });
  if (mode === 'implicit') await c.startTls(CLIENT_TLS);
  await c.waitFor(/^\* OK .*\r\n/m);
  if (mode === 'starttls') {
    c.send('s1 STARTTLS\r\n');
    await c.waitFor(/^s1 OK .*\r\n/m);
    await c.startTls(CLIENT_TLS);
  }
  return c;
}

/** `tag LOGIN user PW` and its OK. */
async function imapLogin(c: WireClient, user: string): Promise<void> {
  c.send(`a1 LOGIN ${user} ${PW}\r\n`);
  const answer = await c.waitFor(/^a1 .*\r\n/m, BACKEND_LOGIN_MS + 2_000);
  if (!/^a1 OK/m.test(answer)) throw new Error(`login refused: ${JSON.stringify(answer)}`);
}

/** One XECHO round trip of `bytes`; throws unless the answer is byte-exact. */
async function imapEcho(c: WireClient, tag: string, bytes: Buffer): Promise<void> {
  c.send(Buffer.concat([Buffer.from(`${tag} XECHO {${String(bytes.length)}+}\r\n`, 'latin1'), bytes, Buffer.from('\r\n', 'latin1')]));
  const got = await c.waitFor(new RegExp(`^${tag} (OK|NO|BAD) .*\\r\\n`, 'm'));
  const want = `* XECHO {${String(bytes.length)}}\r\n${bytes.toString('latin1')}\r\n${tag} OK XECHO completed\r\n`;
  if (got !== want) throw new Error(`${tag}: XECHO answer not byte-exact (${String(got.length)} chars, want ${String(want.length)})`);
}

function imapSession(port: number, mode: ClientMode, seed: number, rounds?: number): Session {
  let stopped = false;
  const done = (async (): Promise<string | undefined> => {
    let c: WireClient | undefined;
    let i = 0;
    try {
      c = await imapConnect(port, mode, SESSION_LIFETIME_MS);
      await imapLogin(c, 'healthy');
      for (; rounds === undefined ? !stopped : i < rounds; i++) {
        await imapEcho(c, `x${String(i)}`, patternBytes(seed * 1000 + i, ROUND_BYTES));
        if (rounds === undefined) await sleep(200);
      }
      c.send('z LOGOUT\r\n');
      await c.waitFor(/^z OK .*\r\n/m);
      await Promise.race([c.closed, sleep(3_000)]);
      return c.isClosed() ? undefined : 'not closed after LOGOUT';
    } catch (e) {
      return `round ${String(i)}: ${e instanceof Error ? e.message : String(e)}`;
    } finally {
      c?.close();
    }
  })();
  return {
    stop: () => {
      stopped = true;
    },
    done,
  };
}

/** Sends `fault` on `c`: FIN (end), RST (reset of the TCP socket the test made), or nothing. */
function inject(c: WireClient, fault: Fault): void {
  if (fault === 'fin') c.socket().end();
  else if (fault === 'rst') c.raw.resetAndDestroy();
}

/** Waits (bounded) for tether to close a client that fell silent. */
const silenceClose = (c: WireClient): Promise<unknown> => Promise.race([c.closed, sleep(BACKEND_LOGIN_MS)]);

/** The IMAP cells for client TLS `mode` and backend TLS `btls`. */
function imapCells(mode: ClientMode, btls: FaultBackendTls): Cell[] {
  const cells: Cell[] = [];
  const add = (side: Side, fault: Fault, stage: Stage, expect: Expect, run: Cell['run'], waitMs = 0): void => {
    cells.push({ side, fault, stage, expect, slow: fault === 'silence', closeWithinMs: waitMs + CLOSE_SLACK_MS, run });
  };
  const faults: readonly Fault[] = ['fin', 'rst', 'silence'];
  // Client, before the login: a partial LOGIN line, then the fault.
  for (const f of faults) {
    add(
      'client',
      f,
      'greet',
      // An RST is logged as code `eof` today (debatable: ECONNRESET would say more); not asserted.
      f === 'silence' ? { cause: 'client-timeout', stage: 'greet', code: 'login-timeout' } : f === 'fin' ? { cause: 'client', stage: 'greet', code: 'eof' } : { cause: 'client', stage: 'greet' },
      async (port) => {
        const c = await imapConnect(port, mode);
        c.send('a1 LOGIN heal');
        inject(c, f);
        if (f === 'silence') await silenceClose(c);
        return { client: c };
      },
      f === 'silence' ? LOGIN_TIMEOUT_MS : 0,
    );
  }
  // Client, in its TLS handshake with tether: half a ClientHello, then the fault.
  if (mode !== 'none') {
    for (const f of faults) {
      add(
        'client',
        f,
        'tls',
        f === 'silence' ? { cause: 'client-timeout', stage: 'greet', code: ['tls-timeout', 'login-timeout'] } : { cause: 'client', stage: 'greet' },
        async (port) => {
          const c = await wireClient(port);
          if (mode === 'starttls') {
            await c.waitFor(/^\* OK .*\r\n/m);
            c.send('s1 STARTTLS\r\n');
            await c.waitFor(/^s1 OK .*\r\n/m);
          }
          c.send(HALF_HELLO);
          await sleep(MID_HELLO_MS);
          inject(c, f);
          if (f === 'silence') await silenceClose(c);
          return { client: c };
        },
        f === 'silence' ? LOGIN_TIMEOUT_MS : 0,
      );
    }
  }
  // Client, while tether replays its login at the backend (which answers after 1 s).
  for (const f of ['fin', 'rst'] as const) {
    add(
      'client',
      f,
      'replay',
      // A FIN after LOGIN is a half-close: the answer still comes, then both sides finish.
      f === 'fin' ? { cause: 'normal', stage: 'splice' } : { cause: 'client', stage: 'splice' },
      async (port) => {
        const c = await imapConnect(port, mode);
        c.send(`a1 LOGIN slow-login ${PW}\r\n`);
        await sleep(200);
        inject(c, f);
        const checks: string[] = [];
        if (f === 'fin') {
          // The backend's answer reaches a client that only half-closed.
          const answer = await c.waitFor(/^a1 .*\r\n/m, 5_000).catch((e: unknown) => String(e));
          if (!/^a1 OK/m.test(answer)) checks.push(`half-closed client got no login answer: ${answer}`);
        }
        return { client: c, checks };
      },
    );
  }
  // Client, spliced (after the login and one round trip).
  for (const f of faults) {
    add(
      'client',
      f,
      'splice',
      f === 'fin' ? { cause: 'normal', stage: 'splice' } : f === 'rst' ? { cause: 'client', stage: 'splice', code: 'ECONNRESET' } : { cause: 'client-timeout', stage: 'splice', code: 'idle' },
      async (port) => {
        const c = await imapConnect(port, mode);
        await imapLogin(c, 'healthy');
        await imapEcho(c, 'e1', patternBytes(7, 4096));
        inject(c, f);
        if (f === 'silence') await silenceClose(c);
        return { client: c };
      },
      f === 'silence' ? IDLE_TIMEOUT_MS : 0,
    );
  }
  // Backend faults: the client logs in as the fault's user and watches what it gets.
  const backendCell = (f: Fault, stage: Stage, user: string, expect: Expect, waitMs: number, after: 'login' | 'command'): void => {
    add(
      'backend',
      f,
      stage,
      expect,
      async (port) => {
        const c = await imapConnect(port, mode);
        const checks: string[] = [];
        if (after === 'login') {
          c.send(`a1 LOGIN ${user} ${PW}\r\n`);
          // tether tells the client, then closes (README: "* BYE Backend unavailable").
          const bye = await c.waitFor(/^\* BYE .*\r\n/m, waitMs + CLOSE_SLACK_MS).catch((e: unknown) => String(e));
          if (!/^\* BYE /m.test(bye)) checks.push(`no BYE for the client: ${bye}`);
        } else {
          await imapLogin(c, user);
          c.send('f1 NOOP\r\n');
        }
        await Promise.race([c.closed, sleep(waitMs + CLOSE_SLACK_MS)]);
        if (!c.isClosed()) checks.push('the client was not closed');
        return { client: c, checks };
      },
      waitMs,
    );
  };
  const greetCode = { fin: ['backend-silent', 'backend-greeting'], rst: ['backend-silent', 'ECONNRESET'], silence: ['backend-silent'] } as const;
  for (const f of faults) backendCell(f, 'greet', `u-${preLoginFault(f, 'greet')}`, { cause: 'backend', stage: 'connect', code: greetCode[f] }, f === 'silence' ? BACKEND_LOGIN_MS : 0, 'login');
  if (btls !== 'none') {
    for (const f of faults) {
      backendCell(f, 'tls', `u-${preLoginFault(f, 'tls')}`, f === 'silence' ? { cause: 'backend', stage: 'connect', code: 'tls-timeout' } : { cause: 'backend', stage: 'connect' }, f === 'silence' ? BACKEND_LOGIN_MS : 0, 'login');
    }
  }
  for (const f of faults) {
    backendCell(f, 'replay', `${f === 'silence' ? 'silent' : f}-in-login`, { cause: 'backend', stage: 'connect', code: 'login-silent' }, f === 'silence' ? BACKEND_LOGIN_MS : 0, 'login');
  }
  for (const f of faults) {
    backendCell(
      f,
      'splice',
      `${f === 'silence' ? 'silent' : f}-after-login`,
      f === 'fin' ? { cause: 'normal', stage: 'splice' } : f === 'rst' ? { cause: 'backend', stage: 'splice', code: 'ECONNRESET' } : { cause: 'client-timeout', stage: 'splice', code: 'idle' },
      f === 'silence' ? IDLE_TIMEOUT_MS : 0,
      'command',
    );
  }
  return cells;
}

function preLoginFault(f: Fault, stage: 'greet' | 'tls'): PreLoginFault {
  if (stage === 'greet') return f === 'fin' ? 'fin-in-greeting' : f === 'rst' ? 'rst-in-greeting' : 'silent-greeting';
  return f === 'fin' ? 'fin-mid-tls' : f === 'rst' ? 'rst-mid-tls' : 'silent-mid-tls';
}

function imapConfig(mode: ClientMode, btls: FaultBackendTls): Config {
  return {
    name: `imap --tls ${mode} --backend-tls ${btls}`,
    cells: imapCells(mode, btls),
    async setup() {
      const faults = PRE_LOGIN_FAULTS.filter((f) => btls !== 'none' || !f.endsWith('-mid-tls'));
      const ok = await startFaultBackend('ok', { tls: btls, cert: pki });
      const bad = await Promise.all(faults.map((f) => startFaultBackend(f, { tls: btls, cert: pki, fault: f })));
      const map = [`healthy ok`, ...LOGIN_FAULT_USERS.map((u) => `${u} ok`), ...faults.map((f) => `u-${f} ${f}`)].join('\n');
      const userMap = file(`users-${mode}-${btls}.map`, `${map}\n`);
      const args = [
        '--protocol',
        'imap',
        '--affinity',
        'login',
        '--user-map',
        userMap,
        ...[ok, ...bad].flatMap((b) => ['--backend', `${b.name}=127.0.0.1:${String(b.port)}`]),
        ...(mode === 'none' ? [] : ['--tls', mode, '--tls-cert', CERT, '--tls-key', KEY]),
        ...(btls === 'none' ? [] : ['--backend-tls', btls, '--backend-ca', CA]),
        '--login-timeout',
        `${String(LOGIN_TIMEOUT_MS)}ms`,
      ];
      return { args, close: () => Promise.all([ok, ...bad].map((b) => b.close())).then(() => undefined) };
    },
    session: (port, seed) => imapSession(port, mode, seed),
  };
}

// ---------------------------------------------------------------- TLS passed through a peek

/** Connects with TLS (SNI `sni`) through tether: tether peeks at the hello, the backend ends TLS. */
async function tlsThrough(port: number, sni: string, lifetimeMs?: number): Promise<WireClient> {
  const c = await wireClient(port, lifetimeMs === undefined ? {} : { lifetimeMs });
  await c.startTls({ ca: pki.ca, servername: sni, checkServerIdentity: () => undefined });
  return c;
}

async function echoRound(c: WireClient, bytes: Buffer): Promise<void> {
  const from = c.received().length;
  c.send(bytes);
  const want = bytes.toString('latin1');
  for (let i = 0; i < 200 && c.received().length < from + bytes.length && !c.isClosed(); i++) await sleep(10);
  if (c.received().slice(from, from + bytes.length) !== want) throw new Error(`echo not byte-exact (${String(c.received().length - from)} of ${String(bytes.length)} bytes)`);
}

function peekSession(port: number, seed: number, rounds?: number): Session {
  let stopped = false;
  const done = (async (): Promise<string | undefined> => {
    let c: WireClient | undefined;
    let i = 0;
    try {
      c = await tlsThrough(port, sniFor('ok'), SESSION_LIFETIME_MS);
      for (; rounds === undefined ? !stopped : i < rounds; i++) {
        await echoRound(c, patternBytes(seed * 1000 + i, ROUND_BYTES));
        if (rounds === undefined) await sleep(200);
      }
      c.socket().end();
      await Promise.race([c.closed, sleep(3_000)]);
      return c.isClosed() ? undefined : 'not closed after FIN';
    } catch (e) {
      return `round ${String(i)}: ${e instanceof Error ? e.message : String(e)}`;
    } finally {
      c?.close();
    }
  })();
  return {
    stop: () => {
      stopped = true;
    },
    done,
  };
}

function peekCells(): Cell[] {
  const cells: Cell[] = [];
  const add = (side: Side, fault: Fault, stage: Stage, expect: Expect, run: Cell['run'], waitMs = 0): void => {
    cells.push({ side, fault, stage, expect, slow: fault === 'silence', closeWithinMs: waitMs + CLOSE_SLACK_MS, run });
  };
  const faults: readonly Fault[] = ['fin', 'rst', 'silence'];
  // Client before its first byte: the peek sees nothing. Silence: the chain falls back after
  // --peek-timeout, the client is placed un-keyed and then idles out in the splice.
  for (const f of faults) {
    add(
      'client',
      f,
      'peek',
      // A FIN ends the peek (eof); tether then dials and passes the FIN on: `normal` at `splice`
      // today (debatable: {client, peek} would say more). An RST must be logged too.
      f === 'silence' ? { cause: 'client-timeout', stage: 'splice', code: 'idle' } : f === 'fin' ? { cause: 'normal', stage: 'splice' } : { cause: 'client', stage: 'peek' },
      async (port) => {
        const c = await wireClient(port);
        // Accepted and peeking first: a reset before tether reads the address is logged with no
        // address to find the line by (test/e2e/fd-storm.test.ts covers that case).
        await sleep(MID_HELLO_MS);
        inject(c, f);
        if (f === 'silence') await silenceClose(c);
        return { client: c };
      },
      f === 'silence' ? 1_000 + IDLE_TIMEOUT_MS : 0,
    );
  }
  // Client mid-ClientHello (the handshake with the backend, through tether's peek).
  for (const f of faults) {
    add(
      'client',
      f,
      'tls',
      // Half a hello, then silence: a slow peek, cut at --peek-timeout (never handed to a
      // backend). A FIN ends the prelude: it goes to the backend as it is, like any prelude the
      // client finished.
      f === 'silence'
        ? { cause: 'client-timeout', stage: 'peek', code: 'peek-timeout' }
        : f === 'fin'
          ? { cause: 'normal', stage: 'splice' }
          : { cause: 'client', stage: 'peek', code: 'ECONNRESET' },
      async (port) => {
        const c = await wireClient(port);
        c.send(HALF_HELLO);
        await sleep(MID_HELLO_MS);
        inject(c, f);
        if (f === 'silence') await silenceClose(c);
        return { client: c };
      },
      f === 'silence' ? 1_000 + IDLE_TIMEOUT_MS : 0,
    );
  }
  for (const f of faults) {
    add(
      'client',
      f,
      'splice',
      f === 'fin' ? { cause: 'normal', stage: 'splice' } : f === 'rst' ? { cause: 'client', stage: 'splice', code: 'ECONNRESET' } : { cause: 'client-timeout', stage: 'splice', code: 'idle' },
      async (port) => {
        const c = await tlsThrough(port, sniFor('ok'));
        await echoRound(c, patternBytes(9, 4096));
        inject(c, f);
        if (f === 'silence') await silenceClose(c);
        return { client: c };
      },
      f === 'silence' ? IDLE_TIMEOUT_MS : 0,
    );
  }
  const sniFault = (f: Fault, when: 'mid-tls' | 'after-hs'): SniFault => `${f === 'silence' ? 'silent' : f}-${when}`;
  for (const f of faults) {
    add(
      'backend',
      f,
      'tls',
      f === 'fin' ? { cause: 'normal', stage: 'splice' } : f === 'rst' ? { cause: 'backend', stage: 'splice', code: 'ECONNRESET' } : { cause: 'client-timeout', stage: 'splice', code: 'idle' },
      async (port) => {
        const c = await wireClient(port);
        const hs = c.startTls({ ca: pki.ca, servername: sniFor(sniFault(f, 'mid-tls')), checkServerIdentity: () => undefined });
        const checks: string[] = [];
        const r = await Promise.race([hs.then(() => 'handshake completed'), c.closed.then(() => undefined), sleep(IDLE_TIMEOUT_MS + CLOSE_SLACK_MS).then(() => 'not closed')]).catch(() => undefined);
        if (r !== undefined) checks.push(r);
        return { client: c, checks };
      },
      f === 'silence' ? IDLE_TIMEOUT_MS : 0,
    );
  }
  for (const f of faults) {
    add(
      'backend',
      f,
      'splice',
      f === 'fin' ? { cause: 'normal', stage: 'splice' } : f === 'rst' ? { cause: 'backend', stage: 'splice', code: 'ECONNRESET' } : { cause: 'client-timeout', stage: 'splice', code: 'idle' },
      async (port) => {
        const c = await tlsThrough(port, sniFor(sniFault(f, 'after-hs')));
        c.send('fault, please');
        const checks: string[] = [];
        await Promise.race([c.closed, sleep(IDLE_TIMEOUT_MS + CLOSE_SLACK_MS)]);
        if (!c.isClosed()) checks.push('the client was not closed');
        return { client: c, checks };
      },
      f === 'silence' ? IDLE_TIMEOUT_MS : 0,
    );
  }
  return cells;
}

const peekConfig: Config = {
  name: 'auto --affinity sni (TLS passed through)',
  cells: peekCells(),
  async setup() {
    const b = await startTlsEchoBackend(pki);
    return { args: ['--protocol', 'auto', '--affinity', 'sni', '--peek-timeout', '1s', '--backend', `echo=127.0.0.1:${String(b.port)}`], close: () => b.close() };
  },
  session: (port, seed) => peekSession(port, seed),
};

// ---------------------------------------------------------------- running a configuration

const INFLIGHT = 3;
/** How long one tether may take to listen (the machine is shared). */
const START_BOUND_MS = 60_000;
let starting: Promise<unknown> = Promise.resolve();
/** Runs `start` after every earlier start has finished. */
function startSerial<T>(start: () => Promise<T>): Promise<T> {
  const r = starting.then(start);
  starting = r.catch(() => undefined);
  return r;
}
/** Configurations run side by side. */
const CONCURRENCY = 10;

const isAlive = (rt: RunningTether): boolean => rt.child.exitCode === null && rt.child.signalCode === null;

/** Every tether this file started, killed (by PID) on teardown whatever happened. */
const started: RunningTether[] = [];
t.teardown(() => {
  for (const rt of started) if (isAlive(rt)) rt.child.kill('SIGKILL');
});

/** FAULT_MATRIX_TRACE=FILE: one line per cell as it is judged (for the report on a run). */
const TRACE = process.env['FAULT_MATRIX_TRACE'];
const trace = (line: string): void => {
  if (TRACE !== undefined) appendFileSync(TRACE, `${line}\n`);
};

/** One tether of a configuration and the sessions running through it. */
interface Instance {
  readonly rt: RunningTether;
  readonly port: number;
  readonly sessions: Session[];
  /** Failures of sessions seen so far (reported once). */
  readonly reported: Set<Session>;
}


/**
 * The conn.close line of the client at 127.0.0.1:`localPort` among the lines from index `from`
 * on (logged since the cell began: an earlier connection of this tether may have had the same
 * ephemeral port), or why there is none.
 */
async function closeOf(rt: RunningTether, localPort: number, ms: number, from: number): Promise<LogLine | string> {
  const client = `127.0.0.1:${String(localPort)}`;
  const mine = (l: LogLine): boolean => l.event === 'conn.close' && l['client'] === client && rt.lines.indexOf(l) >= from;
  const line = rt.waitFor(mine, ms).catch(() => `no conn.close within ${String(ms)} ms`);
  return Promise.race([line, rt.exited.then(async () => {
    await sleep(50);
    return rt.lines.find(mine) ?? 'tether exited before logging conn.close';
  })]);
}

/** The crash as stderr tells it: the first lines of the error. */
const crashOf = (rt: RunningTether): string =>
  `exit ${String(rt.child.exitCode)} signal ${String(rt.child.signalCode)}: ${rt
    .stderr()
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(0, 6)
    .join(' | ')}`;

interface ConfigResult {
  readonly name: string;
  readonly cells: CellResult[];
  /** Per tether instance: how its in-flight sessions finished. */
  readonly finishes: { readonly instance: number; readonly failures: readonly string[] }[];
  readonly error?: string;
}

async function runConfig(cfg: Config, seedBase: number): Promise<ConfigResult> {
  const { args, close } = await cfg.setup();
  const full = ['--listen', '127.0.0.1:0', ...args, '--connect-timeout', `${String(CONNECT_TIMEOUT_MS)}ms`, '--idle-timeout', `${String(IDLE_TIMEOUT_MS)}ms`, '--grace', '500ms'];
  const finishes: ConfigResult['finishes'][number][] = [];
  let instances = 0;
  let seed = seedBase;
  const start = async (): Promise<Instance> => {
    // One start at a time, with a bound of its own: a loaded machine may take more than
    // run-tether's 10 s to start ten tethers at once, and a start that fails is killed here.
    const rt = await startSerial(async () => {
      const r = await runTether(full, { readyCount: 0 });
      started.push(r);
      const deadline = Date.now() + START_BOUND_MS;
      while (r.ports.length === 0 && isAlive(r) && Date.now() < deadline) await sleep(20);
      if (r.ports.length === 0) {
        r.child.kill('SIGKILL');
        throw new Error(`tether did not listen within ${String(START_BOUND_MS)} ms: ${r.stderr()}`);
      }
      return r;
    });
    const port = rt.ports[0] ?? 0;
    instances++;
    const sessions = Array.from({ length: INFLIGHT }, () => cfg.session(port, seed++));
    return { rt, port, sessions, reported: new Set() };
  };
  const finish = async (inst: Instance): Promise<void> => {
    for (const s of inst.sessions) s.stop();
    const done = await Promise.all(inst.sessions.map((s) => s.done));
    const failures = done.filter((d): d is string => d !== undefined);
    // SIGTERM stops after --grace; a connection tether lost track of keeps it from exiting.
    inst.rt.child.kill('SIGTERM');
    const code = await Promise.race([inst.rt.exited, sleep(STOP_BOUND_MS).then(() => 'hung' as const)]);
    if (code === 'hung') {
      failures.push(`tether did not exit within ${String(STOP_BOUND_MS)} ms of SIGTERM (--grace 500ms)`);
      inst.rt.child.kill('SIGKILL');
    }
    finishes.push({ instance: instances, failures });
  };
  /** Failures of in-flight sessions that ended early, not yet reported. */
  const inflightNow = async (inst: Instance): Promise<string[]> => {
    const out: string[] = [];
    for (const s of inst.sessions) {
      if (inst.reported.has(s)) continue;
      const r = await Promise.race([s.done, sleep(0).then(() => 'running' as const)]);
      if (r !== 'running' && r !== undefined) {
        inst.reported.add(s);
        out.push(r);
      } else if (r !== 'running') {
        inst.reported.add(s);
        out.push('ended early without an error');
      }
    }
    return out;
  };
  const fresh = async (port: number): Promise<string | undefined> => {
    const s = cfg.session(port, 99_999);
    const r = await Promise.race([s.done, sleep(BACKEND_LOGIN_MS)]);
    return r === undefined ? undefined : `fresh client: ${r}`;
  };
  const runCell = async (inst: Instance, cell: Cell): Promise<Omit<CellResult, 'alive' | 'crash' | 'fresh' | 'inflight'>> => {
    const name = cellName(cell);
    try {
      const from = inst.rt.lines.length;
      const { client, checks = [] } = await cell.run(inst.port);
      const line = await closeOf(inst.rt, client.localPort, cell.closeWithinMs, from);
      client.close();
      return typeof line === 'string' ? { name, expect: cell.expect, noClose: line, checks } : { name, expect: cell.expect, termination: line['termination'], checks };
    } catch (e) {
      return { name, expect: cell.expect, noClose: `the cell could not run: ${e instanceof Error ? e.message : String(e)}`, checks: [] };
    }
  };
  const results: CellResult[] = [];
  let inst = await start();
  /** Judges the aftermath of `batch` (cells run together): alive, a fresh client, in-flight. */
  const judge = async (batch: Omit<CellResult, 'alive' | 'crash' | 'fresh' | 'inflight'>[]): Promise<void> => {
    await sleep(100);
    const alive = isAlive(inst.rt);
    const crash = alive ? undefined : crashOf(inst.rt);
    const freshFailure = alive ? await fresh(inst.port) : 'tether is not running';
    const inflight = await inflightNow(inst);
    for (const r of batch) {
      trace(`${cfg.name} | ${r.name} | ${JSON.stringify(r.termination ?? r.noClose)} | alive ${String(alive)} ${crash ?? ''} | ${r.checks.join('; ')} | ${freshFailure ?? ''} | ${inflight.join('; ')}`);
      results.push({ ...r, alive, ...(crash === undefined ? {} : { crash }), ...(freshFailure === undefined ? {} : { fresh: freshFailure }), inflight });
    }
    if (!alive) {
      await finish(inst);
      inst = await start();
      await sleep(300);
    }
  };
  await sleep(300); // the in-flight sessions are transferring before the first fault
  // Slow cells together (each waits for a timeout), then the others one at a time, so a crash
  // is charged to the cell that caused it.
  await judge(await Promise.all(cfg.cells.filter((c) => c.slow).map((c) => runCell(inst, c))));
  for (const c of cfg.cells.filter((x) => !x.slow)) await judge([await runCell(inst, c)]);
  await finish(inst);
  await close();
  return { name: cfg.name, cells: results, finishes };
}

// ---------------------------------------------------------------- the matrix

const CLIENT_MODES: readonly ClientMode[] = ['none', 'starttls', 'implicit'];
const BACKEND_MODES: readonly FaultBackendTls[] = ['none', 'tls', 'starttls'];
const ONLY = process.env['FAULT_MATRIX_ONLY'];
const CONFIGS: Config[] = [...CLIENT_MODES.flatMap((m) => BACKEND_MODES.map((b) => imapConfig(m, b))), peekConfig].filter((c) => ONLY === undefined || c.name.includes(ONLY));

const matches = (want: string | readonly string[] | undefined, got: unknown): boolean =>
  want === undefined || (typeof want === 'string' ? got === want : want.some((w) => w === got));

// 3.5 min on a quiet 2-core machine (the silence cells wait for real timeouts, the others run one
// at a time so a crash is charged to its cell); the package's tap timeout (600 s) leaves room.
t.test('fault matrix', { timeout: 540_000 }, async (t) => {
  // At most CONCURRENCY configurations at once (two cores, shared).
  const results: ConfigResult[] = new Array<ConfigResult>(CONFIGS.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < CONFIGS.length; i = next++) {
      const cfg = CONFIGS[i];
      if (!cfg) continue;
      results[i] = await runConfig(cfg, (i + 1) * 100).catch((e: unknown) => ({ name: cfg.name, cells: [], finishes: [], error: e instanceof Error ? e.message : String(e) }));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  for (const r of results) {
    t.test(r.name, (t) => {
      t.equal(r.error, undefined, 'the configuration ran');
      for (const cell of r.cells) {
        t.test(cell.name, (t) => {
          const term = (cell.termination ?? {}) as { cause?: unknown; stage?: unknown; code?: unknown };
          t.equal(cell.noClose, undefined, 'one conn.close line for the connection');
          t.ok(
            term.cause === cell.expect.cause && term.stage === cell.expect.stage && matches(cell.expect.code, term.code),
            `termination ${JSON.stringify(cell.termination)} is ${JSON.stringify(cell.expect)}`,
          );
          t.same(cell.checks, [], 'what the client saw');
          t.ok(cell.alive, `tether alive${cell.crash === undefined ? '' : ` (${cell.crash})`}`);
          t.equal(cell.fresh, undefined, 'a fresh client is served (login, XECHO/echo byte-exact)');
          t.same(cell.inflight, [], 'in-flight sessions undisturbed');
          t.end();
        });
      }
      for (const f of r.finishes) t.same(f.failures, [], `tether #${String(f.instance)}: the in-flight sessions finish byte-exact`);
      t.end();
    });
  }
});
