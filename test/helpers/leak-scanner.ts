// Finds secrets in log text, in every form a careless log line could carry them: as typed, as
// JSON escapes them, IMAP-quoted (as imaplib sends a password), percent-encoded, as UTF-8 read
// as latin1, in base64 at any offset (so also inside a SASL PLAIN response built around a
// password), as hex, as the byte list of a Buffer pino logged, and as a full SHA-256. A short hash (log.ts keyHash: 12 hex digits) is
// what tether may log for an affinity key, so it is not a form.
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import type { Secret } from './secrets.js';

/** One way a secret can be written. */
export interface Form {
  readonly form: string;
  readonly text: string;
}

/** Characters every needle has at least; the scanner indexes needles by their first this many. */
export const NEEDLE_PREFIX = 6;

const json = (s: string): string => JSON.stringify(s).slice(1, -1);
const imapQuoted = (s: string): string => s.replace(/["\\]/g, (c) => `\\${c}`);

/**
 * The base64 text that `bytes` becomes wherever they sit in a longer encoded message: for each
 * of the 3 offsets mod 3, the characters that depend on these bytes alone.
 */
export function base64Needles(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let r = 0; r < 3; r++) {
    const enc = Buffer.concat([Buffer.alloc(r), bytes]).toString('base64');
    const from = Math.ceil((8 * r) / 6);
    const to = Math.floor((8 * (r + bytes.length)) / 6);
    out.push(enc.slice(from, to));
  }
  return out;
}

/** Every form of `s` the scanner looks for (distinct texts only). */
export function formsOf(s: Secret): Form[] {
  const utf8 = Buffer.from(s.value, 'utf8');
  const latin1 = utf8.toString('latin1');
  const quoted = imapQuoted(s.value);
  const candidates: Form[] = [
    { form: 'raw', text: s.value },
    { form: 'json', text: json(s.value) },
    { form: 'imap-quoted', text: quoted },
    { form: 'imap-quoted-json', text: json(quoted) },
    { form: 'percent-encoded', text: encodeURIComponent(s.value) },
    { form: 'utf8-as-latin1', text: latin1 },
    { form: 'utf8-as-latin1-json', text: json(latin1) },
    ...base64Needles(utf8).map((text, r) => ({ form: `base64@${String(r)}`, text })),
    { form: 'hex', text: utf8.toString('hex') },
    // pino writes a Buffer as {"type":"Buffer","data":[112,119,…]}.
    { form: 'buffer-json', text: Array.from(utf8).join(',') },
    { form: 'sha256', text: createHash('sha256').update(utf8).digest('hex') },
  ];
  const seen = new Set<string>();
  return candidates.filter((f) => {
    if (seen.has(f.text)) return false;
    seen.add(f.text);
    return true;
  });
}

/** A secret found in a text. */
export interface Leak {
  readonly secret: Secret;
  readonly form: string;
  /** Offset of the match in the scanned text. */
  readonly at: number;
}

interface Needle {
  readonly text: string;
  readonly secret: Secret;
  readonly form: string;
}

/** Searches texts for many secrets at once: one pass per text, needles indexed by prefix. */
export class LeakScanner {
  private readonly byPrefix = new Map<string, Needle[]>();
  readonly needles: number;

  constructor(secrets: Iterable<Secret>) {
    let n = 0;
    for (const secret of secrets) {
      for (const f of formsOf(secret)) {
        if (f.text.length < NEEDLE_PREFIX) throw new Error(`secret ${secret.name}: its ${f.form} form ${JSON.stringify(f.text)} is too short to search for`);
        const key = f.text.slice(0, NEEDLE_PREFIX);
        const list = this.byPrefix.get(key) ?? [];
        list.push({ text: f.text, secret, form: f.form });
        this.byPrefix.set(key, list);
        n++;
      }
    }
    this.needles = n;
  }

  /** Every occurrence of a needle in `text`, in order of position. */
  scan(text: string): Leak[] {
    const leaks: Leak[] = [];
    if (this.byPrefix.size === 0) return leaks;
    const last = text.length - NEEDLE_PREFIX;
    for (let i = 0; i <= last; i++) {
      const list = this.byPrefix.get(text.slice(i, i + NEEDLE_PREFIX));
      if (!list) continue;
      for (const nd of list) if (text.startsWith(nd.text, i)) leaks.push({ secret: nd.secret, form: nd.form, at: i });
    }
    return leaks;
  }
}
