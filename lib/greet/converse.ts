// Stage 2b, I/O. Drives the IMAP/POP3 pre-login dialogue on the client socket: implicit TLS or
// STARTTLS toward the client, tether's greeting, the state machine's replies, a login deadline.
import { Buffer } from 'node:buffer';
import type net from 'node:net';
import tls from 'node:tls';
import type { ClientTlsMode } from '../config/types.js';
import { errorCode, type Termination } from '../errors.js';
import type { GreetOptions, GreetStep, Login } from './dialogue.js';
import { ImapGreeter } from './imap.js';
import { Pop3Greeter } from './pop3.js';
import { LineWait } from './line-wait.js';

export interface ConverseOptions {
  readonly protocol: 'imap' | 'pop3';
  readonly tls: ClientTlsMode;
  readonly secureContext?: tls.SecureContext;
  readonly requireTls: boolean;
  readonly loginTimeoutMs: number;
  readonly maxCommands: number;
  readonly maxBad: number;
}

export type ConverseResult =
  | {
      readonly ok: true;
      /** The client socket to splice: the TLS socket when TLS was negotiated. */
      readonly client: net.Socket;
      readonly login: Login;
      readonly secure: boolean;
      /** Client bytes after the login (pipelined commands), to send after the backend's answer. */
      readonly leftover: Buffer;
    }
  | { readonly ok: false; readonly client: net.Socket; readonly termination: Termination };

interface Greeter {
  greeting(): string;
  secured(): void;
  next(input: Buffer): GreetStep;
}

function serverTls(raw: net.Socket, ctx: tls.SecureContext): Promise<tls.TLSSocket | string> {
  return new Promise((resolve) => {
    const t = new tls.TLSSocket(raw, { isServer: true, secureContext: ctx });
    const onError = (err: Error): void => {
      resolve(errorCode(err) ?? 'tls-error');
    };
    // A client that sends its FIN or resets mid-handshake may end the socket with no TLS
    // error at all: without these, it would hold its slot until the login deadline.
    const onEnd = (): void => {
      resolve('eof');
    };
    const onClose = (): void => {
      resolve('closed');
    };
    t.once('error', onError);
    t.once('end', onEnd);
    t.once('close', onClose);
    raw.once('close', onClose);
    t.once('secure', () => {
      t.off('error', onError);
      t.off('end', onEnd);
      t.off('close', onClose);
      raw.off('close', onClose);
      resolve(t);
    });
  });
}

/**
 * Runs the dialogue until the client logs in (ok), logs out, breaks a limit, errs, or the
 * login deadline passes. Never rejects. The returned client is paused.
 */
export async function converse(raw: net.Socket, o: ConverseOptions): Promise<ConverseResult> {
  const deadline = setTimeoutPromise(o.loginTimeoutMs);
  let sock: net.Socket = raw;
  let secure = false;
  // Errors before the splice only end the dialogue; the termination records them.
  const swallow = (): void => undefined;
  raw.on('error', swallow);
  if (o.tls === 'implicit' && o.secureContext) {
    const t = await Promise.race([serverTls(raw, o.secureContext), deadline.promise]);
    if (t === 'timeout' || typeof t === 'string') {
      deadline.cancel();
      raw.destroy();
      return { ok: false, client: raw, termination: { cause: t === 'timeout' ? 'client-timeout' : 'client', stage: 'greet', code: t === 'timeout' ? 'tls-timeout' : t } };
    }
    sock = t;
    sock.on('error', swallow);
    secure = true;
  }
  const gopts: GreetOptions = {
    starttls: o.tls === 'starttls' && o.secureContext !== undefined,
    secure,
    requireTls: o.requireTls,
    maxCommands: o.maxCommands,
    maxBad: o.maxBad,
  };
  const greeter: Greeter = o.protocol === 'imap' ? new ImapGreeter(gopts) : new Pop3Greeter(gopts);
  sock.write(greeter.greeting());

  const result = await new Promise<ConverseResult>((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    let done = false;
    const finish = (r: ConverseResult): void => {
      if (done) return;
      done = true;
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.off('close', onClose);
      sock.pause();
      resolve(r);
    };
    const fail = (termination: Termination): void => {
      finish({ ok: false, client: sock, termination });
    };
    const onEnd = (): void => {
      sock.end();
      fail({ cause: 'client', stage: 'greet', code: 'eof' });
    };
    const onClose = (): void => {
      fail({ cause: 'client', stage: 'greet', code: 'closed' });
    };
    const attach = (): void => {
      sock.on('data', onData);
      sock.once('end', onEnd);
      sock.once('close', onClose);
      sock.resume();
    };
    let pending: Buffer[] = [];
    const wait = new LineWait();
    const onData = (chunk: Buffer): void => {
      pending.push(chunk);
      if (!wait.push(chunk)) return;
      buf = buf.length === 0 && pending.length === 1 ? chunk : Buffer.concat([buf, ...pending]);
      pending = [];
      for (;;) {
        const step = greeter.next(buf);
        for (const r of step.replies) sock.write(r);
        buf = buf.subarray(step.consumed);
        wait.asked(buf.length, step.until);
        if (step.then === 'more') {
          if (step.consumed === 0 || buf.length === 0) return;
          continue;
        }
        if (step.then === 'close') {
          sock.end();
          const code = step.closeCode ?? 'logout';
          fail({ cause: code === 'logout' ? 'normal' : 'client', stage: 'greet', code });
          return;
        }
        if (step.then === 'starttls') {
          const ctx = o.secureContext;
          if (!ctx) return;
          sock.off('data', onData);
          sock.off('end', onEnd);
          sock.off('close', onClose);
          sock.pause();
          // RFC 9051 §6.2.1 / RFC 2595 §4: plaintext sent after STARTTLS is dropped.
          buf = Buffer.alloc(0);
          wait.asked(0);
          void serverTls(sock, ctx).then((t) => {
            if (typeof t === 'string') {
              sock.destroy();
              fail({ cause: 'client', stage: 'greet', code: t });
              return;
            }
            sock = t;
            sock.on('error', swallow);
            secure = true;
            greeter.secured();
            attach();
          });
          return;
        }
        finish({ ok: true, client: sock, login: step.then.login, secure, leftover: Buffer.from(buf) });
        return;
      }
    };
    attach();
    void deadline.promise.then(() => {
      if (done) return;
      sock.end(o.protocol === 'imap' ? '* BYE Autologout; login took too long\r\n' : '-ERR Login took too long\r\n');
      fail({ cause: 'client-timeout', stage: 'greet', code: 'login-timeout' });
    });
  });
  deadline.cancel();
  return result;
}

function setTimeoutPromise(ms: number): { promise: Promise<'timeout'>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => {
      resolve('timeout');
    }, ms);
  });
  return {
    promise,
    cancel: () => {
      clearTimeout(timer);
    },
  };
}
