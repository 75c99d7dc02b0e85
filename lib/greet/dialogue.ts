// Stage 2b, pure. What the IMAP and POP3 pre-login dialogues share: their step type, the login
// they produce, and how to replay it to a backend.
import type { Buffer } from 'node:buffer';

/** One piece of the login replayed to the backend and what to wait for after it. */
export interface ReplayStep {
  readonly bytes: Buffer;
  /** `continue`: the backend must ask for more ("+ ", or POP3's "+OK" after USER); `final`: its answer ends the login. */
  readonly expect: 'continue' | 'final';
}

/** A login read from the client. The password stays inside `steps` and is never logged. */
export interface Login {
  /** The user name as the client wrote it (IMAP LOGIN user, POP3 USER, SASL PLAIN authcid). */
  readonly user: string;
  readonly mechanism: 'login' | 'user-pass' | 'plain';
  readonly steps: readonly ReplayStep[];
  /** IMAP: the tag whose tagged answer ends the login. */
  readonly tag?: string;
}

/** The result of feeding client bytes to a dialogue. */
export interface GreetStep {
  /** Bytes of input consumed (0: wait for more). */
  readonly consumed: number;
  /** Replies to write to the client, in order. */
  readonly replies: readonly string[];
  /** `more`: keep reading; `starttls`: upgrade now (drop any buffered plaintext); `close`: end. */
  readonly then: 'more' | 'starttls' | 'close' | { readonly login: Login };
  /**
   * With `more` and nothing consumed: the input length before which the answer stays the same
   * whatever arrives (inside an IMAP literal's octets); the driver need not call again sooner.
   */
  readonly until?: number;
  /** With `close`: why — the client's LOGOUT/QUIT, or a limit it broke. */
  readonly closeCode?: 'logout' | 'too-many-bad' | 'too-many-commands' | 'too-long';
}

export interface GreetOptions {
  /** Whether STARTTLS/STLS may be offered (a TLS context exists and the mode is starttls). */
  readonly starttls: boolean;
  /** Whether the client connection is already TLS (implicit TLS, or after STARTTLS). */
  readonly secure: boolean;
  /** Refuse logins in clear. */
  readonly requireTls: boolean;
  /** Commands (of any kind) accepted before login, then the client is disconnected. */
  readonly maxCommands: number;
  /** Invalid or refused commands accepted before login, then the client is disconnected. */
  readonly maxBad: number;
}

/** How a backend line answers a replay step. */
export type BackendAnswer = 'continue' | 'final' | 'untagged';

/** Commands a client may send before logging in. Real clients need < 10 (CAPABILITY, ID,
 *  STARTTLS, CAPABILITY, LOGIN); 50 leaves room for retries and stops scripted abuse. */
export const MAX_COMMANDS_BEFORE_LOGIN = 50;
/** Invalid or refused commands before login, after which the client is cut off (Dovecot
 *  disconnects after 10 bad commands, as does this). */
export const MAX_BAD_BEFORE_LOGIN = 10;
