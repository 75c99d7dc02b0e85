// The pool wait queue (lib/place/queue.ts) with fake timers: order, bound, timeout,
// cancellation, and waiters that cannot use the room keeping their place.
import t from 'tap';
import type { Timers } from '../../lib/clock.js';
import { WaitQueue, type WaitEnd } from '../../lib/place/queue.js';

/** Timers that fire only when the test advances them. */
class FakeTimers implements Timers {
  private nowMs = 0;
  private readonly due = new Map<number, { atMs: number; fn: () => void }>();
  private next = 1;
  set(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.due.set(id, { atMs: this.nowMs + ms, fn });
    return id;
  }
  clear(handle: unknown): void {
    this.due.delete(handle as number);
  }
  get pending(): number {
    return this.due.size;
  }
  advance(ms: number): void {
    this.nowMs += ms;
    for (const [id, d] of [...this.due]) {
      if (d.atMs <= this.nowMs) {
        this.due.delete(id);
        d.fn();
      }
    }
  }
}

/** Lets resolved promises' callbacks run. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A wait whose outcome can be read synchronously after settle(). */
function track(p: Promise<WaitEnd>): { end: WaitEnd | undefined } {
  const box: { end: WaitEnd | undefined } = { end: undefined };
  void p.then((e) => (box.end = e));
  return box;
}

t.test('waiters are served first come, first served, one per free slot', async (t) => {
  const timers = new FakeTimers();
  const q = new WaitQueue(10, 5_000, timers);
  let slots = 0;
  const order: string[] = [];
  const take = (name: string) => (): boolean => {
    if (slots === 0) return false;
    slots--;
    order.push(name);
    return true;
  };
  const a = track(q.wait(take('a')));
  const b = track(q.wait(take('b')));
  const c = track(q.wait(take('c')));
  t.equal(q.size, 3);
  t.equal(q.serve(), 0, 'no room: nobody served');
  slots = 1;
  t.equal(q.serve(), 1);
  slots = 2;
  t.equal(q.serve(), 2);
  await settle();
  t.same(order, ['a', 'b', 'c'], 'in arrival order');
  t.same([a.end, b.end, c.end], ['served', 'served', 'served']);
  t.equal(q.size, 0);
  t.equal(timers.pending, 0, 'every timer was cleared');
  t.equal(q.serve(), 0, 'an empty queue serves nobody');
});

t.test('a waiter that cannot use the room keeps its place; those behind it are still asked', async (t) => {
  const q = new WaitQueue(10, 5_000, new FakeTimers());
  const room = new Set<string>();
  const take = (backend: string) => (): boolean => room.delete(backend);
  const pinnedToX = track(q.wait(take('x')));
  const forY = track(q.wait(take('y')));
  const alsoX = track(q.wait(take('x')));
  room.add('y');
  t.equal(q.serve(), 1);
  await settle();
  t.same([pinnedToX.end, forY.end, alsoX.end], [undefined, 'served', undefined], 'the y waiter went past the x ones');
  room.add('x');
  t.equal(q.serve(), 1);
  await settle();
  t.same([pinnedToX.end, alsoX.end], ['served', undefined], 'the first x waiter gets x first');
  t.equal(q.size, 1);
});

t.test('the bound: a wait beyond capacity is refused at once; capacity 0 queues nobody', async (t) => {
  const timers = new FakeTimers();
  const q = new WaitQueue(2, 5_000, timers);
  const never = (): boolean => false;
  track(q.wait(never));
  t.notOk(q.isFull());
  track(q.wait(never));
  t.ok(q.isFull());
  t.equal(await q.wait(never), 'queue-full');
  t.equal(q.size, 2, 'the refused one was never queued');
  t.equal(timers.pending, 2, 'and has no timer');
  const none = new WaitQueue(0, 5_000, timers);
  t.ok(none.isFull());
  t.equal(await none.wait(() => true), 'queue-full');
});

t.test('a waiter times out after timeoutMs and leaves its place', async (t) => {
  const timers = new FakeTimers();
  const q = new WaitQueue(10, 5_000, timers);
  let took = 0;
  const a = track(q.wait(() => false));
  timers.advance(1_000);
  const b = track(
    q.wait(() => {
      took++;
      return true;
    }),
  );
  timers.advance(3_999);
  await settle();
  t.same([a.end, b.end], [undefined, undefined], 'not yet');
  timers.advance(1);
  await settle();
  t.equal(a.end, 'queue-timeout', 'a: 5000 ms after it came');
  t.equal(b.end, undefined, 'b came a second later');
  t.equal(q.size, 1);
  t.equal(q.serve(), 1);
  await settle();
  t.equal(b.end, 'served');
  t.equal(took, 1);
  timers.advance(10_000);
  await settle();
  t.equal(b.end, 'served', 'a served waiter never times out later');
});

t.test('cancellation: an aborted waiter leaves at once and is never asked to take', async (t) => {
  const timers = new FakeTimers();
  const q = new WaitQueue(10, 5_000, timers);
  const ac = new AbortController();
  let asked = 0;
  const gone = track(
    q.wait(() => {
      asked++;
      return true;
    }, ac.signal),
  );
  const next = track(q.wait(() => true));
  ac.abort();
  await settle();
  t.equal(gone.end, 'cancelled');
  t.equal(q.size, 1, 'its place is free');
  t.equal(timers.pending, 1, 'its timer is cleared');
  t.equal(q.serve(), 1);
  await settle();
  t.equal(asked, 0, 'the slot went to the next waiter, not to the one that left');
  t.equal(next.end, 'served');
  t.equal(await q.wait(() => true, ac.signal), 'cancelled', 'an already aborted signal never queues');
  t.equal(q.size, 0);
});

t.test('a waiter cancelled by an earlier take() in the same serve is skipped', async (t) => {
  const q = new WaitQueue(10, 5_000, new FakeTimers());
  const ac = new AbortController();
  const first = track(
    q.wait(() => {
      ac.abort();
      return true;
    }),
  );
  let asked = false;
  const second = track(
    q.wait(() => {
      asked = true;
      return true;
    }, ac.signal),
  );
  t.equal(q.serve(), 1);
  await settle();
  t.same([first.end, second.end, asked], ['served', 'cancelled', false]);
});
