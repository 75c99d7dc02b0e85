import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import t from 'tap';
import { MAX_POP3_AUTH_LINE, MAX_POP3_LINE, parsePop3Command, readLine, type LineParse, type Pop3Command } from '../../lib/wire/pop3/command.js';
import { seedFastCheck } from '../helpers/fc-seed.js';

seedFastCheck({ numRuns: 300 });

const b = (s: string): Buffer => Buffer.from(s, 'utf8');
const same = (x: LineParse, y: LineParse): boolean => JSON.stringify(x) === JSON.stringify(y);

/** Complete lines under the 255-octet cap, and the text they yield. */
const LINES: readonly (readonly [string, string, string])[] = [
  ['a command with CRLF', 'USER alice\r\n', 'USER alice'],
  ['a command with a bare LF', 'USER alice\n', 'USER alice'],
  ['an empty line', '\r\n', ''],
  ['an empty line with a bare LF', '\n', ''],
  ['a CR not before the LF stays in the text', 'USER a\rb\r\n', 'USER a\rb'],
  ['a lone CR before CRLF: only the last CR is the ending', 'NOOP\r\r\n', 'NOOP\r'],
  ['UTF-8', 'USER jürgen@example.org\r\n', 'USER jürgen@example.org'],
  ['a base64 AUTH line', 'AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n', 'AUTH PLAIN AGFsaWNlAHNlY3JldA=='],
  ['exactly MAX_POP3_LINE octets with CRLF', `PASS ${'p'.repeat(MAX_POP3_LINE - 7)}\r\n`, `PASS ${'p'.repeat(MAX_POP3_LINE - 7)}`],
  ['exactly MAX_POP3_LINE octets with a bare LF', `PASS ${'p'.repeat(MAX_POP3_LINE - 6)}\n`, `PASS ${'p'.repeat(MAX_POP3_LINE - 6)}`],
];

t.test('readLine: case table of complete lines', (t) => {
  for (const [name, input, text] of LINES) t.same(readLine(b(input), MAX_POP3_LINE), { kind: 'line', text, length: b(input).length }, name);
  t.end();
});

t.test('readLine: need-more and too-long', (t) => {
  for (const input of ['', 'U', 'USER', 'USER alice', 'USER alice\r', '\r', 'p'.repeat(MAX_POP3_LINE - 1)]) {
    t.same(readLine(b(input), MAX_POP3_LINE), { kind: 'need-more' }, `need-more: ${JSON.stringify(input.slice(0, 20))} (${input.length} octets)`);
  }
  const tooLong: readonly (readonly [string, string, number])[] = [
    ['MAX_POP3_LINE octets and no LF yet: the line cannot fit', 'p'.repeat(MAX_POP3_LINE), MAX_POP3_LINE],
    ['one octet over MAX_POP3_LINE with CRLF', `PASS ${'p'.repeat(MAX_POP3_LINE - 6)}\r\n`, MAX_POP3_LINE],
    ['one octet over MAX_POP3_LINE with a bare LF', `PASS ${'p'.repeat(MAX_POP3_LINE - 5)}\n`, MAX_POP3_LINE],
    ['a 2 MB line', 'x'.repeat(2 * 1024 * 1024), MAX_POP3_LINE],
    ['MAX_POP3_AUTH_LINE octets and no LF yet', 'A'.repeat(MAX_POP3_AUTH_LINE), MAX_POP3_AUTH_LINE],
    ['one octet over MAX_POP3_AUTH_LINE with CRLF', `${'A'.repeat(MAX_POP3_AUTH_LINE - 1)}\r\n`, MAX_POP3_AUTH_LINE],
  ];
  for (const [name, input, max] of tooLong) t.same(readLine(b(input), max), { kind: 'too-long' }, name);
  t.end();
});

t.test('readLine: the caps 255 and 2048', (t) => {
  t.equal(MAX_POP3_LINE, 255, 'RFC 2449 §4: 255 octets with CRLF');
  t.equal(MAX_POP3_AUTH_LINE, 2_048);
  const auth = `${'A'.repeat(MAX_POP3_AUTH_LINE - 2)}\r\n`;
  t.same(readLine(b(auth), MAX_POP3_AUTH_LINE), { kind: 'line', text: 'A'.repeat(MAX_POP3_AUTH_LINE - 2), length: MAX_POP3_AUTH_LINE }, 'an AUTH line of exactly 2048 octets');
  t.same(readLine(b(auth), MAX_POP3_LINE), { kind: 'too-long' }, 'the same line under the command cap');
  t.same(readLine(b('A'.repeat(MAX_POP3_AUTH_LINE - 1)), MAX_POP3_AUTH_LINE), { kind: 'need-more' }, '2047 octets without LF: one more may be the LF');
  t.end();
});

t.test('readLine: pipelined lines are read one at a time', (t) => {
  const input = b('CAPA\r\nUSER alice\r\nPASS x\n');
  const got: string[] = [];
  let rest = input;
  for (let i = 0; i < 10; i++) {
    const l = readLine(rest, MAX_POP3_LINE);
    if (l.kind !== 'line') break;
    got.push(l.text);
    rest = rest.subarray(l.length);
  }
  t.same(got, ['CAPA', 'USER alice', 'PASS x']);
  t.equal(rest.length, 0);
  t.end();
});

t.test('readLine: split at every offset, need-more until the LF, then the same line', (t) => {
  for (const [name, input] of LINES) {
    const bytes = b(input);
    const full = readLine(bytes, MAX_POP3_LINE);
    let firstBad: string | undefined;
    for (let i = 0; i < bytes.length && firstBad === undefined; i++) {
      const got = readLine(bytes.subarray(0, i), MAX_POP3_LINE);
      if (got.kind !== 'need-more') firstBad = `at ${i}: ${JSON.stringify(got)}`;
    }
    t.equal(firstBad, undefined, `${name}: need-more at every shorter prefix`);
    t.ok(same(readLine(Buffer.concat([bytes, b('QUIT\r\n')]), MAX_POP3_LINE), full), `${name}: what follows changes nothing`);
  }
  t.end();
});

const COMMANDS: readonly (readonly [string, Pop3Command | undefined])[] = [
  ['USER alice', { keyword: 'USER', args: ['alice'] }],
  ['user Alice', { keyword: 'USER', args: ['Alice'] }],
  ['CAPA', { keyword: 'CAPA', args: [] }],
  ['capa', { keyword: 'CAPA', args: [] }],
  ['TOP 1 10', { keyword: 'TOP', args: ['1', '10'] }],
  ['AUTH PLAIN AGFsaWNlAHNlY3JldA==', { keyword: 'AUTH', args: ['PLAIN', 'AGFsaWNlAHNlY3JldA=='] }],
  ['PASS two words', { keyword: 'PASS', args: ['two', 'words'] }],
  ['AUTH  PLAIN', { keyword: 'AUTH', args: ['', 'PLAIN'] }],
  ['QUIT ', { keyword: 'QUIT', args: [''] }],
  ['', undefined],
  ['US', undefined],
  ['USERS alice', undefined],
  [' USER alice', undefined],
  ['US3R alice', undefined],
  ['USER\talice', undefined],
  ['ÜSER alice', undefined],
  ['\x00\x01\x02', undefined],
];

t.test('parsePop3Command: case table', (t) => {
  for (const [line, want] of COMMANDS) t.same(parsePop3Command(line), want, JSON.stringify(line));
  t.end();
});

t.test('properties', (t) => {
  t.doesNotThrow(() => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.constantFrom(1, 2, 16, MAX_POP3_LINE, MAX_POP3_AUTH_LINE), (u, max) => {
        const buf = Buffer.from(u);
        const got = readLine(buf, max);
        // The cap is exact: a line whose LF is among the first `max` octets, else too-long once
        // `max` octets are in, else need-more.
        const lf = buf.indexOf(10);
        if (lf >= 0 && lf < max) return got.kind === 'line' && got.length === lf + 1 && !got.text.includes('\n');
        return got.kind === (buf.length >= max ? 'too-long' : 'need-more');
      }),
      { numRuns: 3_000 },
    );
  }, 'random bytes never throw, and the answer follows the cap exactly');

  const line = fc.string({ maxLength: 100 }).filter((s) => !s.includes('\n'));
  t.doesNotThrow(() => {
    fc.assert(
      fc.property(line, fc.constantFrom('\r\n', '\n'), fc.uint8Array({ maxLength: 100 }), (text, eol, junk) => {
        const bytes = b(text + eol);
        if (bytes.length > MAX_POP3_LINE) return true;
        return same(readLine(Buffer.concat([bytes, junk]), MAX_POP3_LINE), readLine(bytes, MAX_POP3_LINE));
      }),
    );
  }, 'junk appended after a complete line does not change it');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(line, fc.constantFrom('\r\n', '\n'), (text, eol) => {
        const bytes = b(text + eol);
        const full = readLine(bytes, MAX_POP3_AUTH_LINE);
        for (let i = 0; i < bytes.length; i++) if (readLine(bytes.subarray(0, i), MAX_POP3_AUTH_LINE).kind !== 'need-more') return false;
        return full.kind === 'line';
      }),
    );
  }, 'every prefix of a line is need-more');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (text) => {
        const c = parsePop3Command(text);
        if (c === undefined) return !/^[A-Za-z]{3,4}( |$)/.test(text);
        return /^[A-Z]{3,4}$/.test(c.keyword) && [c.keyword, ...c.args].join(' ') === text.slice(0, c.keyword.length).toUpperCase() + text.slice(c.keyword.length);
      }),
      { numRuns: 2_000 },
    );
  }, 'parsePop3Command never throws; a command is its keyword and arguments split at spaces');
  t.end();
});
