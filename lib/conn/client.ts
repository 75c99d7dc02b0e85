// The one owner of a client's socket from accept to close: its errors before the splice, the
// socket the stages talk on (the TLS socket after implicit TLS or STARTTLS), a stop's cut, and
// the close. Stages ask it to refuse or destroy the client instead of touching the socket's
// lifecycle themselves, so every path out of a stage closes the client the same way.
import type net from 'node:net';
import { errorCode } from '../errors.js';

/** How long a client we will not serve may linger (draining what it sends) before we drop it. */
export const REFUSE_LINGER_MS = 2_000;

export class ClientSocket {
  private current: net.Socket;
  private error: string | undefined;
  private cutByStop = false;
  private spliceCut: (() => void) | undefined;
  private readonly onError = (err: Error): void => {
    // Until the splice owns the socket an error only means the client went away; that is
    // recorded through the termination, so the error itself needs no more handling.
    this.error ??= errorCode(err) ?? 'error';
  };

  constructor(readonly raw: net.Socket) {
    this.current = raw;
    raw.on('error', this.onError);
  }

  /** The socket the stages read and write: `raw`, or the TLS socket over it. */
  get socket(): net.Socket {
    return this.current;
  }

  /** The first socket error before the splice (the client went away), if any. */
  get firstError(): string | undefined {
    return this.error;
  }

  /** Whether a stop cut this client (the close line then says `shutdown`). */
  get wasCut(): boolean {
    return this.cutByStop;
  }

  /** imap/pop3: talk on the TLS socket over `raw` from now on. */
  upgrade(socket: net.Socket): void {
    this.current = socket;
  }

  /** A stop or the admin API ends this client now, whatever stage it is in. */
  cut(): void {
    this.cutByStop = true;
    if (this.spliceCut) this.spliceCut();
    else this.current.destroy();
  }

  /**
   * The splice owns the client's errors from here (under TLS, `raw` keeps its handler: the TLS
   * socket reports for it); a stop that came while the backend was dialled cuts it at once.
   */
  handOver(spliceCut: () => void): void {
    this.current.off('error', this.onError);
    this.spliceCut = spliceCut;
    if (this.cutByStop) spliceCut();
  }

  /** Closes the client at once (refused before a byte is answered, or gone). */
  destroy(): void {
    this.current.destroy();
  }

  /**
   * Closes a client we will not serve: FIN, drain whatever it sends, drop it after a short wait.
   * `reply` (a mail protocol's "unavailable" line) is written first when the client is still there.
   */
  refuse(reply?: string): void {
    const s = this.current;
    if (s.destroyed) return;
    if (reply !== undefined) s.write(reply);
    s.on('data', () => undefined);
    s.resume();
    s.end();
    const timer = setTimeout(() => s.destroy(), REFUSE_LINGER_MS).unref();
    s.once('close', () => {
      clearTimeout(timer);
    });
  }

  /**
   * Leaves no socket of an ended connection open. Each stage that ends a connection closes the
   * client itself (destroy, refuse, the splice's linger) and this is the net under them: a
   * client left paused is never read, so not even its reset would close it, and its fd would
   * stay taken for good, uncounted by --max-conns.
   */
  letGo(): void {
    for (const s of this.current === this.raw ? [this.raw] : [this.current, this.raw]) {
      if (!s.destroyed && !s.writableEnded) s.destroy();
    }
  }
}
