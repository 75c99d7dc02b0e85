// Stage 5, I/O. Ticket key discovery for `tls-ticket` affinity: tether completes a TLS
// handshake with a backend itself, takes the session ticket the backend issues, and reads its
// key_name. TLS 1.3 tickets travel encrypted, so without this a ticket could be learned only
// after some client resumed it at its issuer; with it, the very first resumption of a ticket
// — from any address — goes to the backend that issued it. Nothing is sent after the handshake.
import tls from 'node:tls';
import { ticketKeyName } from '../wire/tls/ticket-key-name.js';
import { ticketFromSession } from '../wire/tls/session-der.js';

/** Re-probe period: picks up ticket-key rotation (nginx/OpenSSL rotate by reload or config). */
export const TICKET_PROBE_INTERVAL_MS = 5 * 60_000;

/**
 * Handshakes with `host:port` and resolves with the key_name (hex) of the first ticket the
 * backend issues, or undefined (not TLS, no tickets, unusual ticket layout, timeout). Never
 * rejects. The certificate is not verified: nothing is sent to the backend and only the
 * ticket's public key_name prefix is read.
 */
export function probeTicketKeyName(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (v: string | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(v);
    };
    const socket = tls.connect({ host, port, rejectUnauthorized: false });
    const timer = setTimeout(() => {
      finish(undefined);
    }, timeoutMs);
    socket.on('session', (der: Buffer) => {
      const ticket = ticketFromSession(der);
      if (ticket) finish(ticketKeyName(ticket));
    });
    socket.on('error', () => {
      finish(undefined); // a backend that is down or not TLS simply teaches us nothing
    });
    socket.on('close', () => {
      finish(undefined);
    });
  });
}
