// Stage 5, I/O. Reads CRLF lines from a socket during a short scripted exchange (a backend's
// greeting, STARTTLS, the login replay), bounded by a line cap and a deadline.
import { Buffer } from 'node:buffer';
import type net from 'node:net';

/** Longest backend line we read before splicing (IMAP CAPABILITY lines run to ~1 KB). */
export const MAX_BACKEND_LINE = 16 * 1024;

export class LineReader {
  private buf: Buffer = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  private ended = false;
  private readonly onData = (chunk: Buffer): void => {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
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
      const lf = this.buf.indexOf(10);
      if (lf >= 0) {
        const line = this.buf.subarray(0, lf + 1);
        this.buf = this.buf.subarray(lf + 1);
        return line;
      }
      if (this.ended || this.buf.length > MAX_BACKEND_LINE) return undefined;
      const left = deadlineMs - now();
      if (left <= 0) return undefined;
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
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }
}
