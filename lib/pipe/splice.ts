// Stage 6, I/O. Splice client and backend: replay the prelude once, then copy both ways until
// both directions are finished. Streams' pipe() gives backpressure (a slow reader pauses the
// other side's reads; tether buffers at most a highWaterMark per direction) and hands each
// Buffer through untouched (no per-chunk copy). Half-close passes through: a FIN from one side
// becomes end() on the other, whose reverse direction keeps flowing (sockets are allowHalfOpen).
import { Buffer } from 'node:buffer';
import type net from 'node:net';
import { errorCode, type Termination, type TerminationCause } from '../errors.js';

export interface SpliceResult {
  readonly termination: Termination;
  /** Bytes read from the client (prelude included). */
  readonly bytesIn: number;
  /** Bytes written to the client. */
  readonly bytesOut: number;
}

/** Ends a socket abortively: an error on one side is passed on as a reset, not a clean FIN. */
function abort(socket: net.Socket): void {
  if (socket.destroyed) return;
  socket.resetAndDestroy();
}

/** How long a side may stay open after its peer has fully closed (see lingerAfterPeerClose). */
export const CLOSE_LINGER_MS = 5_000;

/**
 * Once `peer` has closed for good, nothing `side` sends can be delivered. pipe() has already
 * ended `side`'s write direction; keep reading (and dropping) what it still sends, so closing
 * does not turn into a reset that could destroy the reply it has not read yet, and close it
 * when it sends its FIN or after CLOSE_LINGER_MS — a client ignoring the FIN cannot pin the
 * connection until the idle timeout.
 */
function lingerAfterPeerClose(side: net.Socket, peer: net.Socket): void {
  peer.once('close', () => {
    if (side.destroyed) return;
    side.unpipe();
    side.on('data', () => undefined);
    side.resume();
    if (!side.writableEnded) side.end();
    setTimeout(() => side.destroy(), CLOSE_LINGER_MS).unref();
  });
}

/** Handle to a running splice, so a graceful stop can cut it. */
export interface Splice {
  readonly done: Promise<SpliceResult>;
  /** Cuts both sides now; the termination says `tether`/`shutdown`. */
  readonly cut: () => void;
}

/**
 * Rewrites the backend's first bytes (an HTTP response head): given everything received so
 * far, either "not yet" or the bytes to send instead. Must answer done by its own byte cap.
 * "Not yet" may pass on the first `pass` bytes now, unchanged (an interim 1xx head the client
 * may be waiting for); it is then asked again with the bytes after them.
 */
export type HeadRewriter = (
  received: Buffer,
) => { readonly done: false; readonly pass?: number } | { readonly done: true; readonly out: Buffer };

export interface SpliceOptions {
  /** Silence in both directions after which both sides are closed. */
  readonly idleMs: number;
  /** Sees the backend's bytes as they pass (no delay, no copy) until it returns true. */
  readonly watchBackend?: (received: Buffer) => boolean;
  /** Holds the backend's first bytes until this says done, and sends its output instead. */
  readonly rewriteHead?: HeadRewriter;
}

/** Feeds `socket`'s bytes to `watch` (accumulated) until it returns true; pipe() keeps flowing. */
function tap(socket: net.Socket, watch: (received: Buffer) => boolean): void {
  const chunks: Buffer[] = [];
  let size = 0;
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk);
    size += chunk.length;
    if (watch(chunks.length === 1 ? chunk : Buffer.concat(chunks, size))) socket.off('data', onData);
  };
  socket.on('data', onData);
  socket.once('close', () => socket.off('data', onData));
}

/**
 * Collects the backend's first bytes until `rewrite` is done, writes its output to the client,
 * then pipes the rest. An end before that passes on what was received, unchanged.
 */
function pipeWithHead(backend: net.Socket, client: net.Socket, rewrite: HeadRewriter): void {
  const chunks: Buffer[] = [];
  let size = 0;
  const stop = (): void => {
    backend.off('data', onData);
    backend.off('end', onEnd);
  };
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk);
    size += chunk.length;
    let r = rewrite(Buffer.concat(chunks, size));
    // Each pass shortens what is held (pass > 0), so this ends.
    while (!r.done && r.pass !== undefined && r.pass > 0) {
      const held = Buffer.concat(chunks, size);
      client.write(held.subarray(0, r.pass));
      chunks.splice(0, chunks.length, held.subarray(r.pass));
      size = held.length - r.pass;
      r = rewrite(held.subarray(r.pass));
    }
    if (!r.done) return;
    stop();
    backend.pause();
    client.write(r.out);
    backend.pipe(client);
  };
  const onEnd = (): void => {
    stop();
    if (size > 0) client.write(Buffer.concat(chunks, size));
    client.end();
  };
  backend.on('data', onData);
  backend.once('end', onEnd);
}

/**
 * Starts splicing `client` ↔ `backend` after writing `prelude` to the backend. Both sockets
 * must be connected and not yet flowing. `idleMs` of silence in both directions closes both
 * (the client socket's timer sees every byte either way, since every byte is read from or
 * written to it). Never throws; the result's termination names who ended it.
 */
export function splice(client: net.Socket, backend: net.Socket, prelude: readonly Buffer[], opts: SpliceOptions): Splice {
  const idleMs = opts.idleMs;
  let cause: TerminationCause | undefined;
  let code: string | undefined;
  let stage: Termination['stage'] = 'pipe';
  const first = (c: TerminationCause, k: string | undefined): void => {
    if (cause === undefined) {
      cause = c;
      code = k;
    }
  };
  let cut = (): void => undefined;
  const done = new Promise<SpliceResult>((resolve) => {
    let open = 2;
    const onClose = (): void => {
      open--;
      if (open > 0) return;
      client.setTimeout(0);
      const termination: Termination =
        code === undefined ? { cause: cause ?? 'normal', stage } : { cause: cause ?? 'normal', stage, code };
      resolve({ termination, bytesIn: client.bytesRead, bytesOut: client.bytesWritten });
    };
    client.once('close', onClose);
    backend.once('close', onClose);
    lingerAfterPeerClose(client, backend);
    lingerAfterPeerClose(backend, client);
    // The effect of each error is recorded in the termination, and the other side is reset.
    client.on('error', (err) => {
      first('client', errorCode(err));
      abort(backend);
    });
    backend.on('error', (err) => {
      first('backend', errorCode(err));
      abort(client);
    });
    client.setTimeout(idleMs, () => {
      first('client-timeout', 'idle');
      client.destroy();
      backend.destroy();
    });
    cut = () => {
      stage = 'shutdown';
      first('tether', 'shutdown');
      client.destroy();
      backend.destroy();
    };
    for (const chunk of prelude) backend.write(chunk);
    client.pipe(backend);
    if (opts.rewriteHead) pipeWithHead(backend, client, opts.rewriteHead);
    else backend.pipe(client);
    if (opts.watchBackend) tap(backend, opts.watchBackend);
    client.resume();
  });
  return { done, cut: () => { cut(); } };
}
