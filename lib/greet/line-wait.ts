// Stage 2b, pure. When the greet driver should ask its greeter again. A greeter answers "more"
// until a line ends (an LF), a limit is passed, or an IMAP literal's octets are all in; asking
// it over the whole buffer on every byte made an 8 KB quoted string sent a byte at a time cost
// 1 s of CPU (O(n²)). After a "more", ask again only when an LF arrives past the literal it
// waits for (`until`: a literal's octets may carry CRLFs), when that literal is complete, or
// when the buffer has doubled (which finds a line over its limit at most twice the limit late).

export class LineWait {
  private size = 0;
  private askedAt = 0;
  private until = 0;

  /** Records `chunk` arriving; true when the greeter should be asked now. */
  push(chunk: Uint8Array): boolean {
    const before = this.size;
    this.size += chunk.length;
    if (this.size < this.until) return false;
    return before < this.until || this.size >= 2 * this.askedAt || chunk.includes(10);
  }

  /** The greeter was asked; `left` bytes stay unconsumed, and it said `until` (if any). */
  asked(left: number, until?: number): void {
    this.size = left;
    this.askedAt = left;
    this.until = until ?? 0;
  }
}
