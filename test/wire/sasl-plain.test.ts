import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import t from 'tap';
import { MAX_PLAIN_BASE64, parsePlain } from '../../lib/wire/sasl/plain.js';
import { seedFastCheck } from '../helpers/fc-seed.js';

seedFastCheck({ numRuns: 300 });

/** base64 of a PLAIN message built from its raw text (NULs included). */
const b64 = (raw: string): string => Buffer.from(raw, 'utf8').toString('base64');
const plainOf = (authzid: string, authcid: string, password: string): string => b64(`${authzid}\0${authcid}\0${password}`);

const GOOD: readonly (readonly [string, string, { authzid: string; authcid: string }])[] = [
  ['no authzid (RFC 4616 §2 example form)', plainOf('', 'alice', 'secret'), { authzid: '', authcid: 'alice' }],
  ['the literal RFC 4616 bytes for tim/tanstaaftanstaaf', 'AHRpbQB0YW5zdGFhZnRhbnN0YWFm', { authzid: '', authcid: 'tim' }],
  ['with an authzid', plainOf('admin', 'alice', 'secret'), { authzid: 'admin', authcid: 'alice' }],
  ['an authzid equal to the authcid', plainOf('bob@example.org', 'bob@example.org', 'pw'), { authzid: 'bob@example.org', authcid: 'bob@example.org' }],
  ['UTF-8 names', plainOf('', 'jürgen', 'pässwörd'), { authzid: '', authcid: 'jürgen' }],
  ['a one-octet password', plainOf('', 'u', 'p'), { authzid: '', authcid: 'u' }],
  ['a password holding spaces', plainOf('', 'u', 'two words'), { authzid: '', authcid: 'u' }],
  ['white space and CRLF around the base64 are trimmed', ` ${plainOf('', 'carol', 'x')}\r\n`, { authzid: '', authcid: 'carol' }],
  ['no padding needed', b64('\0abc\0defg'), { authzid: '', authcid: 'abc' }],
  ['one = of padding', b64('\0ab\0cdefg'), { authzid: '', authcid: 'ab' }],
];

const BAD: readonly (readonly [string, string])[] = [
  ['empty', ''],
  ['only white space', '  \r\n'],
  ['an empty response (=)', '='],
  ['not base64', 'not base64!'],
  ['base64url alphabet', plainOf('', 'a?>', 'p~~').replaceAll('/', '_').replaceAll('+', '-')],
  ['white space inside', `${plainOf('', 'alice', 'secret').slice(0, 8)} ${plainOf('', 'alice', 'secret').slice(8)}`],
  ['missing padding (length not a multiple of 4)', plainOf('', 'alice', 'secret').replace(/=+$/, '')],
  ['padding in the middle', 'AGFs==aWNl'],
  ['three = of padding', 'AGFsaWNl==='],
  ['padding only', '===='],
  ['no NUL', b64('alice secret')],
  ['one NUL', b64('\0alice')],
  ['three NULs', b64('\0alice\0sec\0ret')],
  ['a NUL in the password', b64('admin\0alice\0se\0cret')],
  ['an empty authcid', b64('\0\0secret')],
  ['an empty authcid with an authzid', b64('admin\0\0secret')],
  ['an empty password', b64('\0alice\0')],
  ['an empty password with an authzid', b64('admin\0alice\0')],
  ['nothing but two NULs', b64('\0\0')],
  ['over MAX_PLAIN_BASE64', plainOf('', 'alice', 'p'.repeat(MAX_PLAIN_BASE64))],
];

t.test('case table: valid PLAIN responses', (t) => {
  for (const [name, input, want] of GOOD) t.same(parsePlain(input), want, name);
  t.end();
});

t.test('case table: malformed responses', (t) => {
  for (const [name, input] of BAD) t.equal(parsePlain(input), undefined, name);
  t.end();
});

t.test('the password is never returned', (t) => {
  const got = parsePlain(plainOf('zid', 'alice', 'hunter2-secret'));
  t.same(Object.keys(got ?? {}).sort(), ['authcid', 'authzid'], 'only the two identities');
  t.notMatch(JSON.stringify(got), /hunter2/, 'not in any field');
  t.end();
});

t.test('MAX_PLAIN_BASE64: at the cap, and one base64 quantum over', (t) => {
  // 3 octets become 4 base64 characters: a raw message of 3·k octets is exactly 4·k long.
  const rawLen = (MAX_PLAIN_BASE64 / 4) * 3;
  const atCap = plainOf('', 'alice', 'p'.repeat(rawLen - '\0alice\0'.length));
  t.equal(atCap.length, MAX_PLAIN_BASE64);
  t.same(parsePlain(atCap), { authzid: '', authcid: 'alice' }, 'exactly MAX_PLAIN_BASE64 characters');
  const over = plainOf('', 'alice', 'p'.repeat(rawLen - '\0alice\0'.length + 1));
  t.ok(over.length > MAX_PLAIN_BASE64);
  t.equal(parsePlain(over), undefined, 'over the cap');
  t.end();
});

t.test('properties', (t) => {
  const field = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => !s.includes('\0'));
  const nonEmpty = field.filter((s) => s !== '');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.base64String({ maxLength: 200 }), fc.uint8Array({ maxLength: 150 }).map((u) => Buffer.from(u).toString('base64'))), (s) => {
        const got = parsePlain(s);
        return got === undefined || (typeof got.authzid === 'string' && got.authcid !== '' && Object.keys(got).length === 2);
      }),
      { numRuns: 3_000 },
    );
  }, 'random strings and random base64 never throw; a result has a non-empty authcid and nothing else');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(field, nonEmpty, nonEmpty, (authzid, authcid, password) => {
        const got = parsePlain(plainOf(authzid, authcid, password));
        return got?.authzid === authzid && got.authcid === authcid;
      }),
      { numRuns: 1_000 },
    );
  }, 'authzid NUL authcid NUL password reads back the two identities');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(field, nonEmpty, nonEmpty, fc.nat(), (authzid, authcid, password, cut) => {
        const full = plainOf(authzid, authcid, password);
        const got = parsePlain(full.slice(0, cut % full.length));
        return got === undefined || (got.authzid === authzid && got.authcid === authcid);
      }),
      { numRuns: 1_000 },
    );
  }, 'a truncated response never yields a different identity');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(field, nonEmpty, nonEmpty, fc.oneof(fc.string({ maxLength: 20 }), fc.base64String({ maxLength: 20 })), (authzid, authcid, password, junk) => {
        const full = plainOf(authzid, authcid, password);
        const got = parsePlain(full + junk);
        // Junk is rejected, or (base64 continuing an unpadded message) it only lengthens the
        // password or adds a third NUL (rejected): the identities never change.
        return got === undefined || (got.authzid === authzid && got.authcid === authcid);
      }),
    );
  }, 'junk appended never yields a different identity');
  t.end();
});
