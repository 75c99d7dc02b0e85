// Stage 5, I/O. Server-first protocols: bring a freshly dialled backend to where the client
// is — optional TLS or STARTTLS toward the backend, swallow its greeting, replay the client's
// login (answering the backend's continuations), and return the backend's answer for the client.
import { Buffer } from 'node:buffer';
import type net from 'node:net';
import tls from 'node:tls';
import type { BackendTlsMode } from '../config/types.js';
import type { Login } from '../greet/dialogue.js';
import { imapBackendAnswer, imapGreetingOk } from '../greet/imap.js';
import { pop3BackendAnswer, pop3GreetingOk } from '../greet/pop3.js';
import { LineReader } from './line-reader.js';

/**
 * Most untagged lines a backend may send during the login replay (relayed to the client with
 * the answer) or before its STARTTLS answer (dropped). A real server sends a CAPABILITY line or
 * two (Dovecot's runs to ~300 bytes); 64 KiB is hundreds of them. A backend that sends more is
 * broken or hostile, and an endless stream would otherwise be held whole until the login
 * deadline (2.8 GB in 11 s): the login fails with `backend-flood`, the client gets the
 * usual "backend unavailable" answer.
 */
export const MAX_UNTAGGED_BYTES = 64 * 1024;

export type MailProtocol = 'imap' | 'pop3';

export interface BackendLoginOptions {
  readonly protocol: MailProtocol;
  readonly backendTls: BackendTlsMode;
  /** Options for tls.connect toward the backend (ca, rejectUnauthorized, servername). */
  readonly tlsOptions: tls.ConnectionOptions;
  readonly timeoutMs: number;
  readonly now: () => number;
}

export type BackendLogin =
  | { readonly ok: true; readonly socket: net.Socket; readonly toClient: Buffer }
  | { readonly ok: false; readonly code: string };

function upgrade(socket: net.Socket, options: tls.ConnectionOptions, deadlineMs: number, now: () => number): Promise<net.Socket | string> {
  return new Promise((resolve) => {
    const t = tls.connect({ ...options, socket });
    const timer = setTimeout(() => {
      t.destroy();
      resolve('tls-timeout');
    }, Math.max(1, deadlineMs - now()));
    t.once('secureConnect', () => {
      clearTimeout(timer);
      t.off('error', onError);
      resolve(t);
    });
    const onError = (err: Error): void => {
      clearTimeout(timer);
      resolve((err as NodeJS.ErrnoException).code ?? 'tls-error');
    };
    t.once('error', onError);
  });
}

/** Logs `login` in at the backend on `socket`. Never rejects; a failure names its code. */
export async function loginAtBackend(socket: net.Socket, login: Login, o: BackendLoginOptions): Promise<BackendLogin> {
  const deadline = o.now() + o.timeoutMs;
  let sock = socket;
  // Until this exchange is done, an error only ends it: recorded through the result code.
  const swallow = (): void => undefined;
  socket.on('error', swallow);
  try {
    if (o.backendTls === 'tls') {
      const t = await upgrade(sock, o.tlsOptions, deadline, o.now);
      if (typeof t === 'string') return { ok: false, code: t };
      sock = t;
      sock.on('error', swallow);
    }
    let reader = new LineReader(sock);
    const greeting = await reader.line(deadline, o.now);
    const greetingOk = o.protocol === 'imap' ? imapGreetingOk : pop3GreetingOk;
    if (!greeting || !greetingOk(greeting.toString('latin1'))) return { ok: false, code: greeting ? 'backend-greeting' : 'backend-silent' };
    if (o.backendTls === 'starttls') {
      sock.write(o.protocol === 'imap' ? 'tether0 STARTTLS\r\n' : 'STLS\r\n');
      let untagged = 0;
      for (;;) {
        const line = await reader.line(deadline, o.now);
        if (!line) return { ok: false, code: 'starttls-silent' };
        const text = line.toString('latin1');
        if (o.protocol === 'imap' && text.startsWith('* ')) {
          untagged += line.length;
          if (untagged > MAX_UNTAGGED_BYTES) return { ok: false, code: 'backend-flood' };
          continue;
        }
        const ok = o.protocol === 'imap' ? /^tether0 OK\b/i.test(text) : text.startsWith('+OK');
        if (!ok) return { ok: false, code: 'starttls-refused' };
        break;
      }
      reader.detach();
      const t = await upgrade(sock, o.tlsOptions, deadline, o.now);
      if (typeof t === 'string') return { ok: false, code: t };
      sock = t;
      sock.on('error', swallow);
      reader = new LineReader(sock);
    }
    const relay: Buffer[] = [];
    let relayBytes = 0;
    for (const step of login.steps) {
      sock.write(step.bytes);
      let answered = false;
      while (!answered) {
        const line = await reader.line(deadline, o.now);
        if (!line) return { ok: false, code: 'login-silent' };
        const text = line.toString('latin1');
        const a = o.protocol === 'imap' ? imapBackendAnswer(text, login.tag ?? '') : pop3BackendAnswer(text, step.expect);
        if (a === 'untagged') {
          relayBytes += line.length;
          if (relayBytes > MAX_UNTAGGED_BYTES) return { ok: false, code: 'backend-flood' };
          relay.push(line);
          continue;
        }
        if (a === 'continue' && step.expect === 'continue') {
          answered = true;
          continue;
        }
        // The final answer (or a refusal mid-way): it goes to the client, and the login is over.
        relay.push(line, reader.detach());
        return { ok: true, socket: sock, toClient: Buffer.concat(relay) };
      }
    }
    return { ok: false, code: 'login-incomplete' };
  } finally {
    socket.off('error', swallow);
    if (sock !== socket) sock.off('error', swallow);
  }
}
