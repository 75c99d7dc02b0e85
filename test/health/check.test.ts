// lib/health/check.ts: rise/fall counting (tables and a fast-check model) and the response verdict
// (tables, every split offset, random bytes).
import fc from 'fast-check';
import t from 'tap';
import { FAILED_COUNT, compileExpect, countCheck, initialCount, judgeResponse, type HealthCount } from '../../lib/health/check.js';

const CAP = 64;
const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Feeds `results` to countCheck from `start`; returns the transitions seen and the final count. */
function run(start: HealthCount, results: readonly boolean[], rise: number, fall: number): { transitions: string[]; count: HealthCount } {
  let count = start;
  const transitions: string[] = [];
  for (const ok of results) {
    const r = countCheck(count, ok, rise, fall);
    count = r.count;
    if (r.transition) transitions.push(r.transition);
  }
  return { transitions, count };
}

t.test('countCheck: fall failures in a row take an up backend down, rise passes bring it up', (t) => {
  const up: HealthCount = { up: true, streak: 0 };
  t.same(run(up, [false, false], 2, 3), { transitions: [], count: { up: true, streak: 2 } }, 'two of three failures: still up');
  t.same(run(up, [false, false, false], 2, 3), { transitions: ['down'], count: { up: false, streak: 0 } }, 'the third: down');
  t.same(run(up, [false, false, true, false, false], 2, 3).transitions, [], 'a pass in between resets the streak');
  const down: HealthCount = { up: false, streak: 0 };
  t.same(run(down, [true], 2, 3), { transitions: [], count: { up: false, streak: 1 } });
  t.same(run(down, [true, true], 2, 3), { transitions: ['up'], count: { up: true, streak: 0 } });
  t.same(run(down, [true, false, true], 2, 3).transitions, [], 'a failure in between resets the streak');
  t.same(run(down, [false, false, false], 2, 3), { transitions: [], count: { up: false, streak: 0 } }, 'failures while down change nothing');
  t.same(run(up, [true, true, true], 2, 3), { transitions: [], count: { up: true, streak: 0 } });
  t.same(run(up, [false, true, true, false, false, false, true, true], 1, 3).transitions, ['down', 'up'], 'rise 1: one pass');
  t.same(run({ up: true, streak: 0 }, [false], 2, 1).transitions, ['down'], 'fall 1: one failure');
  t.end();
});

t.test('a backend starts up but one failed check short of down; a failed dial needs rise passes', (t) => {
  t.same(initialCount(3), { up: true, streak: 2 });
  t.same(initialCount(1), { up: true, streak: 0 });
  t.same(run(initialCount(3), [false], 2, 3).transitions, ['down'], 'dead at start: out after the first check');
  t.same(run(initialCount(3), [true, false, false], 2, 3).transitions, [], 'a first pass resets: then fall failures are needed');
  t.same(run(FAILED_COUNT, [true], 2, 3).transitions, []);
  t.same(run(FAILED_COUNT, [true, true], 2, 3).transitions, ['up']);
  t.end();
});

/**
 * The reference model: the verdict flips to down when the last `fall` results are failures and
 * none of them was already counted toward an earlier flip; to up likewise with `rise` passes.
 * Written as a plain scan over the history rather than as a state machine.
 */
function model(start: HealthCount, results: readonly boolean[], rise: number, fall: number): string[] {
  const out: string[] = [];
  let up = start.up;
  // Results against the verdict since it last flipped (the start's streak counts as that many).
  let since = start.streak;
  for (const ok of results) {
    if (ok === up) {
      since = 0;
      continue;
    }
    since++;
    if (since === (up ? fall : rise)) {
      up = !up;
      out.push(up ? 'up' : 'down');
      since = 0;
    }
  }
  return out;
}

t.test('countCheck agrees with the model; transitions alternate and each needs its full run', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }),
      fc.integer({ min: 1, max: 6 }),
      fc.boolean(),
      fc.array(fc.boolean(), { maxLength: 80 }),
      (rise, fall, startUp, results) => {
        const start = startUp ? initialCount(fall) : FAILED_COUNT;
        const got = run(start, results, rise, fall);
        const want = model(start, results, rise, fall);
        if (JSON.stringify(got.transitions) !== JSON.stringify(want)) return false;
        for (let i = 1; i < got.transitions.length; i++) if (got.transitions[i] === got.transitions[i - 1]) return false;
        if (got.count.streak >= (got.count.up ? fall : rise)) return false;
        // The final verdict is the start's, flipped once per transition.
        return got.count.up === (got.transitions.length % 2 === 0 ? start.up : !start.up);
      },
    ),
    { numRuns: 2_000 },
  );
  t.pass('2000 random histories');
  t.end();
});

t.test('judgeResponse: match, need-more, mismatch', (t) => {
  const imap = compileExpect('^\\* OK');
  t.equal(judgeResponse(bytes('* OK Dovecot ready.\r\n'), imap, CAP, false), 'match');
  t.equal(judgeResponse(bytes('* O'), imap, CAP, false), 'need-more');
  t.equal(judgeResponse(bytes('* O'), imap, CAP, true), 'mismatch', 'the backend ended');
  t.equal(judgeResponse(bytes('* BYE overloaded\r\n'), imap, CAP, false), 'need-more', 'no match yet, room left');
  t.equal(judgeResponse(bytes('x'.repeat(CAP)), imap, CAP, false), 'mismatch', 'the cap is reached');
  t.equal(judgeResponse(bytes(`${'x'.repeat(CAP)}\n* OK`), imap, CAP, false), 'mismatch', 'bytes past the cap are not looked at');
  t.equal(judgeResponse(bytes(''), imap, CAP, false), 'need-more');
  t.equal(judgeResponse(bytes('220-mx.example.com ESMTP\r\n'), compileExpect('^220'), CAP, false), 'match', 'SMTP multi-line banner');
  const send = compileExpect('^a1 OK');
  t.equal(judgeResponse(bytes('* OK ready\r\na1 OK NOOP done\r\n'), send, CAP, false), 'match', '^ anchors at each line (m flag)');
  t.equal(judgeResponse(bytes('* OK ready\r\nxa1 OK\r\n'), send, CAP, false), 'need-more');
  t.equal(judgeResponse(new Uint8Array([0xff, 0x00, 0x2b, 0x4f, 0x4b]), compileExpect('\\+OK'), CAP, false), 'match', 'binary bytes around the match');
  t.end();
});

t.test('judgeResponse: a greeting split at every offset is need-more until its match is whole', (t) => {
  const greeting = bytes('+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n');
  const pop3 = compileExpect('^\\+OK ');
  for (let i = 0; i <= greeting.length; i++) {
    const want = i >= 4 ? 'match' : 'need-more';
    if (judgeResponse(greeting.subarray(0, i), pop3, 4_096, false) !== want) t.fail(`offset ${String(i)}`);
  }
  t.pass('every offset');
  t.end();
});

t.test('judgeResponse never throws on random bytes, and agrees with itself on a prefix', (t) => {
  const re = compileExpect('^\\* OK');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (b, ended) => {
      const v = judgeResponse(b, re, CAP, ended);
      if (v === 'match') return re.test(Buffer.from(b.subarray(0, CAP)).toString('latin1'));
      if (v === 'need-more') return !ended && b.length < CAP;
      return ended || b.length >= CAP;
    }),
  );
  t.pass('random bytes');
  t.end();
});

t.test('compileExpect throws SyntaxError on a bad source', (t) => {
  t.throws(() => compileExpect('('), SyntaxError);
  t.throws(() => compileExpect('[a-'), SyntaxError);
  t.ok(compileExpect('^\\* OK').multiline);
  t.end();
});
