// HTTP affinity through `node bin/tether`: http-cookie (route suffix, learned Set-Cookie),
// --insert-cookie (exact header, byte-exact responses), url-param, http-host, http-header, and
// non-HTTP bytes on an HTTP chain. Backends a, b, c answer with their name; clients are curl
// (cookie jar, --interface for the source address), node:http (agent: false) and raw sockets.
// Every response closes its connection, so tether peeks every request.
import t, { type Test } from 'tap';
import net from 'node:net';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { type RunningTether } from '../helpers/run-tether.js';
import { deadPort, greetAndEcho, startBackend, whoAnswers, type BackendBehaviour, type TestBackend } from '../helpers/named-backend.js';
import { tetherOnLoopback as tether, connCloses as closes, keyKind } from '../helpers/e2e-tools.js';
import {
  BIG_BODY_BYTES,
  CHUNKS,
  curl,
  deterministicBytes,
  getRequest,
  nodeGet,
  nodePostExpectingContinue,
  rawExchange,
  rawExpectExchange,
  startHttpBackend,
  type HttpBackend,
  type SessionCookie,
} from '../helpers/http-backend.js';
import { register, secret } from '../helpers/secrets.js';

const NAMES = ['a', 'b', 'c'] as const;
/** Client source addresses (all on the loopback interface on Linux). */
const SOURCES = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];

async function httpBackends(t: Test, cookie: SessionCookie = 'none'): Promise<HttpBackend[]> {
  const bs = await Promise.all(NAMES.map((n) => startHttpBackend(n, { cookie })));
  t.teardown(() => Promise.all(bs.map((b) => b.close())));
  return bs;
}

function backendFlags(bs: readonly { name: string; port: number }[]): string[] {
  return bs.flatMap((b) => ['--backend', `${b.name}=127.0.0.1:${String(b.port)}`]);
}

/** Asserts that none of `secrets` appears anywhere in tether's stdout (the JSON log). */
function noSecretsLogged(t: Test, rt: RunningTether, secrets: readonly string[]): void {
  const out = rt.stdout();
  t.ok(out.length > 0, 'tether logged something');
  for (const s of secrets) t.notOk(out.includes(s), `the log does not contain ${JSON.stringify(s)}`);
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Raw bytes `direct` with tether's Set-Cookie line inserted right after the status line. */
function withInsertedCookie(direct: Buffer, line: string): Buffer {
  const at = direct.indexOf('\r\n') + 2;
  return Buffer.concat([direct.subarray(0, at), Buffer.from(`${line}\r\n`, 'latin1'), direct.subarray(at)]);
}

t.test('http-cookie:JSESSIONID', async (t) => {
  const bs = await httpBackends(t, 'jsessionid');
  const { rt, port } = await tether(t, [...backendFlags(bs), '--affinity', 'http-cookie:JSESSIONID', '--log-level', 'trace']);
  let conns = 0;
  /** JSESSIONID values with a route suffix, and one whose suffix names no backend. */
  const routed = (route: string): string => register('cookie', `${secret('http-routed-session')}${route}1.${route}`, 'http-routed-session');
  const unrouted = register('cookie', `${secret('http-unrouted-session')}.nosuch`, 'http-unrouted-session');

  t.test('a value ending in .NAME goes to backend NAME from any source', async (t) => {
    for (const route of ['b', 'a', 'c']) {
      const got: string[] = [];
      for (const src of SOURCES) {
        const r = await nodeGet(port, '/', { localAddress: src, headers: { Cookie: `other=1; JSESSIONID=${routed(route)}` } });
        got.push(r.backend);
        t.equal(r.body.toString(), `${route}\n`, 'the body comes from that backend');
      }
      t.same(got, Array<string>(5).fill(route), `JSESSIONID=….${route} → ${route} from 5 sources`);
    }
    const lines = await closes(rt, (conns += 15));
    t.ok(lines.slice(-15).every((l) => l['via'] === 'named' && keyKind(l) === 'http-cookie:JSESSIONID'), 'logged via named, key kind http-cookie:JSESSIONID');
  });

  t.test('a value whose suffix names no backend is hashed, pinned and stable', async (t) => {
    const got: string[] = [];
    for (const src of SOURCES) got.push((await nodeGet(port, '/', { localAddress: src, headers: { Cookie: `JSESSIONID=${unrouted}` } })).backend);
    t.ok(NAMES.includes(got[0] as (typeof NAMES)[number]), `answered (${got[0]!})`);
    t.same(new Set(got).size, 1, `one backend for every source (${got.join(' ')})`);
    const lines = (await closes(rt, (conns += 5))).slice(-5);
    t.same(lines.map((l) => l['via']), ['balance', 'table', 'table', 'table', 'table'], 'placed once, then from the affinity table');
    // Rendezvous hashing depends only on the pool and the value: a fresh tether agrees.
    const other = await tether(t, [...backendFlags(bs), '--affinity', 'http-cookie:JSESSIONID']);
    t.equal((await nodeGet(other.port, '/', { headers: { Cookie: `JSESSIONID=${unrouted}` } })).backend, got[0], 'a second tether places it on the same backend');
  });

  t.test("curl's cookie jar keeps a client on the backend that issued its JSESSIONID", async (t) => {
    const jar = path.join(t.testdir(), 'jar');
    const first = await curl(port, '/', ['-c', jar, '-b', jar], { source: '127.0.0.1' });
    const issuer = first.backend;
    t.ok(NAMES.includes(issuer as (typeof NAMES)[number]), `first answer from ${issuer}`);
    t.match(first.setCookies[0] ?? '', new RegExp(`^JSESSIONID=s\\d+x[0-9a-f]{16}\\.${issuer}; Path=/; HttpOnly$`), 'the backend set its session cookie');
    for (const src of SOURCES.slice(1)) {
      const r = await curl(port, '/', ['-c', jar, '-b', jar], { source: src });
      t.equal(r.backend, issuer, `from ${src}: ${issuer}`);
      t.same(r.setCookies, [], 'no new session');
    }
    const lines = (await closes(rt, (conns += 5))).slice(-4);
    t.ok(lines.every((l) => l['via'] === 'named'), 'routed by the suffix');
    noSecretsLogged(t, rt, [...bs.flatMap((b) => b.issued), routed('b'), secret('http-routed-session'), unrouted, 'nosuch']);
  });
});

t.test('a Set-Cookie learned from the backend pins the session', (t) => {
  t.test('http-cookie:SESSION,source with roundrobin: every source with the cookie reaches the issuer (also after a 100 Continue)', async (t) => {
    const bs = await httpBackends(t, 'session');
    const { rt, port } = await tether(t, [...backendFlags(bs), '--affinity', 'http-cookie:SESSION,source', '--balance', 'roundrobin', '--log-level', 'trace']);
    const jar = path.join(t.testdir(), 'jar');
    const first = await curl(port, '/', ['-c', jar, '-b', jar], { source: '127.0.0.1' });
    const issuer = first.backend;
    t.ok(NAMES.includes(issuer as (typeof NAMES)[number]), `first answer from ${issuer}`);
    const issued = bs.find((b) => b.name === issuer)?.issued[0] ?? '';
    t.same(first.setCookies, [`SESSION=${issued}; Path=/`], 'the issuer set SESSION, passed through unchanged');
    const got: string[] = [];
    for (const src of [...SOURCES.slice(1), ...SOURCES.slice(1)]) got.push((await curl(port, '/', ['-c', jar, '-b', jar], { source: src })).backend);
    t.same(got, Array<string>(8).fill(issuer), `127.0.0.2–5 with the jar, twice each: all on ${issuer}`);
    t.same(bs.map((b) => b.issued.length), bs.map((b) => (b.name === issuer ? 1 : 0)), 'one session was ever issued');
    const lines = await closes(rt, 9);
    t.same(keyKind(lines[0]!), 'source', 'the first request had no cookie: source key');
    t.ok(lines.slice(1).every((l) => l['via'] === 'table' && keyKind(l) === 'http-cookie:SESSION'), 'later ones: the learned http-cookie:SESSION entry');

    // A session set in the final response after an interim 100 Continue is learned as well.
    const post = await nodePostExpectingContinue(port, '/login', Buffer.from('user=u&password=p'), { localAddress: '127.0.0.6' });
    t.ok(post.continued, 'the 100 Continue came through');
    const session = /^SESSION=([^;]+);/.exec(post.headers['set-cookie']?.[0] ?? '')?.[1] ?? '';
    t.not(session, '', 'the final response set SESSION');
    const after: string[] = [];
    for (const src of ['127.0.0.7', '127.0.0.8', '127.0.0.9']) after.push((await nodeGet(port, '/', { localAddress: src, headers: { Cookie: `SESSION=${session}` } })).backend);
    t.same(after, Array<string>(3).fill(post.backend), `127.0.0.7–9 with that cookie: all on ${post.backend}`);
    const more = (await closes(rt, 13)).slice(10);
    t.ok(more.every((l) => l['via'] === 'table' && keyKind(l) === 'http-cookie:SESSION'), 'from the entry learned after the 100 Continue');
    noSecretsLogged(t, rt, [issued, session]);
  });

  t.test('counter-case: with source affinity only, the same requests spread', async (t) => {
    const bs = await httpBackends(t, 'session');
    const { port } = await tether(t, [...backendFlags(bs), '--affinity', 'source', '--balance', 'roundrobin']);
    const jar = path.join(t.testdir(), 'jar');
    const got: string[] = [];
    for (const src of SOURCES) got.push((await curl(port, '/', ['-c', jar, '-b', jar], { source: src })).backend);
    t.ok(new Set(got).size > 1, `spread over more than one backend (${got.join(' ')})`);
  });
  t.end();
});

t.test('--insert-cookie TETHER', async (t) => {
  const bs = await httpBackends(t);
  const portOf = (name: string): number => bs.find((b) => b.name === name)!.port;
  const { rt, port } = await tether(t, [...backendFlags(bs), '--insert-cookie', 'TETHER']);
  let conns = 0;

  t.test('the first response gets exactly one Set-Cookie after the status line; the rest is byte-exact', async (t) => {
    for (const [i, p] of ['/', '/big', '/chunked'].entries()) {
      const req = getRequest(p, { 'User-Agent': 'raw' });
      const via = await rawExchange(port, req, { localAddress: SOURCES[i]! });
      const name = via.backend;
      t.ok(NAMES.includes(name as (typeof NAMES)[number]), `${p}: answered by ${name}`);
      t.same(via.setCookies, [`TETHER=${name}; Path=/; HttpOnly`], `${p}: Set-Cookie names the backend`);
      t.equal(via.headerLines[0], `Set-Cookie: TETHER=${name}; Path=/; HttpOnly`, `${p}: the header line is exact and comes first`);
      const direct = await rawExchange(portOf(name), req);
      const want = withInsertedCookie(direct.raw, `Set-Cookie: TETHER=${name}; Path=/; HttpOnly`);
      t.equal(via.raw.length, want.length, `${p}: ${String(want.length)} bytes`);
      t.equal(sha256(via.raw), sha256(want), `${p}: identical to the backend's own bytes plus the one line`);
    }
    t.ok((await rawExchange(port, getRequest('/big'))).body.length === BIG_BODY_BYTES && BIG_BODY_BYTES > 1024 * 1024, 'the big body (> 1 MiB) arrives whole');
    const chunked = await nodeGet(port, '/chunked', { localAddress: '127.0.0.4' });
    t.equal(chunked.body.toString(), CHUNKS.join(''), 'node:http decodes the chunked body intact');
    t.equal(chunked.headers['transfer-encoding'], 'chunked');
    t.equal(chunked.headers['x-chunked'], 'yes');
    t.same(chunked.headers['set-cookie'], [`TETHER=${chunked.backend}; Path=/; HttpOnly`]);
    conns += 5;
  });

  t.test('TETHER=NAME goes to NAME from any source, with no new Set-Cookie', async (t) => {
    for (const name of ['b', 'c', 'a']) {
      for (const src of SOURCES) {
        const r = await curl(port, '/', ['-b', `TETHER=${name}`], { source: src });
        t.equal(r.backend, name, `TETHER=${name} from ${src}`);
        t.same(r.setCookies, [], 'no Set-Cookie');
      }
    }
    const n = await nodeGet(port, '/big', { localAddress: '127.0.0.9', headers: { Cookie: 'x=1; TETHER=b' } });
    t.equal(n.backend, 'b', 'node:http with TETHER=b among other cookies');
    t.equal(n.body.length, BIG_BODY_BYTES, 'the whole big body');
    t.notOk('set-cookie' in n.headers, 'no Set-Cookie');
    const lines = (await closes(rt, (conns += 16))).slice(-16);
    t.ok(lines.every((l) => l['via'] === 'named'), 'every one logged via named');
  });

  t.test('a forged value is ignored: placed as new, and given a fresh cookie', async (t) => {
    for (const src of SOURCES.slice(0, 3)) {
      const r = await curl(port, '/', ['-b', 'TETHER=evil'], { source: src });
      t.ok(NAMES.includes(r.backend as (typeof NAMES)[number]), `TETHER=evil from ${src}: answered by ${r.backend}`);
      t.same(r.setCookies, [`TETHER=${r.backend}; Path=/; HttpOnly`], 'a fresh Set-Cookie naming the backend');
    }
    const lines = (await closes(rt, (conns += 3))).slice(-3);
    t.ok(lines.every((l) => l['via'] === 'balance'), 'placed by the balance policy');
  });

  t.test("curl's cookie jar: the first answer sets TETHER, later requests from any source follow it", async (t) => {
    const jar = path.join(t.testdir(), 'jar');
    const first = await curl(port, '/', ['-c', jar, '-b', jar], { source: '127.0.0.1' });
    t.same(first.setCookies, [`TETHER=${first.backend}; Path=/; HttpOnly`]);
    t.equal(first.body.toString(), `${first.backend}\n`, 'body intact');
    for (const src of SOURCES.slice(1)) {
      const r = await curl(port, '/', ['-c', jar, '-b', jar], { source: src });
      t.equal(r.backend, first.backend, `from ${src}`);
      t.same(r.setCookies, [], 'a valid cookie gets no new Set-Cookie');
    }
    conns += 5;
  });

  t.test('a cookie naming a backend that is down is re-placed and re-issued', async (t) => {
    const dead = await deadPort();
    const other = await tether(t, [...backendFlags(bs), '--backend', `d=127.0.0.1:${String(dead)}`, '--insert-cookie', 'TETHER']);
    const r = await curl(other.port, '/', ['-b', 'TETHER=d']);
    t.ok(NAMES.includes(r.backend as (typeof NAMES)[number]), `answered by ${r.backend}`);
    t.same(r.setCookies, [`TETHER=${r.backend}; Path=/; HttpOnly`], 'a new cookie naming the backend that answered');
    await other.rt.waitFor((l) => l.event === 'connect.fail' && l['backend'] === 'd');
  });

  t.test('an interim 100 Continue passes at once; the cookie goes into the final response', async (t) => {
    const body = deterministicBytes(4096, 'form');
    const r = await nodePostExpectingContinue(port, '/form', body, { localAddress: '127.0.0.6' });
    t.ok(r.continued, 'node:http got its 100 Continue through tether, and then sent the body');
    t.equal(r.status, 200);
    t.same(r.headers['set-cookie'], [`TETHER=${r.backend}; Path=/; HttpOnly`], 'the final response carries the cookie');

    const head = `POST /form HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nContent-Length: ${String(body.length)}\r\n\r\n`;
    const via = await rawExpectExchange(port, head, body);
    const interim = 'HTTP/1.1 100 Continue\r\n\r\n';
    t.equal(via.subarray(0, interim.length).toString('latin1'), interim, 'the 100 Continue arrives unchanged');
    const name = /\r\nX-Backend: ([abc])\r\n/.exec(via.toString('latin1'))?.[1] ?? '';
    const direct = await rawExpectExchange(portOf(name), head, body);
    const want = Buffer.concat([direct.subarray(0, interim.length), withInsertedCookie(direct.subarray(interim.length), `Set-Cookie: TETHER=${name}; Path=/; HttpOnly`)]);
    t.equal(via.toString('latin1'), want.toString('latin1'), 'the final head gets the line after its status line; every other byte kept');
  });
});

/** A raw HTTP backend that writes its response in `pieces` (NAME replaced), pausing between them. */
function piecewise(pieces: readonly string[], pauseMs = 30): BackendBehaviour {
  return (socket, name) => {
    let got = '';
    socket.setNoDelay(true);
    const onData = (d: Buffer): void => {
      got += d.toString('latin1');
      if (!got.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      socket.resume();
      void (async () => {
        for (const p of pieces) {
          if (socket.destroyed) return;
          socket.write(p.replaceAll('NAME', name));
          await new Promise((r) => setTimeout(r, pauseMs));
        }
        socket.end();
      })();
    };
    socket.on('data', onData);
  };
}

t.test('--insert-cookie with response heads that arrive in pieces, end early, or are not HTTP', async (t) => {
  const split = ['HTTP/1.', '1 200 OK\r', '\nX-Backend: NAME\r\nSet-Cookie: app=1\r\nContent-', 'Length: 5\r\n\r', '\nNAME\n', 'trailing bytes'];
  const early = ['HTTP/1.1 200 OK\r\nX-Backend: NAME\r\n', 'X-Partial: yes'];
  const bs = await Promise.all([
    startBackend('split', { behaviour: piecewise(split) }),
    startBackend('early', { behaviour: piecewise(early) }),
    startBackend('echo', { behaviour: greetAndEcho }),
  ]);
  t.teardown(() => Promise.all(bs.map((b) => b.close())));
  // The R cookie's .NAME suffix picks the backend; TETHER is absent or forged, so tether inserts.
  const { port } = await tether(t, [...backendFlags(bs), '--affinity', 'http-cookie:R', '--insert-cookie', 'TETHER']);

  const r = await rawExchange(port, getRequest('/', { Cookie: 'R=1.split' }));
  t.equal(r.backend, 'split');
  const want = withInsertedCookie(Buffer.from(split.join('').replaceAll('NAME', 'split'), 'latin1'), 'Set-Cookie: TETHER=split; Path=/; HttpOnly');
  t.equal(r.raw.toString('latin1'), want.toString('latin1'), 'a head split over segments: one line inserted after the status line, every other byte kept');

  const e = await rawExchange(port, getRequest('/', { Cookie: 'R=1.early; TETHER=evil' }));
  t.equal(e.raw.toString('latin1'), early.join('').replace('NAME', 'early'), 'a backend that closes inside the head: its bytes arrive unchanged');

  const req = getRequest('/', { Cookie: 'R=1.echo; TETHER=evil' });
  // greetAndEcho ends only after the client ends: a half-closing client.
  const echoed = await halfCloseExchange(port, Buffer.from(req, 'latin1'));
  t.equal(echoed.toString('latin1'), `echo\n${req}`, 'a non-HTTP answer passes unchanged (no Set-Cookie inserted)');
});

/**
 * Writes `payload`; with `rest`, waits for the backend's first bytes (its greeting: tether has
 * finished peeking and placed the client) and writes `rest`; then half-closes and resolves with
 * everything received until the server closes.
 */
function halfCloseExchange(port: number, payload: Buffer, rest?: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    s.setNoDelay(true);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => s.destroy(new Error('no close within 10 s')), 10_000);
    s.on('data', (d: Buffer) => {
      if (chunks.length === 0 && rest !== undefined) s.end(rest);
      chunks.push(d);
    });
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.on('close', (hadError) => {
      clearTimeout(timer);
      if (!hadError) resolve(Buffer.concat(chunks));
    });
    s.once('connect', () => {
      if (rest === undefined) s.end(payload);
      else s.write(payload);
    });
  });
}

t.test('url-param', async (t) => {
  const bs = await httpBackends(t);

  t.test(';jsessionid= path parameter with a .NAME suffix routes to NAME', async (t) => {
    const { rt, port } = await tether(t, [...backendFlags(bs), '--affinity', 'url-param:jsessionid']);
    const session = secret('http-path-session');
    for (const name of ['c', 'a', 'b']) {
      for (const src of SOURCES) {
        const r = await curl(port, `/app;jsessionid=${session}.${name}?x=1`, [], { source: src });
        t.equal(r.backend, name, `/app;jsessionid=${session}.${name}?x=1 from ${src}`);
      }
    }
    const c = bs.find((b) => b.name === 'c')!;
    t.equal(c.requests.at(-5)?.url, `/app;jsessionid=${session}.c?x=1`, 'the backend saw the target unchanged');
    const lines = await closes(rt, 15);
    t.ok(lines.every((l) => l['via'] === 'named' && keyKind(l) === 'url-param:jsessionid'), 'via named, key kind url-param:jsessionid');
  });

  t.test('?$ServerID= query parameter is hashed: same value, same backend, from any source and any tether', async (t) => {
    const flags = [...backendFlags(bs), '--affinity', 'url-param:$ServerID'];
    const { rt, port } = await tether(t, flags);
    const xyz = secret('http-server-id');
    const got: string[] = [];
    for (const src of SOURCES) got.push((await curl(port, `/?$ServerID=${xyz}`, [], { source: src })).backend);
    got.push((await curl(port, `/?a=1&%24ServerID=${xyz}`, [], { source: '127.0.0.6' })).backend);
    got.push((await nodeGet(port, `/x?$ServerID=${xyz}&b=2`, { localAddress: '127.0.0.7' })).backend);
    t.ok(NAMES.includes(got[0] as (typeof NAMES)[number]), `answered by ${got[0]!}`);
    t.same(new Set(got).size, 1, `one backend for ${xyz} (${got.join(' ')}), also percent-encoded and among other parameters`);
    const lines = await closes(rt, 7);
    t.ok(lines.every((l) => keyKind(l) === 'url-param:$ServerID'), 'key kind url-param:$ServerID');
    t.same(new Set(lines.map((l) => (l['key'] as { hash: string }).hash)).size, 1, 'one key value');
    t.same(lines.map((l) => l['via']), ['balance', ...Array<string>(6).fill('table')], 'placed once, then from the table');

    const values = Array.from({ length: 12 }, (_, i) => register('url-param', `${xyz}-srv${String(i)}`, 'http-server-id'));
    const first: string[] = [];
    for (const v of values) first.push((await curl(port, `/?$ServerID=${v}`)).backend);
    t.ok(new Set(first).size > 1, `12 values spread (${first.join(' ')})`);
    const fresh = await tether(t, flags);
    const again: string[] = [];
    for (const v of [xyz, ...values]) again.push((await curl(fresh.port, `/?$ServerID=${v}`, [], { source: '127.0.0.8' })).backend);
    t.same(again, [got[0], ...first], 'a fresh tether with the same pool agrees on every value');
    noSecretsLogged(t, rt, [xyz, values[1]!]);
  });
});

t.test('http-host and http-header', async (t) => {
  const bs = await httpBackends(t);

  t.test('http-host: each Host is stable across sources', async (t) => {
    const { rt, port } = await tether(t, [...backendFlags(bs), '--affinity', 'http-host,source', '--balance', 'roundrobin']);
    const got: Record<string, string[]> = { 'a.example.com': [], 'b.example.com': [] };
    for (const src of SOURCES) {
      for (const host of ['a.example.com', 'b.example.com']) got[host]!.push((await curl(port, '/', ['-H', `Host: ${host}`], { source: src })).backend);
    }
    got['a.example.com']!.push((await curl(port, '/', ['--resolve', `a.example.com:${String(port)}:127.0.0.1`], { url: `http://a.example.com:${String(port)}/`, source: '127.0.0.6' })).backend);
    got['a.example.com']!.push((await nodeGet(port, '/', { headers: { Host: 'A.Example.COM:8080' }, localAddress: '127.0.0.7' })).backend);
    const a = got['a.example.com']!;
    const b = got['b.example.com']!;
    t.same(new Set(a).size, 1, `a.example.com on one backend (${a.join(' ')}), also via --resolve and in upper case with a port`);
    t.same(new Set(b).size, 1, `b.example.com on one backend (${b.join(' ')})`);
    t.not(a[0], b[0], 'round robin put the two hosts on different backends');
    const lines = await closes(rt, 12);
    t.ok(lines.every((l) => keyKind(l) === 'http-host'), 'key kind http-host');
    noSecretsLogged(t, rt, ['example.com', 'example.COM']);
  });

  t.test('http-header:X-User: same user, same backend; no header falls back to source', async (t) => {
    const { rt, port } = await tether(t, [...backendFlags(bs), '--affinity', 'http-header:X-User,source', '--balance', 'roundrobin']);
    const alice: string[] = [];
    const bob: string[] = [];
    for (const src of SOURCES) {
      alice.push((await curl(port, '/', ['-H', `X-User: ${secret('http-user-alice')}`], { source: src })).backend);
      bob.push((await nodeGet(port, '/', { headers: { 'X-User': secret('http-user-bob') }, localAddress: src })).backend);
    }
    t.same(new Set(alice).size, 1, `alice on one backend (${alice.join(' ')})`);
    t.same(new Set(bob).size, 1, `bob on one backend (${bob.join(' ')})`);
    t.not(alice[0], bob[0], 'round robin put them on different backends');
    const none: string[] = [];
    for (let i = 0; i < 3; i++) none.push((await curl(port, '/', [], { source: '127.0.0.9' })).backend);
    t.same(new Set(none).size, 1, `no X-User: one source sticks (${none.join(' ')})`);
    const lines = await closes(rt, 13);
    t.ok(lines.slice(0, 10).every((l) => keyKind(l) === 'http-header:X-User'), 'with the header: key kind http-header:X-User');
    t.same(lines.slice(10).map(keyKind), ['source', 'source', 'source'], 'without it: the next kind, source');
    t.same(lines.slice(10).map((l) => l['via']), ['balance', 'table', 'table']);
    noSecretsLogged(t, rt, ['alice', secret('http-user-bob')]);
  });
});

t.test('bytes that are not HTTP, on an HTTP chain, are proxied unchanged', async (t) => {
  const bs = await Promise.all(NAMES.map((n) => startBackend(n, { behaviour: greetAndEcho })));
  t.teardown(() => Promise.all(bs.map((b: TestBackend) => b.close())));
  const { rt, port } = await tether(t, [...backendFlags(bs), '--affinity', 'http-cookie:SESSION,http-host,source', '--peek-timeout', '300ms']);

  const binary = Buffer.concat([Buffer.from([0x00, 0xff, 0x16]), randomBytes(200 * 1024)]);
  // The first segment alone decides (a verdict, not the byte cap); the rest follows once placed.
  const out = await halfCloseExchange(port, binary.subarray(0, 512), binary.subarray(512));
  const greeter = out.subarray(0, 2).toString('latin1');
  t.match(greeter, /^[abc]\n$/, 'greeted by a backend');
  t.equal(out.length, binary.length + 2, 'every byte came back');
  t.equal(sha256(out.subarray(2)), sha256(binary), 'byte-exact');

  // An HTTP head the client stops sending is a slow peek: cut at the deadline, never handed to
  // a backend (a slowloris would hold a backend connection for a byte a second).
  const partial = Buffer.from('GET /slow HTTP/1.1\r\nHost: slow.example', 'latin1');
  const cut = await new Promise<{ got: number; closed: boolean }>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(partial));
    let got = 0;
    s.on('data', (d: Buffer) => (got += d.length));
    s.on('error', () => undefined);
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ got, closed: false });
    }, 10_000);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ got, closed: true });
    });
  });
  t.same(cut, { got: 0, closed: true }, 'an unfinished HTTP head is cut at the peek deadline, no backend greeted it');

  const ssh = Buffer.from('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n', 'latin1');
  const sshOut = await halfCloseExchange(port, ssh);
  t.equal(sshOut.subarray(2).toString('latin1'), ssh.toString('latin1'), 'an SSH banner passes');

  const silent = await whoAnswers(port);
  t.match(silent, /^[abc]$/, 'a silent client is placed after the peek deadline');

  const lines = await closes(rt, 4);
  t.same(lines.map((l) => l['protocol']), ['unknown', 'http', 'ssh', 'unknown']);
  t.same(lines.map((l) => l['peek']), ['verdict', 'timeout', 'verdict', 'timeout']);
  t.same(lines[1]?.['termination'], { cause: 'client-timeout', stage: 'peek', code: 'peek-timeout' }, 'the slow head: cut at the peek');
  t.equal(lines[1]?.['backend'], null);
  const placed = lines.filter((_, i) => i !== 1);
  t.ok(placed.every((l) => keyKind(l) === 'source' && (l['termination'] as { cause: string }).cause === 'normal'), 'the others fell back to source; ended normally');
});
