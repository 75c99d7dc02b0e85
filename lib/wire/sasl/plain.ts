// SASL PLAIN message → the authentication identity. Pure; never throws on input.
//
//   message = [authzid] NUL authcid NUL passwd        (RFC 4616 §2), base64 on the wire
//   (IMAP AUTHENTICATE, RFC 9051 §6.2.2; POP3 AUTH, RFC 5034 §4)
import { Buffer } from 'node:buffer';

export interface PlainCredentials {
  readonly authzid: string;
  readonly authcid: string;
}

/** Largest base64 PLAIN response we accept: 3 fields of ≤ 255 octets each (RFC 4616 §2). */
export const MAX_PLAIN_BASE64 = 1_100;

/**
 * Decodes a base64 PLAIN response. Returns undefined for anything malformed (bad base64, not
 * exactly two NULs, empty authcid or password, over the cap). The password is never returned.
 */
export function parsePlain(base64: string): PlainCredentials | undefined {
  const b64 = base64.trim();
  if (b64 === '' || b64.length > MAX_PLAIN_BASE64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) return undefined;
  const raw = Buffer.from(b64, 'base64');
  const first = raw.indexOf(0);
  const second = first < 0 ? -1 : raw.indexOf(0, first + 1);
  if (first < 0 || second < 0 || raw.indexOf(0, second + 1) >= 0) return undefined;
  const authcid = raw.subarray(first + 1, second).toString('utf8');
  if (authcid === '' || second + 1 >= raw.length) return undefined;
  return { authzid: raw.subarray(0, first).toString('utf8'), authcid };
}
