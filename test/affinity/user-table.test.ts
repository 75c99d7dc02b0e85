// The user map's compact table (lib/affinity/user-table.ts), pure: against a plain Map built by
// the same grammar, for random maps with duplicates, case and non-ASCII names; and the same
// table whether built inline or in a worker (lib/files/off-thread.ts).
import fc from 'fast-check';
import t from 'tap';
import { buildUserTable, UserTable } from '../../lib/affinity/user-table.js';
import { OFF_THREAD_BYTES, parseOffThread } from '../../lib/files/off-thread.js';
import { seedFastCheck } from '../helpers/fc-seed.js';

seedFastCheck({ numRuns: 300 });

/** The grammar, the plain way: the reference the table must agree with. */
function reference(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') continue;
    const [user, backend] = line.split(/\s+/);
    if (user !== undefined && backend !== undefined && !m.has(user.toLowerCase())) m.set(user.toLowerCase(), backend);
  }
  return m;
}

const word = fc.stringMatching(/^[A-Za-z0-9@._\u00e9\u00c9\u00df\u4e16-]{1,12}$/);
const line = fc.oneof(
  fc.tuple(word, word).map(([u, b]) => `${u} ${b}`),
  fc.tuple(word, word).map(([u, b]) => `  ${u}\t${b}  # note`),
  word,
  fc.constant('# comment'),
  fc.constant(''),
  fc.tuple(word, word, word).map(([u, b, x]) => `${u} ${b} ${x}`),
);

t.test('lookups agree with a plain Map, for every user in the file and some that are not', (t) => {
  fc.assert(
    fc.property(fc.array(line, { maxLength: 60 }), fc.array(word, { maxLength: 10 }), (lines, others) => {
      const text = lines.join('\n');
      const ref = reference(text);
      const table = new UserTable(buildUserTable(Buffer.from(text)).value);
      if (table.size !== ref.size) return false;
      for (const [user, backend] of ref) if (table.get(user) !== backend) return false;
      for (const o of others) if (table.get(o.toLowerCase()) !== ref.get(o.toLowerCase())) return false;
      return JSON.stringify([...table.entries()]) === JSON.stringify([...ref]);
    }),
  );
  t.end();
});

t.test('examples: case, the first line wins, malformed lines counted', (t) => {
  const table = new UserTable(buildUserTable(Buffer.from('Alice a\nALICE b\nbob\ncarol c extra\n\u00c9mile e\n')).value);
  t.equal(table.get('alice'), 'a', 'lower-cased, and the first line wins');
  t.equal(table.get('Alice'), undefined, 'lookups take a lower-cased name');
  t.equal(table.get('\u00e9mile'), 'e', 'non-ASCII names are lower-cased too');
  t.equal(table.get('bob'), undefined, 'a line with one word places nobody');
  t.equal(table.get('carol'), 'c', 'extra columns are ignored');
  t.equal(table.malformed, 2, 'and both lines are counted as malformed');
  t.equal(UserTable.empty().get('alice'), undefined, 'the empty table');
  t.equal(UserTable.empty().size, 0);
  t.end();
});

t.test('a map over OFF_THREAD_BYTES is built in a worker into the same table', async (t) => {
  const n = Math.ceil(OFF_THREAD_BYTES / 20) + 1_000;
  let text = '';
  for (let i = 0; i < n; i++) text += `User${String(i)}@Example.org b${String(i % 7)}\n`;
  const bytes = Buffer.from(text);
  t.ok(bytes.length >= OFF_THREAD_BYTES, `${String(bytes.length)} bytes`);
  const inline = new UserTable(buildUserTable(Buffer.from(text)).value);
  const fromWorker = new UserTable(await parseOffThread(buildUserTable, bytes, undefined));
  t.equal(bytes.length, 0, 'the input was transferred to the worker, not copied');
  t.equal(fromWorker.size, n);
  for (const i of [0, 1, 77, n - 1]) t.equal(fromWorker.get(`user${String(i)}@example.org`), `b${String(i % 7)}`, `user${String(i)}`);
  t.same([...fromWorker.entries()].slice(0, 50), [...inline.entries()].slice(0, 50), 'the same entries in the same order');
});
