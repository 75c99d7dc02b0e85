// A session ticket's key_name (RFC 5077 §4), the wire fact tls-ticket affinity keys on. Pure.
import { Buffer } from 'node:buffer';

/**
 * The key_name of a session ticket or PSK identity: its first 16 bytes in RFC 5077 §4's
 * recommended layout (key_name(16) iv(16) state mac(32)), which OpenSSL, nginx and Go use.
 * Shorter blobs (< 48 bytes) are not in that layout: undefined.
 */
export function ticketKeyName(ticket: Uint8Array): string | undefined {
  if (ticket.length < 48) return undefined;
  return Buffer.from(ticket.subarray(0, 16)).toString('hex');
}
