// I/O: the log's writer. Lines are gathered and written to the fd in batches of about
// LOG_BATCH_BYTES, one asynchronous write (libuv's thread pool) in flight at a time, so a
// busy tether pays one thread-pool round trip per batch, not per line. Measured with pino's
// sonic-boom (4 KiB batches, and an empty write on every flush call even with nothing
// gathered): ~0.6 thread-pool round trips per connection, ~7 futex calls each, on the core
// the proxy runs on. A stdout that does not keep up (journald stuck) holds at most
// LOG_QUEUE_MAX_BYTES; lines beyond are dropped and counted, and a `log.dropped` line says how
// many after the lines held before them. A stdout that is gone (EPIPE, EBADF) drops every line
// and never throws.
import { Buffer } from 'node:buffer';
import { write, writeSync } from 'node:fs';
import { realClock, type Clock } from './clock.js';

/** Bytes gathered before a write: 64 KiB is one pipe buffer's worth on Linux. */
export const LOG_BATCH_BYTES = 64 * 1024;

/** Most bytes of lines held while a write waits: beyond it, lines are dropped (and counted). */
export const LOG_QUEUE_MAX_BYTES = 16 * 1024 * 1024;

/** Wait before writing again after EAGAIN (a non-blocking stdout that is full). */
export const LOG_RETRY_MS = 10;

/** The event of the line a writer adds after dropping lines (log.ts EVENTS.logDropped). */
export const LOG_DROPPED_EVENT = 'log.dropped';

/** The line a writer adds when it had to drop lines; `dropped` is how many. */
export function droppedLine(dropped: number, nowMs: number, pid: number): string {
  return `${JSON.stringify({ level: 'warn', time: new Date(nowMs).toISOString(), pid, event: LOG_DROPPED_EVENT, dropped, msg: 'log lines dropped: the log output did not keep up' })}\n`;
}

/** A pino destination: write(line), flush(cb), flushSync(). */
export class BatchWriter {
  private lines: string[] = [];
  /** Length of `lines` in UTF-16 units (a byte count for the ASCII lines tether writes). */
  private size = 0;
  private writing = false;
  private broken = false;
  private dropped = 0;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly fd: number,
    private readonly batchBytes = LOG_BATCH_BYTES,
    private readonly maxBytes = LOG_QUEUE_MAX_BYTES,
    private readonly clock: Clock = realClock,
  ) {}

  /** Takes one line; writes a batch when enough is gathered. False when the line was dropped. */
  write(line: string): boolean {
    if (this.broken) return false;
    if (this.size + line.length > this.maxBytes) {
      this.dropped++;
      return false;
    }
    this.lines.push(line);
    this.size += line.length;
    if (!this.writing && this.size >= this.batchBytes) this.start();
    return true;
  }

  /** Writes out what is gathered; `cb` runs once all of it (and any write in flight) is done. */
  flush(cb?: () => void): void {
    if (cb) this.waiters.push(cb);
    if (this.writing) return;
    if (this.size > 0 && !this.broken) this.start();
    else this.settle();
  }

  /**
   * Writes what is gathered now, synchronously (the last line before an exit). A write still in
   * flight finishes on its own; these lines may land before it.
   */
  flushSync(): void {
    if (this.broken || this.size === 0) return;
    const buf = this.take();
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
  }

  private take(): Buffer {
    let text = this.lines.join('');
    if (this.dropped > 0) {
      // Lines are dropped only while the queue is full, so every line held came before them.
      text += droppedLine(this.dropped, this.clock.now(), process.pid);
      this.dropped = 0;
    }
    this.lines = [];
    this.size = 0;
    return Buffer.from(text, 'utf8');
  }

  private start(): void {
    this.writing = true;
    this.send(this.take(), 0);
  }

  private send(buf: Buffer, off: number): void {
    write(this.fd, buf, off, buf.length - off, null, (err, n) => {
      if (err) {
        if (err.code === 'EAGAIN') {
          // Unref'd: a stdout nobody reads must not keep tether alive after its stop.
          setTimeout(() => {
            this.send(buf, off);
          }, LOG_RETRY_MS).unref();
          return;
        }
        // Nowhere to write (EPIPE, EBADF, …): every line from now on is lost, none throws.
        this.broken = true;
        this.lines = [];
        this.size = 0;
      } else if (off + n < buf.length) {
        this.send(buf, off + n);
        return;
      }
      this.writing = false;
      if (!this.broken && (this.size >= this.batchBytes || (this.waiters.length > 0 && this.size > 0))) this.start();
      else this.settle();
    });
  }

  private settle(): void {
    if (this.waiters.length === 0) return;
    const w = this.waiters;
    this.waiters = [];
    process.nextTick(() => {
      for (const cb of w) cb();
    });
  }
}
