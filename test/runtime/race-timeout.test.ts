// raceTimeout (lib/clock.ts), the one "bound a wait with a timer" of tether: the work's result
// when it is first, `late()`'s when the timer is, `late()`'s throw as a rejection, and the timer
// cleared either way (injected Timers count what is pending).
import t from 'tap';
import { raceTimeout, type Timers } from '../../lib/clock.js';

/** Timers that run on real time but count the ones still pending. */
function counted(): { timers: Timers; pending: () => number } {
  const live = new Set<unknown>();
  return {
    timers: {
      set: (fn, ms) => {
        const h = setTimeout(() => {
          live.delete(h);
          fn();
        }, ms);
        live.add(h);
        return h;
      },
      clear: (h) => {
        live.delete(h);
        clearTimeout(h as ReturnType<typeof setTimeout>);
      },
    },
    pending: () => live.size,
  };
}

t.test('the work first: its value, the timer cleared', async (t) => {
  const c = counted();
  t.equal(await raceTimeout(Promise.resolve('done'), 10_000, () => 'late', c.timers), 'done');
  t.equal(c.pending(), 0);
});

t.test('the timer first: what late() returns', async (t) => {
  const c = counted();
  t.equal(await raceTimeout(new Promise<string>(() => undefined), 10, () => 'late', c.timers), 'late');
  t.equal(c.pending(), 0);
});

t.test('late() throws: a rejection with that error (a non-Error wrapped)', async (t) => {
  const c = counted();
  await t.rejects(raceTimeout(new Promise(() => undefined), 10, () => {
    throw new Error('too slow');
  }, c.timers), { message: 'too slow' });
  await t.rejects(raceTimeout(new Promise(() => undefined), 10, () => {
    // eslint-disable-next-line @typescript-eslint/only-throw-error
    throw 'a string';
  }, c.timers), { message: 'a string' });
  t.equal(c.pending(), 0);
});

t.test('the work rejects first: that rejection, the timer cleared', async (t) => {
  const c = counted();
  await t.rejects(raceTimeout(Promise.reject(new Error('broke')), 10_000, () => 'late', c.timers), { message: 'broke' });
  t.equal(c.pending(), 0);
});
