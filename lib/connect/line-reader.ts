// Stage 5, I/O. Reads CRLF lines from a socket during a short scripted exchange (a backend's
// greeting, STARTTLS, the login replay), bounded by a line cap and a deadline.
import { Buffer } from 'node:buffer';
import type net from 'node:net';

/** Longest backend line we read before splicing (IMAP CAPABILITY lines run to ~1 KB). */
export const MAX_BACKEND_LINE = 16 * 1024;

/**
 * Reads lines without re-concatenating what it holds on every chunk (a backend trickling a long
 * line byte by byte would cost O(n²)): chunks are kept as a list, each scanned for LF once, and
 * a line is joined only when it is taken. At most MAX_BACKEND_LINE bytes plus one chunk are held:
 * beyond that the socket is paused until a line is taken (backpressure toward the backend).
 */
export class LineReader {
  private chunks: Buffer[] = [];
  /** Bytes held in `chunks`. */
  private held = 0;
  /** How many leading chunks are known to hold no LF. */
  private scanned = 0;
  private waiter: (() => void) | undefined;
  private ended = false;
  private readonly onData = (chunk: Buffer): void => {
    this.chunks.push(chunk);
    this.held += chunk.length;
    if (this.held > MAX_BACKEND_LINE) this.socket.pause();
    this.wake();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.wake();
  };

  constructor(private readonly socket: net.Socket) {
    socket.on('data', this.onData);
    socket.once('end', this.onEnd);
    socket.once('close', this.onEnd);
  }

  /** The first complete line held, removed from `chunks`; undefined when none is complete. */
  private take(): Buffer | undefined {
    for (; this.scanned < this.chunks.length; this.scanned++) {
      const c = this.chunks[this.scanned];
      const lf = c === undefined ? -1 : c.indexOf(10);
      if (c === undefined || lf < 0) continue;
      const tail = c.subarray(0, lf + 1);
      const line = this.scanned === 0 ? tail : Buffer.concat([...this.chunks.slice(0, this.scanned), tail]);
      const rest = c.subarray(lf + 1);
      this.chunks.splice(0, this.scanned + 1, ...(rest.length > 0 ? [rest] : []));
      this.held -= line.length;
      this.scanned = 0;
      return line;
    }
    return undefined;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /**
   * Resolves with the next line, CRLF included, or undefined when the socket ends, the line
   * exceeds MAX_BACKEND_LINE, or `deadlineMs` (absolute, Date.now-based) passes.
   */
  async line(deadlineMs: number, now: () => number): Promise<Buffer | undefined> {
    for (;;) {
      const line = this.take();
      if (line) return line;
      if (this.ended || this.held > MAX_BACKEND_LINE) return undefined;
      const left = deadlineMs - now();
      if (left <= 0) return undefined;
      this.socket.resume();
      const timer = setTimeout(() => {
        this.wake();
      }, left);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
      clearTimeout(timer);
    }
  }

  /** Stops reading (the socket is paused) and returns what was read but not consumed. */
  detach(): Buffer {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.pause();
    const rest = Buffer.concat(this.chunks);
    this.chunks = [];
    this.held = 0;
    this.scanned = 0;
    return rest;
  }
}
