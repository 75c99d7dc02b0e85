// Stage 2b, pure. tether's side of the POP3 dialogue before login (RFC 1939, RFC 2449 CAPA,
// RFC 2595 STLS, RFC 5034 AUTH): greet, answer CAPA, NOOP, QUIT, STLS and USER, refuse
// everything else, and read the login — USER then PASS, or AUTH PLAIN with or without an
// initial response.
import { Buffer } from 'node:buffer';
import { parsePlain } from '../wire/sasl/plain.js';
import { MAX_POP3_AUTH_LINE, MAX_POP3_LINE, parsePop3Command, readLine } from '../wire/pop3/command.js';
import type { BackendAnswer, GreetOptions, GreetStep, Login } from './dialogue.js';

export class Pop3Greeter {
  private commands = 0;
  private bad = 0;
  private user: { name: string; line: Buffer } | undefined;
  private pendingAuth = false;

  constructor(private o: GreetOptions) {}

  greeting(): string {
    return '+OK tether POP3 ready\r\n';
  }

  secured(): void {
    this.o = { ...this.o, secure: true };
  }

  private capa(): string[] {
    const lines = ['+OK Capability list follows'];
    const loginAllowed = !this.o.requireTls || this.o.secure;
    if (loginAllowed) lines.push('USER', 'SASL PLAIN');
    if (this.o.starttls && !this.o.secure) lines.push('STLS');
    lines.push('IMPLEMENTATION tether', '.');
    return lines.map((l) => `${l}\r\n`);
  }

  private refuse(line: string, consumed: number): GreetStep {
    this.bad++;
    if (this.bad >= this.o.maxBad) return { consumed, replies: [line, '-ERR Too many invalid commands\r\n'], then: 'close', closeCode: 'too-many-bad' };
    return { consumed, replies: [line], then: 'more' };
  }

  next(input: Buffer): GreetStep {
    if (input.length === 0) return { consumed: 0, replies: [], then: 'more' };
    const l = readLine(input, this.pendingAuth ? MAX_POP3_AUTH_LINE : MAX_POP3_LINE);
    if (l.kind === 'need-more') return { consumed: 0, replies: [], then: 'more' };
    if (l.kind === 'too-long') return { consumed: input.length, replies: ['-ERR Line too long\r\n'], then: 'close', closeCode: 'too-long' };
    const consumed = l.length;
    const raw = input.subarray(0, consumed);
    if (this.pendingAuth) {
      this.pendingAuth = false;
      if (l.text === '*') return this.refuse('-ERR AUTH cancelled\r\n', consumed);
      return this.plain(l.text, consumed);
    }
    const cmd = parsePop3Command(l.text);
    this.commands++;
    if (this.commands > this.o.maxCommands) return { consumed, replies: ['-ERR Too many commands before login\r\n'], then: 'close', closeCode: 'too-many-commands' };
    if (!cmd) return this.refuse('-ERR Unknown command\r\n', consumed);
    const loginAllowed = !this.o.requireTls || this.o.secure;
    switch (cmd.keyword) {
      case 'CAPA':
        return { consumed, replies: this.capa(), then: 'more' };
      case 'NOOP':
        return { consumed, replies: ['+OK\r\n'], then: 'more' };
      case 'QUIT':
        return { consumed, replies: ['+OK Bye\r\n'], then: 'close', closeCode: 'logout' };
      case 'STLS':
        if (!this.o.starttls || this.o.secure) return this.refuse('-ERR STLS not available\r\n', consumed);
        return { consumed: input.length, replies: ['+OK Begin TLS negotiation\r\n'], then: 'starttls' };
      case 'USER': {
        if (!loginAllowed) return this.refuse('-ERR [AUTH] TLS required: use STLS first\r\n', consumed);
        const name = l.text.slice(5);
        if (name === '') return this.refuse('-ERR USER needs a name\r\n', consumed);
        this.user = { name, line: Buffer.from(raw) };
        return { consumed, replies: ['+OK\r\n'], then: 'more' };
      }
      case 'PASS': {
        if (!loginAllowed) return this.refuse('-ERR [AUTH] TLS required: use STLS first\r\n', consumed);
        if (!this.user) return this.refuse('-ERR USER first\r\n', consumed);
        const login: Login = {
          user: this.user.name,
          mechanism: 'user-pass',
          steps: [
            { bytes: this.user.line, expect: 'continue' },
            { bytes: Buffer.from(raw), expect: 'final' },
          ],
        };
        return { consumed, replies: [], then: { login } };
      }
      case 'AUTH': {
        if (cmd.args.length === 0) return { consumed, replies: ['+OK\r\n', 'PLAIN\r\n', '.\r\n'], then: 'more' };
        if (!loginAllowed) return this.refuse('-ERR [AUTH] TLS required: use STLS first\r\n', consumed);
        if ((cmd.args[0] ?? '').toUpperCase() !== 'PLAIN') return this.refuse('-ERR Unsupported mechanism\r\n', consumed);
        const ir = cmd.args[1];
        if (ir === undefined) {
          this.pendingAuth = true;
          return { consumed, replies: ['+ \r\n'], then: 'more' };
        }
        return this.plain(ir, consumed);
      }
      default:
        return this.refuse('-ERR Log in first\r\n', consumed);
    }
  }

  private plain(b64: string, consumed: number): GreetStep {
    const creds = parsePlain(b64);
    if (!creds) return this.refuse('-ERR [AUTH] Invalid PLAIN response\r\n', consumed);
    const login: Login = {
      user: creds.authcid,
      mechanism: 'plain',
      steps: [
        { bytes: Buffer.from('AUTH PLAIN\r\n', 'latin1'), expect: 'continue' },
        { bytes: Buffer.from(`${b64.trim()}\r\n`, 'latin1'), expect: 'final' },
      ],
    };
    return { consumed, replies: [], then: { login } };
  }
}

/**
 * Classifies a backend line during a POP3 login replay: after USER, "+OK" continues; after
 * AUTH PLAIN, "+ " continues; "-ERR" (or the answer to the last step) is final.
 */
export function pop3BackendAnswer(line: string, expect: 'continue' | 'final'): BackendAnswer {
  if (expect === 'final') return 'final';
  // Lines arrive with their CRLF (connect/replay.ts): a bare "+" is "+\r\n".
  if (line.startsWith('+OK') || /^\+( |\r?\n?$)/.test(line)) return 'continue';
  return 'final';
}

export function pop3GreetingOk(line: string): boolean {
  return line.startsWith('+OK');
}
