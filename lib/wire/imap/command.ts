// One IMAP command from the client's bytes, with its literals. Pure; never throws on input.
//
//   command  = tag SP name [SP arg *(SP arg)] CRLF                     (RFC 9051 §9)
//   arg      = atom / quoted / literal / list
//   list     = "(" ... ")"  — scanned to its matching ")" (quoted strings respected) and kept as
//              its text; no literals inside before login
//   quoted   = DQUOTE *(any CHAR except " and \, or \" or \\) DQUOTE
//   literal  = "{" number ["+"] "}" CRLF *OCTET  — "{n}" is synchronizing: the client waits for
//              our "+ " continuation before sending the octets; "{n+}" (LITERAL+, RFC 7888) is not.
//   tag      = 1*<ASTRING-CHAR except "+">
import { Buffer } from 'node:buffer';

/** Longest command line we read before login (RFC 9051 §4 suggests servers accept ≥ 8000). */
export const MAX_IMAP_LINE = 8_192;
/** Largest literal we accept before login: a user name or password, not a message. */
export const MAX_IMAP_LITERAL = 8_192;
/** Longest command, literals included: room for a LOGIN with two literals of MAX_IMAP_LITERAL
 *  and a line of MAX_IMAP_LINE. Without it, a chain of LITERAL+ literals grows the buffer
 *  without bound. */
export const MAX_IMAP_COMMAND = MAX_IMAP_LINE + 2 * MAX_IMAP_LITERAL;

export interface ImapCommand {
  readonly tag: string;
  /** Upper-cased command name. */
  readonly name: string;
  readonly args: readonly string[];
  /** Bytes the command took (to drop them from the input). */
  readonly length: number;
  /**
   * The command's bytes cut after each synchronizing literal's "{n}\r\n" — when replayed to a
   * backend, each piece but the last waits for the backend's "+" continuation.
   */
  readonly pieces: readonly Buffer[];
}

export type ImapParse =
  /**
   * Not complete. `continuation`: the client sent "{n}\r\n" and now waits for our "+ ".
   * `until`: inside a literal's octets, the input length before which the answer stays
   * need-more whatever arrives (a literal may carry CRLFs), so a caller fed a byte at a time
   * need not parse again before then.
   */
  | { readonly kind: 'need-more'; readonly continuation: boolean; readonly until?: number }
  | { readonly kind: 'match'; readonly command: ImapCommand }
  /** A syntax error: answer BAD (with the tag, when known) and drop `length` bytes. */
  | { readonly kind: 'bad'; readonly tag?: string; readonly reason: string; readonly length: number }
  /** Over a limit: the connection cannot continue. */
  | { readonly kind: 'too-long'; readonly tag?: string };

/** ASTRING-CHAR (RFC 9051 §9): any CHAR except ( ) { SP CTL % * " \\ — "]" is allowed, as
 *  astrings (user names, tags) allow it. */
function isAtomChar(c: number): boolean {
  if (c <= 0x20 || c >= 0x7f) return false;
  return !'(){%*"\\'.includes(String.fromCharCode(c));
}

function lineEnd(buf: Buffer, from: number): number {
  return buf.indexOf(10, from);
}

/**
 * Parses the command at the start of `buf`. A synchronizing literal whose octets have not
 * arrived yet yields need-more with `continuation: true` exactly when the buffer ends right
 * after its "{n}\r\n".
 */
export function parseImapCommand(buf: Buffer): ImapParse {
  const pieces: Buffer[] = [];
  let pieceStart = 0;
  let pos = 0;
  const args: string[] = [];
  let tag: string | undefined;
  let name: string | undefined;
  const tooLong = (): ImapParse => ({ kind: 'too-long', ...(tag === undefined ? {} : { tag }) });
  const bad = (reason: string): ImapParse => {
    const lf = lineEnd(buf, pos);
    if (lf < 0) return buf.length > MAX_IMAP_LINE ? tooLong() : { kind: 'need-more', continuation: false };
    return { kind: 'bad', ...(tag === undefined ? {} : { tag }), reason, length: lf + 1 };
  };
  let lineStart = 0;
  for (;;) {
    // Read one token (or the end of the line) at pos.
    if (pos - lineStart > MAX_IMAP_LINE) return tooLong();
    // Here buf.length - lineStart <= pos - lineStart <= MAX_IMAP_LINE: the line still fits.
    if (pos >= buf.length) return { kind: 'need-more', continuation: false };
    const c = buf.readUInt8(pos);
    if (c === 13 || c === 10) {
      // End of the command.
      if (c === 13) {
        if (pos + 1 >= buf.length) return { kind: 'need-more', continuation: false };
        if (buf.readUInt8(pos + 1) !== 10) return bad('CR without LF');
      }
      const end = pos + (c === 13 ? 2 : 1);
      if (tag === undefined || name === undefined) return { kind: 'bad', ...(tag === undefined ? {} : { tag }), reason: 'missing command', length: end };
      pieces.push(buf.subarray(pieceStart, end));
      return { kind: 'match', command: { tag, name, args, length: end, pieces } };
    }
    if (tag !== undefined) {
      if (c !== 32) return bad('expected a space');
      pos++;
      if (pos >= buf.length) return { kind: 'need-more', continuation: false };
    }
    const d = buf.readUInt8(pos);
    let token: string;
    if (d === 34) {
      // quoted
      let out = '';
      let i = pos + 1;
      let closed = false;
      while (i < buf.length) {
        const e = buf.readUInt8(i);
        if (e === 92) {
          if (i + 1 >= buf.length) break;
          const f = buf.readUInt8(i + 1);
          if (f !== 34 && f !== 92) return bad('bad escape in quoted string');
          out += String.fromCharCode(f);
          i += 2;
          continue;
        }
        if (e === 34) {
          closed = true;
          break;
        }
        if (e === 13 || e === 10) return bad('line break in quoted string');
        out += String.fromCharCode(e);
        i++;
      }
      if (!closed) return i - lineStart > MAX_IMAP_LINE ? tooLong() : { kind: 'need-more', continuation: false };
      token = Buffer.from(out, 'latin1').toString('utf8');
      pos = i + 1;
    } else if (d === 123) {
      // literal
      const close = buf.indexOf(125, pos);
      if (close < 0) return buf.length - pos > 24 ? bad('bad literal') : { kind: 'need-more', continuation: false };
      const spec = buf.subarray(pos + 1, close).toString('latin1');
      const m = /^(\d{1,10})(\+?)$/.exec(spec);
      if (!m?.[1]) return bad('bad literal');
      const size = Number(m[1]);
      const sync = m[2] !== '+';
      const afterBrace = close + 1;
      if (afterBrace >= buf.length) return { kind: 'need-more', continuation: false };
      let dataStart: number;
      if (buf.readUInt8(afterBrace) === 13) {
        if (afterBrace + 1 >= buf.length) return { kind: 'need-more', continuation: false };
        if (buf.readUInt8(afterBrace + 1) !== 10) return bad('literal not followed by CRLF');
        dataStart = afterBrace + 2;
      } else if (buf.readUInt8(afterBrace) === 10) {
        dataStart = afterBrace + 1;
      } else return bad('literal not followed by CRLF');
      if (size > MAX_IMAP_LITERAL || dataStart + size > MAX_IMAP_COMMAND) return tooLong();
      if (sync) {
        pieces.push(buf.subarray(pieceStart, dataStart));
        pieceStart = dataStart;
      }
      // The client waits for "+ " after any sync header, "{0}\r\n" included (RFC 9051 §4.3).
      if (sync && buf.length === dataStart) return { kind: 'need-more', continuation: true };
      if (buf.length < dataStart + size) return { kind: 'need-more', continuation: false, until: dataStart + size };
      token = buf.subarray(dataStart, dataStart + size).toString('utf8');
      pos = dataStart + size;
      lineStart = pos;
    } else if (d === 40) {
      // A parenthesized list, kept whole as its text: ID's parameters (RFC 2971), which the ID
      // capability we advertise must accept.
      let depth = 0;
      let quoted = false;
      let escaped = false;
      let i = pos;
      for (; i < buf.length; i++) {
        const e = buf.readUInt8(i);
        if (e === 13 || e === 10) return bad('line break in a list');
        if (quoted) {
          if (escaped) escaped = false;
          else if (e === 92) escaped = true;
          else if (e === 34) quoted = false;
        } else if (e === 34) quoted = true;
        else if (e === 123) return bad('literal in a list');
        else if (e === 40) depth++;
        else if (e === 41 && --depth === 0) break;
      }
      if (i >= buf.length) return i - lineStart > MAX_IMAP_LINE ? tooLong() : { kind: 'need-more', continuation: false };
      token = buf.subarray(pos, i + 1).toString('utf8');
      pos = i + 1;
    } else {
      let i = pos;
      while (i < buf.length && isAtomChar(buf.readUInt8(i))) i++;
      if (i === pos) return bad('expected an atom, a quoted string or a literal');
      if (i >= buf.length) return i - lineStart > MAX_IMAP_LINE ? tooLong() : { kind: 'need-more', continuation: false };
      token = buf.subarray(pos, i).toString('latin1');
      pos = i;
    }
    if (tag === undefined) {
      // A tag is an atom without "+" (RFC 9051 §9), never a quoted string, literal or list.
      if (d === 34 || d === 123 || d === 40 || token.includes('+')) return bad('bad tag');
      tag = token;
    } else if (name === undefined) {
      name = token.toUpperCase();
    } else {
      args.push(token);
    }
  }
}
