import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import t from 'tap';
import { ByteReader } from '../../lib/wire/byte-reader.js';
import { seedFastCheck } from '../helpers/fc-seed.js';

seedFastCheck({ numRuns: 500 });

const hex = (h: string): Buffer => Buffer.from(h.replace(/\s/g, ''), 'hex');

t.test('case table: reads in order', (t) => {
  const r = new ByteReader(hex('01 0203 040506 03 aabbcc 0002 dddd ee ff'));
  t.equal(r.u8(), 0x01, 'u8');
  t.equal(r.u16(), 0x0203, 'u16 is big-endian');
  t.equal(r.u24(), 0x040506, 'u24 is big-endian');
  t.same(r.vector8()?.rest(), hex('aabbcc'), 'vector8');
  t.same(r.vector16()?.rest(), hex('dddd'), 'vector16');
  t.equal(r.offset, 14, 'offset');
  t.equal(r.remaining, 2, 'remaining');
  t.same(r.bytes(1), hex('ee'), 'bytes');
  t.same(r.rest(), hex('ff'), 'rest');
  t.equal(r.remaining, 0);
  t.ok(r.ok, 'still ok after reading exactly to the end');
  t.same(r.rest(), Buffer.alloc(0), 'rest at the end is empty');
  t.ok(r.ok, 'an empty rest does not fail the reader');
  t.end();
});

t.test('case table: a read past the end fails and spends the reader', (t) => {
  const reads: [string, (r: ByteReader) => unknown][] = [
    ['u8', (r) => r.u8()],
    ['u16', (r) => r.u16()],
    ['u24', (r) => r.u24()],
    ['bytes(4)', (r) => r.bytes(4)],
    ['sub(4)', (r) => r.sub(4)],
    ['vector8 longer than the rest', (r) => r.vector8()],
    ['vector16 longer than the rest', (r) => r.vector16()],
  ];
  for (const [name, read] of reads) {
    const r = new ByteReader(hex('ff'), 0, 1);
    r.u8();
    t.equal(read(r), undefined, `${name}: undefined`);
    t.notOk(r.ok, `${name}: not ok`);
    t.equal(r.remaining, 0, `${name}: nothing remains`);
    t.equal(r.u8(), undefined, `${name}: later reads fail too`);
    t.same(r.rest(), Buffer.alloc(0), `${name}: rest is empty`);
  }
  const vector = new ByteReader(hex('05 0102'));
  t.equal(vector.vector8(), undefined, 'a vector whose length overruns the buffer');
  t.notOk(vector.ok);
  const negative = new ByteReader(hex('0102'));
  t.equal(negative.bytes(-1), undefined, 'a negative length fails');
  t.notOk(negative.ok);
  t.end();
});

t.test('case table: windows and sub-readers stay inside their bounds', (t) => {
  const buf = hex('00 11 22 33 44 55');
  const window = new ByteReader(buf, 1, 4);
  t.equal(window.offset, 1);
  t.equal(window.remaining, 3);
  t.same(window.rest(), hex('112233'), 'a window ends at its end, not the buffer’s');
  const parent = new ByteReader(buf);
  const sub = parent.sub(2);
  t.equal(parent.offset, 2, 'the parent skips the sub-reader’s bytes');
  t.equal(sub?.u16(), 0x0011);
  t.equal(sub?.u8(), undefined, 'a sub-reader cannot read into its parent’s bytes');
  t.ok(parent.ok, 'a failed sub-reader does not fail its parent');
  t.equal(parent.u8(), 0x22);
  t.same(new ByteReader(buf).bytes(0), Buffer.alloc(0), 'zero bytes is fine');
  t.same(new ByteReader(Buffer.alloc(0)).vector8(), undefined, 'no length byte');
  t.same(new ByteReader(hex('00')).vector8()?.remaining, 0, 'an empty vector');
  t.end();
});

t.test('split at every offset: a structure reads only from the whole buffer', (t) => {
  // A miniature TLS-style record: u8 type, u16 version, vector16 of { vector8, u24 }.
  const whole = hex('16 0303 0006 02 abcd 010203');
  const read = (b: Buffer): [number, number, string, number] | undefined => {
    const r = new ByteReader(b);
    const type = r.u8();
    const version = r.u16();
    const body = r.vector16();
    const name = body?.vector8();
    const n = body?.u24();
    if (!r.ok || !body?.ok || type === undefined || version === undefined || name === undefined || n === undefined) return undefined;
    return [type, version, name.rest().toString('hex'), n];
  };
  for (let i = 0; i < whole.length; i++) t.equal(read(whole.subarray(0, i)), undefined, `prefix of ${String(i)} bytes`);
  t.same(read(whole), [0x16, 0x0303, 'abcd', 0x010203], 'the whole buffer');
  t.end();
});

type Op = 'u8' | 'u16' | 'u24' | 'bytes' | 'sub' | 'vector8' | 'vector16' | 'rest';
const WIDTH: Record<Exclude<Op, 'bytes' | 'sub' | 'rest' | 'vector8' | 'vector16'>, number> = { u8: 1, u16: 2, u24: 3 };

t.test('properties', (t) => {
  const op = fc.tuple(fc.constantFrom<Op>('u8', 'u16', 'u24', 'bytes', 'sub', 'vector8', 'vector16', 'rest'), fc.integer({ min: -2, max: 40 }));

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.array(op, { maxLength: 30 }), (bytes, ops) => {
        const buf = Buffer.from(bytes);
        const r = new ByteReader(buf);
        let wasFailed = false;
        for (const [name, n] of ops) {
          const before = r.offset;
          const remainingBefore = r.remaining;
          let got: unknown;
          switch (name) {
            case 'u8':
            case 'u16':
            case 'u24': {
              got = r[name]();
              const w = WIDTH[name];
              if (remainingBefore >= w && !wasFailed && got !== buf.readUIntBE(before, w)) return false;
              break;
            }
            case 'bytes':
              got = r.bytes(n);
              if (got !== undefined && (got as Buffer).length !== n) return false;
              break;
            case 'sub': {
              const sub = r.sub(n);
              got = sub;
              if (sub && sub.remaining !== n) return false;
              break;
            }
            case 'vector8':
              got = r.vector8();
              break;
            case 'vector16':
              got = r.vector16();
              break;
            case 'rest':
              got = r.rest();
              if ((got as Buffer).length !== remainingBefore) return false;
              break;
          }
          if (wasFailed && (r.ok || (got !== undefined && name !== 'rest'))) return false; // once spent, always spent
          if (r.ok && r.offset + r.remaining !== buf.length) return false; // the cursor accounts for every byte
          if (!r.ok && r.remaining !== 0) return false;
          wasFailed = !r.ok;
        }
        return true;
      }),
    );
  }, 'any sequence of reads never throws, never reads past the end, and a failure is final');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(64), fc.nat(64), (bytes, a, b) => {
        const buf = Buffer.from(bytes);
        const start = Math.min(a, b, buf.length);
        const end = Math.min(Math.max(a, b), buf.length);
        const r = new ByteReader(buf, start, end);
        const got = r.rest();
        return got.equals(buf.subarray(start, end)) && r.remaining === 0 && r.ok;
      }),
    );
  }, 'a window reads exactly its bytes');
  t.end();
});
