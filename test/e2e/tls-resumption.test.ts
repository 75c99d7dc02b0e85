// TLS resumption affinity through `node bin/tether`, with real TLS on both sides: node:tls
// backends a, b, c (each with its own ticket keys and session-ID store, so a session resumes
// only at the backend that issued it) and real clients (`openssl s_client`, node:tls) that
// resume from other source addresses. `--balance roundrobin` makes every placement that was
// not learned move, so "same backend and Reused" can only come from the affinity table.
import t, { type Test } from 'tap';
import { Buffer } from 'node:buffer';
import { execFileSync } from 'node:child_process';
import { constants as cryptoConstants, createHash } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { captureSniHello } from '../../fixtures/client-hellos.js';
import { runTether, type LogLine, type RunningTether } from '../helpers/run-tether.js';
import { isConnClose, waitForCount } from '../helpers/e2e-tools.js';
import { nodeTlsClient, sClient, startTlsBackend, type SClientResult, type TlsBackend } from '../helpers/tls-backend.js';

const NAMES = ['a', 'b', 'c'] as const;

async function tlsBackends(t: Test): Promise<TlsBackend[]> {
  const bs = await Promise.all(NAMES.map((n) => startTlsBackend(n)));
  t.teardown(() => Promise.all(bs.map((b) => b.close())));
  return bs;
}

/** Starts tether on 127.0.0.1:0 in front of `bs`, stopped on teardown. */
async function tether(t: Test, bs: readonly TlsBackend[], args: readonly string[]): Promise<{ rt: RunningTether; port: number }> {
  const backends = bs.flatMap((b) => ['--backend', `${b.name}=127.0.0.1:${b.port}`]);
  const rt = await runTether(['--listen', '127.0.0.1:0', ...backends, '--grace', '1s', ...args]);
  t.teardown(() => rt.stop());
  return { rt, port: rt.ports[0]! };
}

/** The same 12-hex tag tether logs for a key value (SHA-256, re-derived here on purpose). */
const hash12 = (value: string): string => createHash('sha256').update(value).digest('hex').slice(0, 12);

/** conn.close's `key` ({ kind, hash }, or {} when null). */
function keyOf(l: LogLine): { kind?: string; hash?: string } {
  const k = l['key'];
  return typeof k === 'object' && k !== null ? k : {};
}

/** `s_client` from `bind`, expecting to be greeted by one of a, b, c. */
const openssl = (port: number, bind: string, args: readonly string[]): Promise<SClientResult> => sClient(port, args, { names: NAMES, bind });

/** The conn.close lines of clients from `src`, once `n` of them were logged. */
async function closesFrom(rt: RunningTether, src: string, n: number): Promise<LogLine[]> {
  return waitForCount(rt, (l) => isConnClose()(l) && String(l['client']).startsWith(`${src}:`), n);
}

/** The session ID (lower-case hex) of an s_client `-sess_out` file. */
function sessionIdOf(file: string): string {
  const text = execFileSync('openssl', ['sess_id', '-in', file, '-noout', '-text'], { encoding: 'latin1' });
  const m = /Session-ID: ([0-9A-F]*)/.exec(text);
  return (m?.[1] ?? '').toLowerCase();
}

/** Waits until tether has probed each backend's ticket key (the debug `tls-ticket.learned` events). */
async function ticketKeysLearned(rt: RunningTether, bs: readonly TlsBackend[]): Promise<void> {
  await waitForCount(rt, (l) => l.event === 'tls-ticket.learned', bs.length, 10_000);
  const learned = new Set(rt.lines.filter((l) => l.event === 'tls-ticket.learned').map((l) => l['backend']));
  if (learned.size !== bs.length) throw new Error(`ticket keys learned for ${[...learned].join(',')} only`);
}

const RESUMES = 6;

t.test('tls-session, TLS 1.2 session IDs (openssl -no_ticket): resumed at the issuer from another address', async (t) => {
  const bs = await tlsBackends(t);
  const { rt, port } = await tether(t, bs, ['--affinity', 'tls-session,source', '--balance', 'roundrobin']);
  const sess = path.join(t.testdir({}), 'sess.pem');
  const first = await openssl(port, '127.0.0.1', ['-tls1_2', '-no_ticket', '-sess_out', sess]);
  t.equal(first.protocol, 'TLSv1.2', 'full handshake in TLS 1.2');
  t.notOk(first.reused, 'first connection is a new session');
  const x = first.name;
  t.ok(x !== undefined && NAMES.includes(x as (typeof NAMES)[number]), `answered by ${String(x)}`);
  const sid = sessionIdOf(sess);
  t.equal(sid.length, 64, 'the backend chose a 32-byte session ID');

  for (let i = 0; i < RESUMES; i++) {
    const r = await openssl(port, '127.0.0.2', ['-tls1_2', '-no_ticket', '-sess_in', sess]);
    t.equal(r.name, x, `resume ${i + 1} from 127.0.0.2 answered by the issuer ${String(x)}`);
    t.ok(r.reused, `resume ${i + 1}: s_client says Reused`);
  }
  t.equal(bs.find((b) => b.name === x)!.resumed(), RESUMES, 'the issuer resumed every one');

  const closes = await closesFrom(rt, '127.0.0.2', RESUMES);
  for (const l of closes) {
    t.same(keyOf(l), { kind: 'tls-session', hash: hash12(sid) }, 'placed by the learned session ID');
    t.equal(l['via'], 'table');
    t.equal(l['protocol'], 'tls');
  }
  t.notOk(rt.stdout().toLowerCase().includes(sid), 'the session ID never appears in the log');
});

t.test('tls-session, TLS 1.2 session IDs (node:tls): resumed at the issuer from other local addresses', async (t) => {
  const bs = await tlsBackends(t);
  const { rt, port } = await tether(t, bs, ['--affinity', 'tls-session,source', '--balance', 'roundrobin']);
  // Tickets off, as with openssl -no_ticket above: a TLS 1.2 client resuming a ticket sends
  // session_id = SHA-256(ticket) (OpenSSL), never the ID the backend chose, so tether could not
  // place it by tls-session; tickets are tls-ticket's job (next tests).
  const opts = { maxVersion: 'TLSv1.2', secureOptions: cryptoConstants.SSL_OP_NO_TICKET } as const;
  const first = await nodeTlsClient(port, { ...opts, localAddress: '127.0.0.1' });
  t.equal(first.protocol, 'TLSv1.2');
  t.notOk(first.reused);
  t.ok(first.session, 'the client has a session');
  const sources = ['127.0.0.5', '127.0.0.6', '127.0.0.7', '127.0.0.8'];
  for (const src of sources) {
    const r = await nodeTlsClient(port, { ...opts, localAddress: src, session: first.session! });
    t.equal(r.name, first.name, `from ${src}: the issuer ${first.name}`);
    t.ok(r.reused, `from ${src}: isSessionReused()`);
  }
  for (const src of sources) {
    const [l] = await closesFrom(rt, src, 1);
    t.same([keyOf(l!).kind, l!['via']], ['tls-session', 'table'], `from ${src}: placed by the learned session ID`);
  }
});

t.test('tls-ticket, TLS 1.3 (node:tls): resumed at the issuer from any address, first time', async (t) => {
  const bs = await tlsBackends(t);
  const { rt, port } = await tether(t, bs, ['--affinity', 'tls-ticket,source', '--balance', 'roundrobin', '--log-level', 'debug']);
  await ticketKeysLearned(rt, bs);
  const first = await nodeTlsClient(port, { minVersion: 'TLSv1.3', localAddress: '127.0.0.1' });
  t.equal(first.protocol, 'TLSv1.3');
  t.notOk(first.reused);
  t.ok(first.session, 'got a ticket');
  const sources = ['127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7'];
  for (const src of sources) {
    const r = await nodeTlsClient(port, { minVersion: 'TLSv1.3', localAddress: src, session: first.session! });
    t.equal(r.name, first.name, `from ${src}: the issuer ${first.name}`);
    t.ok(r.reused, `from ${src}: isSessionReused()`);
  }
  const issuer = bs.find((b) => b.name === first.name)!;
  for (const src of sources) {
    const [l] = await closesFrom(rt, src, 1);
    t.same([keyOf(l!), l!['via']], [{ kind: 'tls-ticket', hash: hash12(issuer.ticketKeyName) }, 'table'], `from ${src}: placed by the issuer's ticket key_name`);
  }
  t.notOk(rt.stdout().includes(issuer.ticketKeyName), 'the key_name never appears in the log (debug level)');
});

t.test('tls-ticket, TLS 1.3 and TLS 1.2 tickets (openssl): resumed at the issuer from other addresses', async (t) => {
  const bs = await tlsBackends(t);
  const { rt, port } = await tether(t, bs, ['--affinity', 'tls-ticket,source', '--balance', 'roundrobin', '--log-level', 'debug']);
  await ticketKeysLearned(rt, bs);
  const dir = t.testdir({});
  const runs = [
    ['-tls1_3', 'TLSv1.3', ['127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6']],
    ['-tls1_2', 'TLSv1.2', ['127.0.0.13', '127.0.0.14', '127.0.0.15', '127.0.0.16']],
  ] as const;
  for (const [version, protocol, sources] of runs) {
    const sess = path.join(dir, `sess${version}.pem`);
    const first = await openssl(port, '127.0.0.1', [version, '-sess_out', sess]);
    t.equal(first.protocol, protocol, `${version}: protocol`);
    t.notOk(first.reused, `${version}: new session`);
    t.ok(first.name, `${version}: answered by ${String(first.name)}`);
    const issuer = bs.find((b) => b.name === first.name)!;
    for (const src of sources) {
      const r = await openssl(port, src, [version, '-sess_in', sess]);
      t.equal(r.name, first.name, `${version} from ${src}: the issuer ${String(first.name)}`);
      t.ok(r.reused, `${version} from ${src}: Reused`);
      const [l] = await closesFrom(rt, src, 1);
      t.same([keyOf(l!), l!['via']], [{ kind: 'tls-ticket', hash: hash12(issuer.ticketKeyName) }, 'table'], `${version} from ${src}: placed by the issuer's ticket key_name`);
    }
  }
});

t.test('counter-case: with only source affinity the same resumptions land elsewhere and are not resumed', async (t) => {
  const bs = await tlsBackends(t);
  const { port } = await tether(t, bs, ['--affinity', 'source', '--balance', 'roundrobin']);
  const sess = path.join(t.testdir({}), 'sess.pem');
  const first = await openssl(port, '127.0.0.1', ['-tls1_3', '-sess_out', sess]);
  t.ok(first.name);
  const got: SClientResult[] = [];
  for (const src of ['127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6']) got.push(await openssl(port, src, ['-tls1_3', '-sess_in', sess]));
  const elsewhere = got.filter((r) => r.name !== first.name);
  t.ok(elsewhere.length > 0, `some resumptions moved (${got.map((r) => String(r.name)).join(' ')})`);
  for (const r of got) t.equal(r.reused, r.name === first.name, `${String(r.name)}: resumed only at the issuer ${String(first.name)}`);
});

/** The legacy session ID of a ClientHello or ServerHello in one record: offset 5+4+2+32. */
function legacySessionId(records: Buffer): string {
  const at = 5 + 4 + 2 + 32;
  const len = records.readUInt8(at);
  return records.subarray(at + 1, at + 1 + len).toString('hex');
}

/** Sends `hello` from `src`, reads until the backend's ServerHello record is complete, closes. */
function replayHello(port: number, src: string, hello: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress: src });
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no ServerHello from ${src}`));
    }, 5_000);
    s.on('error', () => undefined); // the backend's handshake timeout is not ours to judge
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 5 && got.length >= 5 + got.readUInt16BE(3)) {
        clearTimeout(timer);
        s.destroy();
        resolve(got);
      }
    });
    s.write(hello);
  });
}

t.test('TLS 1.3 never pins tls-session: the echoed legacy session ID is not learned', async (t) => {
  const bs = await tlsBackends(t);
  const { rt, port } = await tether(t, bs, ['--affinity', 'tls-session,source', '--balance', 'roundrobin']);

  // Real clients: the key is the source, placed once and then found in the table.
  const one = await openssl(port, '127.0.0.1', ['-tls1_3']);
  const two = await openssl(port, '127.0.0.1', ['-tls1_3']);
  const three = await nodeTlsClient(port, { minVersion: 'TLSv1.3', localAddress: '127.0.0.1' });
  t.equal(one.protocol, 'TLSv1.3');
  t.ok(one.name);
  t.same([two.name, three.name], [one.name, one.name], 'same source, same backend');
  // Sorted: conn.close lines are logged as connections end, not in the order they began.
  const real = await closesFrom(rt, '127.0.0.1', 3);
  t.same(real.map((l) => [l['protocol'], keyOf(l).kind, l['via']]).sort(), [['tls', 'source', 'balance'], ['tls', 'source', 'table'], ['tls', 'source', 'table']]);

  // The same TLS 1.3 ClientHello (same legacy session ID) replayed from new sources: had the
  // backend's echo of that ID been pinned, these would be placed by it ('tls-session', 'table').
  const hello = await captureSniHello();
  const sid = legacySessionId(hello);
  t.equal(sid.length, 64, 'the captured TLS 1.3 hello carries a 32-byte legacy session ID');
  const sources = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
  for (const src of sources) {
    const reply = await replayHello(port, src, hello);
    t.equal(reply.readUInt8(0), 22, `${src}: the backend answered with a handshake record`);
    t.equal(legacySessionId(reply), sid, `${src}: its ServerHello echoes the client's legacy session ID`);
  }
  for (const src of sources) {
    const [l] = await closesFrom(rt, src, 1);
    t.same([l!['protocol'], keyOf(l!).kind, l!['via']], ['tls', 'source', 'balance'], `${src}: placed as a new source`);
  }
  t.notOk(rt.lines.some((l) => keyOf(l).kind === 'tls-session'), 'no conn.close was ever keyed by tls-session');
});
