// Pure. Splits a stream of pipelined HTTP/1.1 responses (as read from one socket, in chunks of
// any size) into their status codes, so the bench can pipeline many admin requests on one
// connection and check every answer. Bodies are skipped by Content-Length; the admin API always
// sends one. A response without it, or a head that does not parse, is a protocol error.

/** Longest response head accepted; the admin API's are ~150 bytes. */
const MAX_HEAD_BYTES = 8 * 1024;

export class HttpResponseReader {
  private buf: Buffer = Buffer.alloc(0);
  /** The current response's status once its head is read, until its body is whole. */
  private status: number | undefined;
  /** Body bytes of the current response still to skip. */
  private bodyLeft = 0;

  /** Feeds the next chunk; returns the status codes of the responses it completed (head and body), in order. */
  push(chunk: Buffer): number[] {
    const statuses: number[] = [];
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) {
      if (this.status !== undefined) {
        const skip = Math.min(this.bodyLeft, this.buf.length);
        this.bodyLeft -= skip;
        this.buf = this.buf.subarray(skip);
        if (this.bodyLeft > 0) return statuses;
        statuses.push(this.status);
        this.status = undefined;
      }
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.buf.length > MAX_HEAD_BYTES) throw new Error(`HTTP response head longer than ${MAX_HEAD_BYTES} bytes`);
        return statuses;
      }
      const head = this.buf.subarray(0, end).toString('latin1');
      this.buf = this.buf.subarray(end + 4);
      const status = /^HTTP\/1\.[01] (\d{3})[ \r]/.exec(`${head}\r`);
      if (status?.[1] === undefined) throw new Error(`not an HTTP response: ${JSON.stringify(head.slice(0, 40))}`);
      const length = /\r\ncontent-length:[ \t]*(\d{1,12})[ \t]*(?:\r|$)/i.exec(head);
      if (length?.[1] === undefined) throw new Error(`HTTP response without Content-Length (status ${status[1]})`);
      this.status = Number(status[1]);
      this.bodyLeft = Number(length[1]);
    }
  }
}
