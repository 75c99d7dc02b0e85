// Stage 6, I/O. Splice client and backend: replay the prelude once, then copy both ways until
// both directions are finished. forward() gives backpressure (a slow reader pauses the other
// side's reads; tether buffers at most a highWaterMark per direction) and hands each Buffer
// through untouched (no per-chunk copy). It is pipe() without what a splice never uses (unpipe
// events, multiple destinations, the 'pipe' event): three listeners per direction, not eight.
// Half-close passes through: a FIN from one side becomes end() on the other, whose reverse
// direction keeps flowing (sockets are allowHalfOpen).
// A socket emits 'end' and 'close' once: they get plain listeners, since each once() costs a
// bound wrapper and a record for as long as the connection lives (nine per connection were ~1 KiB).
import { Buffer } from 'node:buffer';
import type net from 'node:net';
import tls from 'node:tls';
import { errorCode, type Termination, type TerminationCause } from '../errors.js';

export interface SpliceResult {
  readonly termination: Termination;
  /** Bytes read from the client (prelude included). */
  readonly bytesIn: number;
  /** Bytes written to the client. */
  readonly bytesOut: number;
}

/**
 * Ends a socket abortively (an RST), so an error on one side is passed on as a reset, not a
 * clean FIN. A TLSSocket cannot be reset itself (its handle is a TLSWrap, not a TCP handle, and
 * Node throws ERR_INVALID_HANDLE_TYPE), so `tcp`, the socket under it, is reset instead; with
 * no TCP socket to reset, it is destroyed (a FIN). Never throws.
 */
function abort(socket: net.Socket, tcp: net.Socket | undefined): void {
  if (socket.destroyed) return;
  const target = socket instanceof tls.TLSSocket ? tcp : socket;
  if (target !== undefined && !target.destroyed) {
    try {
      target.resetAndDestroy();
    } catch {
      // ERR_INVALID_HANDLE_TYPE: not a TCP handle after all (a pipe, a stream-wrapped socket);
      // the destroy below still closes it, with a FIN, and the termination already says why.
    }
  }
  socket.destroy();
}

/**
 * Copies `src` to `dest` until `src` ends, then ends `dest`: each chunk is written as read, and
 * a full `dest` pauses `src` until it drains. `afterWrite` runs after each chunk's write (the
 * stall watch: one 'data' listener, since an event with several copies its listener array on
 * every chunk). Returns how to stop (`src` is left as it is).
 */
export function forward(src: net.Socket, dest: net.Socket, afterWrite: () => void): () => void {
  let waiting = false;
  const onDrain = (): void => {
    waiting = false;
    src.resume();
  };
  const wait = (): void => {
    if (waiting) return;
    waiting = true;
    src.pause();
    dest.once('drain', onDrain);
  };
  const onData = (chunk: Buffer): void => {
    if (!dest.write(chunk)) wait();
    afterWrite();
  };
  const onEnd = (): void => {
    dest.end();
  };
  src.on('data', onData);
  // A FIN already read (a client that sent its request and FIN while it was peeked) is passed on.
  if (src.readableEnded) process.nextTick(onEnd);
  else src.on('end', onEnd);
  if (dest.writableNeedDrain) wait();
  else src.resume();
  return () => {
    src.off('data', onData);
    src.off('end', onEnd);
    dest.off('drain', onDrain);
  };
}

/** How long a side may stay open after its peer has fully closed (see lingerAfterPeerClose). */
export const CLOSE_LINGER_MS = 5_000;

/**
 * Once `peer` has closed for good, nothing `side` sends can be delivered. Its forward is
 * stopped (`stopForward`) and its write direction ended; keep reading (and dropping) what it still sends, so closing
 * does not turn into a reset that could destroy the reply it has not read yet, and close it
 * when it sends its FIN or after CLOSE_LINGER_MS — a client ignoring the FIN cannot pin the
 * connection until the idle timeout.
 */
function lingerAfterPeerClose(side: net.Socket, peer: net.Socket, stopForward: () => void): void {
  peer.on('close', () => {
    if (side.destroyed) return;
    stopForward();
    side.on('data', () => undefined);
    side.resume();
    if (!side.writableEnded) side.end();
    // Cleared at close: at thousands of connections a second, timers left to fire 5 s later
    // would keep as many closed sockets alive and in the GC's way.
    const timer = setTimeout(() => side.destroy(), CLOSE_LINGER_MS).unref();
    side.on('close', () => {
      clearTimeout(timer);
    });
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
  /** Bytes waiting toward the backend and none of them taken for this long: both sides are closed. */
  readonly backendStallMs: number;
  /** The same toward the client. */
  readonly clientStallMs: number;
  /** Once either side has sent its FIN, the silence allowed is min(idleMs, finMs). */
  readonly finMs: number;
  /** The TCP sockets under TLS ones (implicit TLS, STARTTLS, backend TLS): resets go to them. */
  readonly tcp?: { readonly client?: net.Socket; readonly backend?: net.Socket };
  /**
   * Sees the backend's bytes as they pass (no delay) until it returns true: each call gets
   * everything received so far, which extends what the previous call got.
   */
  readonly watchBackend?: (received: Buffer) => boolean;
  /** Holds the backend's first bytes until this says done, and sends its output instead. */
  readonly rewriteHead?: HeadRewriter;
}

/** tap's first buffer; it doubles when full, so each byte is copied O(1) times on average. */
const TAP_INITIAL_BYTES = 4 * 1024;

/**
 * Feeds `socket`'s bytes to `watch` (accumulated) until it returns true; pipe() keeps flowing.
 * The bytes are copied into one growing buffer rather than re-concatenated on every chunk, so
 * a backend trickling its bytes costs O(n) copying, not O(n²).
 */
function tap(socket: net.Socket, watch: (received: Buffer) => boolean): void {
  let held = Buffer.alloc(0);
  let size = 0;
  const stop = (): void => {
    socket.off('data', onData);
    held = Buffer.alloc(0);
  };
  const onData = (chunk: Buffer): void => {
    if (size + chunk.length > held.length) {
      const grown = Buffer.allocUnsafe(Math.max(TAP_INITIAL_BYTES, 2 * held.length, size + chunk.length));
      held.copy(grown, 0, 0, size);
      held = grown;
    }
    chunk.copy(held, size);
    size += chunk.length;
    if (watch(held.subarray(0, size))) stop();
  };
  socket.on('data', onData);
  socket.on('close', stop);
}

/**
 * Interim (1xx) heads passed on one by one before the head rewriter gives up and pipes the rest
 * unchanged. RFC 9110 §15.2 sets no limit; a real server sends one 100 Continue per request
 * and a few 103 Early Hints. More is a backend spinning (or not speaking HTTP): pipe() then
 * carries it with backpressure, and tether holds at most a highWaterMark of it.
 */
export const MAX_INTERIM_HEADS = 16;

const LF = 0x0a;
const CR = 0x0d;

/**
 * Collects the backend's first bytes until `rewrite` is done, writes its output to the client,
 * then pipes the rest. An end before that passes on what was received, unchanged.
 * `rewrite` is asked again only when the new bytes may end a head (the first line end, or an
 * empty line: LF, optional CR, LF) or when the held bytes have doubled since it was last asked
 * (so a head past its cap is still answered), which bounds the parsing to O(n). Interim heads
 * are written with backpressure: the backend is paused while the client's buffer is full.
 */
function pipeWithHead(backend: net.Socket, client: net.Socket, rewrite: HeadRewriter, afterWrite: () => void): () => void {
  let chunks: Buffer[] = [];
  let size = 0;
  let askedAt = 0;
  let interim = 0;
  let lineSeen = false;
  // The last two bytes received (-1: none yet), to find an empty line split across chunks.
  let last1 = -1;
  let last2 = -1;
  let stopForward = (): void => undefined;
  const stop = (): void => {
    backend.off('data', onData);
    backend.off('end', onEnd);
  };
  let waiting = false;
  const resume = (): void => {
    waiting = false;
    backend.resume();
  };
  const send = (bytes: Buffer): void => {
    if (bytes.length > 0 && !client.write(bytes) && !waiting) {
      waiting = true;
      backend.pause();
      client.once('drain', resume);
    }
  };
  const finish = (out: Buffer): void => {
    stop();
    chunks = [];
    backend.pause();
    send(out);
    afterWrite();
    stopForward = forward(backend, client, afterWrite);
  };
  /** Whether `chunk` may complete a head (see above); updates the line state. */
  const mayEndHead = (chunk: Buffer): boolean => {
    let found = false;
    for (let i = chunk.indexOf(LF); i >= 0 && !found; i = chunk.indexOf(LF, i + 1)) {
      const p1 = i >= 1 ? chunk[i - 1] : last1;
      const p2 = i >= 2 ? chunk[i - 2] : i === 1 ? last1 : last2;
      found = !lineSeen || p1 === LF || (p1 === CR && p2 === LF);
      lineSeen = true;
    }
    last2 = chunk.length >= 2 ? (chunk[chunk.length - 2] ?? -1) : last1;
    last1 = chunk[chunk.length - 1] ?? last1;
    return found;
  };
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk);
    size += chunk.length;
    if (!mayEndHead(chunk) && size < 2 * askedAt) return;
    let held = chunks.length === 1 ? chunk : Buffer.concat(chunks, size);
    askedAt = size;
    let r = rewrite(held);
    // Each pass shortens what is held (pass > 0), and interim heads are capped, so this ends.
    while (!r.done && r.pass !== undefined && r.pass > 0) {
      send(held.subarray(0, r.pass));
      held = held.subarray(r.pass);
      lineSeen = false;
      if (++interim >= MAX_INTERIM_HEADS) {
        finish(held);
        return;
      }
      r = rewrite(held);
    }
    if (r.done) {
      finish(r.out);
      return;
    }
    chunks = [held];
    size = held.length;
    askedAt = size;
    afterWrite();
  };
  const onEnd = (): void => {
    stop();
    if (size > 0) client.write(Buffer.concat(chunks, size));
    client.end();
  };
  backend.on('data', onData);
  backend.on('end', onEnd);
  return () => {
    stop();
    stopForward();
  };
}

/**
 * Closes the connection when bytes wait toward `dest` (read from its peer, not yet taken by
 * its kernel buffer) and none of them are taken for `stallMs`. Armed when a write leaves bytes
 * in `dest`'s buffer or `src` is paused for it; then one timer checks every `stallMs`: nothing
 * waiting disarms it, bytes taken since the last check (a slow but moving reader) re-arm it,
 * none calls `onStall`. So a stall is found between stallMs and 2·stallMs after the last byte
 * taken. A write is taken whole once the kernel accepts it: a chunk is at most 64 KiB, so a
 * reader slower than that per `stallMs` counts as stalled — and so does one whose reads the
 * kernel does not pass on: a peer's window reopens only once it has read a good share of its
 * receive buffer (megabytes on loopback), not after every small read. `arm` is for the
 * forward's afterWrite; `stop` ends the watch.
 */
function watchStall(src: net.Socket, dest: net.Socket, stallMs: number, onStall: () => void): { readonly arm: () => void; readonly stop: () => void } {
  let timer: NodeJS.Timeout | undefined;
  let armed = false;
  let stopped = false;
  let taken = 0;
  // bytesWritten counts what dest was handed, writableLength what it still holds.
  const takenNow = (): number => dest.bytesWritten - dest.writableLength;
  // The timer phase runs before the turn's I/O: after a busy spell the writes that completed
  // meanwhile are not counted yet. So the timer only schedules the look, after this turn's I/O.
  const look = (): void => void setImmediate(check);
  const check = (): void => {
    if (stopped || dest.destroyed || dest.writableLength === 0) {
      armed = false;
      return;
    }
    const now = takenNow();
    if (now !== taken) {
      taken = now;
      timer?.refresh();
      return;
    }
    armed = false;
    onStall();
  };
  const arm = (): void => {
    if (armed || dest.writableLength === 0) return;
    armed = true;
    taken = takenNow();
    if (timer) timer.refresh();
    else timer = setTimeout(look, stallMs).unref();
  };
  src.on('pause', arm);
  // Bytes may wait already (a prelude the backend has not taken yet).
  arm();
  return {
    arm,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
      src.off('pause', arm);
    },
  };
}

/**
 * Starts splicing `client` ↔ `backend` after writing `prelude` to the backend. Both sockets
 * must be connected and not yet flowing. `idleMs` of silence in both directions closes both
 * (the client socket's timer sees every byte either way, since every byte is read from or
 * written to it); once a side has sent its FIN, `finMs` if shorter. Bytes waiting toward a
 * side that takes none of them for its stall time close both. Never throws; the result's
 * termination names who ended it.
 */
export function splice(client: net.Socket, backend: net.Socket, prelude: readonly Buffer[], opts: SpliceOptions): Splice {
  let cause: TerminationCause | undefined;
  let code: string | undefined;
  let stage: Termination['stage'] = 'splice';
  const first = (c: TerminationCause, k: string | undefined): void => {
    if (cause === undefined) {
      cause = c;
      code = k;
    }
  };
  const closeBoth = (): void => {
    client.destroy();
    backend.destroy();
  };
  let cut = (): void => undefined;
  const done = new Promise<SpliceResult>((resolve) => {
    let open = 2;
    const stops: (() => void)[] = [];
    const onClose = (): void => {
      open--;
      if (open > 0) return;
      client.setTimeout(0);
      for (const s of stops) s();
      const termination: Termination =
        code === undefined ? { cause: cause ?? 'normal', stage } : { cause: cause ?? 'normal', stage, code };
      resolve({ termination, bytesIn: client.bytesRead, bytesOut: client.bytesWritten });
    };
    client.on('close', onClose);
    backend.on('close', onClose);
    // The prelude first, once; the forwards start after it (a full backend pauses the client).
    for (const chunk of prelude) backend.write(chunk);
    const up = watchStall(client, backend, opts.backendStallMs, () => {
      first('backend-timeout', 'write-stall');
      closeBoth();
    });
    const down = watchStall(backend, client, opts.clientStallMs, () => {
      first('client-timeout', 'write-stall');
      closeBoth();
    });
    stops.push(up.stop, down.stop);
    const stopUp = forward(client, backend, up.arm);
    const stopDown = opts.rewriteHead ? pipeWithHead(backend, client, opts.rewriteHead, down.arm) : forward(backend, client, down.arm);
    lingerAfterPeerClose(client, backend, stopUp);
    lingerAfterPeerClose(backend, client, stopDown);
    // The effect of each error is recorded in the termination, and the other side is reset.
    client.on('error', (err) => {
      first('client', errorCode(err));
      abort(backend, opts.tcp?.backend);
    });
    backend.on('error', (err) => {
      first('backend', errorCode(err));
      abort(client, opts.tcp?.client);
    });
    // A side already closed (a client that reset while its login was replayed at the backend)
    // emits no 'close' any more: count it closed now and end the other side, or the splice,
    // its backend socket and the connection's slot would wait for ever.
    for (const [side, peer, who] of [[client, backend, 'client'], [backend, client, 'backend']] as const) {
      if (!side.closed) continue;
      first(who, 'closed');
      peer.destroy();
      onClose();
    }
    let finned = false;
    client.setTimeout(opts.idleMs, () => {
      // After a FIN, the side still silent is the one that has not finished.
      if (finned) first(client.readableEnded ? 'backend-timeout' : 'client-timeout', 'fin-timeout');
      else first('client-timeout', 'idle');
      closeBoth();
    });
    const onFin = (): void => {
      if (finned || opts.finMs >= opts.idleMs) return;
      finned = true;
      client.setTimeout(opts.finMs);
    };
    client.on('end', onFin);
    backend.on('end', onFin);
    cut = () => {
      stage = 'shutdown';
      first('tether', 'shutdown');
      closeBoth();
    };
    if (opts.watchBackend) tap(backend, opts.watchBackend);
  });
  return { done, cut: () => { cut(); } };
}
