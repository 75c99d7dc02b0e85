import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import t from 'tap';
import { MAX_IMAP_COMMAND, MAX_IMAP_LINE, MAX_IMAP_LITERAL, parseImapCommand, type ImapParse } from '../../lib/wire/imap/command.js';
import { seedFastCheck } from '../helpers/fc-seed.js';

seedFastCheck({ numRuns: 300 });

const b = (s: string): Buffer => Buffer.from(s, 'utf8');

/** A parse as plain data (pieces as latin1 text) for comparisons and messages. */
function plain(p: ImapParse): unknown {
  if (p.kind !== 'match') return p;
  return { ...p, command: { ...p.command, pieces: p.command.pieces.map((x) => x.toString('latin1')) } };
}
const same = (a: ImapParse, b: ImapParse): boolean => JSON.stringify(plain(a)) === JSON.stringify(plain(b));

interface Want {
  readonly tag: string;
  readonly name: string;
  readonly args: readonly string[];
  /** The expected pieces; their concatenation is the whole input. */
  readonly pieces: readonly string[];
}

/** Complete commands (each case's input is the concatenation of its pieces). */
const MATCHES: readonly (readonly [string, Want])[] = [
  ['atoms', { tag: 'A001', name: 'LOGIN', args: ['alice', 'secret'], pieces: ['A001 LOGIN alice secret\r\n'] }],
  ['the name is upper-cased, arguments keep their case', { tag: 'a1', name: 'LOGIN', args: ['Bob', 'PassWord'], pieces: ['a1 login Bob PassWord\r\n'] }],
  ['no arguments', { tag: 'x', name: 'CAPABILITY', args: [], pieces: ['x CAPABILITY\r\n'] }],
  ['a bare LF ends the line', { tag: 'a2', name: 'NOOP', args: [], pieces: ['a2 NOOP\n'] }],
  ['a tag with punctuation and ]', { tag: 'T.1-x]', name: 'NOOP', args: [], pieces: ['T.1-x] NOOP\r\n'] }],
  ['quoted strings with spaces', { tag: 'a3', name: 'LOGIN', args: ['alice smith', 'p w'], pieces: ['a3 LOGIN "alice smith" "p w"\r\n'] }],
  ['quoted strings with \\" and \\\\', { tag: 'a4', name: 'LOGIN', args: ['al"ice', 'back\\slash'], pieces: ['a4 LOGIN "al\\"ice" "back\\\\slash"\r\n'] }],
  ['empty quoted strings', { tag: 'a5', name: 'LOGIN', args: ['', ''], pieces: ['a5 LOGIN "" ""\r\n'] }],
  ['UTF-8 in a quoted string', { tag: 'a6', name: 'LOGIN', args: ['jürgen', 'pässwörd'], pieces: ['a6 LOGIN "jürgen" "pässwörd"\r\n'] }],
  ['a quoted string holding atom specials', { tag: 'a7', name: 'LOGIN', args: ['(){%*]', 'x'], pieces: ['a7 LOGIN "(){%*]" x\r\n'] }],
  [
    'two synchronizing literals: a piece ends after each {n}\\r\\n',
    { tag: 'a8', name: 'LOGIN', args: ['alice', 'secret'], pieces: ['a8 LOGIN {5}\r\n', 'alice {6}\r\n', 'secret\r\n'] },
  ],
  ['two non-synchronizing literals (LITERAL+): one piece', { tag: 'a9', name: 'LOGIN', args: ['alice', 'secret'], pieces: ['a9 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n'] }],
  ['a non-sync then a sync literal', { tag: 'b1', name: 'LOGIN', args: ['alice', 'secret'], pieces: ['b1 LOGIN {5+}\r\nalice {6}\r\n', 'secret\r\n'] }],
  ['a sync then a non-sync literal', { tag: 'b2', name: 'LOGIN', args: ['alice', 'secret'], pieces: ['b2 LOGIN {5}\r\n', 'alice {6+}\r\nsecret\r\n'] }],
  ['a literal then an atom', { tag: 'b3', name: 'LOGIN', args: ['alice', 'pw'], pieces: ['b3 LOGIN {5}\r\n', 'alice pw\r\n'] }],
  ['an atom then a quoted string then a literal', { tag: 'b4', name: 'X', args: ['a', 'b c', 'd'], pieces: ['b4 X a "b c" {1}\r\n', 'd\r\n'] }],
  ['three sync literals', { tag: 'b5', name: 'X', args: ['a', 'b', 'c'], pieces: ['b5 X {1}\r\n', 'a {1}\r\n', 'b {1}\r\n', 'c\r\n'] }],
  ['a literal holding CRLF, a quote and braces', { tag: 'b6', name: 'LOGIN', args: ['a\r\n"', '{1}'], pieces: ['b6 LOGIN {4}\r\n', 'a\r\n" {3+}\r\n{1}\r\n'] }],
  ['literal octets are UTF-8', { tag: 'b7', name: 'LOGIN', args: ['ü', 'x'], pieces: ['b7 LOGIN {2}\r\n', 'ü x\r\n'] }],
  ['a literal header ended by a bare LF', { tag: 'b8', name: 'LOGIN', args: ['alice', 'pw'], pieces: ['b8 LOGIN {5}\n', 'alice pw\n'] }],
  ['a zero-length sync literal', { tag: 'b9', name: 'LOGIN', args: ['alice', ''], pieces: ['b9 LOGIN alice {0}\r\n', '\r\n'] }],
  ['a zero-length non-sync literal', { tag: 'c1', name: 'LOGIN', args: ['alice', ''], pieces: ['c1 LOGIN alice {0+}\r\n\r\n'] }],
  [
    'a list (ID, RFC 2971 §3.3 example) is one argument, kept as its text',
    { tag: 'a023', name: 'ID', args: ['("name" "sodr" "version" "19.34")'], pieces: ['a023 ID ("name" "sodr" "version" "19.34")\r\n'] },
  ],
  ['nested lists, ) and an escaped quote inside a quoted string', { tag: 'd1', name: 'X', args: ['(a ("b)" "c\\"(") ())', 'z'], pieces: ['d1 X (a ("b)" "c\\"(") ()) z\r\n'] }],
  ['an empty list', { tag: 'd2', name: 'ID', args: ['()'], pieces: ['d2 ID ()\r\n'] }],
  ['AUTHENTICATE with an initial response', { tag: 'c2', name: 'AUTHENTICATE', args: ['PLAIN', 'AGFsaWNlAHNlY3JldA=='], pieces: ['c2 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n'] }],
  ['a literal of exactly MAX_IMAP_LITERAL octets', { tag: 'c3', name: 'LOGIN', args: ['x'.repeat(MAX_IMAP_LITERAL), 'p'], pieces: [`c3 LOGIN {${MAX_IMAP_LITERAL}}\r\n`, `${'x'.repeat(MAX_IMAP_LITERAL)} p\r\n`] }],
  ['a line of exactly MAX_IMAP_LINE octets before CRLF', { tag: 'c4', name: 'X', args: ['y'.repeat(MAX_IMAP_LINE - 5)], pieces: [`c4 X ${'y'.repeat(MAX_IMAP_LINE - 5)}\r\n`] }],
  [
    'two literals of MAX_IMAP_LITERAL octets fit MAX_IMAP_COMMAND',
    {
      tag: 'c5',
      name: 'LOGIN',
      args: ['u'.repeat(MAX_IMAP_LITERAL), 'p'.repeat(MAX_IMAP_LITERAL)],
      pieces: [`c5 LOGIN {${MAX_IMAP_LITERAL}+}\r\n${'u'.repeat(MAX_IMAP_LITERAL)} {${MAX_IMAP_LITERAL}+}\r\n${'p'.repeat(MAX_IMAP_LITERAL)}\r\n`],
    },
  ],
];

type Bad = readonly [string, string, { readonly tag?: string; readonly reason: string; readonly length: number }];

/** Syntax errors: answered BAD (with the tag when known); `length` bytes are dropped. */
const BADS: readonly Bad[] = [
  ['a tag with +', '+ NOOP\r\n', { reason: 'bad tag', length: 8 }],
  ['a tag holding +', 'a+b NOOP\r\n', { reason: 'bad tag', length: 10 }],
  ['a quoted tag', '"a" NOOP\r\n', { reason: 'bad tag', length: 10 }],
  ['a literal as the tag', '{1}\r\nx NOOP\r\n', { reason: 'bad tag', length: 13 }],
  ['a control character as the tag', '\x00 NOOP\r\n', { reason: 'expected an atom, a quoted string or a literal', length: 8 }],
  ['an empty line', '\r\n', { reason: 'missing command', length: 2 }],
  ['an empty line with a bare LF', '\n', { reason: 'missing command', length: 1 }],
  ['a tag without a command', 'a\r\n', { tag: 'a', reason: 'missing command', length: 3 }],
  ['a tag and a space', 'a \r\n', { tag: 'a', reason: 'expected an atom, a quoted string or a literal', length: 4 }],
  ['two spaces', 'a  NOOP\r\n', { tag: 'a', reason: 'expected an atom, a quoted string or a literal', length: 9 }],
  ['a trailing space', 'a NOOP \r\n', { tag: 'a', reason: 'expected an atom, a quoted string or a literal', length: 9 }],
  ['a CR without LF', 'a NOOP\rX\r\n', { tag: 'a', reason: 'CR without LF', length: 10 }],
  ['a list as the tag', '(a) NOOP\r\n', { reason: 'bad tag', length: 10 }],
  ['a list not closed on its line', 'a ID ("name" "x"\r\n', { tag: 'a', reason: 'line break in a list', length: 18 }],
  ['a list with a literal', 'a ID ("name" {4}\r\nmutt)\r\n', { tag: 'a', reason: 'literal in a list', length: 18 }],
  ['a list closed twice', 'a ID (x))\r\n', { tag: 'a', reason: 'expected a space', length: 11 }],
  ['a lone )', 'a ID )\r\n', { tag: 'a', reason: 'expected an atom, a quoted string or a literal', length: 8 }],
  ['a wildcard', 'a LIST "" *\r\n', { tag: 'a', reason: 'expected an atom, a quoted string or a literal', length: 13 }],
  ['an escape other than \\" or \\\\', 'a LOGIN "x\\q" p\r\n', { tag: 'a', reason: 'bad escape in quoted string', length: 17 }],
  ['a line break in a quoted string', 'a LOGIN "x\r\n', { tag: 'a', reason: 'line break in quoted string', length: 12 }],
  ['a bare LF in a quoted string', 'a LOGIN "x\ny"\r\n', { tag: 'a', reason: 'line break in quoted string', length: 11 }],
  ['a literal not followed by CRLF', 'a LOGIN {1}x\r\n', { tag: 'a', reason: 'literal not followed by CRLF', length: 14 }],
  ['a literal followed by CR and no LF', 'a LOGIN {1}\rx\r\n', { tag: 'a', reason: 'literal not followed by CRLF', length: 15 }],
  ['a literal size that is not a number', 'a LOGIN {1a}\r\n', { tag: 'a', reason: 'bad literal', length: 14 }],
  ['a negative literal size', 'a LOGIN {-1}\r\n', { tag: 'a', reason: 'bad literal', length: 14 }],
  ['an empty literal size', 'a LOGIN {}\r\n', { tag: 'a', reason: 'bad literal', length: 12 }],
  ['an 11-digit literal size', 'a LOGIN {12345678901}\r\n', { tag: 'a', reason: 'bad literal', length: 23 }],
  ['a { never closed', `a LOGIN {${'1'.repeat(30)}\r\n`, { tag: 'a', reason: 'bad literal', length: 41 }],
  ['no space after a literal', 'a LOGIN {1}\r\nxy\r\n', { tag: 'a', reason: 'expected a space', length: 17 }],
  ['no space after a quoted string', 'a LOGIN "x"y\r\n', { tag: 'a', reason: 'expected a space', length: 14 }],
];

/** Over a limit: the connection cannot go on. */
const TOO_LONG: readonly (readonly [string, string, string | undefined])[] = [
  ['a sync literal over MAX_IMAP_LITERAL', `a LOGIN {${MAX_IMAP_LITERAL + 1}}\r\n`, 'a'],
  ['a non-sync literal over MAX_IMAP_LITERAL', `a LOGIN {${MAX_IMAP_LITERAL + 1}+}\r\n`, 'a'],
  ['a huge literal', 'a LOGIN {4294967295}\r\n', 'a'],
  ['a line over MAX_IMAP_LINE, CRLF present', `a X ${'y'.repeat(MAX_IMAP_LINE - 3)}\r\n`, 'a'],
  ['a line over MAX_IMAP_LINE, no line end yet', `a X ${'y'.repeat(MAX_IMAP_LINE)}`, 'a'],
  ['a tag over MAX_IMAP_LINE', 't'.repeat(MAX_IMAP_LINE + 1), undefined],
  ['a quoted tag over MAX_IMAP_LINE', `"${'t'.repeat(MAX_IMAP_LINE)}`, undefined],
  ['a literal tag over MAX_IMAP_LITERAL', `{${MAX_IMAP_LITERAL + 1}}\r\n`, undefined],
  ['a bad tag without a line end over MAX_IMAP_LINE', `(${'t'.repeat(MAX_IMAP_LINE)}`, undefined],
  ['spaces over MAX_IMAP_LINE', `a X ${' '.repeat(MAX_IMAP_LINE)}`, 'a'],
  ['an unclosed quoted string over MAX_IMAP_LINE', `a X "${'q'.repeat(MAX_IMAP_LINE)}`, 'a'],
  ['a closed quoted string over MAX_IMAP_LINE', `a X "${'q'.repeat(MAX_IMAP_LINE)}"\r\n`, 'a'],
  ['the text after a literal over MAX_IMAP_LINE', `a X {1}\r\nx ${'y'.repeat(MAX_IMAP_LINE)}\r\n`, 'a'],
  ['a bad line over MAX_IMAP_LINE without a line end', `a X (${'y'.repeat(MAX_IMAP_LINE)}`, 'a'],
  ['LITERAL+ literals adding up past MAX_IMAP_COMMAND', `a LOGIN ${`{8000+}\r\n${'z'.repeat(8000)} `.repeat(Math.ceil(MAX_IMAP_COMMAND / 8000))}`, 'a'],
];

/** Incomplete commands, whether the client waits for our "+ " continuation, and inside a
 *  literal's octets the length they end at. */
const NEED_MORE: readonly (readonly [string, boolean, number?])[] = [
  ['', false],
  ['a', false],
  ['a ', false],
  ['a NOOP', false],
  ['a NOOP\r', false],
  ['a\r', false],
  ['a LOGIN "x', false],
  ['a LOGIN "x\\', false],
  ['a LOGIN "x"', false],
  ['a LOGIN {', false],
  ['a LOGIN {5', false],
  ['a LOGIN {5}', false],
  ['a LOGIN {5}\r', false],
  ['a LOGIN {5}\r\n', true],
  ['a LOGIN {5}\n', true],
  ['a LOGIN {0}\r\n', true],
  [`a LOGIN {${MAX_IMAP_LITERAL}}\r\n`, true],
  ['a LOGIN {5+}\r\n', false, 19],
  ['a LOGIN {5}\r\nali', false, 18],
  ['a LOGIN {5}\r\nalice', false],
  ['a LOGIN {5}\r\nalice {6}\r\n', true],
  ['a LOGIN {5+}\r\nalice {6}\r\n', true],
  ['a LOGIN {5}\r\nalice {6+}\r\n', false, 31],
  ['a LOGIN {1}\r\nxy', false],
  ['a ID (', false],
  ['a ID ("na', false],
  ['a ID ("n\\', false],
  ['a ID ("name" "x"', false],
  ['a ID ((x)', false],
  ['a ID (x)', false],
  [`a LOGIN {${'1'.repeat(20)}`, false],
];

t.test('case table: complete commands', (t) => {
  for (const [name, want] of MATCHES) {
    const input = want.pieces.join('');
    const got = parseImapCommand(b(input));
    t.same(plain(got), { kind: 'match', command: { tag: want.tag, name: want.name, args: want.args, length: b(input).length, pieces: want.pieces.map((p) => b(p).toString('latin1')) } }, name);
  }
  t.end();
});

t.test('case table: syntax errors', (t) => {
  for (const [name, input, want] of BADS) t.same(parseImapCommand(b(input)), { kind: 'bad', ...want }, name);
  t.end();
});

t.test('case table: over a limit', (t) => {
  for (const [name, input, tag] of TOO_LONG) t.same(parseImapCommand(b(input)), tag === undefined ? { kind: 'too-long' } : { kind: 'too-long', tag }, name);
  t.end();
});

t.test('case table: need-more, with continuation exactly after a sync literal header', (t) => {
  for (const [input, continuation, until] of NEED_MORE) t.same(parseImapCommand(b(input)), { kind: 'need-more', continuation, ...(until === undefined ? {} : { until }) }, JSON.stringify(input));
  t.end();
});

t.test('limits: the last octet allowed and the first one over', (t) => {
  t.equal(parseImapCommand(b(`a X ${'y'.repeat(MAX_IMAP_LINE - 4)}\r\n`)).kind, 'match', 'MAX_IMAP_LINE octets before CRLF');
  t.equal(parseImapCommand(b(`a X ${'y'.repeat(MAX_IMAP_LINE - 3)}\r\n`)).kind, 'too-long', 'one more');
  t.equal(parseImapCommand(b(`a X ${'y'.repeat(MAX_IMAP_LINE - 4)}`)).kind, 'need-more', 'MAX_IMAP_LINE octets without a line end: still waiting');
  t.equal(parseImapCommand(b(`a X {${MAX_IMAP_LITERAL}}\r\n`)).kind, 'need-more', 'a literal of MAX_IMAP_LITERAL');
  t.equal(parseImapCommand(b(`a X {${MAX_IMAP_LITERAL + 1}}\r\n`)).kind, 'too-long', 'one more');
  t.end();
});

t.test('pipelining: only the first command is taken', (t) => {
  const first = 'a1 LOGIN {5}\r\nalice pw\r\n';
  const got = parseImapCommand(b(`${first}a2 NOOP\r\na3 LOGOUT\r\n`));
  t.same(plain(got), plain(parseImapCommand(b(first))));
  t.equal(got.kind === 'match' ? got.command.length : -1, first.length);
  t.end();
});

/** Offsets (prefix lengths) at which the client waits for our "+ ": after every piece but the last. */
function continuationOffsets(pieces: readonly string[]): Set<number> {
  const at = new Set<number>();
  let n = 0;
  for (const p of pieces.slice(0, -1)) {
    n += b(p).length;
    at.add(n);
  }
  return at;
}

/**
 * The prefix lengths to try: every one for commands up to 1 KiB; for the few cases at the size
 * limits (8–24 KiB, quadratic to try whole), every one within 64 octets of a piece boundary or
 * the end, and every 61st elsewhere.
 */
function prefixLengths(pieces: readonly string[], total: number): number[] {
  if (total <= 1_024) return Array.from({ length: total }, (_, i) => i);
  const marks = [0, ...continuationOffsets(pieces), total];
  return Array.from({ length: total }, (_, i) => i).filter((i) => i % 61 === 0 || marks.some((m) => Math.abs(i - m) <= 64));
}

t.test('split at every offset: need-more (continuation only after each sync literal header), then the same match', (t) => {
  for (const [name, want] of MATCHES) {
    const bytes = b(want.pieces.join(''));
    const full = parseImapCommand(bytes);
    const waits = continuationOffsets(want.pieces);
    let firstBad: string | undefined;
    for (const i of prefixLengths(want.pieces, bytes.length)) {
      if (firstBad !== undefined) break;
      const got = parseImapCommand(bytes.subarray(0, i));
      if (got.kind !== 'need-more' || got.continuation !== waits.has(i)) firstBad = `at ${i}: ${JSON.stringify(got)}`;
    }
    t.equal(firstBad, undefined, `${name}: need-more at every shorter prefix`);
    t.ok(same(parseImapCommand(Buffer.concat([bytes, b('z NOOP\r\n')])), full), `${name}: what follows changes nothing`);
  }
  t.end();
});

// ---- properties ----------------------------------------------------------------------------

const ATOM_CHARS = Array.from('abcxyzABCXYZ0123456789.-_@!#$&\'+,/:;<=>?[]^`|~');
const atom = fc.string({ unit: fc.constantFrom(...ATOM_CHARS), minLength: 1, maxLength: 12 });
const tagAtom = atom.map((s) => s.replaceAll('+', '.'));

type Encoding = 'atom' | 'quoted' | 'sync' | 'nonsync';
/** An argument and how to write it; written bare only when the value is an atom or a list. */
const arg = fc.oneof(
  fc.tuple(atom, fc.constant<Encoding>('atom')),
  // A list is written as it is read back: its own text.
  fc.tuple(fc.array(fc.oneof(atom, atom.map((a) => `"${a}"`)), { maxLength: 3 }).map((xs) => `(${xs.join(' ')})`), fc.constant<Encoding>('atom')),
  fc.tuple(fc.string({ maxLength: 12 }).filter((s) => !/[\r\n]/.test(s)), fc.constant<Encoding>('quoted')),
  fc.tuple(fc.string({ unit: 'grapheme', maxLength: 12 }), fc.constantFrom<Encoding>('sync', 'nonsync')),
);

/** Writes a command; returns its text pieces (cut after each sync literal header). */
function encode(tag: string, name: string, args: readonly (readonly [string, Encoding])[], eol: string): string[] {
  const pieces: string[] = [];
  let cur = `${tag} ${name}`;
  for (const [value, how] of args) {
    cur += ' ';
    if (how === 'atom') cur += value;
    else if (how === 'quoted') cur += `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
    else {
      cur += `{${b(value).length}${how === 'nonsync' ? '+' : ''}}${eol}`;
      if (how === 'sync') {
        pieces.push(cur);
        cur = '';
      }
      cur += value;
    }
  }
  pieces.push(cur + eol);
  return pieces;
}

const command = fc.record({ tag: tagAtom, name: atom, args: fc.array(arg, { maxLength: 4 }), eol: fc.constantFrom('\r\n', '\n') }).map((c) => ({ ...c, pieces: encode(c.tag, c.name, c.args, c.eol) }));

/** IMAP-ish fragments, so random inputs get past the tag. */
const imapish = fc
  .array(fc.constantFrom('a', 'A1', ' ', 'LOGIN', 'x', '"', '\\', '{', '}', '+', '1', '0', '{3}', '{2+}', '\r', '\n', '\r\n', '(', ')', '*', 'é', '\x00'), { maxLength: 30 })
  .map((ps) => b(ps.join('')));

function consistent(buf: Buffer, r: ImapParse): boolean {
  switch (r.kind) {
    case 'need-more':
      return typeof r.continuation === 'boolean';
    case 'too-long':
      return true;
    case 'bad':
      return r.length >= 1 && r.length <= buf.length && buf[r.length - 1] === 10;
    case 'match':
      return r.command.length <= buf.length && Buffer.concat(r.command.pieces).equals(buf.subarray(0, r.command.length)) && buf[r.command.length - 1] === 10;
  }
}

t.test('properties', (t) => {
  t.doesNotThrow(() => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 512 }).map((u) => Buffer.from(u)), imapish), (bytes) => consistent(bytes, parseImapCommand(bytes))),
      { numRuns: 3_000 },
    );
  }, 'random and IMAP-ish bytes never throw; bad and match lengths end at a line end, and the pieces are the bytes taken');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(command, ({ tag, name, args, pieces }) => {
        const r = parseImapCommand(b(pieces.join('')));
        return (
          r.kind === 'match' &&
          r.command.tag === tag &&
          r.command.name === name.toUpperCase() &&
          JSON.stringify(r.command.args) === JSON.stringify(args.map(([v]) => v)) &&
          JSON.stringify(r.command.pieces.map((p) => p.toString('latin1'))) === JSON.stringify(pieces.map((p) => b(p).toString('latin1')))
        );
      }),
      { numRuns: 1_000 },
    );
  }, 'a command written from tag, name and arguments (atoms, quoted, literals; CRLF or LF) reads back the same, with one piece per sync literal plus one');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(command, ({ pieces }) => {
        const bytes = b(pieces.join(''));
        const waits = continuationOffsets(pieces);
        for (let i = 0; i < bytes.length; i++) {
          const got = parseImapCommand(bytes.subarray(0, i));
          if (got.kind !== 'need-more' || got.continuation !== waits.has(i)) return false;
        }
        return true;
      }),
      { numRuns: 500 },
    );
  }, 'every prefix of a generated command is need-more, with continuation exactly after each sync literal header');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(command, fc.uint8Array({ maxLength: 200 }), ({ pieces }, junk) => {
        const bytes = b(pieces.join(''));
        return same(parseImapCommand(Buffer.concat([bytes, junk])), parseImapCommand(bytes));
      }),
    );
  }, 'junk appended after a complete command does not change it');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(imapish, (bytes) => {
        const full = parseImapCommand(bytes);
        if (full.kind !== 'match') return true;
        for (let i = 0; i < full.command.length; i++) if (parseImapCommand(bytes.subarray(0, i)).kind !== 'need-more') return false;
        return true;
      }),
      { numRuns: 2_000 },
    );
  }, 'a prefix of a matching IMAP-ish input is need-more, never bad, too-long or another match');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(command, fc.string({ unit: fc.constantFrom('0', '1', '9', '+', 'x', '}', '{', ' '), minLength: 1, maxLength: 12 }), ({ pieces }, size) => {
        // Corrupt every literal size field: the answer is any kind, consistent, never a throw.
        const text = pieces.join('').replace(/\{\d+\+?\}/g, `{${size}}`);
        const bytes = b(text);
        return consistent(bytes, parseImapCommand(bytes));
      }),
      { numRuns: 1_000 },
    );
  }, 'a corrupted literal size never throws and stays consistent');

  const bound = MAX_IMAP_COMMAND + MAX_IMAP_LINE + 2;
  t.doesNotThrow(() => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: MAX_IMAP_LITERAL }), { minLength: 1, maxLength: 8 }), fc.boolean(), (sizes, sync) => {
        // LITERAL+ (or already answered sync) literals, repeated until the command is past the bound.
        let text = 'a LOGIN';
        for (let i = 0; text.length <= bound; i++) {
          const n = sizes[i % sizes.length]!;
          text += ` {${n}${sync ? '' : '+'}}\r\n${'z'.repeat(n)}`;
        }
        return parseImapCommand(b(text)).kind === 'too-long';
      }),
      { numRuns: 100 },
    );
  }, 'a command of literals past MAX_IMAP_COMMAND + MAX_IMAP_LINE + 2 octets is too-long: the buffer is bounded');
  t.end();
});
