// Mutation fuzzer for the pure parsers:   npm run fuzz -- [--minutes N] [--seed S] [--only a,b]
//
// Each target (one parser) gets an equal share of the time. An input is a seed from fixtures/
// (real captures, encoder output, a few hand-made ones) with 1–4 mutations stacked on it: bit
// flips, byte insert/delete, splice of two seeds, length-field tweaks, truncation, repetition.
// Every result is checked: no throw escapes; nothing claims more than the input holds (lengths
// and offsets ≤ input, strings and buffers no longer than a bound of the input); no call
// allocates far beyond its input (heap growth, sampled) or takes long; the same input gives
// the same result. A failing input is saved to fixtures/fuzz-failures/ and printed as hex.
// Deterministic from --seed (printed at start): the same seed and minutes replay the same
// inputs in the same order, up to where the clock cuts each target off.
import { Buffer } from 'node:buffer';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parse as parseYaml } from 'yaml';
import {
  captureAlpnHello,
  captureHelloRetryFlight,
  captureTls12SessionIdResumption,
  captureTls12TicketResumption,
  captureTls13Resumption,
  reframeHandshake,
} from '../../fixtures/client-hellos.js';
import { configFromDocument } from '../../lib/config/document.js';
import { Sniffing, sniff } from '../../lib/peek/sniff.js';
import { parseRequestHead } from '../../lib/wire/http/request-head.js';
import { parseResponseHead } from '../../lib/wire/http/response-head.js';
import { parseImapCommand } from '../../lib/wire/imap/command.js';
import { MAX_POP3_AUTH_LINE, parsePop3Command, readLine } from '../../lib/wire/pop3/command.js';
import { encodeProxyV1, encodeProxyV2, parseProxyHeader } from '../../lib/wire/proxy/header.js';
import { parsePlain } from '../../lib/wire/sasl/plain.js';
import { parseClientHello } from '../../lib/wire/tls/client-hello.js';
import { HANDSHAKE_WALK_START, scanHandshake, walkHandshake, walkRecords } from '../../lib/wire/tls/record.js';
import { parseServerFlight } from '../../lib/wire/tls/server-hello.js';
import { ticketFromSession } from '../../lib/wire/tls/session-der.js';
import { parseStreamOpen } from '../../lib/wire/xmpp/stream-open.js';

/** Largest mutated input; every parser caps itself at 64 KiB or less, so a bit past that. */
const MAX_INPUT = 80 * 1024;
/** A result may hold at most this many bytes of strings and buffers per input byte (hex doubles, headers repeat in maps). */
const RESULT_BYTES_PER_INPUT_BYTE = 8;
/** Heap a single call may grow by beyond RESULT_BYTES_PER_INPUT_BYTE × input (V8 object overhead, small tables). */
const HEAP_SLACK_BYTES = 4 * 1024 * 1024;
/** Sample heap growth on one call in this many (process.memoryUsage() is not free). */
const HEAP_SAMPLE_EVERY = 32;
/** A single call slower than this is a failure: every parser is linear and caps its input. */
const SLOW_CALL_MS = 250;
/** Failures kept per target; past this we only count them. */
const MAX_SAVED_FAILURES = 5;

// ---- command line -------------------------------------------------------------------------

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}
const minutes = Number(arg('minutes') ?? 1);
const seed = arg('seed') === undefined ? randomInt(2 ** 31 - 1) : Number(arg('seed'));
const only = arg('only')?.split(',');
if (!Number.isFinite(minutes) || minutes <= 0 || !Number.isSafeInteger(seed)) {
  console.error('usage: npm run fuzz -- [--minutes N] [--seed S] [--only target,target]');
  process.exit(2);
}
const ROOT = process.cwd();

// ---- deterministic randomness (mulberry32) -------------------------------------------------

class Rand {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    const x = xs[this.int(xs.length)];
    if (x === undefined) throw new Error('pick from an empty list');
    return x;
  }
}

// ---- mutations -----------------------------------------------------------------------------

/** Bytes that matter to some grammar here: delimiters, TLS types, lengths at their edges. */
const INTERESTING = [0x00, 0x01, 0x02, 0x03, 0x04, 0x0a, 0x0d, 0x10, 0x16, 0x20, 0x22, 0x2c, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x7b, 0x7d, 0x7f, 0x80, 0xff];

function mutateOnce(r: Rand, b: Buffer, seeds: readonly Buffer[]): Buffer {
  const at = (): number => r.int(b.length + 1);
  switch (r.int(10)) {
    case 0: {
      // bit flips
      const out = Buffer.from(b);
      for (let n = 1 + r.int(4); n > 0 && out.length > 0; n--) {
        const i = r.int(out.length);
        out[i] = (out[i] ?? 0) ^ (1 << r.int(8));
      }
      return out;
    }
    case 1: {
      // insert bytes (random or interesting)
      const n = 1 + r.int(r.int(2) === 0 ? 4 : 64);
      const ins = Buffer.alloc(n);
      for (let i = 0; i < n; i++) ins[i] = r.int(2) === 0 ? r.pick(INTERESTING) : r.int(256);
      const i = at();
      return Buffer.concat([b.subarray(0, i), ins, b.subarray(i)]);
    }
    case 2: {
      // delete a range
      const i = at();
      return Buffer.concat([b.subarray(0, i), b.subarray(i + 1 + r.int(r.int(2) === 0 ? 4 : 128))]);
    }
    case 3: {
      // splice: the head of this one, the tail of another seed
      const other = r.pick(seeds);
      return Buffer.concat([b.subarray(0, at()), other.subarray(r.int(other.length + 1))]);
    }
    case 4: {
      // length-field tweak: a u8/u16/u24 somewhere set to an edge value
      if (b.length < 3) return b;
      const out = Buffer.from(b);
      const width = 1 + r.int(3);
      const i = r.int(out.length - width + 1);
      const max = 2 ** (8 * width) - 1;
      const old = out.readUIntBE(i, width);
      const v = r.pick([0, 1, max, max - 1, Math.min(max, old + 1), Math.max(0, old - 1), Math.min(max, b.length), Math.min(max, b.length - i), r.int(max + 1)]);
      out.writeUIntBE(v, i, width);
      return out;
    }
    case 5:
      // truncate
      return b.subarray(0, r.int(b.length + 1));
    case 6: {
      // repeat a range
      const i = r.int(b.length + 1);
      const piece = b.subarray(i, i + 1 + r.int(64));
      const times = 1 + r.int(r.int(4) === 0 ? 512 : 8);
      return Buffer.concat([b.subarray(0, i), ...Array.from({ length: times }, () => piece), b.subarray(i)]);
    }
    case 7: {
      // overwrite with a piece of another seed
      const other = r.pick(seeds);
      const from = r.int(other.length + 1);
      const piece = other.subarray(from, from + 1 + r.int(32));
      const out = Buffer.from(b);
      piece.copy(out, r.int(out.length + 1));
      return out;
    }
    case 8: {
      // a random byte set
      if (b.length === 0) return b;
      const out = Buffer.from(b);
      out[r.int(out.length)] = r.int(2) === 0 ? r.pick(INTERESTING) : r.int(256);
      return out;
    }
    default:
      // the seed itself, untouched (others stack on it)
      return b;
  }
}

function mutate(r: Rand, seeds: readonly Buffer[]): Buffer {
  let b = r.pick(seeds);
  for (let n = 1 + r.int(4); n > 0; n--) b = mutateOnce(r, b, seeds);
  return b.length > MAX_INPUT ? b.subarray(0, MAX_INPUT) : b;
}

// ---- checks --------------------------------------------------------------------------------

/** A stable, comparable picture of a result: Maps, Buffers and undefined made explicit. */
function canon(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return { buffer: v.toString('hex') };
  if (v instanceof Map) return { map: [...(v as Map<unknown, unknown>).entries()].map(([k, x]) => [canon(k), canon(x)]) };
  if (Array.isArray(v)) return v.map(canon);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, canon(x)]));
  if (typeof v === 'function') return 'function';
  return v;
}

/** Result fields whose string values are the parser's own vocabulary or prose, not input bytes. */
const OWN_WORDS = new Set(['kind', 'reason', 'status', 'protocol', 'command']);
const fromInput = (k: string, x: unknown): boolean => !(OWN_WORDS.has(k) && typeof x === 'string');

/** Bytes of strings and buffers in a result (not counting OWN_WORDS). */
function resultBytes(v: unknown, seen = new Set<unknown>()): number {
  if (typeof v === 'string') return v.length;
  if (Buffer.isBuffer(v)) return v.length;
  if (v === null || typeof v !== 'object' || seen.has(v)) return 0;
  seen.add(v);
  let n = 0;
  if (v instanceof Map) for (const [k, x] of v as Map<unknown, unknown>) n += resultBytes(k, seen) + resultBytes(x, seen);
  else for (const [k, x] of Object.entries(v)) if (fromInput(k, x)) n += resultBytes(x, seen);
  return n;
}

/** Longest single string or buffer in a result (not OWN_WORDS). */
function longestPiece(v: unknown, seen = new Set<unknown>()): number {
  if (typeof v === 'string' || Buffer.isBuffer(v)) return v.length;
  if (v === null || typeof v !== 'object' || seen.has(v)) return 0;
  seen.add(v);
  let n = 0;
  if (v instanceof Map) for (const [k, x] of v as Map<unknown, unknown>) n = Math.max(n, longestPiece(k, seen), longestPiece(x, seen));
  else for (const [k, x] of Object.entries(v)) if (fromInput(k, x)) n = Math.max(n, longestPiece(x, seen));
  return n;
}

class Violation extends Error {}
function check(ok: boolean, what: string): void {
  if (!ok) throw new Violation(what);
}

interface Target {
  readonly name: string;
  readonly seeds: readonly Buffer[];
  /** Runs the parser(s) on `input`, checks what only this parser knows, returns the result. */
  readonly run: (input: Buffer) => unknown;
  /** How long a piece of the result may be relative to the input; 2 for hex strings. */
  readonly pieceFactor?: number;
  /** False when the result is not made of input bytes (a Config: defaults, issue messages). */
  readonly sizeChecked?: boolean;
  /** Heap one call may grow by per input byte, beyond the slack (default 4 × RESULT_BYTES_PER_INPUT_BYTE). */
  readonly heapPerInputByte?: number;
}

// ---- targets -------------------------------------------------------------------------------

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

function fixtureFiles(dir: string, ext: string): Buffer[] {
  try {
    return readdirSync(path.join(ROOT, dir))
      .filter((f) => f.endsWith(ext))
      .sort()
      .map((f) => readFileSync(path.join(ROOT, dir, f)));
  } catch {
    return [];
  }
}

async function targets(): Promise<Target[]> {
  const stackHellos = fixtureFiles('fixtures/client-hellos', '.bin');
  const [alpn, t12ticket, t12sid, t13, hrr] = await Promise.all([
    captureAlpnHello(),
    captureTls12TicketResumption(),
    captureTls12SessionIdResumption(),
    captureTls13Resumption(),
    captureHelloRetryFlight(),
  ]);
  const nodeHellos = [alpn, t12ticket.resumedHello, t12sid.resumedHello, t13.resumedHello, reframeHandshake(alpn, [7, 100])];
  const hellos = [...stackHellos, ...nodeHellos, latin1('\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00')];
  const flights = [t12ticket.fullFlight, t12ticket.resumedFlight, t12sid.fullFlight, t13.fullFlight, t13.resumedFlight, hrr];
  const tickets = [t12ticket.ticket, t13.ticket].filter((x): x is Buffer => x !== undefined);
  const requests = [
    'GET /a;jsessionid=42/b?x=1&y=%41%zz&x=2 HTTP/1.1\r\nHost: Example.COM:8080\r\nCookie: a=1; b="2"; a=3\r\nX-Route: blue\r\n\r\n',
    'POST / HTTP/1.0\nhost: [::1]:80\ncontent-length: 3\n\nabc',
    'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n folded: yes\r\n\r\n',
  ].map(latin1);
  const responses = [
    'HTTP/1.1 200 OK\r\nSet-Cookie: SRV=a; Path=/; HttpOnly\r\nSet-Cookie: x=1\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.0 100 Continue\r\n\r\nHTTP/1.0 302 Found\nLocation: /\n\n',
  ].map(latin1);
  const xmpp = [
    "<?xml version='1.0'?><stream:stream to='Example.COM' from=\"a@b\" xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
    '<stream to="x&amp;y" xmlns="jabber:server">',
  ].map(latin1);
  const imap = [
    'a1 LOGIN alice "pa\\"ss"\r\n',
    'a2 LOGIN {5}\r\nalice {3+}\r\npwd\r\n',
    'a3 AUTHENTICATE PLAIN AGFsaWNlAHB3ZA==\r\n',
    'a4 CAPABILITY\r\na5 STARTTLS\r\n',
  ].map(latin1);
  const pop3 = ['USER alice\r\n', 'PASS secret word\r\n', 'AUTH PLAIN AGFsaWNlAHB3ZA==\r\n', 'CAPA\nSTLS\n'].map(latin1);
  const sasl = ['AGFsaWNlAHB3ZA==', 'em9lAGFsaWNlAHB3ZA==', Buffer.from('\0bob\0hunter2').toString('base64'), '='].map(latin1);
  const proxy = [
    encodeProxyV1({ source: '192.0.2.1', sourcePort: 5000, dest: '198.51.100.2', destPort: 443 }),
    encodeProxyV1({ source: '2001:db8::1', sourcePort: 1, dest: '::1', destPort: 65535 }),
    encodeProxyV1({ family: 'unknown', source: '', sourcePort: 0, dest: '', destPort: 0 }),
    encodeProxyV2({ source: '192.0.2.1', sourcePort: 5000, dest: '198.51.100.2', destPort: 443 }),
    encodeProxyV2({ source: '2001:db8::1', sourcePort: 1, dest: '::1', destPort: 65535 }),
    encodeProxyV2({ family: 'unknown', source: '', sourcePort: 0, dest: '', destPort: 0 }),
  ].map((h) => Buffer.concat([h, latin1('GET / HTTP/1.1\r\n')]));
  const yamls = [
    `log-level: info\ngrace: 5s\nfrontends:\n  - name: imap\n    listen: 127.0.0.1:7143\n    backends: [a=127.0.0.1:8001, b=127.0.0.1:8002]\n    affinity: source/24\n  - name: web\n    listen: [127.0.0.1:7080, 127.0.0.1:7081-7082]\n    backends:\n      - {name: c, host: 127.0.0.1, port: 8003, weight: 2}\n      - {name: d, host: 127.0.0.1, port: 8004, backup: true}\n    balance: roundrobin\n    connect-timeout: 500ms\n    retries: 1\n`,
    `frontends:\n  - listen: 127.0.0.1:7001\n    colour: red\n    backends:\n      - a=127.0.0.1:8001\n      - {name: b, host: 127.0.0.1, port: 8002, weight: 0}\n    retries: 99\n`,
    JSON.stringify({ 'log-level': 'warn', 'max-conns': 100, frontends: [{ listen: '127.0.0.1:7001', protocol: 'tls', backends: ['a=127.0.0.1:8001'], affinity: ['sni', 'tls-session', 'source'] }] }),
    `a: &x [1, 2]\nb: *x\nfrontends: []\n`,
  ].map((s) => Buffer.from(s, 'utf8'));

  const noMore = (claimed: number, input: Buffer, what: string): void => {
    check(Number.isInteger(claimed) && claimed >= 0 && claimed <= input.length, `${what} = ${String(claimed)} outside 0..${String(input.length)}`);
  };

  return [
    {
      name: 'tls-client-hello',
      seeds: hellos,
      pieceFactor: 2,
      run: (input) => {
        const r = parseClientHello(input);
        if (r.kind === 'match') {
          const h = r.value;
          if (h.sni !== undefined) check(h.sni.length <= 253, 'sni over 253');
          check(h.sessionId.length <= 64, 'session id over 32 bytes');
          check(h.alpn.length + h.pskIdentities.length + h.supportedVersions.length <= input.length, 'more list entries than input bytes');
        }
        return r;
      },
    },
    {
      name: 'peek-sniff',
      seeds: [...hellos, ...requests, ...xmpp, latin1('SSH-2.0-OpenSSH_9.2\r\n')],
      pieceFactor: 2,
      run: (input) => {
        const final = sniff(input, true);
        // A Sniffing fed the same bytes in two pieces ends at the same final verdict.
        const s = new Sniffing();
        const cut = input.length >> 1;
        s.push(input.subarray(0, cut));
        s.push(input.subarray(cut));
        const finished = s.finish();
        check(isDeepStrictEqual(canon(finished.facts), canon(final.done ? final.facts : undefined)), 'Sniffing.finish() disagrees with sniff(all, true)');
        check(s.scanned <= 16 * (input.length + 1), `Sniffing scanned ${String(s.scanned)} bytes for ${String(input.length)}`);
        return [sniff(input, false), final];
      },
    },
    {
      name: 'tls-server-flight',
      seeds: [...flights, ...hellos.slice(0, 2)],
      pieceFactor: 2,
      run: (input) => {
        const r = parseServerFlight(input);
        if (r.kind === 'match') check(r.value.hello.sessionId.length <= 64, 'session id over 32 bytes');
        return r;
      },
    },
    {
      name: 'tls-records',
      seeds: [...hellos, ...flights],
      run: (input) => {
        const scan = scanHandshake(input, 16 * 1024);
        check(scan.messages.reduce((n, m) => n + 4 + m.body.length, 0) <= input.length, 'messages hold more than the input');
        const walk = walkRecords(input, 0);
        noMore(walk.end, input, 'walkRecords end');
        const hw = walkHandshake(input, HANDSHAKE_WALK_START, 16 * 1024);
        noMore(hw.pos, input, 'walkHandshake pos');
        return [scan, walk, hw];
      },
    },
    {
      name: 'tls-session-der',
      seeds: [...tickets, latin1('\x30\x0a\x02\x01\x01\xa4\x05\x04\x03abc'), latin1('\x30\x82\x00\x06\xaa\x04\x04\x02ab')],
      run: (input) => {
        const t = ticketFromSession(input);
        if (t !== undefined) check(t.length <= input.length, 'ticket longer than the session');
        return t;
      },
    },
    {
      name: 'http-request-head',
      seeds: requests,
      run: (input) => {
        const r = parseRequestHead(input);
        if (r.kind === 'match') {
          const text = input.toString('latin1');
          for (const [k, v] of [
            ['method', r.value.method],
            ['target', r.value.target],
            ['version', r.value.version],
          ] as const)
            check(text.includes(v), `${k} ${JSON.stringify(v)} is not in the input`);
          if (r.value.host !== undefined) check(text.toLowerCase().includes(r.value.host), 'host is not in the input');
          check(r.value.headers.length <= input.length, 'more headers than bytes');
        }
        return r;
      },
    },
    {
      name: 'http-response-head',
      seeds: responses,
      run: (input) => {
        const r = parseResponseHead(input);
        if (r.kind === 'match') {
          noMore(r.value.headLength, input, 'headLength');
          check(r.value.statusLineEnd <= r.value.headLength, 'statusLineEnd past headLength');
          check(r.value.status >= 100 && r.value.status <= 599, `status ${String(r.value.status)}`); // RFC 9110 §15 (fixtures/fuzz-failures/ has the 000 that once passed)
        }
        return r;
      },
    },
    {
      name: 'xmpp-stream-open',
      seeds: xmpp,
      run: (input) => parseStreamOpen(input),
    },
    {
      name: 'imap-command',
      seeds: imap,
      run: (input) => {
        const r = parseImapCommand(input);
        if (r.kind === 'match') {
          noMore(r.command.length, input, 'command length');
          check(r.command.length > 0, 'a command of 0 bytes');
          check(
            r.command.pieces.reduce((n, p) => n + p.length, 0) === r.command.length,
            'pieces do not add up to the command length',
          );
          check(Buffer.concat([...r.command.pieces]).equals(input.subarray(0, r.command.length)), 'pieces are not the input');
        }
        if (r.kind === 'bad') {
          noMore(r.length, input, 'bad length');
          check(r.length > 0, 'a bad command of 0 bytes (the caller would loop)');
        }
        if (r.kind === 'need-more' && r.until !== undefined) check(r.until > input.length, 'until not past the input');
        return r;
      },
    },
    {
      name: 'pop3-command',
      seeds: pop3,
      run: (input) => {
        const line = readLine(input, MAX_POP3_AUTH_LINE);
        if (line.kind === 'line') {
          noMore(line.length, input, 'line length');
          check(line.length > 0, 'a line of 0 bytes');
        }
        const cmd = parsePop3Command(input.toString('utf8'));
        return [line, cmd];
      },
    },
    {
      name: 'sasl-plain',
      seeds: sasl,
      run: (input) => {
        const r = parsePlain(input.toString('latin1'));
        if (r !== undefined) check(r.authcid.length > 0 && r.authcid.length + r.authzid.length <= input.length, 'identities longer than the input');
        return r;
      },
    },
    {
      name: 'proxy-header',
      seeds: proxy,
      run: (input) => {
        const r = parseProxyHeader(input);
        if (r.kind === 'match') {
          noMore(r.value.length, input, 'header length');
          check(r.value.length > 0, 'a header of 0 bytes');
          for (const port of [r.value.sourcePort, r.value.destPort]) if (port !== undefined) check(Number.isInteger(port) && port >= 0 && port <= 65535, `port ${String(port)}`);
        }
        return r;
      },
    },
    {
      name: 'config-document',
      seeds: yamls,
      sizeChecked: false,
      // The yaml package builds nodes, ranges and error contexts per token: a document full of
      // errors grows the heap (mostly garbage) by up to ~500 bytes per input byte (the run with
      // seed 2145355641 found 1,050 on a 5.7 KB input). tether bounds it by the file's size
      // (4 MiB) and parses any config of 16 KiB or more in a worker with its own heap limit.
      heapPerInputByte: 2048,
      run: (input) => {
        // lib/cli/config-file.ts's parse step with its options; a YAML error is its answer
        // (reported as TETHER_ERR_CONFIG_FILE), any document must then convert without a throw.
        let doc: unknown;
        try {
          doc = parseYaml(input.toString('utf8'), { uniqueKeys: true, maxAliasCount: 100, logLevel: 'error' }); // warnings would flood the output
        } catch {
          return 'yaml error';
        }
        const r = configFromDocument(doc);
        check(r.issues.length <= input.length + 1, `${String(r.issues.length)} issues for ${String(input.length)} bytes`);
        return r;
      },
    },
  ];
}

// ---- the loop ------------------------------------------------------------------------------

interface Failure {
  readonly target: string;
  readonly what: string;
  readonly input: Buffer;
}

function runOne(t: Target, input: Buffer, sampleHeap: boolean): void {
  const heapBefore = sampleHeap ? process.memoryUsage().heapUsed : 0;
  const started = performance.now();
  let first: unknown;
  try {
    first = t.run(input);
  } catch (e) {
    if (e instanceof Violation) throw e;
    throw new Violation(`threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }
  const ms = performance.now() - started;
  if (sampleHeap) {
    const grew = process.memoryUsage().heapUsed - heapBefore;
    const bound = (t.heapPerInputByte ?? RESULT_BYTES_PER_INPUT_BYTE * 4) * input.length + HEAP_SLACK_BYTES;
    check(grew <= bound, `heap grew ${String(grew)} bytes on one call (bound ${String(bound)})`);
  }
  check(ms <= SLOW_CALL_MS, `one call took ${ms.toFixed(0)} ms`);
  if (t.sizeChecked !== false) checkSizes(t, input, first);
  let second: unknown;
  try {
    second = t.run(input);
  } catch (e) {
    throw new Violation(`threw on the second run only: ${String(e)}`);
  }
  check(isDeepStrictEqual(canon(first), canon(second)), 'not deterministic: the same input gave two results');
}

function checkSizes(t: Target, input: Buffer, first: unknown): void {
  check(resultBytes(first) <= RESULT_BYTES_PER_INPUT_BYTE * input.length + 64, `result holds ${String(resultBytes(first))} bytes for ${String(input.length)}`);
  const piece = longestPiece(first);
  check(piece <= (t.pieceFactor ?? 1) * input.length, `a result string/buffer of ${String(piece)} for an input of ${String(input.length)}`);
}

async function main(): Promise<void> {
  console.log(`fuzz: seed ${String(seed)} (replay: npm run fuzz -- --seed ${String(seed)} --minutes ${String(minutes)}), ${String(minutes)} min`);
  const all = (await targets()).map((t, index) => ({ t, index })).filter(({ t }) => only === undefined || only.includes(t.name));
  const budgetMs = (minutes * 60_000) / all.length;
  const failures: Failure[] = [];
  const rows: string[] = [];
  for (const { t, index } of all) {
    // Each target its own stream from the seed, so --only replays the same inputs for it.
    const r = new Rand(seed ^ Math.imul(index + 1, 0x9e3779b1));
    const seeds = t.seeds.filter((s) => s.length <= MAX_INPUT);
    const end = performance.now() + budgetMs;
    let tried = 0;
    let failed = 0;
    // Every seed unmutated first, then mutants until the clock runs out.
    for (; performance.now() < end; tried++) {
      const input = tried < seeds.length ? (seeds[tried] ?? Buffer.alloc(0)) : mutate(r, seeds);
      try {
        runOne(t, input, tried % HEAP_SAMPLE_EVERY === 0);
      } catch (e) {
        failed += 1;
        if (failed <= MAX_SAVED_FAILURES) failures.push({ target: t.name, what: e instanceof Error ? e.message : String(e), input: Buffer.from(input) });
      }
    }
    rows.push(`${t.name.padEnd(20)} ${String(tried).padStart(10)} inputs  ${String(failed).padStart(6)} failures  (${String(seeds.length)} seeds)`);
    console.log(rows.at(-1));
  }
  if (failures.length > 0) {
    const dir = path.join(ROOT, 'fixtures', 'fuzz-failures');
    mkdirSync(dir, { recursive: true });
    for (const [i, f] of failures.entries()) {
      const file = path.join(dir, `${f.target}-${String(seed)}-${String(i)}.bin`);
      writeFileSync(file, f.input);
      console.log(`\nFAIL ${f.target}: ${f.what}\n  saved ${path.relative(ROOT, file)} (${String(f.input.length)} bytes)\n  hex ${f.input.toString('hex')}`);
    }
  }
  console.log(`fuzz: seed ${String(seed)}: ${String(failures.length)} failing inputs saved`);
  process.exitCode = failures.length > 0 ? 1 : 0;
}

await main();
