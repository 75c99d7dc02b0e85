// One POP3 command line from the client's bytes. Pure; never throws on input.
//
//   command = keyword *(SP arg) CRLF     keyword 3–4 letters, case-insensitive (RFC 1939 §3)
//   Lines are at most 255 octets with CRLF (RFC 2449 §4); an AUTH continuation line carrying a
//   base64 response may be longer (RFC 5034 §4), so the cap for those is MAX_POP3_AUTH_LINE.
import type { Buffer } from 'node:buffer';

export const MAX_POP3_LINE = 255;
export const MAX_POP3_AUTH_LINE = 2_048;

export type LineParse =
  | { readonly kind: 'need-more' }
  | { readonly kind: 'line'; readonly text: string; readonly length: number }
  | { readonly kind: 'too-long' };

/** Reads one CRLF (or bare LF) terminated line of at most `max` octets including the ending. */
export function readLine(buf: Buffer, max: number): LineParse {
  const lf = buf.indexOf(10);
  if (lf < 0) return buf.length >= max ? { kind: 'too-long' } : { kind: 'need-more' };
  if (lf + 1 > max) return { kind: 'too-long' };
  const end = lf > 0 && buf.readUInt8(lf - 1) === 13 ? lf - 1 : lf;
  return { kind: 'line', text: buf.subarray(0, end).toString('utf8'), length: lf + 1 };
}

export interface Pop3Command {
  /** Upper-cased keyword. */
  readonly keyword: string;
  readonly args: readonly string[];
}

/** Splits a command line into keyword and arguments; undefined when it is not a command. */
export function parsePop3Command(line: string): Pop3Command | undefined {
  const parts = line.split(' ');
  // split() always yields at least one part: `?? ''` only satisfies noUncheckedIndexedAccess.
  /* c8 ignore next */
  const keyword = parts[0] ?? '';
  if (!/^[A-Za-z]{3,4}$/.test(keyword)) return undefined;
  return { keyword: keyword.toUpperCase(), args: parts.slice(1) };
}
