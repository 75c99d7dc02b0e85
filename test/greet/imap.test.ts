// tether's IMAP pre-login dialogue (lib/greet/imap.ts) as transcripts: client bytes in, server
// lines out, and what the driver must do next. The driver below feeds the greeter exactly as
// lib/greet/converse.ts does (buffer, call next while it consumes, drop plaintext on STARTTLS).
import { Buffer } from 'node:buffer';
import t, { type Test } from 'tap';
import { ImapGreeter, imapBackendAnswer, imapGreetingOk } from '../../lib/greet/imap.js';
import { MAX_BAD_BEFORE_LOGIN, MAX_COMMANDS_BEFORE_LOGIN, type GreetOptions, type GreetStep, type Login } from '../../lib/greet/dialogue.js';
import { MAX_IMAP_LINE } from '../../lib/wire/imap/command.js';

const DEFAULTS: GreetOptions = { starttls: true, secure: false, requireTls: false, maxCommands: MAX_COMMANDS_BEFORE_LOGIN, maxBad: MAX_BAD_BEFORE_LOGIN };
const b64 = (raw: string): string => Buffer.from(raw, 'utf8').toString('base64');
const ALICE = b64('\0alice\0secret');

type Then = 'more' | 'starttls' | 'close' | 'login';

/** The greeter driven as converse.ts drives it. */
class Driver {
  readonly g: ImapGreeter;
  buf: Buffer = Buffer.alloc(0);
  login: Login | undefined;
  constructor(o: Partial<GreetOptions> = {}) {
    this.g = new ImapGreeter({ ...DEFAULTS, ...o });
  }
  /** Feeds client bytes; returns the server's output (joined) and what happens next. */
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

/** A transcript: each client chunk with the exact server output and what follows. */
type Script = readonly (readonly [string, string, Then])[];

function play(t: Test, d: Driver, script: Script): void {
  for (const [i, [input, out, then]] of script.entries()) {
    const got = d.feed(input);
    t.same(got, { out, then }, `${i}: ${JSON.stringify(input)}`);
  }
}

/** Login steps as text, for comparisons. */
const steps = (l: Login | undefined): [string, string][] => (l?.steps ?? []).map((s) => [s.bytes.toString('utf8'), s.expect]);

const CAPS = 'IMAP4rev1 LITERAL+ SASL-IR ID STARTTLS AUTH=PLAIN';

t.test('greeting and CAPABILITY in each state', (t) => {
  const cases: readonly (readonly [string, Partial<GreetOptions>, string])[] = [
    ['STARTTLS allowed, not yet secure', {}, CAPS],
    ['STARTTLS not allowed (no TLS context, or --tls none)', { starttls: false }, 'IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN'],
    ['implicit TLS: already secure', { secure: true }, 'IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN'],
    ['require-tls in clear: LOGINDISABLED, no AUTH=PLAIN', { requireTls: true }, 'IMAP4rev1 LITERAL+ SASL-IR ID STARTTLS LOGINDISABLED'],
    ['require-tls over implicit TLS', { requireTls: true, secure: true }, 'IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN'],
  ];
  for (const [name, o, caps] of cases) {
    const d = new Driver(o);
    t.equal(d.g.greeting(), `* OK [CAPABILITY ${caps}] tether ready\r\n`, `${name}: greeting`);
    play(t, d, [['c1 CAPABILITY\r\n', `* CAPABILITY ${caps}\r\nc1 OK CAPABILITY completed\r\n`, 'more']]);
  }
  t.end();
});

t.test('every pre-login command', (t) => {
  const d = new Driver();
  play(t, d, [
    ['', '', 'more'],
    ['a1 capability\r\n', `* CAPABILITY ${CAPS}\r\na1 OK CAPABILITY completed\r\n`, 'more'],
    ['a2 NOOP\r\n', 'a2 OK NOOP completed\r\n', 'more'],
    ['a3 ID NIL\r\n', '* ID NIL\r\na3 OK ID completed\r\n', 'more'],
    ['a4 ID ("name" "sodr" "version" "19.34" "vendor" "Pink Floyd Music Limited")\r\n', '* ID NIL\r\na4 OK ID completed\r\n', 'more'],
    ['a5 ID ("name" "a (b) \\"c\\"" "os" NIL)\r\n', '* ID NIL\r\na5 OK ID completed\r\n', 'more'],
    ['a6 SELECT INBOX\r\n', 'a6 BAD Log in first\r\n', 'more'],
    ['a7 ENABLE UTF8=ACCEPT\r\n', 'a7 BAD Log in first\r\n', 'more'],
    ['a8 NOOP\na9 NOOP\r\n', 'a8 OK NOOP completed\r\na9 OK NOOP completed\r\n', 'more'],
    ['b1 LOGOUT\r\n', '* BYE Logging out\r\nb1 OK LOGOUT completed\r\n', 'close'],
  ]);
  t.end();
});

t.test('commands arriving a byte at a time are answered once, when complete', (t) => {
  const d = new Driver();
  const text = 'a1 NOOP\r\n';
  let out = '';
  for (const ch of text) out += d.feed(ch).out;
  t.equal(out, 'a1 OK NOOP completed\r\n');
  t.end();
});

t.test('STARTTLS', (t) => {
  t.test('offered, accepted, and the plaintext sent after it is dropped', (t) => {
    const d = new Driver();
    play(t, d, [['s1 STARTTLS\r\ns2 LOGIN injected pw\r\n', 's1 OK Begin TLS negotiation now\r\n', 'starttls']]);
    t.equal(d.buf.length, 0, 'nothing left over: RFC 9051 §6.2.1');
    d.g.secured();
    play(t, d, [
      ['s3 CAPABILITY\r\n', '* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN\r\ns3 OK CAPABILITY completed\r\n', 'more'],
      ['s4 STARTTLS\r\n', 's4 BAD STARTTLS not available\r\n', 'more'],
    ]);
    t.end();
  });
  t.test('refused when not allowed', (t) => {
    play(t, new Driver({ starttls: false }), [['s1 STARTTLS\r\n', 's1 BAD STARTTLS not available\r\n', 'more']]);
    play(t, new Driver({ secure: true }), [['s1 STARTTLS\r\n', 's1 BAD STARTTLS not available\r\n', 'more']]);
    t.end();
  });
  t.end();
});

t.test('require-tls', (t) => {
  const d = new Driver({ requireTls: true });
  play(t, d, [
    ['r1 LOGIN alice secret\r\n', 'r1 NO [PRIVACYREQUIRED] Use STARTTLS first\r\n', 'more'],
    [`r2 AUTHENTICATE PLAIN ${ALICE}\r\n`, 'r2 NO [PRIVACYREQUIRED] Use STARTTLS first\r\n', 'more'],
    ['r3 AUTHENTICATE PLAIN\r\n', 'r3 NO [PRIVACYREQUIRED] Use STARTTLS first\r\n', 'more'],
    ['r4 STARTTLS\r\n', 'r4 OK Begin TLS negotiation now\r\n', 'starttls'],
  ]);
  d.g.secured();
  play(t, d, [
    ['r5 CAPABILITY\r\n', '* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN\r\nr5 OK CAPABILITY completed\r\n', 'more'],
    ['r6 LOGIN alice secret\r\n', '', 'login'],
  ]);
  t.equal(d.login?.user, 'alice');
  t.end();
});

t.test('LOGIN', (t) => {
  t.test('atoms: one final step, the command as the client sent it', (t) => {
    const d = new Driver();
    play(t, d, [['L1 login Alice@Example.org secret\r\n', '', 'login']]);
    t.same(d.login, { user: 'Alice@Example.org', mechanism: 'login', tag: 'L1', steps: d.login?.steps });
    t.same(steps(d.login), [['L1 login Alice@Example.org secret\r\n', 'final']]);
    t.end();
  });
  t.test('quoted strings', (t) => {
    const d = new Driver();
    play(t, d, [['L2 LOGIN "al ice" "se\\"cret"\r\n', '', 'login']]);
    t.equal(d.login?.user, 'al ice');
    t.same(steps(d.login), [['L2 LOGIN "al ice" "se\\"cret"\r\n', 'final']]);
    t.end();
  });
  t.test('sync literals: "+ " once per literal, a continue step per literal piece, the last final', (t) => {
    const d = new Driver();
    play(t, d, [
      ['L3 LOGIN {5}\r\n', '+ Ready for literal data\r\n', 'more'],
      ['al', '', 'more'],
      ['ice {6}\r\n', '+ Ready for literal data\r\n', 'more'],
      ['sec', '', 'more'],
      ['ret\r\n', '', 'login'],
    ]);
    t.same(d.login && { user: d.login.user, mechanism: d.login.mechanism, tag: d.login.tag }, { user: 'alice', mechanism: 'login', tag: 'L3' });
    t.same(steps(d.login), [
      ['L3 LOGIN {5}\r\n', 'continue'],
      ['alice {6}\r\n', 'continue'],
      ['secret\r\n', 'final'],
    ]);
    t.end();
  });
  t.test('a sync literal fed a byte at a time: "+ " exactly once', (t) => {
    const d = new Driver();
    const text = 'L4 LOGIN {5}\r\nalice {6}\r\nsecret\r\n';
    let out = '';
    let then: Then = 'more';
    for (const ch of text) {
      const r = d.feed(ch);
      out += r.out;
      then = r.then;
    }
    t.equal(out, '+ Ready for literal data\r\n+ Ready for literal data\r\n', 'one "+ " per literal');
    t.equal(then, 'login');
    t.equal(d.login?.user, 'alice');
    t.same(steps(d.login).map(([, e]) => e), ['continue', 'continue', 'final']);
    t.end();
  });
  t.test('a zero-length sync literal still gets its "+ "', (t) => {
    const d = new Driver();
    play(t, d, [
      ['L5 LOGIN alice {0}\r\n', '+ Ready for literal data\r\n', 'more'],
      ['\r\n', '', 'login'],
    ]);
    t.same(steps(d.login), [
      ['L5 LOGIN alice {0}\r\n', 'continue'],
      ['\r\n', 'final'],
    ]);
    t.end();
  });
  t.test('LITERAL+: no "+ ", one final step', (t) => {
    const d = new Driver();
    play(t, d, [['L6 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n', '', 'login']]);
    t.same(steps(d.login), [['L6 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n', 'final']]);
    t.end();
  });
  t.test('commands pipelined after the login stay in the buffer (the leftover)', (t) => {
    const d = new Driver();
    play(t, d, [['L7 LOGIN alice secret\r\nL8 SELECT INBOX\r\n', '', 'login']]);
    t.equal(d.buf.toString(), 'L8 SELECT INBOX\r\n');
    t.end();
  });
  t.test('wrong arguments are refused and the client may retry', (t) => {
    play(t, new Driver(), [
      ['L1 LOGIN alice\r\n', 'L1 BAD LOGIN expects user and password\r\n', 'more'],
      ['L2 LOGIN alice secret extra\r\n', 'L2 BAD LOGIN expects user and password\r\n', 'more'],
      ['L3 LOGIN "" secret\r\n', 'L3 BAD LOGIN expects user and password\r\n', 'more'],
      ['L4 LOGIN\r\n', 'L4 BAD LOGIN expects user and password\r\n', 'more'],
      ['L5 LOGIN alice secret\r\n', '', 'login'],
    ]);
    t.end();
  });
  t.end();
});

t.test('AUTHENTICATE PLAIN', (t) => {
  t.test('with an initial response (SASL-IR): replayed as command, "+", response', (t) => {
    const d = new Driver();
    play(t, d, [[`A1 AUTHENTICATE PLAIN ${ALICE}\r\n`, '', 'login']]);
    t.same(d.login && { user: d.login.user, mechanism: d.login.mechanism, tag: d.login.tag }, { user: 'alice', mechanism: 'plain', tag: 'A1' });
    t.same(steps(d.login), [
      ['A1 AUTHENTICATE PLAIN\r\n', 'continue'],
      [`${ALICE}\r\n`, 'final'],
    ]);
    t.end();
  });
  t.test('the user is the authcid, not the authzid; the mechanism name is case-insensitive', (t) => {
    const d = new Driver();
    play(t, d, [[`A2 authenticate plain ${b64('admin\0bob\0pw')}\r\n`, '', 'login']]);
    t.equal(d.login?.user, 'bob');
    t.end();
  });
  t.test('after a "+ " round, the response split across reads', (t) => {
    const d = new Driver();
    play(t, d, [
      ['A3 AUTHENTICATE PLAIN\r\n', '+ \r\n', 'more'],
      [ALICE.slice(0, 7), '', 'more'],
      [`${ALICE.slice(7)}\r\nA4 SELECT INBOX\r\n`, '', 'login'],
    ]);
    t.equal(d.login?.user, 'alice');
    t.same(steps(d.login), [
      ['A3 AUTHENTICATE PLAIN\r\n', 'continue'],
      [`${ALICE}\r\n`, 'final'],
    ]);
    t.equal(d.buf.toString(), 'A4 SELECT INBOX\r\n', 'the pipelined command is left over');
    t.end();
  });
  t.test('"*" cancels; the client may try again', (t) => {
    const d = new Driver();
    play(t, d, [
      ['A5 AUTHENTICATE PLAIN\r\n', '+ \r\n', 'more'],
      ['*\r\n', 'A5 BAD AUTHENTICATE cancelled\r\n', 'more'],
      ['A6 NOOP\r\n', 'A6 OK NOOP completed\r\n', 'more'],
      ['A7 AUTHENTICATE PLAIN\r\n', '+ \r\n', 'more'],
      [`${ALICE}\n`, '', 'login'],
    ]);
    t.equal(d.login?.tag, 'A7');
    t.end();
  });
  t.test('a malformed response is refused, in the round or as an initial response', (t) => {
    play(t, new Driver(), [
      ['A8 AUTHENTICATE PLAIN\r\n', '+ \r\n', 'more'],
      ['not base64!\r\n', 'A8 NO [AUTHENTICATIONFAILED] Invalid PLAIN response\r\n', 'more'],
      [`A9 AUTHENTICATE PLAIN ${b64('alice\0secret')}\r\n`, 'A9 NO [AUTHENTICATIONFAILED] Invalid PLAIN response\r\n', 'more'],
      [`B1 AUTHENTICATE PLAIN ${b64('\0alice\0')}\r\n`, 'B1 NO [AUTHENTICATIONFAILED] Invalid PLAIN response\r\n', 'more'],
    ]);
    t.end();
  });
  t.test('an unsupported mechanism is refused, then a retry with PLAIN works', (t) => {
    const d = new Driver();
    play(t, d, [
      ['M1 AUTHENTICATE CRAM-MD5\r\n', 'M1 NO [CANNOT] Unsupported authentication mechanism\r\n', 'more'],
      ['M2 AUTHENTICATE XOAUTH2 dXNlcj1h\r\n', 'M2 NO [CANNOT] Unsupported authentication mechanism\r\n', 'more'],
      ['M3 AUTHENTICATE\r\n', 'M3 NO [CANNOT] Unsupported authentication mechanism\r\n', 'more'],
      [`M4 AUTHENTICATE PLAIN ${ALICE} extra\r\n`, 'M4 BAD Too many arguments\r\n', 'more'],
      [`M5 AUTHENTICATE PLAIN ${ALICE}\r\n`, '', 'login'],
    ]);
    t.equal(d.login?.user, 'alice');
    t.end();
  });
  t.test('a response line over MAX_IMAP_LINE without LF closes', (t) => {
    const d = new Driver();
    play(t, d, [
      ['A1 AUTHENTICATE PLAIN\r\n', '+ \r\n', 'more'],
      ['A'.repeat(MAX_IMAP_LINE), '', 'more'],
      ['A', '* BYE Line too long\r\n', 'close'],
    ]);
    t.end();
  });
  t.end();
});

t.test('bad commands, limits and closing', (t) => {
  t.test('syntax errors answer BAD with the tag when known, * otherwise', (t) => {
    play(t, new Driver(), [
      ['+x NOOP\r\n', '* BAD bad tag\r\n', 'more'],
      ['"q" NOOP\r\n', '* BAD bad tag\r\n', 'more'],
      ['\r\n', '* BAD missing command\r\n', 'more'],
      ['t1\r\n', 't1 BAD missing command\r\n', 'more'],
      ['t2 NOOP\rX\r\n', 't2 BAD CR without LF\r\n', 'more'],
      ['t3 LOGIN {1}x\r\n', 't3 BAD literal not followed by CRLF\r\n', 'more'],
      ['t4 NOOP\r\n', 't4 OK NOOP completed\r\n', 'more'],
    ]);
    t.end();
  });
  t.test(`after maxBad invalid or refused commands the client is cut off (default ${MAX_BAD_BEFORE_LOGIN})`, (t) => {
    const d = new Driver();
    const script: [string, string, Then][] = [];
    for (let i = 1; i < MAX_BAD_BEFORE_LOGIN; i++) script.push([`x${i} FETCH 1\r\n`, `x${i} BAD Log in first\r\n`, 'more']);
    script.push(['+bad\r\n', '* BAD bad tag\r\n* BYE Too many invalid commands\r\n', 'close']);
    play(t, d, script);
    t.end();
  });
  t.test('refusals of every kind count toward maxBad', (t) => {
    play(t, new Driver({ maxBad: 4, starttls: false }), [
      ['a STARTTLS\r\n', 'a BAD STARTTLS not available\r\n', 'more'],
      ['b AUTHENTICATE LOGIN\r\n', 'b NO [CANNOT] Unsupported authentication mechanism\r\n', 'more'],
      ['c AUTHENTICATE PLAIN\r\n*\r\n', '+ \r\nc BAD AUTHENTICATE cancelled\r\n', 'more'],
      ['d LOGIN x\r\n', 'd BAD LOGIN expects user and password\r\n* BYE Too many invalid commands\r\n', 'close'],
    ]);
    t.end();
  });
  t.test(`more than maxCommands commands close (default ${MAX_COMMANDS_BEFORE_LOGIN})`, (t) => {
    const d = new Driver();
    let out = '';
    for (let i = 1; i <= MAX_COMMANDS_BEFORE_LOGIN; i++) {
      const r = d.feed(`n${i} NOOP\r\n`);
      out += r.out;
      if (r.then !== 'more') break;
    }
    t.equal(out.split('\r\n').length - 1, MAX_COMMANDS_BEFORE_LOGIN, 'the first maxCommands are answered');
    play(t, d, [['n51 NOOP\r\n', '* BYE Too many commands before login\r\n', 'close']]);
    t.end();
  });
  t.test('a LOGIN past maxCommands is not taken', (t) => {
    play(t, new Driver({ maxCommands: 2 }), [
      ['a NOOP\r\nb NOOP\r\n', 'a OK NOOP completed\r\nb OK NOOP completed\r\n', 'more'],
      ['c LOGIN alice secret\r\n', '* BYE Too many commands before login\r\n', 'close'],
    ]);
    t.end();
  });
  t.test('a command line over MAX_IMAP_LINE closes at once', (t) => {
    const d = new Driver();
    play(t, d, [[`a LOGIN ${'x'.repeat(MAX_IMAP_LINE)}`, '* BYE Command line too long\r\n', 'close']]);
    t.end();
  });
  t.test('a literal over the limit closes at once', (t) => {
    play(t, new Driver(), [['a LOGIN {100000}\r\n', '* BYE Command line too long\r\n', 'close']]);
    t.end();
  });
  t.end();
});

t.test('imapBackendAnswer classifies backend lines during the replay (lines as read, CRLF included)', (t) => {
  const cases: readonly (readonly [string, string, string])[] = [
    ['+ Ready for literal data\r\n', 'L1', 'continue'],
    ['+\r\n', 'L1', 'continue'],
    ['+ \r\n', 'L1', 'continue'],
    ['L1 OK [CAPABILITY IMAP4rev1] Logged in\r\n', 'L1', 'final'],
    ['L1 NO [AUTHENTICATIONFAILED] Invalid credentials\r\n', 'L1', 'final'],
    ['L1 BAD syntax\r\n', 'L1', 'final'],
    ['* CAPABILITY IMAP4rev1 IDLE\r\n', 'L1', 'untagged'],
    ['* NO [ALERT] password expires soon\r\n', 'L1', 'untagged'],
    ['L10 OK other tag\r\n', 'L1', 'untagged'],
    ['l1 OK case differs\r\n', 'L1', 'untagged'],
  ];
  for (const [line, tag, want] of cases) t.equal(imapBackendAnswer(line, tag), want, `${JSON.stringify(line)} for ${tag}`);
  t.end();
});

t.test('imapGreetingOk accepts * OK only', (t) => {
  const cases: readonly (readonly [string, boolean])[] = [
    ['* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n', true],
    ['* OK\r\n', true],
    ['* ok ready\r\n', true],
    ['* PREAUTH already logged in\r\n', false],
    ['* BYE too busy\r\n', false],
    ['* OKAY\r\n', false],
    ['+OK POP3 ready\r\n', false],
    ['', false],
  ];
  for (const [line, want] of cases) t.equal(imapGreetingOk(line), want, JSON.stringify(line));
  t.end();
});
