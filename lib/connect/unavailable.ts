// Stage 5, pure. What a mail client is told when tether has no backend for it: no backend up,
// every dial refused or timed out, the queue timed out, or the backend's login failed. A bare
// FIN would leave the client guessing; these are the protocols' own "temporary, try later"
// answers, so a client (or its user) retries instead of reporting bad credentials.

/**
 * The line sent before the FIN. IMAP: an untagged BYE with RFC 9051 §7.1's UNAVAILABLE
 * response code ("authentication succeeded but the server is unavailable, try later"). POP3:
 * -ERR with RFC 3206's SYS/TEMP code (a temporary system problem, not the user's fault).
 */
export function unavailableReply(protocol: 'imap' | 'pop3'): string {
  return protocol === 'imap' ? '* BYE [UNAVAILABLE] Backend unavailable, try again later\r\n' : '-ERR [SYS/TEMP] Backend unavailable, try again later\r\n';
}
