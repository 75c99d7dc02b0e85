// tether's POP3 pre-login dialogue (lib/greet/pop3.ts) as transcripts: client bytes in, server
// lines out, and what the driver must do next. The driver feeds the greeter exactly as
// lib/greet/converse.ts does (buffer, call next while it consumes, drop plaintext on STLS).
import { Buffer } from 'node:buffer';
import t, { type Test } from 'tap';
import { Pop3Greeter, pop3BackendAnswer, pop3GreetingOk } from '../../lib/greet/pop3.js';
import { MAX_BAD_BEFORE_LOGIN, MAX_COMMANDS_BEFORE_LOGIN, type GreetOptions, type GreetStep, type Login } from '../../lib/greet/dialogue.js';
import { MAX_POP3_AUTH_LINE, MAX_POP3_LINE } from '../../lib/wire/pop3/command.js';

const DEFAULTS: GreetOptions = { starttls: true, secure: false, requireTls: false, maxCommands: MAX_COMMANDS_BEFORE_LOGIN, maxBad: MAX_BAD_BEFORE_LOGIN };
const b64 = (raw: string): string => Buffer.from(raw, 'utf8').toString('base64');
const ALICE = b64('\0alice\0secret');

type Then = 'more' | 'starttls' | 'close' | 'login';

class Driver {
  readonly g: Pop3Greeter;
  buf: Buffer = Buffer.alloc(0);
  login: Login | undefined;
  constructor(o: Partial<GreetOptions> = {}) {
    this.g = new Pop3Greeter({ ...DEFAULTS, ...o });
  }
  feed(data: string | Buffer): { out: string; then: Then } {
    this.buf = Buffer.concat([this.buf, typeof data === 'string' ? Buffer.from(data, 'utf8') : data]);
    let out = '';
    for (let i = 0; i < 1_000; i++) {
      const step: GreetStep = this.g.next(this.buf);
      out += step.replies.join('');
      this.buf = this.buf.subarray(step.consumed);
      if (step.then === 'more') {
        if (step.consumed === 0 || this.buf.length === 0) return { out, then: 'more' };
        continue;
      }
      if (step.then === 'starttls') {
        this.buf = Buffer.alloc(0);
        return { out, then: 'starttls' };
      }
      if (step.then === 'close') return { out, then: 'close' };
      this.login = step.then.login;
      return { out, then: 'login' };
    }
    throw new Error('the greeter did not settle in 1000 steps');
  }
}

type Script = readonly (readonly [string, string, Then])[];

function play(t: Test, d: Driver, script: Script): void {
  for (const [i, [input, out, then]] of script.entries()) t.same(d.feed(input), { out, then }, `${i}: ${JSON.stringify(input)}`);
}

const steps = (l: Login | undefined): [string, string][] => (l?.steps ?? []).map((s) => [s.bytes.toString('utf8'), s.expect]);

/** A CAPA answer holding `caps` between the status line and the final dot. */
const capa = (...caps: string[]): string => ['+OK Capability list follows', ...caps, 'IMPLEMENTATION tether', '.'].map((l) => `${l}\r\n`).join('');

t.test('greeting', (t) => {
  t.equal(new Driver().g.greeting(), '+OK tether POP3 ready\r\n');
  t.end();
});

t.test('CAPA contents in each state', (t) => {
  const cases: readonly (readonly [string, Partial<GreetOptions>, string[]])[] = [
    ['STLS allowed, not yet secure', {}, ['USER', 'SASL PLAIN', 'STLS']],
    ['STLS not allowed', { starttls: false }, ['USER', 'SASL PLAIN']],
    ['implicit TLS', { secure: true }, ['USER', 'SASL PLAIN']],
    ['require-tls in clear: no login mechanisms until STLS', { requireTls: true }, ['STLS']],
    ['require-tls over implicit TLS', { requireTls: true, secure: true }, ['USER', 'SASL PLAIN']],
  ];
  for (const [name, o, caps] of cases) {
    t.test(name, (t) => {
      play(t, new Driver(o), [['CAPA\r\n', capa(...caps), 'more']]);
      t.end();
    });
  }
  t.test('after STLS', (t) => {
    const d = new Driver({ requireTls: true });
    play(t, d, [['STLS\r\n', '+OK Begin TLS negotiation\r\n', 'starttls']]);
    d.g.secured();
    play(t, d, [['capa\r\n', capa('USER', 'SASL PLAIN'), 'more']]);
    t.end();
  });
  t.end();
});

t.test('NOOP, unknown and refused commands, QUIT', (t) => {
  play(t, new Driver(), [
    ['', '', 'more'],
    ['NOOP\r\n', '+OK\r\n', 'more'],
    ['noop\n', '+OK\r\n', 'more'],
    ['STAT\r\n', '-ERR Log in first\r\n', 'more'],
    ['RETR 1\r\n', '-ERR Log in first\r\n', 'more'],
    ['XYZZY1\r\n', '-ERR Unknown command\r\n', 'more'],
    ['\r\n', '-ERR Unknown command\r\n', 'more'],
    ['NOOP\r\nNOOP\r\n', '+OK\r\n+OK\r\n', 'more'],
    ['QUIT\r\n', '+OK Bye\r\n', 'close'],
  ]);
  t.end();
});

t.test('STLS', (t) => {
  t.test('accepted; plaintext pipelined after it is dropped', (t) => {
    const d = new Driver();
    play(t, d, [['STLS\r\nUSER injected\r\n', '+OK Begin TLS negotiation\r\n', 'starttls']]);
    t.equal(d.buf.length, 0, 'RFC 2595 §4');
    d.g.secured();
    play(t, d, [['STLS\r\n', '-ERR STLS not available\r\n', 'more']]);
    t.end();
  });
  t.test('refused when not allowed', (t) => {
    play(t, new Driver({ starttls: false }), [['STLS\r\n', '-ERR STLS not available\r\n', 'more']]);
    play(t, new Driver({ secure: true }), [['STLS\r\n', '-ERR STLS not available\r\n', 'more']]);
    t.end();
  });
  t.end();
});

t.test('USER / PASS', (t) => {
  t.test('USER then PASS: both lines replayed exactly, USER waits for +OK', (t) => {
    const d = new Driver();
    play(t, d, [
      ['USER Alice@Example.org\r\n', '+OK\r\n', 'more'],
      ['PASS sec', '', 'more'],
      ['ret word\r\nSTAT\r\n', '', 'login'],
    ]);
    t.same(d.login && { user: d.login.user, mechanism: d.login.mechanism, tag: d.login.tag }, { user: 'Alice@Example.org', mechanism: 'user-pass', tag: undefined });
    t.notOk(d.login && 'tag' in d.login, 'POP3 logins have no tag');
    t.same(steps(d.login), [
      ['USER Alice@Example.org\r\n', 'continue'],
      ['PASS secret word\r\n', 'final'],
    ]);
    t.equal(d.buf.toString(), 'STAT\r\n', 'the pipelined command is left over');
    t.end();
  });
  t.test('bare LF line ends are replayed as sent', (t) => {
    const d = new Driver();
    play(t, d, [['user bob\npass pw\n', '+OK\r\n', 'login']]);
    t.same(steps(d.login), [
      ['user bob\n', 'continue'],
      ['pass pw\n', 'final'],
    ]);
    t.end();
  });
  t.test('the last USER wins', (t) => {
    const d = new Driver();
    play(t, d, [['USER first\r\nUSER second\r\nPASS pw\r\n', '+OK\r\n+OK\r\n', 'login']]);
    t.equal(d.login?.user, 'second');
    t.same(steps(d.login)[0], ['USER second\r\n', 'continue']);
    t.end();
  });
  t.test('PASS without USER, USER without a name', (t) => {
    const d = new Driver();
    play(t, d, [
      ['PASS secret\r\n', '-ERR USER first\r\n', 'more'],
      ['USER\r\n', '-ERR USER needs a name\r\n', 'more'],
      ['USER \r\n', '-ERR USER needs a name\r\n', 'more'],
      ['PASS secret\r\n', '-ERR USER first\r\n', 'more'],
      ['USER alice\r\n', '+OK\r\n', 'more'],
      ['PASS secret\r\n', '', 'login'],
    ]);
    t.end();
  });
  t.test('require-tls refuses USER and PASS in clear with [AUTH]', (t) => {
    play(t, new Driver({ requireTls: true }), [
      ['USER alice\r\n', '-ERR [AUTH] TLS required: use STLS first\r\n', 'more'],
      ['PASS secret\r\n', '-ERR [AUTH] TLS required: use STLS first\r\n', 'more'],
    ]);
    const d = new Driver({ requireTls: true, secure: true });
    play(t, d, [['USER alice\r\nPASS secret\r\n', '+OK\r\n', 'login']]);
    t.end();
  });
  t.end();
});

t.test('AUTH', (t) => {
  t.test('AUTH with no arguments lists PLAIN', (t) => {
    play(t, new Driver(), [['AUTH\r\n', '+OK\r\nPLAIN\r\n.\r\n', 'more']]);
    play(t, new Driver({ requireTls: true }), [['AUTH\r\n', '+OK\r\nPLAIN\r\n.\r\n', 'more']]);
    t.end();
  });
  t.test('AUTH PLAIN with an initial response', (t) => {
    const d = new Driver();
    play(t, d, [[`AUTH PLAIN ${ALICE}\r\n`, '', 'login']]);
    t.same(d.login && { user: d.login.user, mechanism: d.login.mechanism }, { user: 'alice', mechanism: 'plain' });
    t.same(steps(d.login), [
      ['AUTH PLAIN\r\n', 'continue'],
      [`${ALICE}\r\n`, 'final'],
    ]);
    t.end();
  });
  t.test('AUTH PLAIN then a "+ " round, the user is the authcid', (t) => {
    const d = new Driver();
    const resp = b64('admin\0bob\0pw');
    play(t, d, [
      ['auth plain\r\n', '+ \r\n', 'more'],
      [resp.slice(0, 5), '', 'more'],
      [`${resp.slice(5)}\r\n`, '', 'login'],
    ]);
    t.equal(d.login?.user, 'bob');
    t.same(steps(d.login), [
      ['AUTH PLAIN\r\n', 'continue'],
      [`${resp}\r\n`, 'final'],
    ]);
    t.end();
  });
  t.test('the response line may be longer than a command (up to MAX_POP3_AUTH_LINE)', (t) => {
    const long = b64(`\0alice\0${'p'.repeat(600)}`);
    t.ok(long.length + 2 > MAX_POP3_LINE && long.length + 2 <= MAX_POP3_AUTH_LINE);
    const d = new Driver();
    play(t, d, [
      ['AUTH PLAIN\r\n', '+ \r\n', 'more'],
      [`${long}\r\n`, '', 'login'],
    ]);
    t.equal(d.login?.user, 'alice');
    play(t, new Driver(), [[`AUTH PLAIN ${long}\r\n`, '-ERR Line too long\r\n', 'close']]);
    play(t, new Driver(), [
      ['AUTH PLAIN\r\n', '+ \r\n', 'more'],
      ['A'.repeat(MAX_POP3_AUTH_LINE), '-ERR Line too long\r\n', 'close'],
    ]);
    t.end();
  });
  t.test('"*" cancels; a retry works', (t) => {
    const d = new Driver();
    play(t, d, [
      ['AUTH PLAIN\r\n', '+ \r\n', 'more'],
      ['*\r\n', '-ERR AUTH cancelled\r\n', 'more'],
      [`AUTH PLAIN ${ALICE}\r\n`, '', 'login'],
    ]);
    t.end();
  });
  t.test('an unsupported mechanism is refused, then a retry with PLAIN works', (t) => {
    const d = new Driver();
    play(t, d, [
      ['AUTH LOGIN\r\n', '-ERR Unsupported mechanism\r\n', 'more'],
      ['AUTH CRAM-MD5\r\n', '-ERR Unsupported mechanism\r\n', 'more'],
      ['AUTH PLAIN\r\n', '+ \r\n', 'more'],
      [`${ALICE}\r\n`, '', 'login'],
    ]);
    t.equal(d.login?.user, 'alice');
    t.end();
  });
  t.test('malformed PLAIN responses are refused with [AUTH]', (t) => {
    play(t, new Driver(), [
      ['AUTH PLAIN not-base64!\r\n', '-ERR [AUTH] Invalid PLAIN response\r\n', 'more'],
      ['AUTH PLAIN\r\n', '+ \r\n', 'more'],
      [`${b64('alice\0secret')}\r\n`, '-ERR [AUTH] Invalid PLAIN response\r\n', 'more'],
      [`AUTH PLAIN ${b64('\0alice\0')}\r\n`, '-ERR [AUTH] Invalid PLAIN response\r\n', 'more'],
    ]);
    t.end();
  });
  t.test('require-tls refuses AUTH PLAIN in clear', (t) => {
    play(t, new Driver({ requireTls: true }), [
      [`AUTH PLAIN ${ALICE}\r\n`, '-ERR [AUTH] TLS required: use STLS first\r\n', 'more'],
      ['AUTH PLAIN\r\n', '-ERR [AUTH] TLS required: use STLS first\r\n', 'more'],
    ]);
    t.end();
  });
  t.end();
});

t.test('limits', (t) => {
  t.test(`maxBad invalid or refused commands close (default ${MAX_BAD_BEFORE_LOGIN})`, (t) => {
    const d = new Driver();
    const script: [string, string, Then][] = [];
    for (let i = 1; i < MAX_BAD_BEFORE_LOGIN; i++) script.push(['LIST\r\n', '-ERR Log in first\r\n', 'more']);
    script.push(['???\r\n', '-ERR Unknown command\r\n-ERR Too many invalid commands\r\n', 'close']);
    play(t, d, script);
    t.end();
  });
  t.test('refusals of every kind count', (t) => {
    play(t, new Driver({ maxBad: 3 }), [
      ['PASS x\r\n', '-ERR USER first\r\n', 'more'],
      ['AUTH PLAIN\r\n*\r\n', '+ \r\n-ERR AUTH cancelled\r\n', 'more'],
      ['AUTH X\r\n', '-ERR Unsupported mechanism\r\n-ERR Too many invalid commands\r\n', 'close'],
    ]);
    t.end();
  });
  t.test(`more than maxCommands commands close (default ${MAX_COMMANDS_BEFORE_LOGIN})`, (t) => {
    const d = new Driver();
    let answered = 0;
    for (let i = 0; i < MAX_COMMANDS_BEFORE_LOGIN; i++) if (d.feed('NOOP\r\n').out === '+OK\r\n') answered++;
    t.equal(answered, MAX_COMMANDS_BEFORE_LOGIN);
    play(t, d, [['USER alice\r\n', '-ERR Too many commands before login\r\n', 'close']]);
    t.end();
  });
  t.test(`a command line over ${MAX_POP3_LINE} octets closes`, (t) => {
    play(t, new Driver(), [[`USER ${'x'.repeat(MAX_POP3_LINE)}\r\n`, '-ERR Line too long\r\n', 'close']]);
    play(t, new Driver(), [['x'.repeat(MAX_POP3_LINE), '-ERR Line too long\r\n', 'close']]);
    const d = new Driver();
    play(t, d, [[`USER ${'x'.repeat(MAX_POP3_LINE - 7)}\r\n`, '+OK\r\n', 'more']]);
    t.end();
  });
  t.end();
});

t.test('pop3BackendAnswer classifies backend lines during the replay (lines as read, CRLF included)', (t) => {
  const cases: readonly (readonly [string, 'continue' | 'final', string])[] = [
    ['+OK\r\n', 'continue', 'continue'],
    ['+OK send PASS\r\n', 'continue', 'continue'],
    ['+ \r\n', 'continue', 'continue'],
    ['+\r\n', 'continue', 'continue'],
    ['+\n', 'continue', 'continue'],
    ['-ERR [AUTH] no such user\r\n', 'continue', 'final'],
    ['-ERR\r\n', 'continue', 'final'],
    ['+OK logged in\r\n', 'final', 'final'],
    ['-ERR [AUTH] bad password\r\n', 'final', 'final'],
    ['+ \r\n', 'final', 'final'],
  ];
  for (const [line, expect, want] of cases) t.equal(pop3BackendAnswer(line, expect), want, `${JSON.stringify(line)} after a ${expect} step`);
  t.end();
});

t.test('pop3GreetingOk', (t) => {
  const cases: readonly (readonly [string, boolean])[] = [
    ['+OK Dovecot ready.\r\n', true],
    ['+OK\r\n', true],
    ['-ERR too busy\r\n', false],
    ['* OK IMAP\r\n', false],
    ['', false],
  ];
  for (const [line, want] of cases) t.equal(pop3GreetingOk(line), want, JSON.stringify(line));
  t.end();
});
