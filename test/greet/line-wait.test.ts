// The greet driver's rule for when to ask the greeter again (lib/greet/line-wait.ts), run as
// converse.ts runs it, over IMAP and POP3 logins sent a byte at a time: the same outcome as
// one delivery, for O(n) bytes handed to the greeter, not O(n²).
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import t from 'tap';
import { LineWait } from '../../lib/greet/line-wait.js';
import { ImapGreeter } from '../../lib/greet/imap.js';
import { Pop3Greeter } from '../../lib/greet/pop3.js';
import { MAX_BAD_BEFORE_LOGIN, MAX_COMMANDS_BEFORE_LOGIN, type GreetOptions } from '../../lib/greet/dialogue.js';
import { seedFastCheck } from '../helpers/fc-seed.js';

seedFastCheck({ numRuns: 200 });

const OPTIONS: GreetOptions = { starttls: false, secure: false, requireTls: false, maxCommands: MAX_COMMANDS_BEFORE_LOGIN, maxBad: MAX_BAD_BEFORE_LOGIN };

interface Run {
  /** Replies and the end (login user, close code), as comparable text. */
  readonly transcript: string[];
  /** Bytes handed to the greeter, over all asks. */
  readonly scanned: number;
}

/** Drives a fresh greeter over `pieces` as converse.ts does; `always`: ask on every piece. */
function drive(protocol: 'imap' | 'pop3', pieces: readonly Buffer[], always = false): Run {
  const g = protocol === 'imap' ? new ImapGreeter(OPTIONS) : new Pop3Greeter(OPTIONS);
  const wait = new LineWait();
  const transcript: string[] = [];
  let buf = Buffer.alloc(0);
  let pending: Buffer[] = [];
  let scanned = 0;
  for (const p of pieces) {
    pending.push(p);
    if (!wait.push(p) && !always) continue;
    buf = Buffer.concat([buf, ...pending]);
    pending = [];
    for (;;) {
      scanned += buf.length;
      const step = g.next(buf);
      transcript.push(...step.replies);
      buf = buf.subarray(step.consumed);
      wait.asked(buf.length, step.until);
      if (step.then === 'more') {
        if (step.consumed === 0 || buf.length === 0) break;
        continue;
      }
      transcript.push(typeof step.then === 'string' ? `${step.then} ${step.closeCode ?? ''}` : `login ${step.then.login.user}`);
      return { transcript, scanned };
    }
  }
  return { transcript, scanned };
}

const bytes = (b: Buffer): Buffer[] => Array.from(b, (x) => Buffer.from([x]));

const quoted = Buffer.from(`a1 LOGIN "${'u'.repeat(8_000)}" "secret"\r\n`);
// A literal's octets may carry CRLFs: they are data, not the end of the command.
const literalUser = `${'line\r\n'.repeat(600)}end`;
const literal = Buffer.concat([Buffer.from(`a1 LOGIN {${String(literalUser.length)}+}\r\n`), Buffer.from(literalUser), Buffer.from(' {6+}\r\nsecret\r\n')]);
const CASES: readonly (readonly ['imap' | 'pop3', string, Buffer])[] = [
  ['imap', 'an 8 KB quoted user name', quoted],
  ['imap', 'a 3.6 KB LITERAL+ user name full of CRLFs, then a password literal', literal],
  ['imap', 'commands before the login', Buffer.from('a0 CAPABILITY\r\na1 NOOP\r\na2 LOGIN alice "pw"\r\n')],
  ['imap', 'AUTHENTICATE PLAIN after "+ "', Buffer.from(`a1 AUTHENTICATE PLAIN\r\n${Buffer.from('\0alice\0pw').toString('base64')}\r\n`)],
  ['imap', 'a line over the limit', Buffer.from(`a1 LOGIN ${'x'.repeat(20_000)}\r\n`)],
  ['pop3', 'USER and PASS', Buffer.from('CAPA\r\nUSER alice\r\nPASS secret\r\n')],
  ['pop3', 'a line over the limit', Buffer.from(`USER ${'x'.repeat(3_000)}\r\n`)],
];

t.test('a byte at a time: the outcome of one delivery, for O(n) bytes parsed', (t) => {
  for (const [protocol, name, input] of CASES) {
    const once = drive(protocol, [input]);
    const trickled = drive(protocol, bytes(input));
    t.same(trickled.transcript, once.transcript, `${protocol}, ${name}: same replies and end (${(once.transcript.at(-1) ?? '').slice(0, 20)})`);
    t.ok(trickled.scanned < 8 * input.length, `${protocol}, ${name}: ${String(trickled.scanned)} bytes parsed for ${String(input.length)}`);
  }
  const naive = drive('imap', bytes(quoted), true).scanned;
  t.ok(naive > 1_000 * quoted.length, `asking on every byte parses ${String(naive)} bytes (the O(n²) this replaces)`);
  t.end();
});

t.test('any split of the logins: the outcome of one delivery', (t) => {
  const inputs = fc.constantFrom(...CASES.map(([protocol, , b]) => [protocol, b] as const));
  t.doesNotThrow(() => {
    fc.assert(
      fc.property(inputs, fc.array(fc.nat(), { maxLength: 30 }), ([protocol, input], picks) => {
        const cuts = [...new Set(picks.map((p) => p % input.length))].sort((a, b) => a - b);
        const pieces = [...cuts, input.length].map((end, i, all) => input.subarray(i === 0 ? 0 : all[i - 1], end)).filter((p) => p.length > 0);
        return JSON.stringify(drive(protocol, pieces).transcript) === JSON.stringify(drive(protocol, [input]).transcript);
      }),
    );
  });
  t.end();
});
