// Stage 3, I/O (runs one user module). `--key-module FILE`: site rules no flag covers (F5's
// "universal" persistence). The module exports `key(input)` returning a string or undefined
// (or a promise of one). It runs in a worker thread, one per loaded module: a module that loops,
// hangs or rejects must not stop the proxy (issue "Never die, never hang").
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { TetherError } from '../errors.js';
import { checkFile, describeFileError } from '../files/read.js';
import type { Facts } from '../facts.js';

/** What a key module sees: the client address and what peeking found (no payload beyond it). */
export interface KeyModuleInput {
  readonly source: string;
  readonly sourcePort: number;
  readonly localPort: number;
  readonly protocol?: string;
  readonly sni?: string;
  readonly alpn?: readonly string[];
  readonly http?: {
    readonly method: string;
    readonly target: string;
    readonly host?: string;
    readonly headers: Readonly<Record<string, string>>;
    readonly cookies: Readonly<Record<string, string>>;
    readonly query: Readonly<Record<string, string>>;
  };
  readonly xmppTo?: string;
}

/** One call's answer: the key, or why there is none worth a warning (absent: the module said "no key"). */
export type KeyAnswer = { readonly key: string } | { readonly problem: string } | Record<string, never>;

/**
 * How long loading (importing) the module may take. A module that is not ready in 5 s has a
 * top-level await that waits on something (a network, a lock); refusing it at start or reload
 * beats a start or reload that never finishes.
 */
export const KEY_MODULE_LOAD_TIMEOUT_MS = 5_000;

/**
 * How long one key() call may take before the connection goes on without the key (the chain
 * falls back). 100 ms: a site rule is a lookup in the request's fields — microseconds; a client
 * must not wait on a bug, and a human notices 100 ms only barely.
 */
export const KEY_CALL_TIMEOUT_MS = 100;

/**
 * How long after a call's time limit the worker still has to answer before it is deemed stuck
 * in synchronous code (`for(;;){}`) and terminated. An async key() that never settles is timed
 * out inside the worker at KEY_CALL_TIMEOUT_MS, so a live worker always answers by then; the
 * margin covers a busy machine's scheduling.
 */
export const KEY_WORKER_STUCK_MS = 400;

/** Wait before replacing a dead or terminated worker, so a module that always hangs costs at most a few restarts a second. */
export const KEY_WORKER_RESTART_DELAY_MS = 250;

/** Wait between attempts to reload a module that stopped loading (edited into a broken file). */
export const KEY_WORKER_RETRY_MS = 1_000;

/** Key values longer than this are no key (they are placed by hash anyway; a bound on what a bug can store). */
const MAX_KEY_CHARS = 1024;

/** Error messages from the module are cut to this many characters for the warning. */
const MAX_PROBLEM_CHARS = 200;

/**
 * The worker's code (CommonJS, run with `eval`, so it needs no separate file next to the
 * compiled one). It imports the module, then answers `{ id, input }` with `{ id, key }` or
 * `{ id, error }`. Every description of a thrown value is made here, inside try/catch, and sent
 * as a plain string: a thrown object's getters (`message`) may throw and must never run on the
 * main side.
 */
const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { callTimeoutMs, maxKeyChars, maxProblemChars } = workerData;
const TIMED_OUT = Symbol('timed out');
function describe(e) {
  try {
    if (e instanceof Error) {
      const m = e.message;
      return typeof m === 'string' && m !== '' ? m.slice(0, maxProblemChars) : 'Error without a message';
    }
    return 'non-Error thrown';
  } catch {
    return 'Error whose message cannot be read';
  }
}
async function answer(fn, id, input) {
  let reply;
  let timer;
  try {
    let v = fn(input);
    if (v !== null && (typeof v === 'object' || typeof v === 'function') && typeof v.then === 'function') {
      const limit = new Promise((resolve) => { timer = setTimeout(() => resolve(TIMED_OUT), callTimeoutMs); });
      v = await Promise.race([Promise.resolve(v), limit]);
    }
    if (v === TIMED_OUT) reply = { id, error: 'no answer within ' + callTimeoutMs + ' ms' };
    else reply = { id, key: typeof v === 'string' && v !== '' && v.length <= maxKeyChars ? v : undefined };
  } catch (e) {
    reply = { id, error: describe(e) };
  } finally {
    clearTimeout(timer);
  }
  parentPort.postMessage(reply);
}
import(workerData.url).then(
  (mod) => {
    let fn;
    try { fn = mod.key; } catch { fn = undefined; }
    if (typeof fn !== 'function') {
      parentPort.postMessage({ type: 'no-key' });
      return;
    }
    parentPort.on('message', (m) => { void answer(fn, m.id, m.input); });
    parentPort.postMessage({ type: 'ready' });
  },
  (e) => { parentPort.postMessage({ type: 'load-error', message: describe(e) }); },
);
`;

/** A message from the worker (see WORKER_SOURCE). */
type WorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'no-key' }
  | { readonly type: 'load-error'; readonly message: string }
  | { readonly id: number; readonly key?: string; readonly error?: string };

interface Pending {
  readonly resolve: (a: KeyAnswer) => void;
  timer: NodeJS.Timeout;
  /** Whether the caller was already answered "timed out" (the entry waits for the stuck check). */
  late: boolean;
}

/**
 * Drops `worker`'s listeners but keeps one for 'error': an EventEmitter 'error' without a
 * listener would throw in the proxy. Event by event: Worker's own 'newListener' hooks must stay.
 */
function quiet(worker: Worker): void {
  for (const event of ['message', 'error', 'exit'] as const) worker.removeAllListeners(event);
  worker.on('error', () => undefined);
}

/**
 * The largest key module file: a site rule is tens of lines; 4 MiB admits a bundled module and
 * refuses a wrong file (a log, an archive) before the worker parses it.
 */
const MAX_KEY_MODULE_BYTES = 4 * 1024 * 1024;

/**
 * Starts a worker for `file` (a regular file within MAX_KEY_MODULE_BYTES: a FIFO would block the
 * worker's import until the load timeout) and resolves once it has imported the module; rejects
 * with TETHER_ERR_CONFIG.
 */
async function startWorker(file: string, url: string, loadTimeoutMs: number): Promise<Worker> {
  try {
    await checkFile(file, { maxBytes: MAX_KEY_MODULE_BYTES, timeoutMs: loadTimeoutMs });
  } catch (e) {
    throw new TetherError('TETHER_ERR_CONFIG', `cannot load key module ${file}: ${describeFileError(e)}`, { cause: e });
  }
  return spawnWorker(file, url, loadTimeoutMs);
}

/** Starts a worker that imports `url`; resolves once it has, rejects with TETHER_ERR_CONFIG. */
function spawnWorker(file: string, url: string, loadTimeoutMs: number): Promise<Worker> {
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { url, callTimeoutMs: KEY_CALL_TIMEOUT_MS, maxKeyChars: MAX_KEY_CHARS, maxProblemChars: MAX_PROBLEM_CHARS },
    stdout: false,
    stderr: false,
  });
  // The proxy's sockets keep the process alive; a worker must never keep a stopping one alive.
  worker.unref();
  return new Promise((resolve, reject) => {
    const fail = (message: string): void => {
      clearTimeout(timer);
      quiet(worker);
      // After an 'error' or 'exit' the worker is gone already; terminate() is then a no-op.
      void worker.terminate();
      reject(new TetherError('TETHER_ERR_CONFIG', message));
    };
    const timer = setTimeout(() => {
      fail(`key module ${file} did not finish loading within ${loadTimeoutMs} ms`);
    }, loadTimeoutMs);
    worker.once('message', (m: WorkerMessage) => {
      if ('id' in m) return;
      if (m.type === 'ready') {
        clearTimeout(timer);
        quiet(worker);
        resolve(worker);
      } else if (m.type === 'no-key') fail(`key module ${file} does not export a function named key`);
      else fail(`cannot load key module ${file}: ${m.message}`);
    });
    // An uncaught throw in the module's own callbacks while loading; its message is not read here.
    worker.once('error', () => {
      fail(`cannot load key module ${file}: it threw while loading`);
    });
    // e.g. a top-level await on a promise that nothing will settle: the worker's loop empties.
    worker.once('exit', (code) => {
      fail(`cannot load key module ${file}: it exited while loading (status ${code})`);
    });
  });
}

/**
 * A loaded key module, running in its own worker thread. `key()` never rejects and answers
 * within about KEY_CALL_TIMEOUT_MS; a worker that dies or is stuck is replaced.
 */
export class KeyModule {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  private restartTimer: NodeJS.Timeout | undefined;

  private constructor(
    readonly file: string,
    private readonly url: string,
    private readonly loadTimeoutMs: number,
    worker: Worker,
  ) {
    this.adopt(worker);
  }

  /** Imports `file` in a new worker. Rejects with TETHER_ERR_CONFIG when unusable or not loaded within `loadTimeoutMs`. */
  static async load(file: string, loadTimeoutMs = KEY_MODULE_LOAD_TIMEOUT_MS): Promise<KeyModule> {
    const url = pathToFileURL(path.resolve(file)).href;
    return new KeyModule(file, url, loadTimeoutMs, await startWorker(file, url, loadTimeoutMs));
  }

  /** Asks the module for `input`'s key: one message round trip. Never rejects. */
  key(input: KeyModuleInput): Promise<KeyAnswer> {
    const worker = this.worker;
    if (!worker) return Promise.resolve({ problem: this.closed ? 'closed' : 'restarting' });
    const id = this.nextId++;
    return new Promise((resolve) => {
      const p: Pending = { resolve, late: false, timer: setTimeout(() => {
          this.timedOut(id);
        }, KEY_CALL_TIMEOUT_MS) };
      this.pending.set(id, p);
      try {
        worker.postMessage({ id, input });
      } catch {
        // Only a value that cannot be cloned; the input is plain strings and numbers.
        clearTimeout(p.timer);
        this.pending.delete(id);
        resolve({ problem: 'input not transferable' });
      }
    });
  }

  /** Stops the worker; later calls answer "no key". */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.restartTimer);
    const w = this.worker;
    this.drop('closed');
    if (w) await w.terminate();
  }

  private adopt(worker: Worker): void {
    this.worker = worker;
    worker.on('message', (m: WorkerMessage) => {
      if (!('id' in m)) return;
      const p = this.pending.get(m.id);
      if (!p) return;
      clearTimeout(p.timer);
      this.pending.delete(m.id);
      if (!p.late) p.resolve(m.error !== undefined ? { problem: m.error } : m.key !== undefined ? { key: m.key } : {});
    });
    // An uncaught throw or unhandled rejection in the module kills only its worker.
    worker.on('error', () => {
      this.replace(worker, 'worker died');
    });
    worker.on('exit', () => {
      this.replace(worker, 'worker exited');
    });
  }

  /** A call's time limit: the caller goes on without a key; the worker gets KEY_WORKER_STUCK_MS more to show it is alive. */
  private timedOut(id: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    p.late = true;
    p.resolve({ problem: `no answer within ${KEY_CALL_TIMEOUT_MS} ms` });
    const worker = this.worker;
    p.timer = setTimeout(() => {
      if (this.pending.has(id) && worker && worker === this.worker) this.replace(worker, 'stuck');
    }, KEY_WORKER_STUCK_MS);
  }

  /** Ends every pending call with `problem` (callers already answered are left alone). */
  private drop(problem: string): void {
    this.worker = undefined;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      if (!p.late) p.resolve({ problem });
    }
    this.pending.clear();
  }

  /** Terminates `worker` (when still current) and starts a fresh one after KEY_WORKER_RESTART_DELAY_MS. */
  private replace(worker: Worker, why: string): void {
    if (worker !== this.worker) return;
    quiet(worker);
    this.drop(why);
    void worker.terminate();
    if (this.closed) return;
    this.restartTimer = setTimeout(() => {
      this.retry();
    }, KEY_WORKER_RESTART_DELAY_MS).unref();
  }

  /** Loads the module in a new worker; while the file is unusable, answers "no key" and tries again every KEY_WORKER_RETRY_MS. */
  private retry(): void {
    startWorker(this.file, this.url, this.loadTimeoutMs).then(
      (w) => {
        if (this.closed) void w.terminate();
        else this.adopt(w);
      },
      () => {
        if (!this.closed) this.restartTimer = setTimeout(() => {
            this.retry();
          }, KEY_WORKER_RETRY_MS).unref();
      },
    );
  }
}

/** The key module's view of the facts (names and values, never the raw prelude). */
export function moduleInput(facts: Facts): KeyModuleInput {
  const p = facts.peek;
  const base = { source: facts.source, sourcePort: facts.sourcePort, localPort: facts.localPort };
  if (!p) return base;
  const tls = p.tls;
  const http = p.http;
  return {
    ...base,
    protocol: p.protocol,
    ...(tls?.sni === undefined ? {} : { sni: tls.sni }),
    ...(tls ? { alpn: tls.alpn } : {}),
    ...(http
      ? {
          http: {
            method: http.method,
            target: http.target,
            ...(http.host === undefined ? {} : { host: http.host }),
            headers: Object.fromEntries(http.headers),
            cookies: Object.fromEntries(http.cookies),
            query: Object.fromEntries(http.query),
          },
        }
      : {}),
    ...(p.xmpp?.to === undefined ? {} : { xmppTo: p.xmpp.to }),
  };
}

/**
 * The facts with the module's key added (stage 3, after peek or greet). A failing module leaves
 * the facts as they are: `onProblem` is told (the caller logs it, throttled) and the chain goes on.
 */
export async function withModuleKey(facts: Facts, module: KeyModule, onProblem: (problem: string) => void): Promise<Facts> {
  const k = await module.key(moduleInput(facts));
  if ('problem' in k) {
    onProblem(k.problem);
    return facts;
  }
  return 'key' in k ? { ...facts, moduleKey: k.key } : facts;
}
