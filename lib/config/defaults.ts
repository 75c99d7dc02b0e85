// Named defaults and hard limits, each with where the number came from. Pure.

/** Idle time after which an affinity entry is forgotten. 30 min outlives a typical IMAP/web
 *  session gap (HAProxy stick-table examples use 30m; nginx sticky learn uses 1h). */
export const AFFINITY_TIMEOUT_MS = 30 * 60_000;

/** Entries kept before least-recently-used eviction. ~100 bytes each → ~10 MB at the cap. */
export const AFFINITY_MAX_ENTRIES = 100_000;

/** The largest --affinity-max-entries: 100 million entries are ~20 GB of table, past any one host. */
export const MAX_AFFINITY_ENTRIES = 100_000_000;

/** Backend connect timeout. HAProxy's `timeout connect` is commonly 5s; loopback/LAN dials
 *  take well under a millisecond, so 5s only catches black holes. */
export const CONNECT_TIMEOUT_MS = 5_000;

/** Idle time with no byte in either direction before both sides are closed. 1h covers IMAP
 *  IDLE, which re-issues at most every 29 min (RFC 9051 §6.3.13) and XMPP whitespace pings. */
export const IDLE_TIMEOUT_MS = 60 * 60_000;

/** Bytes waiting toward a backend that takes none of them for this long: a healthy server
 *  drains its socket in milliseconds, so 10s only catches one that accepted and stopped
 *  reading (HAProxy's `timeout server` is often 30s, but that also covers think time). */
export const BACKEND_STALL_TIMEOUT_MS = 10_000;

/** The same toward a client. Mobile networks stall for tens of seconds (radio handover,
 *  tunnels) and recover; 60s lets them, and still frees a client that stopped reading. */
export const CLIENT_STALL_TIMEOUT_MS = 60_000;

/** Inactivity allowed once one side has sent its FIN (HAProxy's `timeout client-fin` /
 *  `timeout server-fin`). A half-closed connection is either finishing a reply, which flows
 *  at once, or left by a peer that will never answer; 30s (a few RTOs of a lossy link) keeps
 *  the first and stops the second from holding a connection for the whole idle timeout. */
export const FIN_TIMEOUT_MS = 30_000;

/** Extra backends tried after the first dial fails (so at most 1 + RETRIES dials). */
export const RETRIES = 2;

/** How long a backend that refused or timed out is skipped before it is tried again. */
export const HOLD_DOWN_MS = 10_000;

/** After SIGTERM/SIGINT, how long open connections may run before they are cut. */
export const GRACE_MS = 30_000;

/** How often the affinity tables are saved to --state-file while running: a crash loses at
 *  most a minute of learned keys, and one save (a JSON of the whole table, ~10 MB at
 *  AFFINITY_MAX_ENTRIES) a minute costs little. */
export const STATE_INTERVAL_MS = 60_000;

/** Shortest non-zero --state-interval: each save serializes every table, so a save every few
 *  milliseconds would spend the CPU on the file rather than on clients. */
export const MIN_STATE_INTERVAL_MS = 100;

/** Largest `PORT-PORT` range one listen may bind: one net.Server per port, each an fd. */
export const MAX_PORT_RANGE = 4_096;

/** Backend weights are small integers, as in HAProxy (1–256) and nginx. */
export const MAX_WEIGHT = 1_000;

/** Upper bound on retries: beyond this a client waits too long for an answer. */
export const MAX_RETRIES = 16;

/** Name of the frontend built from command-line flags. */
export const DEFAULT_FRONTEND_NAME = 'default';

/** How long peek waits for a sniffer's verdict: caddy-l4's matching timeout (3s), HAProxy's
 *  "a few seconds" of inspect-delay. A client that says nothing by then is placed without
 *  protocol facts (the chain falls back to source or un-keyed). */
export const PEEK_TIMEOUT_MS = 3_000;

/** Bytes peek collects at most: 16 KiB holds any real ClientHello (post-quantum ~1.7 KB+) and
 *  HTTP head (caddy-l4's MaxMatchingBytes); the TLS record header is the extra 5. */
export const MAX_PRELUDE_BYTES = 16 * 1024 + 5;

/** Time a mail client has from connect to a complete login (Dovecot's login timeout is 1 min). */
export const LOGIN_TIMEOUT_MS = 60_000;

/** How long a user-directory answer (found or not found) is reused. */
export const USER_CACHE_TTL_MS = 60_000;

/** Upper bound of `--max-conns`, `--frontend-max-conns` and a backend's `max-conns`: each
 *  client holds two file descriptors (client and backend), and 10 million is far beyond what
 *  one process's descriptor limit allows; larger numbers are typing mistakes. */
export const MAX_CONNS_LIMIT = 10_000_000;

/** Clients of one pool that may wait for a backend below its max-conns. Each holds a socket and
 *  at most a prelude (16 KiB), so 128 waiters cost ~2 MB; beyond that, waiting longer helps no
 *  one and a quick refusal lets the client retry elsewhere. HAProxy leaves its queue unbounded
 *  (maxqueue 0), which lets a burst grow memory without limit. */
export const QUEUE_SIZE = 128;

/** Upper bound of `--queue-size`. */
export const MAX_QUEUE_SIZE = 100_000;

/** How long a client waits in the queue: HAProxy's `timeout queue` falls back to `timeout
 *  connect`, commonly 5s; a backend at its limit that frees no slot within 5s is saturated. */
export const QUEUE_TIMEOUT_MS = 5_000;

/** Time between two health checks of one backend: HAProxy's `inter` default (2s). A backend
 *  that recovers is back within rise × this; one that dies is out within fall × this (or at
 *  the first failed client dial). */
export const HEALTH_INTERVAL_MS = 2_000;

/** Shortest --health-interval: each check is a connection to every backend. */
export const MIN_HEALTH_INTERVAL_MS = 50;

/** Time one check may take (connect, send, read until the expect matches). HAProxy uses
 *  `inter` when `timeout check` is unset; a backend slower than that to greet is unhealthy. */
export const HEALTH_TIMEOUT_MS = 2_000;

/** Passed checks that bring a backend up, and failed ones that take it down: HAProxy's
 *  defaults (rise 2, fall 3), so one lost packet does not flap a backend. */
export const HEALTH_RISE = 2;
export const HEALTH_FALL = 3;

/** Upper bound on --health-rise/--health-fall. */
export const MAX_HEALTH_COUNT = 100;

/** Bytes of a check's response read at most: a greeting is one line (Dovecot's IMAP greeting
 *  with capabilities is ~200 bytes; SMTP multi-line 220 banners stay well under 1 KiB). */
export const HEALTH_READ_MAX_BYTES = 4 * 1024;

/** Longest --health-send: a command or a small request, not a payload. */
export const MAX_HEALTH_SEND_BYTES = 1_024;

/** --health-check banner without --health-expect on imap/pop3 frontends: the server's OK
 *  greeting (RFC 9051 §7.1.1 `* OK`, RFC 1939 §4 `+OK`). */
export const MAIL_BANNER_EXPECT = { imap: '^\\* OK', pop3: '^\\+OK' } as const;
