// Accept limits (lib/accept/limits.ts): which limit refuses a client, and the log throttle.
import t from 'tap';
import { acceptLimit, Throttle } from '../../lib/accept/limits.js';

t.test('acceptLimit: a client is refused once the open count has reached a limit', (t) => {
  t.equal(acceptLimit({ all: 1_000_000, frontend: 1_000_000 }, {}), undefined, 'no limits');
  t.equal(acceptLimit({ all: 9, frontend: 9 }, { all: 10, frontend: 10 }), undefined, '9 open of 10: the 10th is served');
  t.same(acceptLimit({ all: 10, frontend: 3 }, { all: 10, frontend: 10 }), { limit: 'max-conns', max: 10 });
  t.same(acceptLimit({ all: 10, frontend: 10 }, { all: 100, frontend: 10 }), { limit: 'frontend-max-conns', max: 10 });
  t.same(acceptLimit({ all: 10, frontend: 10 }, { all: 10, frontend: 10 }), { limit: 'max-conns', max: 10 }, 'both: the process-wide one is named');
  t.same(acceptLimit({ all: 1, frontend: 1 }, { frontend: 1 }), { limit: 'frontend-max-conns', max: 1 });
  t.same(acceptLimit({ all: 0, frontend: 0 }, { all: undefined, frontend: undefined }), undefined);
  t.end();
});

t.test('Throttle lets one event per key and interval through, counting the rest', (t) => {
  const th = new Throttle(1_000);
  t.equal(th.pass('a', 0), 0, 'the first is reported, nothing held');
  t.equal(th.pass('a', 1), undefined);
  t.equal(th.pass('a', 999), undefined);
  t.equal(th.pass('b', 500), 0, 'keys are independent');
  t.equal(th.pass('a', 1_000), 2, 'a second later: reported, with the 2 held back');
  t.equal(th.pass('a', 1_500), undefined);
  t.equal(th.pass('a', 5_000), 1);
  t.equal(th.pass('a', 6_000), 0);
  t.end();
});

t.test('Throttle: at most one report a second over a burst of 10 000 events in 10 s', (t) => {
  const th = new Throttle(1_000);
  let reports = 0;
  let total = 0;
  for (let ms = 0; ms < 10_000; ms++) {
    const held = th.pass('max-conns', ms);
    if (held !== undefined) {
      reports++;
      total += held + 1;
    }
  }
  t.equal(reports, 10);
  t.equal(total, 10_000 - 999, 'every event is counted in a later report, except those after the last one');
  t.end();
});
