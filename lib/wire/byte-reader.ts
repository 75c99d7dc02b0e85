// A bounds-checked cursor over a Buffer (the TS analogue of Go's cryptobyte.String). Pure.
// Every read returns undefined when the bytes are not there, and then the reader is spent
// (`ok` false), so a parser can chain reads and check once.
import type { Buffer } from 'node:buffer';

export class ByteReader {
  private pos: number;
  private failed = false;

  constructor(
    private readonly buf: Buffer,
    start = 0,
    private readonly end = buf.length,
  ) {
    this.pos = start;
  }

  /** False once any read has run past the end. */
  get ok(): boolean {
    return !this.failed;
  }

  get remaining(): number {
    return this.failed ? 0 : this.end - this.pos;
  }

  get offset(): number {
    return this.pos;
  }

  private take(n: number): number | undefined {
    if (this.failed || n < 0 || this.pos + n > this.end) {
      this.failed = true;
      return undefined;
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8(): number | undefined {
    const at = this.take(1);
    return at === undefined ? undefined : this.buf.readUInt8(at);
  }

  u16(): number | undefined {
    const at = this.take(2);
    return at === undefined ? undefined : this.buf.readUInt16BE(at);
  }

  u24(): number | undefined {
    const at = this.take(3);
    return at === undefined ? undefined : this.buf.readUIntBE(at, 3);
  }

  /** `n` bytes as a view (no copy). */
  bytes(n: number): Buffer | undefined {
    const at = this.take(n);
    return at === undefined ? undefined : this.buf.subarray(at, at + n);
  }

  /** A sub-reader over the next `n` bytes; the parent skips them. */
  sub(n: number): ByteReader | undefined {
    const at = this.take(n);
    return at === undefined ? undefined : new ByteReader(this.buf, at, at + n);
  }

  /** A vector with a 1-byte length prefix, as a sub-reader. */
  vector8(): ByteReader | undefined {
    const n = this.u8();
    return n === undefined ? undefined : this.sub(n);
  }

  /** A vector with a 2-byte length prefix, as a sub-reader. */
  vector16(): ByteReader | undefined {
    const n = this.u16();
    return n === undefined ? undefined : this.sub(n);
  }

  /** The rest of the bytes as a view. */
  rest(): Buffer {
    const n = this.remaining;
    return this.bytes(n) ?? this.buf.subarray(0, 0);
  }
}
