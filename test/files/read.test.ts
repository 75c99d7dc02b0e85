// The bounded file reader (lib/files/read.ts) and the off-thread parse (lib/files/off-thread.ts)
// on a real file system (a tap testdir): what is refused and with which code and phrase, files
// that grow while read, and a parse that throws, runs out of time or out of memory in its worker.
import { execFileSync } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { FileError, checkFile, describeFileError, formatBytes, readFileBounded } from '../../lib/files/read.js';
import { OFF_THREAD_BYTES, OffThreadError, parseOffThread, type Parse } from '../../lib/files/off-thread.js';

t.test('readFileBounded: regular files within the limit are read whole', async (t) => {
  const dir = t.testdir({ small: 'hello\n', empty: '' });
  t.equal((await readFileBounded(path.join(dir, 'small'), { maxBytes: 6 })).toString(), 'hello\n', 'exactly at the limit');
  t.equal((await readFileBounded(path.join(dir, 'empty'), { maxBytes: 6 })).length, 0, 'an empty file');
  const big = path.join(dir, 'big');
  writeFileSync(big, Buffer.alloc(300_000, 7));
  const b = await readFileBounded(big, { maxBytes: 1_000_000 });
  t.equal(b.length, 300_000);
  t.equal(b.buffer.byteLength >= b.length, true);
  t.ok(b.every((x) => x === 7), 'every byte');
});

t.test('readFileBounded refuses what is not a regular file, or too big, with a code and a phrase', async (t) => {
  const dir = t.testdir({ five: '12345', folder: {} });
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const cases: [string, string, string][] = [
    [fifo, 'ENOTREG', 'is a FIFO, not a regular file'],
    ['/dev/zero', 'ENOTREG', 'is a character device, not a regular file'],
    [path.join(dir, 'folder'), 'ENOTREG', 'is a directory, not a regular file'],
    [path.join(dir, 'five'), 'EFBIG', 'is 5 bytes; the limit is 4 bytes'],
  ];
  for (const [file, code, phrase] of cases) {
    const e = await readFileBounded(file, { maxBytes: 4 }).catch((x: unknown) => x);
    t.ok(e instanceof FileError, `${file}: a FileError`);
    t.equal((e as FileError).code, code, `${file}: ${code}`);
    t.equal(describeFileError(e), phrase, `${file}: ${phrase}`);
    const c = await checkFile(file, { maxBytes: 4 }).catch((x: unknown) => x);
    t.equal((c as FileError).code, code, `checkFile ${file}: ${code} too`);
  }
  const missing = await readFileBounded(path.join(dir, 'nope'), { maxBytes: 4 }).catch((x: unknown) => x);
  t.equal(describeFileError(missing), 'ENOENT', "the file system's own errors keep their code");
  t.equal((await checkFile(path.join(dir, 'five'), { maxBytes: 5 })).size, 5, 'checkFile resolves with the stat');
});

t.test('readFileBounded: a file that grows past its limit while read is refused, not cut short', async (t) => {
  // A FIFO cannot stand in for a growing file (it is refused by type): append from the reader's
  // own event loop between its reads instead. The first read sees the stat's size plus 64 KiB of
  // room, so the file grows by more than that.
  const dir = t.testdir();
  const file = path.join(dir, 'growing');
  writeFileSync(file, Buffer.alloc(1000));
  const p = readFileBounded(file, { maxBytes: 200_000 });
  appendFileSync(file, Buffer.alloc(300_000));
  const e = await p.catch((x: unknown) => x);
  // Depending on whether the append landed before the open's fstat, either phrase is the refusal.
  t.ok(e instanceof FileError && e.code === 'EFBIG', `refused: ${describeFileError(e)}`);
});

t.test('formatBytes and describeFileError', (t) => {
  t.equal(formatBytes(900), '900 bytes');
  t.equal(formatBytes(1536), '1.5 KiB');
  t.equal(formatBytes(35 * 1024 * 1024), '35.0 MiB');
  t.equal(describeFileError(new Error('plain')), 'plain');
  t.equal(describeFileError('text'), 'text');
  t.end();
});

t.test('parseOffThread: small inputs inline, big ones in a worker; failures are errors, never a crash', async (t) => {
  const count: Parse<string, { n: number; tag: string }> = (bytes, tag) => {
    let n = 0;
    for (const b of bytes) if (b === 10) n++;
    return { value: { n, tag }, transfer: [] };
  };
  t.same(await parseOffThread(count, Buffer.from('a\nb\n'), 'inline'), { n: 2, tag: 'inline' });
  const big = Buffer.alloc(OFF_THREAD_BYTES + 10, 10);
  t.same(await parseOffThread(count, big, 'worker'), { n: OFF_THREAD_BYTES + 10, tag: 'worker' });

  const throws: Parse<undefined, never> = () => {
    throw new RangeError('bad input at byte 7');
  };
  const e = await parseOffThread(throws, Buffer.alloc(OFF_THREAD_BYTES), undefined).catch((x: unknown) => x);
  t.ok(e instanceof OffThreadError, 'a throw in the worker is an OffThreadError');
  t.match(e, { message: 'bad input at byte 7', errorName: 'RangeError' });

  const spins: Parse<undefined, never> = () => {
    for (;;) {
      // a parse that never ends
    }
  };
  const slow = await parseOffThread(spins, Buffer.alloc(OFF_THREAD_BYTES), undefined, { timeoutMs: 300 }).catch((x: unknown) => x);
  t.match(slow, { message: 'parse did not finish within 0.3 s' }, 'a parse that never ends is cut');

  const hog: Parse<undefined, never> = () => {
    const keep: number[][] = [];
    for (;;) keep.push(new Array<number>(1e6).fill(1));
  };
  const oom = await parseOffThread(hog, Buffer.alloc(OFF_THREAD_BYTES), undefined, { heapMb: 32 }).catch((x: unknown) => x);
  t.match(oom, { message: 'parse needed more than 32 MiB' }, 'a parse that outgrows its heap costs only its worker');
});
