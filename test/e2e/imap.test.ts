// The IMAP frontend through `node bin/tether --protocol imap --affinity login`, HAProxy reg-test
// style: IMAP backends a, b, c answer `XWHO` with their name and record every login exactly as
// they received it. The real client is Python's imaplib (plus a raw socket where the exact
// bytes matter). TLS toward clients and backends is in imap-tls.test.ts.
import t, { type Test } from 'tap';
import { utimesSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { runTether, type LogLine, type RunningTether } from '../helpers/run-tether.js';
import { deadPort } from '../helpers/named-backend.js';
import {
  HOLD_BOUND_MS,
  WRONG_PASSWORD,
  imapWire,
  imaplibSessions,
  letGoWithin,
  loginWinner,
  plainResponse,
  rawLogin,
  startImapBackend,
  whoOf,
  type BackendLogin,
  type ImapBackend,
  type ImapWire,
  type PySession,
} from '../helpers/imap-backend.js';
import { secret } from '../helpers/secrets.js';

const NAMES = ['a', 'b', 'c'] as const;

const hashed = (key: string): string => loginWinner(key, NAMES);

async function backends(t: Test): Promise<ImapBackend[]> {
  const bs = await Promise.all(NAMES.map((n) => startImapBackend(n)));
  t.teardown(() => Promise.all(bs.map((b) => b.close())));
  return bs;
}

async function tether(t: Test, bs: readonly ImapBackend[], extra: readonly string[] = []): Promise<{ rt: RunningTether; port: number }> {
  const rt = await runTether([
    '--listen',
    '127.0.0.1:0',
    '--protocol',
    'imap',
    '--affinity',
    'login',
    ...bs.flatMap((b) => ['--backend', `${b.name}=127.0.0.1:${b.port}`]),
    ...extra,
  ]);
  t.teardown(() => rt.stop());
  return { rt, port: rt.ports[0]! };
}

const byName = (bs: readonly ImapBackend[], name: string): ImapBackend => {
  const b = bs.find((x) => x.name === name);
  if (!b) throw new Error(`no backend ${name}`);
  return b;
};

/** The last login `user` made at any backend, with the backend's name. */
function lastLogin(bs: readonly ImapBackend[], user: string): (BackendLogin & { at: string }) | undefined {
  let found: (BackendLogin & { at: string }) | undefined;
  for (const b of bs) for (const l of b.logins) if (l.user === user) found = { ...l, at: b.name };
  return found;
}

/** Logins of `user` per backend name (only backends that saw one). */
function loginsPerBackend(bs: readonly ImapBackend[], user: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const b of bs) {
    const n = b.logins.filter((l) => l.user === user).length;
    if (n > 0) out[b.name] = n;
  }
  return out;
}

const closeOf = (rt: RunningTether, user: string): Promise<LogLine> => rt.waitFor((l) => l.event === 'conn.close' && l['user'] === user, 5_000);

/** Sends `zz LOGOUT`, waits for the close. */
async function logout(wire: ImapWire): Promise<void> {
  wire.send('zz LOGOUT\r\n');
  await wire.closed;
}

/** Every secret the shared tether sees (also in the registry): none may ever appear in its output. */
const SECRETS: string[] = [];
const kept = (s: string): string => {
  SECRETS.push(s);
  return s;
};
/** A password that is an IMAP atom, for the logins whose password is not the point. */
const PW = secret('mail-atom');

t.test('logins reach the backend exactly as the client sent them; refusals come back unchanged; nothing secret is logged', async (t) => {
  const bs = await backends(t);
  const { rt, port } = await tether(t, bs, ['--log-level', 'trace']);
  const closes: string[] = [];

  t.test('imaplib LOGIN with a quoted password holding " \\ and a space', async (t) => {
    const password = kept(secret('imap-quoted'));
    const [r] = await imaplibSessions(port, [{ steps: [{ op: 'login', user: 'alice', password }, { op: 'xwho' }, { op: 'logout' }] }]);
    t.equal(r!.error, undefined, 'connected');
    t.match(r!.welcome, /^\* OK \[CAPABILITY [^\]]*IMAP4rev1[^\]]*\] tether ready/, 'tether greeted');
    t.equal(r!.steps[0]!.typ, 'OK', `login OK (${r!.steps[0]!.text})`);
    const who = whoOf(r!);
    t.equal(who, hashed('alice'), 'the rendezvous winner for login alice answered');
    const l = lastLogin(bs, 'alice');
    t.match(l, { at: who, mechanism: 'login', user: 'alice', password, ok: true, secure: false }, 'the backend got the password verbatim');
    t.match(l?.raw, /^[A-Z]+\d+ LOGIN alice "pa\\"ss\\\\ w0rd-q1"\r\n$/, 'and the very bytes imaplib sent');
    t.match(await closeOf(rt, 'alice'), { user: 'alice', backend: who, termination: { cause: 'normal' } });
    closes.push('alice');
  });

  t.test('imaplib AUTHENTICATE PLAIN (response after "+ ")', async (t) => {
    const password = kept(secret('imap-plain'));
    const [r] = await imaplibSessions(port, [{ steps: [{ op: 'plain', user: 'Bob', password }, { op: 'xwho' }, { op: 'logout' }] }]);
    t.equal(r!.steps[0]!.typ, 'OK', `authenticated (${r!.steps[0]!.text})`);
    kept(plainResponse('Bob', password));
    const who = whoOf(r!);
    t.equal(who, hashed('bob'), 'placed by the lower-cased authcid');
    t.match(lastLogin(bs, 'Bob'), { at: who, mechanism: 'plain', user: 'Bob', password, authzid: '', saslIr: false, ok: true });
    t.match(await closeOf(rt, 'bob'), { user: 'bob', backend: who });
    closes.push('bob');
  });

  t.test('imaplib LOGIN with the password as a synchronizing literal (UTF-8, quotes, braces)', async (t) => {
    const password = kept(secret('imap-literal-utf8'));
    const [r] = await imaplibSessions(port, [{ steps: [{ op: 'login-literal', user: 'carol', password }, { op: 'xwho' }, { op: 'logout' }] }]);
    t.equal(r!.steps[0]!.typ, 'OK', `login OK (${r!.steps[0]!.text})`);
    const who = whoOf(r!);
    const l = lastLogin(bs, 'carol');
    t.match(l, { at: who, mechanism: 'login', user: 'carol', password, ok: true });
    const bytes = Buffer.from(password, 'utf8');
    t.match(l?.raw, new RegExp(`^[A-Z]+\\d+ LOGIN carol \\{${String(bytes.length)}\\}\\r\\n`), 'replayed as a literal of the same size');
    t.equal(l?.raw.endsWith(`${bytes.toString('latin1')}\r\n`), true, 'with the same octets');
    t.match(await closeOf(rt, 'carol'), { user: 'carol', backend: who });
    closes.push('carol');
  });

  t.test('raw LOGIN with two synchronizing literals: tether asks for each, the backend asks again', async (t) => {
    const password = kept(secret('imap-two-literals'));
    const wire = await imapWire(port);
    t.teardown(() => {
      wire.close();
    });
    await wire.waitFor(/\r\n/);
    const sent = `a1 LOGIN {5}\r\ndave1 {${String(password.length)}}\r\n${password}\r\n`;
    wire.send('a1 LOGIN {5}\r\n');
    t.equal(await wire.waitFor(/\r\n/), '+ Ready for literal data\r\n', 'tether asks for the user');
    wire.send(`dave1 {${String(password.length)}}\r\n`);
    t.equal(await wire.waitFor(/\r\n/), '+ Ready for literal data\r\n', 'and for the password');
    wire.send(`${password}\r\n`);
    const answer = await wire.waitFor(/^a1 .*\r\n/m);
    const who = hashed('dave1');
    t.equal(answer, `a1 OK [CAPABILITY IMAP4rev1 XWHO] ${who}: LOGIN completed\r\n`, "the backend's tagged answer, alone and verbatim");
    const l = lastLogin(bs, 'dave1');
    t.match(l, { at: who, mechanism: 'login', user: 'dave1', password, ok: true });
    t.equal(l?.raw, sent, 'the backend received the exact bytes (tether answered its "+" continuations)');
    await logout(wire);
    t.match(await closeOf(rt, 'dave1'), { user: 'dave1', backend: who });
    closes.push('dave1');
  });

  t.test('raw LOGIN with non-synchronizing literals {n+} and a command pipelined after it', async (t) => {
    const password = kept(secret('imap-nonsync-literal'));
    const login = `a1 LOGIN {4+}\r\nerin {${String(password.length)}+}\r\n${password}\r\n`;
    const wire = await imapWire(port);
    t.teardown(() => {
      wire.close();
    });
    await wire.waitFor(/\r\n/);
    wire.send(`${login}a2 XWHO\r\n`);
    const got = await wire.waitFor(/^a2 .*\r\n/m);
    const who = hashed('erin');
    t.equal(got, `a1 OK [CAPABILITY IMAP4rev1 XWHO] ${who}: LOGIN completed\r\n* XWHO ${who}\r\na2 OK ${who}: XWHO completed\r\n`, 'no "+" from tether; the pipelined XWHO reached the same backend after the login');
    t.equal(lastLogin(bs, 'erin')?.raw, login, 'replayed byte for byte');
    await logout(wire);
    closes.push('erin');
  });

  t.test('raw AUTHENTICATE PLAIN with an initial response (SASL-IR) is replayed with a "+" round', async (t) => {
    const password = kept(secret('imap-sasl-ir'));
    const ir = kept(plainResponse('frank', password, 'admin'));
    const { wire, answer, who } = await rawLogin(port, `a1 AUTHENTICATE PLAIN ${ir}\r\n`, 'a1');
    t.teardown(() => {
      wire.close();
    });
    t.equal(answer, `a1 OK [CAPABILITY IMAP4rev1 XWHO] ${who}: PLAIN completed\r\n`);
    t.equal(who, hashed('frank'));
    const l = lastLogin(bs, 'frank');
    t.match(l, { at: who, mechanism: 'plain', user: 'frank', password, authzid: 'admin', saslIr: false, ok: true });
    t.equal(l?.raw, `a1 AUTHENTICATE PLAIN\r\n${ir}\r\n`, 'command, then the same response line');
    await logout(wire);
    closes.push('frank');
  });

  t.test('raw AUTHENTICATE PLAIN answered after tether\'s "+ "', async (t) => {
    const password = kept(secret('imap-sasl-continued'));
    const resp = kept(plainResponse('heidi', password));
    const wire = await imapWire(port);
    t.teardown(() => {
      wire.close();
    });
    await wire.waitFor(/\r\n/);
    wire.send('a1 AUTHENTICATE plain\r\n');
    t.equal(await wire.waitFor(/\r\n/), '+ \r\n', 'tether asks for the response');
    wire.send(`${resp}\r\n`);
    const answer = await wire.waitFor(/^a1 .*\r\n/m);
    const who = hashed('heidi');
    t.equal(answer, `a1 OK [CAPABILITY IMAP4rev1 XWHO] ${who}: PLAIN completed\r\n`);
    t.match(lastLogin(bs, 'heidi'), { at: who, mechanism: 'plain', user: 'heidi', password, saslIr: false, raw: `a1 AUTHENTICATE PLAIN\r\n${resp}\r\n` });
    await logout(wire);
    closes.push('heidi');
  });

  t.test('raw LOGIN with quoted strings and escapes', async (t) => {
    const password = kept(secret('imap-escaped'));
    const sent = 'a1 LOGIN "gr\\"ace" "p\\\\a ss7-grace"\r\n';
    kept('p\\\\a ss7-grace');
    const { wire, answer, who } = await rawLogin(port, sent, 'a1');
    t.teardown(() => {
      wire.close();
    });
    t.equal(who, hashed('gr"ace'));
    t.equal(answer, `a1 OK [CAPABILITY IMAP4rev1 XWHO] ${who}: LOGIN completed\r\n`);
    t.match(lastLogin(bs, 'gr"ace'), { at: who, user: 'gr"ace', password, raw: sent });
    await logout(wire);
    t.match(await closeOf(rt, 'gr"ace'), { user: 'gr"ace', backend: who });
    closes.push('gr"ace');
  });

  t.test('a refused password: the client sees the backend\'s NO unchanged; the next try goes to the same backend', async (t) => {
    const good = kept(secret('imap-retry-good'));
    const who = hashed('gina');
    const { wire, greeting, answer } = await rawLogin(port, `a1 LOGIN gina ${WRONG_PASSWORD}\r\n`, 'a1');
    t.teardown(() => {
      wire.close();
    });
    t.match(greeting, /^\* OK \[CAPABILITY .*\] tether ready\r\n$/, "tether's greeting, not the backend's");
    t.equal(answer, `* NO [ALERT] ${who}: that password is wrong\r\na1 NO [AUTHENTICATIONFAILED] ${who}: invalid credentials\r\n`, "the backend's untagged and tagged NO, byte for byte");
    wire.send(`a2 LOGIN gina ${good}\r\n`);
    t.equal(await wire.waitFor(/^a2 .*\r\n/m), `a2 OK [CAPABILITY IMAP4rev1 XWHO] ${who}: LOGIN completed\r\n`, 'the second try succeeds');
    t.same(
      byName(bs, who).logins.filter((l) => l.user === 'gina').map((l) => [l.password, l.ok]),
      [
        [WRONG_PASSWORD, false],
        [good, true],
      ],
      'both tries reached the same backend',
    );
    t.same(loginsPerBackend(bs, 'gina'), { [who]: 2 }, 'and no other');
    await logout(wire);
    closes.push('gina');
  });

  t.test('imaplib: a refused LOGIN, then a good one on the same connection', async (t) => {
    const good = kept(secret('imaplib-retry-good'));
    const [r] = await imaplibSessions(port, [
      { steps: [{ op: 'login', user: 'ivan', password: WRONG_PASSWORD }, { op: 'login', user: 'ivan', password: good }, { op: 'xwho' }, { op: 'logout' }] },
    ]);
    const who = whoOf(r!);
    t.match(r!.steps[0], { typ: 'NO', text: `[AUTHENTICATIONFAILED] ${who}: invalid credentials` });
    t.match(r!.steps[1], { typ: 'OK' });
    t.same(loginsPerBackend(bs, 'ivan'), { [who]: 2 });
    closes.push('ivan');
  });

  t.test('logs (debug level): no password or PLAIN response anywhere; conn.close names user and backend', async (t) => {
    for (const user of closes) await closeOf(rt, user.toLowerCase());
    const code = await rt.stop();
    t.equal(code, 0, 'tether stopped cleanly');
    const out = rt.stdout() + rt.stderr();
    t.ok(rt.lines.length > 0, 'logs were written');
    for (const s of SECRETS) {
      t.notOk(out.includes(s), `${JSON.stringify(s.slice(0, 3))}… does not appear`);
      t.notOk(out.includes(JSON.stringify(s).slice(1, -1)), 'not even JSON-escaped');
      t.notOk(out.includes(Buffer.from(s).toString('base64')), 'nor in base64');
    }
    const cc = rt.lines.filter((l) => l.event === 'conn.close');
    t.ok(cc.length >= closes.length, `${String(cc.length)} conn.close lines`);
    for (const l of cc) {
      t.type(l['user'], 'string', `conn ${String(l['conn'])} has a user`);
      t.ok(NAMES.includes(l['backend'] as (typeof NAMES)[number]), `conn ${String(l['conn'])} has a backend`);
    }
  });
});

t.test('login affinity: same user, same backend, from any source and in any case', async (t) => {
  const bs = await backends(t);
  const keep = await tether(t, bs);
  const strip = await tether(t, bs, ['--login-domain', 'strip']);
  // A user whose mixed-case spellings would hash elsewhere if tether did not lower-case them.
  const user = ['alice', 'bruno', 'chloe', 'dmitri', 'emma', 'farid'].find(
    (u) => hashed(u.toUpperCase()) !== hashed(u) && hashed(u[0]!.toUpperCase() + u.slice(1)) !== hashed(u),
  )!;
  t.ok(user, `picked ${user}`);
  const spellings = [user, user.toUpperCase(), user[0]!.toUpperCase() + user.slice(1), user.replace(/[aeiou]/g, (v) => v.toUpperCase())];
  const sessions: PySession[] = [];
  for (let i = 0; i < 12; i++) {
    sessions.push({ source: `127.0.0.${String(2 + i)}`, steps: [{ op: 'login', user: spellings[i % spellings.length]!, password: PW }, { op: 'xwho' }, { op: 'logout' }] });
  }
  for (const other of ['zoe', 'yann']) {
    for (let i = 0; i < 4; i++) sessions.push({ source: `127.0.0.${String(20 + i)}`, steps: [{ op: 'login', user: other, password: PW }, { op: 'xwho' }, { op: 'logout' }] });
  }
  const rs = await imaplibSessions(keep.port, sessions);
  const who = (from: number, n: number): string[] => rs.slice(from, from + n).map(whoOf);
  t.same(new Set(who(0, 12)), new Set([hashed(user)]), `12 connections, 12 sources, 4 spellings: all on ${hashed(user)}`);
  t.same(new Set(who(12, 4)), new Set([hashed('zoe')]), 'zoe sticks too');
  t.same(new Set(who(16, 4)), new Set([hashed('yann')]), 'and yann');
  t.same(
    byName(bs, hashed(user)).logins.filter((l) => l.user.toLowerCase() === user).map((l) => l.user),
    sessions.slice(0, 12).map((s) => (s.steps[0] as { user: string }).user),
    'the backend saw each spelling as typed',
  );
  const cc = await closeOf(keep.rt, user);
  t.match(cc, { user, backend: hashed(user) }, 'conn.close logs the lower-cased user');

  // Two domains of one user that land apart when the domain is kept.
  const domains = Array.from({ length: 20 }, (_, i) => `d${String(i)}.example`);
  const d1 = domains[0]!;
  const d2 = domains.find((d) => hashed(`${user}@${d}`) !== hashed(`${user}@${d1}`))!;
  const pair: PySession[] = [d1, d2].map((d, i) => ({ source: `127.0.0.${String(30 + i)}`, steps: [{ op: 'login', user: `${user}@${d}`, password: PW }, { op: 'xwho' }, { op: 'logout' }] }));
  const kept = (await imaplibSessions(keep.port, pair)).map(whoOf);
  t.same(kept, [hashed(`${user}@${d1}`), hashed(`${user}@${d2}`)], `--login-domain keep: ${user}@${d1} and @${d2} apart (${kept.join(', ')})`);
  const stripped = (await imaplibSessions(strip.port, [...pair, ...pair])).map(whoOf);
  t.same(stripped, Array<string>(4).fill(hashed(user)), `--login-domain strip: both with ${user}`);
  t.match(await closeOf(strip.rt, user), { user, backend: hashed(user) }, 'logged as the bare user');
});

t.test('60 users over 3 backends: none gets more than 45%', async (t) => {
  const bs = await backends(t);
  const { port } = await tether(t, bs);
  const users = Array.from({ length: 60 }, (_, i) => `user${String(i).padStart(2, '0')}`);
  const rs = await imaplibSessions(
    port,
    users.map((u, i) => ({ source: `127.0.0.${String(1 + (i % 50))}`, steps: [{ op: 'login', user: u, password: PW }, { op: 'xwho' }, { op: 'logout' }] })),
    60_000,
  );
  const tally: Record<string, number> = {};
  for (const r of rs) tally[whoOf(r)] = (tally[whoOf(r)] ?? 0) + 1;
  t.same(Object.keys(tally).sort(), [...NAMES], `every backend used (${JSON.stringify(tally)})`);
  for (const n of NAMES) t.ok((tally[n] ?? 0) <= 27, `${n}: ${String(tally[n] ?? 0)} ≤ 27`);
  t.same(
    rs.map(whoOf),
    users.map((u) => hashed(u)),
    'each user on its rendezvous winner',
  );
  t.same(
    users.map((u) => lastLogin(bs, u)?.at),
    rs.map(whoOf),
    'and each login was made where XWHO answered',
  );
});

t.test('user directory', (t) => {
  t.test('--user-map places users; a rewritten map is followed on the next logins', async (t) => {
    const bs = await backends(t);
    const dir = t.testdir();
    const map = path.join(dir, 'users.map');
    const h = hashed('alice');
    const first = NAMES.find((n) => n !== h)!;
    const second = NAMES.find((n) => n !== h && n !== first)!;
    writeFileSync(map, `# user backend\nalice ${first}\nnobody a\n`);
    const { rt, port } = await tether(t, bs, ['--user-map', map]);
    const rs = await imaplibSessions(
      port,
      ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'].flatMap((source) => [
        { source, steps: [{ op: 'login', user: 'alice', password: PW }, { op: 'xwho' }, { op: 'logout' }] },
        { source, steps: [{ op: 'login', user: 'ALICE', password: PW }, { op: 'xwho' }, { op: 'logout' }] },
        { source, steps: [{ op: 'login', user: 'zed', password: PW }, { op: 'xwho' }, { op: 'logout' }] },
      ] satisfies PySession[]),
    );
    t.same(rs.filter((_, i) => i % 3 !== 2).map(whoOf), Array<string>(8).fill(first), `alice (hash: ${h}) is sent to ${first} from every source`);
    t.same(new Set(rs.filter((_, i) => i % 3 === 2).map(whoOf)), new Set([hashed('zed')]), 'a user not in the map is placed by hash');
    t.match(await closeOf(rt, 'alice'), { user: 'alice', backend: first, via: 'named' });

    writeFileSync(map, `alice ${second}\n`);
    const future = Date.now() / 1000 + 5;
    utimesSync(map, future, future);
    const changed = Date.now();
    let got = '';
    for (let i = 0; i < 40 && got !== second; i++) {
      const r = await rawLogin(port, `a1 LOGIN alice ${PW}\r\n`, 'a1');
      got = r.who;
      r.wire.close();
      if (got !== second) await new Promise((r) => setTimeout(r, 100));
    }
    const ms = Date.now() - changed;
    t.equal(got, second, `after the rewrite alice goes to ${second}`);
    t.ok(ms < 3_000, `within ${String(ms)} ms (the map's mtime is checked at most once a second)`);
  });

  t.test('--user-lookup: known users where it says, unknown by hash, answers cached', async (t) => {
    const bs = await backends(t);
    const bobAt = NAMES.find((n) => n !== hashed('bob'))!;
    const queries: string[] = [];
    const server = http.createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      const user = u.searchParams.get('user') ?? '';
      queries.push(`${u.pathname}?${user}`);
      if (user === 'bob') res.writeHead(200, { 'content-type': 'text/plain' }).end(`${bobAt}\n`);
      else res.writeHead(404).end();
    });
    const sockets = new Set<net.Socket>();
    server.on('connection', (s: net.Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.teardown(
      () =>
        new Promise<void>((r) => {
          for (const s of sockets) s.destroy();
          server.close(() => {
            r();
          });
        }),
    );
    const lookupPort = (server.address() as net.AddressInfo).port;
    const { rt, port } = await tether(t, bs, ['--user-lookup', `http://127.0.0.1:${String(lookupPort)}/lookup`, '--user-cache-ttl', '1m']);
    const rs = await imaplibSessions(
      port,
      ['127.0.0.5', '127.0.0.6', '127.0.0.7'].flatMap((source) => [
        { source, steps: [{ op: 'login', user: 'Bob', password: PW }, { op: 'xwho' }, { op: 'logout' }] },
        { source, steps: [{ op: 'plain', user: 'uma', password: PW }, { op: 'xwho' }, { op: 'logout' }] },
      ] satisfies PySession[]),
    );
    t.same(rs.filter((_, i) => i % 2 === 0).map(whoOf), [bobAt, bobAt, bobAt], `bob (hash: ${hashed('bob')}) goes to ${bobAt}`);
    t.same(rs.filter((_, i) => i % 2 === 1).map(whoOf), Array<string>(3).fill(hashed('uma')), 'uma (404) is placed by hash');
    t.same(queries.sort(), ['/lookup?bob', '/lookup?uma'], 'one lower-cased query per user: answers and 404s are cached');
    t.match(await closeOf(rt, 'bob'), { user: 'bob', backend: bobAt });
    t.equal(rt.lines.filter((l) => l.event === 'directory.error').length, 0, 'no directory errors');
  });

  t.test('a lookup service that is down: still served (by hash), with a directory.error warning', async (t) => {
    const bs = await backends(t);
    const dead = await deadPort();
    const { rt, port } = await tether(t, bs, ['--user-lookup', `http://127.0.0.1:${String(dead)}/lookup`]);
    const rs = await imaplibSessions(port, [{ steps: [{ op: 'login', user: 'bob', password: PW }, { op: 'xwho' }, { op: 'logout' }] }]);
    t.equal(rs[0]!.steps[0]!.typ, 'OK');
    t.equal(whoOf(rs[0]!), hashed('bob'), 'placed by hash');
    t.match(await rt.waitFor((l) => l.event === 'directory.error', 5_000), { level: 'warn', source: 'user-lookup' });
    t.match(await closeOf(rt, 'bob'), { user: 'bob', backend: hashed('bob'), termination: { cause: 'normal' } });
  });
  t.end();
});

/** A deterministic byte generator (xorshift32), for garbage that is the same on every run. */
function garbage(n: number, seed = 0x2545f491): Buffer {
  const out = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

t.test('bad input ends in a protocol error or a clean close, and tether keeps serving', async (t) => {
  const bs = await backends(t);
  const { rt, port } = await tether(t, bs, ['--login-timeout', '500ms']);
  const accepted = (): number => bs.reduce((n, b) => n + b.accepted(), 0);
  const stillServes = async (t: Test, user: string): Promise<void> => {
    const r = await rawLogin(port, `a1 LOGIN ${user} ${PW}\r\n`, 'a1');
    t.equal(r.who, hashed(user), `the next client (${user}) is served`);
    r.wire.close();
  };
  const newClient = async (t: Test, opts: { holdOpen?: boolean } = {}): Promise<ImapWire> => {
    const wire = await imapWire(port, opts);
    t.teardown(() => {
      wire.close();
    });
    await wire.waitFor(/^\* OK .*\r\n/);
    return wire;
  };

  t.test('a 2 MB line without CRLF', async (t) => {
    const before = accepted();
    const wire = await newClient(t);
    wire.send(Buffer.alloc(2 * 1024 * 1024, 0x61));
    t.match(await wire.waitFor(/\r\n/), /^\* BYE .*\r\n$/, 'BYE');
    await Promise.race([wire.closed, new Promise((r) => setTimeout(r, 2_000))]);
    t.ok(wire.gotEnd(), 'tether closed its side');
    wire.close();
    t.equal(accepted(), before, 'no backend was dialled');
    await stillServes(t, 'after-long-line');
  });

  t.test('an unterminated literal: the login timeout ends it with BYE', async (t) => {
    const wire = await newClient(t);
    const started = Date.now();
    wire.send('a LOGIN {10}\r\n');
    t.equal(await wire.waitFor(/\r\n/), '+ Ready for literal data\r\n');
    wire.send('abc');
    t.equal(await wire.waitFor(/\r\n/, 5_000), '* BYE Autologout; login took too long\r\n');
    t.ok(Date.now() - started >= 400, 'at the login timeout');
    await wire.closed;
    const cc = await rt.waitFor((l) => l.event === 'conn.close' && (l['termination'] as { code?: string }).code === 'login-timeout', 5_000);
    t.match(cc, { user: null, backend: null, termination: { cause: 'client-timeout', stage: 'greet' } }, 'conn.close says login-timeout');
    await stillServes(t, 'after-literal');
  });

  t.test('a literal whose size lies: bigger than the data (waits, then times out), smaller (BAD)', async (t) => {
    const big = await newClient(t);
    big.send('a LOGIN {40}\r\n');
    await big.waitFor(/\r\n/);
    big.send(`alice ${PW}\r\nb NOOP\r\n`);
    t.equal(await big.waitFor(/\r\n/, 5_000), '* BYE Autologout; login took too long\r\n', 'the literal swallowed the rest; then the timeout');
    const small = await newClient(t);
    small.send(`a LOGIN {3}\r\nalice ${PW}\r\n`);
    t.match(await small.waitFor(/\r\n/), /^a BAD .*\r\n$/, 'BAD for what follows the short literal');
    small.send('b NOOP\r\n');
    t.equal(await small.waitFor(/\r\n/), 'b OK NOOP completed\r\n', 'and the connection goes on');
    small.close();
    await stillServes(t, 'after-lying-literal');
  });

  t.test('binary garbage', async (t) => {
    const before = accepted();
    const wire = await newClient(t);
    wire.send(garbage(64 * 1024));
    await Promise.race([wire.closed, new Promise((r) => setTimeout(r, 2_000))]);
    t.match(wire.received(), /\* BYE /, `BYE after garbage (${JSON.stringify(wire.received().slice(-60))})`);
    wire.close();
    t.equal(accepted(), before, 'no backend was dialled');
    await stillServes(t, 'after-garbage');
  });

  t.test('silence: the login timeout', async (t) => {
    const wire = await newClient(t);
    t.equal(await wire.waitFor(/\r\n/, 5_000), '* BYE Autologout; login took too long\r\n');
    await wire.closed;
    t.ok(wire.gotEnd(), 'closed with a FIN');
  });

  t.test('silence from a client that never closes its side: tether still lets go', async (t) => {
    const wire = await newClient(t, { holdOpen: true });
    t.equal(await wire.waitFor(/\r\n/, 5_000), '* BYE Autologout; login took too long\r\n');
    const ms = await letGoWithin(wire, HOLD_BOUND_MS);
    t.ok(ms !== undefined, `tether closed the connection ${String(ms)} ms after its BYE`);
  });

  t.test('too many bad commands: BYE', async (t) => {
    const wire = await newClient(t, { holdOpen: true });
    wire.send(Array.from({ length: 12 }, (_, i) => `b${String(i)} FROB\r\n`).join(''));
    const got = await wire.waitFor(/^\* BYE .*\r\n/m);
    const bad = got.match(/^b\d+ BAD .*\r\n/gm) ?? [];
    t.ok(bad.length >= 1 && bad.length <= 11, `${String(bad.length)} BAD answers, then BYE`);
    t.match(got, /\* BYE Too many invalid commands\r\n$/);
    await Promise.race([wire.closed, new Promise((r) => setTimeout(r, 2_000))]);
    t.ok(wire.gotEnd(), 'tether closed its side');
    t.notMatch(wire.received(), /^b11 /m, 'the 12th was never answered');
    t.ok((await letGoWithin(wire, HOLD_BOUND_MS)) !== undefined, 'and let go of it, though the client kept its side open');
  });

  t.test('commands that need a login are refused before one', async (t) => {
    const wire = await newClient(t);
    wire.send('s1 SELECT INBOX\r\n');
    t.match(await wire.waitFor(/\r\n/), /^s1 BAD .*\r\n$/);
    wire.send('s2 XWHO\r\n');
    t.match(await wire.waitFor(/\r\n/), /^s2 BAD .*\r\n$/);
    wire.send('s3 AUTHENTICATE CRAM-MD5\r\n');
    t.match(await wire.waitFor(/\r\n/), /^s3 NO .*\r\n$/, 'an unsupported mechanism: NO');
    wire.send('s4 LOGIN onlyuser\r\n');
    t.match(await wire.waitFor(/\r\n/), /^s4 BAD .*\r\n$/, 'LOGIN without a password: BAD');
    wire.send('s5 NOOP\r\ns6 ID NIL\r\n');
    t.equal(await wire.waitFor(/^s6 .*\r\n/m), 's5 OK NOOP completed\r\n* ID NIL\r\ns6 OK ID completed\r\n', 'tether answers NOOP and ID itself');
    wire.send(`s7 LOGIN kim ${PW}\r\ns8 SELECT INBOX\r\n`);
    t.match(await wire.waitFor(/^s8 .*\r\n/m), new RegExp(`^s7 OK .*${hashed('kim')}: LOGIN completed\\r\\n\\* 0 EXISTS\\r\\ns8 OK `), 'after the login, SELECT reaches the backend');
  });

  t.test('tether is still up and logged no internal error', async (t) => {
    await stillServes(t, 'at-the-end');
    t.equal(rt.child.exitCode, null, 'still running');
    t.equal(rt.lines.filter((l) => l.event === 'internal.error').length, 0, 'no internal.error');
    t.equal(rt.stderr(), '', 'nothing on stderr');
  });
});
