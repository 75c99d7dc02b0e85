// Stage 2b, pure. tether's side of the IMAP dialogue before login (RFC 9051 / 3501): greet,
// answer CAPABILITY, NOOP, ID, LOGOUT and STARTTLS, refuse everything else, and read the
// login — LOGIN with atoms, quoted strings or literals, or AUTHENTICATE PLAIN with an
// initial response (SASL-IR, RFC 4959) or after a "+ " round.
import { Buffer } from 'node:buffer';
import { parsePlain } from '../wire/sasl/plain.js';
import { parseImapCommand, MAX_IMAP_LINE } from '../wire/imap/command.js';
import type { BackendAnswer, GreetOptions, GreetStep, Login } from './dialogue.js';

/** Capabilities tether honours before login. Nothing that needs the backend (COMPRESS, IDLE,
 *  ENABLE): clients must ask again after login, and the backend answers then. */
function capabilities(o: GreetOptions): string {
  const caps = ['IMAP4rev1', 'LITERAL+', 'SASL-IR', 'ID'];
  if (o.starttls && !o.secure) caps.push('STARTTLS');
  if (o.requireTls && !o.secure) caps.push('LOGINDISABLED');
  else caps.push('AUTH=PLAIN');
  return caps.join(' ');
}

export class ImapGreeter {
  private commands = 0;
  private bad = 0;
  /** The tag of an AUTHENTICATE PLAIN waiting for its "+ " response line. */
  private pendingAuth: string | undefined;

  constructor(private o: GreetOptions) {}

  /** The server greeting, with capabilities so clients skip a round trip. */
  greeting(): string {
    return `* OK [CAPABILITY ${capabilities(this.o)}] tether ready\r\n`;
  }

  /** After STARTTLS the connection is secure: capabilities change. */
  secured(): void {
    this.o = { ...this.o, secure: true };
  }

  private refuse(replies: string[], line: string, consumed: number): GreetStep {
    this.bad++;
    replies.push(line);
    if (this.bad >= this.o.maxBad) {
      replies.push('* BYE Too many invalid commands\r\n');
      return { consumed, replies, then: 'close', closeCode: 'too-many-bad' };
    }
    return { consumed, replies, then: 'more' };
  }

  /** Feeds the client's unconsumed bytes; call again while `consumed` > 0. */
  next(input: Buffer): GreetStep {
    if (input.length === 0) return { consumed: 0, replies: [], then: 'more' };
    if (this.pendingAuth !== undefined) return this.authResponse(input, this.pendingAuth);
    const r = parseImapCommand(input);
    switch (r.kind) {
      case 'need-more':
        return { consumed: 0, replies: r.continuation ? ['+ Ready for literal data\r\n'] : [], then: 'more', ...(r.until === undefined ? {} : { until: r.until }) };
      case 'too-long':
        return { consumed: input.length, replies: ['* BYE Command line too long\r\n'], then: 'close', closeCode: 'too-long' };
      case 'bad':
        return this.refuse([], `${r.tag ?? '*'} BAD ${r.reason}\r\n`, r.length);
      case 'match':
        break;
    }
    const { tag, name, args, length } = r.command;
    this.commands++;
    if (this.commands > this.o.maxCommands) {
      return { consumed: length, replies: ['* BYE Too many commands before login\r\n'], then: 'close', closeCode: 'too-many-commands' };
    }
    const ok = (text: string): string => `${tag} OK ${text}\r\n`;
    switch (name) {
      case 'CAPABILITY':
        return { consumed: length, replies: [`* CAPABILITY ${capabilities(this.o)}\r\n`, ok('CAPABILITY completed')], then: 'more' };
      case 'NOOP':
        return { consumed: length, replies: [ok('NOOP completed')], then: 'more' };
      case 'ID':
        return { consumed: length, replies: ['* ID NIL\r\n', ok('ID completed')], then: 'more' };
      case 'LOGOUT':
        return { consumed: length, replies: ['* BYE Logging out\r\n', ok('LOGOUT completed')], then: 'close', closeCode: 'logout' };
      case 'STARTTLS':
        if (!this.o.starttls || this.o.secure) return this.refuse([], `${tag} BAD STARTTLS not available\r\n`, length);
        // RFC 9051 §6.2.1: whatever the client sent after STARTTLS in clear must be dropped;
        // the driver discards the rest of the input.
        return { consumed: input.length, replies: [ok('Begin TLS negotiation now')], then: 'starttls' };
      case 'LOGIN': {
        if (this.o.requireTls && !this.o.secure) return this.refuse([], `${tag} NO [PRIVACYREQUIRED] Use STARTTLS first\r\n`, length);
        const user = args[0];
        if (args.length !== 2 || user === undefined || user === '') return this.refuse([], `${tag} BAD LOGIN expects user and password\r\n`, length);
        const pieces = r.command.pieces;
        const login: Login = {
          user,
          mechanism: 'login',
          tag,
          steps: pieces.map((bytes, i) => ({ bytes, expect: i < pieces.length - 1 ? 'continue' : 'final' })),
        };
        return { consumed: length, replies: [], then: { login } };
      }
      case 'AUTHENTICATE': {
        if (this.o.requireTls && !this.o.secure) return this.refuse([], `${tag} NO [PRIVACYREQUIRED] Use STARTTLS first\r\n`, length);
        if ((args[0] ?? '').toUpperCase() !== 'PLAIN') return this.refuse([], `${tag} NO [CANNOT] Unsupported authentication mechanism\r\n`, length);
        if (args.length > 2) return this.refuse([], `${tag} BAD Too many arguments\r\n`, length);
        const ir = args[1];
        if (ir === undefined) {
          this.pendingAuth = tag;
          return { consumed: length, replies: ['+ \r\n'], then: 'more' };
        }
        return this.plain(tag, ir, length, []);
      }
      default:
        return this.refuse([], `${tag} BAD Log in first\r\n`, length);
    }
  }

  private plain(tag: string, b64: string, consumed: number, replies: string[]): GreetStep {
    const creds = parsePlain(b64);
    if (!creds) return this.refuse(replies, `${tag} NO [AUTHENTICATIONFAILED] Invalid PLAIN response\r\n`, consumed);
    // Replayed without SASL-IR (command, "+", response), which every backend understands.
    const login: Login = {
      user: creds.authcid,
      mechanism: 'plain',
      tag,
      steps: [
        { bytes: Buffer.from(`${tag} AUTHENTICATE PLAIN\r\n`, 'latin1'), expect: 'continue' },
        { bytes: Buffer.from(`${b64.trim()}\r\n`, 'latin1'), expect: 'final' },
      ],
    };
    return { consumed, replies, then: { login } };
  }

  private authResponse(input: Buffer, tag: string): GreetStep {
    const lf = input.indexOf(10);
    if (lf < 0) {
      return input.length > MAX_IMAP_LINE ? { consumed: input.length, replies: ['* BYE Line too long\r\n'], then: 'close', closeCode: 'too-long' } : { consumed: 0, replies: [], then: 'more' };
    }
    this.pendingAuth = undefined;
    const line = input.subarray(0, lf).toString('latin1').replace(/\r$/, '');
    if (line === '*') return this.refuse([], `${tag} BAD AUTHENTICATE cancelled\r\n`, lf + 1);
    return this.plain(tag, line, lf + 1, []);
  }
}

/** Classifies a backend line during the login replay of the command tagged `tag`. */
export function imapBackendAnswer(line: string, tag: string): BackendAnswer {
  if (line.startsWith('+')) return 'continue';
  if (line.startsWith(`${tag} `)) return 'final';
  return 'untagged';
}

/** Whether a backend's greeting lets us log in (`* OK`; `* PREAUTH` would skip the login). */
export function imapGreetingOk(line: string): boolean {
  return /^\* OK\b/i.test(line);
}
