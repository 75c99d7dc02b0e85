// The log's batch writer (lib/log-batch.ts) on real fds: a file for order and completeness, a
// FIFO whose reader is slow (EAGAIN and retry; the queue bound and the log.dropped line) and a
// FIFO whose reader is gone (EPIPE: lines lost, nothing thrown).
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { within } from '../helpers/e2e-tools.js';
import { BatchWriter, droppedLine } from '../../lib/log-batch.js';
import { ManualClock } from '../../lib/clock.js';
import { createLogger, flushLog, LOG_FLUSH_WAIT_MS } from '../../lib/log.js';

const line = (i: number, pad = 0): string => `${JSON.stringify({ i, pad: 'x'.repeat(pad) })}\n`;

function tempDir(t: Test): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tether-log-'));
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }); });
  return dir;
}

/** A fresh file to log into, and its fd (closed at the end of the test). */
function logFile(t: Test): { file: string; fd: number } {
  const file = path.join(tempDir(t), 'log');
  const fd = openSync(file, 'w');
  t.teardown(() => {
    closeSync(fd);
  });
  return { file, fd };
}

const flushed = (w: BatchWriter): Promise<void> => new Promise((r) => { w.flush(r); });

t.test('a file gets every line once, in order, batched or flushed', async (t) => {
  const { file, fd } = logFile(t);
  const w = new BatchWriter(fd, 1_000);
  const want: string[] = [];
  let refused = 0;
  for (let i = 0; i < 5_000; i++) {
    const l = line(i, i % 7);
    want.push(l);
    if (!w.write(l)) refused++;
  }
  t.equal(refused, 0, 'every line taken');
  t.ok(readFileSync(file, 'utf8').length < want.join('').length, 'not all written before a flush (one write in flight at a time)');
  await flushed(w);
  t.equal(readFileSync(file, 'utf8'), want.join(''), 'all of it, in order, after flush');
  await flushed(w);
  w.flush();
  t.equal(readFileSync(file, 'utf8'), want.join(''), 'a flush with nothing gathered writes nothing');
  w.write(line(-1));
  t.equal(readFileSync(file, 'utf8'), want.join(''), 'a line below the batch size waits');
  w.flushSync();
  t.equal(readFileSync(file, 'utf8'), want.join('') + line(-1), 'flushSync writes it at once');
  w.flushSync();
});

t.test('flush callbacks run once everything before them is written, each once', async (t) => {
  const { file, fd } = logFile(t);
  const w = new BatchWriter(fd, 64);
  const calls: number[] = [];
  w.write(line(1, 100));
  w.flush(() => calls.push(readFileSync(file, 'utf8').length));
  w.write(line(2));
  w.flush(() => calls.push(readFileSync(file, 'utf8').length));
  await flushed(w);
  t.same(calls, [line(1, 100).length + line(2).length, line(1, 100).length + line(2).length]);
});

/** A FIFO opened both ends non-blocking; the writer gets `wfd`, the test reads `rfd`. */
function fifo(t: Test): { closeReader: () => void; wfd: number; readAll: () => string } {
  const p = path.join(tempDir(t), 'fifo');
  execFileSync('mkfifo', [p]);
  const rfd = openSync(p, constants.O_RDONLY | constants.O_NONBLOCK);
  const wfd = openSync(p, constants.O_WRONLY | constants.O_NONBLOCK);
  let rOpen = true;
  t.teardown(() => {
    if (rOpen) closeSync(rfd);
    closeSync(wfd);
  });
  const buf = Buffer.alloc(1 << 20);
  return {
    closeReader: () => {
      closeSync(rfd);
      rOpen = false;
    },
    wfd,
    readAll: () => {
      let out = '';
      for (;;) {
        try {
          const n = readSync(rfd, buf, 0, buf.length, null);
          if (n === 0) return out;
          out += buf.toString('utf8', 0, n);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return out;
          throw e;
        }
      }
    },
  };
}

t.test('a full pipe (EAGAIN): the writer waits and goes on, losing nothing; over its bound it drops and says so', async (t) => {
  const { wfd, readAll } = fifo(t);
  const clock = new ManualClock(Date.parse('2026-12-04T00:00:00Z'));
  const w = new BatchWriter(wfd, 4_096, 256 * 1024, clock);
  const want: string[] = [];
  let dropped = 0;
  // About 1 MiB offered against a 64 KiB pipe nobody reads yet and a 256 KiB bound.
  for (let i = 0; i < 10_000; i++) {
    const l = line(i, 80);
    if (w.write(l)) want.push(l);
    else dropped++;
  }
  t.ok(dropped > 0, `lines over the bound are refused (${String(dropped)})`);
  let got = '';
  const done = flushed(w);
  const state = { finished: false };
  void done.then(() => (state.finished = true));
  const deadline = Date.now() + 10_000;
  while (!state.finished && Date.now() < deadline) {
    got += readAll();
    await new Promise((r) => setTimeout(r, 5));
  }
  t.ok(state.finished, 'the flush finished once the reader read');
  got += readAll();
  const notice = droppedLine(dropped, clock.now(), process.pid);
  t.equal(got, want.join('') + notice, 'every line taken arrived, in order, then how many were dropped');
  t.match(JSON.parse(notice), { level: 'warn', event: 'log.dropped', dropped, time: '2026-12-04T00:00:00.000Z' });
  t.equal(w.write(line(-1)), true, 'room again');
  await flushed(w);
  t.equal(readAll(), line(-1), 'the count is said once');
});

t.test('a pipe with no reader (EPIPE): lines are lost, nothing throws, flush callbacks still run', async (t) => {
  const { closeReader, wfd } = fifo(t);
  closeReader();
  const w = new BatchWriter(wfd, 100);
  t.equal(w.write(line(1, 200)), true);
  await flushed(w);
  t.equal(w.write(line(2)), false, 'after EPIPE every line is refused');
  await flushed(w);
  t.doesNotThrow(() => { w.flushSync(); });
});

t.test('flushLog on a pipe nobody reads gives up after LOG_FLUSH_WAIT_MS', async (t) => {
  const { wfd } = fifo(t);
  const logger = createLogger('info', new BatchWriter(wfd, 4_096));
  // Four pipe buffers' worth: the pipe fills, the writer waits on EAGAIN.
  for (let i = 0; i < 2_000; i++) logger.info({ i, pad: 'x'.repeat(100) }, 'line');
  const t0 = performance.now();
  await within(flushLog(logger), LOG_FLUSH_WAIT_MS + 8_000, 'flushLog');
  const ms = performance.now() - t0;
  t.ok(ms >= LOG_FLUSH_WAIT_MS - 50, `it waited for the pipe first (${ms.toFixed(0)} ms)`);
});
