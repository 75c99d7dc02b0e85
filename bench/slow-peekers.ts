// Slow peekers for the bench's slowpeek section, run as their own process
// (dist/bench/slow-peekers.js PORT COUNT RAMP_MS MAX_MS), so that their event loop is not the
// one that times the normal clients. Each peeker connects to 127.0.0.1:PORT, sends a TLS record
// header and the start of a ClientHello (11 bytes), then one more byte a second: a prelude the
// TLS sniffer recognises and that never completes, which tether cuts at --peek-timeout. A cut
// peeker is replaced at once, so about COUNT stay open. The first COUNT are opened evenly over
// RAMP_MS (the peek timeout), so that the cuts, and the replacements, spread over time instead
// of coming in waves.
// Prints `{"event":"peekers.ready",…}` once COUNT are open (or the ramp is over), then
// `{"event":"peekers.stats",…}` every second: open, connecting, opened, cut (closed by the far
// side after connecting), failed (no connection), and the median life of the cut ones. Exits,
// closing every socket, on SIGTERM, when its stdin ends (the bench is gone), or after MAX_MS.
import net from 'node:net';

const HOST = '127.0.0.1';
/** Record header (handshake, TLS 1.0 record version, 512 bytes), ClientHello header (508 bytes), client_version 3.3. */
const PRELUDE = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
/** Then the 32-byte random, one byte a second (any byte is a valid random byte). */
const TRICKLE_MS = 1_000;
/** Connects in flight at most (a burst of replacements must not overflow the listen queue). */
const MAX_CONNECTING = 256;
/** Lives of cut peekers kept for the median (the latest ones). */
const MAX_LIVES = 4_096;
const STATS_MS = 1_000;

function parseArgv(): [port: number, count: number, rampMs: number, maxMs: number] {
  const [port, count, rampMs, maxMs] = process.argv.slice(2, 6).map(Number);
  if (port === undefined || count === undefined || rampMs === undefined || maxMs === undefined || ![port, count, rampMs, maxMs].every((n) => Number.isInteger(n) && n > 0)) {
    process.stderr.write('usage: slow-peekers.js PORT COUNT RAMP_MS MAX_MS\n');
    process.exit(2);
  }
  return [port, count, rampMs, maxMs];
}

const [port, count, rampMs, maxMs] = parseArgv();
/** No more connections than this in all: COUNT per peek timeout (RAMP_MS) over MAX_MS, twice over. */
const maxOpened = count + Math.ceil((2 * count * maxMs) / rampMs);

const t0 = performance.now();
const open = new Set<net.Socket>();
let connecting = 0;
let opened = 0;
let cut = 0;
let failed = 0;
let firstError: string | undefined;
let stopping = false;
let ready = false;
const lives: number[] = [];

function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] ?? null;
}

function stats(event: string): string {
  return JSON.stringify({ event, atMs: Math.round(performance.now() - t0), open: open.size, connecting, opened, cut, failed, firstError: firstError ?? null, cutLifeP50Ms: median(lives) });
}

function openOne(): void {
  if (stopping || opened >= maxOpened) return;
  opened++;
  connecting++;
  const socket = net.connect({ host: HOST, port });
  let connectedAtMs = NaN;
  let trickle: NodeJS.Timeout | undefined;
  socket.on('error', (e: Error) => {
    firstError ??= e.message;
  });
  socket.on('data', () => undefined); // tether sends nothing before a verdict; read anyway to see the close
  socket.once('connect', () => {
    connecting--;
    connectedAtMs = performance.now();
    open.add(socket);
    socket.write(PRELUDE);
    trickle = setInterval(() => {
      socket.write(Buffer.from([Math.floor(Math.random() * 256)]));
    }, TRICKLE_MS);
  });
  socket.once('close', () => {
    clearInterval(trickle);
    if (Number.isNaN(connectedAtMs)) {
      connecting--;
      if (!stopping) failed++;
    } else {
      open.delete(socket);
      if (!stopping) {
        cut++;
        lives.push(performance.now() - connectedAtMs);
        if (lives.length > MAX_LIVES) lives.shift();
      }
    }
    if (!stopping) setImmediate(refill);
  });
}

/** Opens peekers up to the target of now (COUNT after the ramp), within MAX_CONNECTING in flight. */
function refill(): void {
  const elapsed = performance.now() - t0;
  const target = Math.min(count, Math.ceil((count * elapsed) / rampMs));
  while (!stopping && open.size + connecting < target && connecting < MAX_CONNECTING && opened < maxOpened) openOne();
  if (!ready && (open.size >= count || elapsed >= rampMs)) {
    ready = true;
    process.stdout.write(`${stats('peekers.ready')}\n`);
  }
}

function stop(code: number): void {
  if (stopping) return;
  stopping = true;
  clearInterval(ramp);
  clearInterval(report);
  clearTimeout(deadline);
  process.stdout.write(`${stats('peekers.done')}\n`);
  for (const s of open) s.destroy();
  process.exit(code);
}

const ramp = setInterval(refill, 10);
const report = setInterval(() => {
  process.stdout.write(`${stats('peekers.stats')}\n`);
}, STATS_MS);
const deadline = setTimeout(() => {
  stop(0);
}, maxMs);
process.on('SIGTERM', () => {
  stop(0);
});
process.stdin.on('end', () => {
  stop(0);
});
process.stdin.on('error', () => {
  stop(0);
});
process.stdin.resume();
refill();
