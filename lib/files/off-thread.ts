// I/O (a worker thread). Parses a big file off the event loop: the parse runs in a short-lived
// worker with its own heap limit and a time limit, so a 50 MB user map or a large config costs
// the proxy no stall, and a parse that blows up costs only the worker.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** `require` for a parse run inline (the worker passes its own). */
const localRequire = createRequire(import.meta.url);

/**
 * Files smaller than this are parsed inline: a parse of 256 KiB takes a few milliseconds, less
 * than starting a worker (≈ 20 ms of a core).
 */
export const OFF_THREAD_BYTES = 256 * 1024;

/** How long an off-thread parse may run (a 256 MiB user map parses in about 10 s on one core). */
export const PARSE_TIMEOUT_MS = 60_000;

/**
 * The worker's heap limit. A parse's working set is a few times its input (strings, arrays);
 * 2 GiB holds the largest input allowed (256 MiB) and is far from the process's own memory.
 */
export const PARSE_HEAP_MB = 2048;

/**
 * A parse that can run on either side: a function with no imports and no closure (it is sent to
 * the worker as its source text). It gets the input bytes and `require` (for a package whose
 * resolved path the caller passes in `arg`), and returns the value and the ArrayBuffers to
 * transfer back rather than copy.
 */
export type Parse<A, R> = (bytes: Uint8Array, arg: A, require: NodeJS.Require) => { value: R; transfer: ArrayBuffer[] };

const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const parse = (0, eval)('(' + workerData.source + ')');
let reply;
try {
  const bytes = new Uint8Array(workerData.buffer, workerData.offset, workerData.length);
  const r = parse(bytes, workerData.arg, require);
  reply = { ok: true, value: r.value, transfer: r.transfer };
} catch (e) {
  let message = 'parse failed';
  try { message = e instanceof Error ? String(e.message).slice(0, 300) : String(e).slice(0, 300); } catch {}
  let name = 'Error';
  try { name = e instanceof Error ? String(e.name) : 'Error'; } catch {}
  reply = { ok: false, message, name };
}
parentPort.postMessage(reply, reply.ok ? reply.transfer : []);
`;

/** A parse that failed in the worker: its message and the thrown error's name. */
export class OffThreadError extends Error {
  constructor(
    message: string,
    readonly errorName: string,
  ) {
    super(message);
    this.name = 'OffThreadError';
  }
}

type Reply<R> = { ok: true; value: R } | { ok: false; message: string; name: string };

/**
 * Runs `parse(bytes, arg)`: inline when `bytes` is below `inlineBelow` (OFF_THREAD_BYTES), else in a worker (the bytes' memory is
 * transferred, so `bytes` is unusable afterwards). Rejects with the parse's own error inline,
 * with OffThreadError from the worker, or with an Error for a timeout or an out-of-memory worker.
 */
export async function parseOffThread<A, R>(
  parse: Parse<A, R>,
  bytes: Buffer,
  arg: A,
  opts: { timeoutMs?: number; heapMb?: number; inlineBelow?: number } = {},
): Promise<R> {
  if (bytes.length < (opts.inlineBelow ?? OFF_THREAD_BYTES)) return parse(bytes, arg, localRequire).value;
  const timeoutMs = opts.timeoutMs ?? PARSE_TIMEOUT_MS;
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { source: parse.toString(), buffer: bytes.buffer, offset: bytes.byteOffset, length: bytes.length, arg },
    transferList: [bytes.buffer as ArrayBuffer],
    resourceLimits: { maxOldGenerationSizeMb: opts.heapMb ?? PARSE_HEAP_MB },
    stdout: true,
    stderr: true,
  });
  // Nothing the worker prints reaches tether's log stream.
  worker.stdout.resume();
  worker.stderr.resume();
  return new Promise<R>((resolve, reject) => {
    let done = false;
    const finish = (f: () => void): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      void worker.terminate().catch(() => undefined);
      f();
    };
    const timer = setTimeout(() => {
      finish(() => {
        reject(new Error(`parse did not finish within ${String(timeoutMs / 1000)} s`));
      });
    }, timeoutMs);
    worker.on('message', (m: Reply<R>) => {
      finish(() => {
        if (m.ok) resolve(m.value);
        else reject(new OffThreadError(m.message, m.name));
      });
    });
    worker.on('error', (e: Error & { code?: string }) => {
      finish(() => {
        reject(new Error(e.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `parse needed more than ${String(opts.heapMb ?? PARSE_HEAP_MB)} MiB` : `parse failed: ${e.message}`));
      });
    });
    worker.on('exit', () => {
      finish(() => {
        reject(new Error('parse worker exited without an answer'));
      });
    });
  });
}
