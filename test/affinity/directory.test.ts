// The user directory for `login` affinity (lib/affinity/directory.ts): the map-file grammar, the
// login key, and UserDirectory against a real temp file and a real HTTP server on 127.0.0.1:0,
// with time moved by a ManualClock. The only real wait is the 2 s HTTP lookup timeout, which
// runs alongside the other HTTP checks.
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { rm, utimes, writeFile } from 'node:fs/promises';
import t, { type Test } from 'tap';
import { ManualClock } from '../../lib/clock.js';
import { loginKey, parseUserMap, UserDirectory } from '../../lib/affinity/directory.js';

t.test('parseUserMap', (t) => {
  const text = [
    '# user   backend',
    'alice a',
    '',
    '   ',
    'Bob\tb   # trailing comment',
    'ALICE c',
    'carol',
    '  dave   d  extra columns ignored',
    'erin@example.org b\r',
    '#frank a',
    'gina c#no space before the comment',
  ].join('\n');
  t.same(
    [...parseUserMap(text)],
    [
      ['alice', 'a'],
      ['bob', 'b'],
      ['dave', 'd'],
      ['erin@example.org', 'b'],
      ['gina', 'c'],
    ],
    'comments and blank lines skipped, users lower-cased, the first line of a user wins, a user without a backend skipped',
  );
  t.same([...parseUserMap('')], [], 'an empty file');
  t.same([...parseUserMap('# only\n#comments\n')], [], 'only comments');
  t.end();
});

t.test('loginKey', (t) => {
  const cases: readonly (readonly [string, 'keep' | 'strip', string])[] = [
    ['Alice@Example.ORG', 'keep', 'alice@example.org'],
    ['Alice@Example.ORG', 'strip', 'alice'],
    ['  Bob  ', 'keep', 'bob'],
    ['carol', 'strip', 'carol'],
    ['a@b@c.example', 'strip', 'a@b'],
    ['@example.org', 'strip', '@example.org'],
    ['dave@', 'strip', 'dave'],
  ];
  for (const [user, domain, want] of cases) t.equal(loginKey(user, domain), want, `${JSON.stringify(user)} ${domain}`);
  t.end();
});

interface Recorded {
  readonly what: string;
  readonly err: unknown;
}

const errMessage = (e: unknown): string => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

t.test('UserDirectory with a map file', async (t) => {
  const dir = t.testdir();
  const file = path.join(dir, 'users.map');
  await writeFile(file, 'alice a\nbob b\n');
  const base = new Date('2024-01-01T00:00:00Z');
  await utimes(file, base, base);
  const clock = new ManualClock();
  const errors: Recorded[] = [];
  const d = new UserDirectory({ mapFile: file, ttlMs: 60_000, clock, onError: (what, err) => errors.push({ what, err }) });
  await d.load();

  t.equal(await d.lookup('alice'), 'a');
  t.equal(await d.lookup('ALICE'), 'a', 'user names are case-insensitive');
  t.equal(await d.lookup('zoe'), undefined, 'not in the map, and no HTTP lookup');

  await writeFile(file, 'alice c\nzoe b\n');
  const later = new Date(base.getTime() + 10_000);
  await utimes(file, later, later);
  t.equal(await d.lookup('alice'), 'a', 'within 1 s of the last check the file is not looked at');
  clock.advance(999);
  t.equal(await d.lookup('alice'), 'a', 'still within the second');
  clock.advance(2);
  t.equal(await d.lookup('alice'), 'c', 'past 1 s, a new mtime: the map is re-read');
  t.equal(await d.lookup('zoe'), 'b');
  t.equal(await d.lookup('bob'), undefined, 'a user removed from the file is gone');

  // Same inode, size and mtime (an edit within the file system's time granularity).
  await writeFile(file, 'alice d\nzoe b\n');
  await utimes(file, later, later);
  clock.advance(1_001);
  t.equal(await d.lookup('alice'), 'c', 'same inode, size and mtime: not re-read, even though the content changed');

  await rm(file);
  clock.advance(1_001);
  t.equal(await d.lookup('alice'), 'c', 'the file is gone: the last good map keeps serving');
  t.equal(errors.length, 1, 'and the error is reported once');
  t.equal(errors[0]?.what, 'user-map');
  t.equal((errors[0]?.err as NodeJS.ErrnoException | undefined)?.code, 'ENOENT');
  clock.advance(500);
  await d.lookup('alice');
  t.equal(errors.length, 1, 'not re-checked within the second');

  await writeFile(file, 'alice b\n');
  clock.advance(1_001);
  t.equal(await d.lookup('alice'), 'b', 'the file is back: read again');
  t.equal(errors.length, 1);
});

t.test('UserDirectory: load() rejects for a missing map; without load() the first lookup reads it', async (t) => {
  const dir = t.testdir({ 'users.map': 'Carol b\n' });
  const clock = new ManualClock();
  const missing = new UserDirectory({ mapFile: path.join(dir, 'missing.map'), ttlMs: 1_000, clock, onError: () => undefined });
  await t.rejects(missing.load(), { code: 'ENOENT' });
  const lazy = new UserDirectory({ mapFile: path.join(dir, 'users.map'), ttlMs: 1_000, clock, onError: () => undefined });
  t.equal(await lazy.lookup('carol'), 'b');
  const none = new UserDirectory({ ttlMs: 1_000, clock, onError: () => undefined });
  await none.load();
  t.equal(await none.lookup('carol'), undefined, 'no map and no URL: nobody is known');
});

/** What the lookup server answers for a user: a status and a body, or `hang` (never answers). */
type Answer = { readonly status: number; readonly body: string } | 'hang';

interface LookupServer {
  readonly url: string;
  /** Every request's query string, in order. */
  readonly requests: URLSearchParams[];
  readonly answers: Map<string, Answer>;
  /** Requests seen for `user`. */
  count(user: string): number;
}

async function lookupServer(t: Test): Promise<LookupServer> {
  const requests: URLSearchParams[] = [];
  const answers = new Map<string, Answer>();
  const server = http.createServer((req, res) => {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    requests.push(q);
    const a = answers.get(q.get('user') ?? '') ?? { status: 404, body: 'unknown user\n' };
    if (a === 'hang') return;
    res.writeHead(a.status, { 'content-type': 'text/plain' });
    res.end(a.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  );
  const port = (server.address() as net.AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, requests, answers, count: (user) => requests.filter((q) => q.get('user') === user).length };
}

t.test('UserDirectory with an HTTP lookup', async (t) => {
  const srv = await lookupServer(t);
  const clock = new ManualClock();

  // The lookup timeout (2 s, not configurable) runs while the other checks do.
  const slowErrors: Recorded[] = [];
  const slowDir = new UserDirectory({ lookupUrl: `${srv.url}/who`, ttlMs: 60_000, clock, onError: (what, err) => slowErrors.push({ what, err }) });
  srv.answers.set('slow', 'hang');
  const slowStarted = performance.now();
  const slow = slowDir.lookup('slow').then((backend) => ({ backend, ms: performance.now() - slowStarted }));

  const errors: Recorded[] = [];
  const d = new UserDirectory({ lookupUrl: `${srv.url}/who?realm=mail`, ttlMs: 60_000, clock, onError: (what, err) => errors.push({ what, err }) });

  await t.test('200: the first word of the body names the backend; cached for the TTL', async (t) => {
    srv.answers.set('alice', { status: 200, body: 'b\n' });
    t.equal(await d.lookup('Alice'), 'b');
    const q = srv.requests.at(-1);
    t.equal(q?.get('user'), 'alice', 'the lower-cased user is sent as user=');
    t.equal(q?.get('realm'), 'mail', "the URL's own query is kept");
    srv.answers.set('alice', { status: 200, body: 'c\n' });
    clock.advance(59_999);
    t.equal(await d.lookup('alice'), 'b', 'within the TTL: from the cache');
    t.equal(srv.count('alice'), 1, 'no second request');
    clock.advance(1);
    t.equal(await d.lookup('alice'), 'c', 'at the TTL: asked again');
    t.equal(srv.count('alice'), 2);
    srv.answers.set('multi', { status: 200, body: '  a extra words\n' });
    t.equal(await d.lookup('multi'), 'a', 'only the first word counts');
    srv.answers.set('blank', { status: 200, body: '\n' });
    t.equal(await d.lookup('blank'), undefined, 'an empty 200 names nobody');
  });

  await t.test('404: "not found" is cached for the TTL (negative caching)', async (t) => {
    t.equal(await d.lookup('nobody'), undefined);
    srv.answers.set('nobody', { status: 200, body: 'a' });
    clock.advance(30_000);
    t.equal(await d.lookup('nobody'), undefined, 'the cached "not found"');
    t.equal(srv.count('nobody'), 1);
    clock.advance(30_000);
    t.equal(await d.lookup('nobody'), 'a', 'after the TTL the new answer');
    t.equal(srv.count('nobody'), 2);
    t.same(errors, [], 'a 404 is an answer, not an error');
  });

  await t.test('500: not cached, reported', async (t) => {
    srv.answers.set('broken', { status: 500, body: 'oops' });
    t.equal(await d.lookup('broken'), undefined);
    t.equal(errors.length, 1);
    t.equal(errors[0]?.what, 'user-lookup');
    t.equal(errMessage(errors[0]?.err), 'Error: HTTP 500');
    srv.answers.set('broken', { status: 200, body: 'c' });
    t.equal(await d.lookup('broken'), 'c', 'the next lookup asks again at once');
    t.equal(srv.count('broken'), 2);
  });

  await t.test('special characters in the user are URL-encoded', async (t) => {
    srv.answers.set('a b&c=d@x', { status: 200, body: 'b' });
    t.equal(await d.lookup('A B&C=D@x'), 'b');
  });

  await t.test('no server: not cached, reported', async (t) => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => {
      resolve();
    }));
    const errs: Recorded[] = [];
    const gone = new UserDirectory({ lookupUrl: `http://127.0.0.1:${port}/who`, ttlMs: 60_000, clock, onError: (what, err) => errs.push({ what, err }) });
    t.equal(await gone.lookup('alice'), undefined);
    t.equal(await gone.lookup('alice'), undefined);
    t.equal(errs.length, 2, 'each lookup tried and reported: nothing was cached');
    t.equal(errs[0]?.what, 'user-lookup');
  });

  await t.test('the map file answers first; a map reload clears the HTTP cache', async (t) => {
    const dir = t.testdir({ 'users.map': 'mapped a\n' });
    const file = path.join(dir, 'users.map');
    const both = new UserDirectory({ mapFile: file, lookupUrl: `${srv.url}/who`, ttlMs: 60_000, clock, onError: () => undefined });
    await both.load();
    srv.answers.set('mapped', { status: 200, body: 'c' });
    t.equal(await both.lookup('mapped'), 'a', 'from the map');
    t.equal(srv.count('mapped'), 0, 'no HTTP request for a mapped user');
    srv.answers.set('web', { status: 200, body: 'b' });
    t.equal(await both.lookup('web'), 'b', 'not in the map: asked over HTTP');
    srv.answers.set('web', { status: 200, body: 'c' });
    await writeFile(file, 'mapped a\nother b\n');
    const later = new Date(Date.now() + 60_000);
    await utimes(file, later, later);
    clock.advance(1_001);
    t.equal(await both.lookup('web'), 'c', 'the reload dropped the cached HTTP answer');
    t.equal(srv.count('web'), 2);
  });

  await t.test('a lookup slower than 2 s: undefined, reported, not cached', async (t) => {
    const r = await slow;
    t.equal(r.backend, undefined);
    t.ok(r.ms >= 1_900 && r.ms < 5_000, `gave up after about 2 s (${Math.round(r.ms)} ms)`);
    t.equal(slowErrors.length, 1);
    t.equal(slowErrors[0]?.what, 'user-lookup');
    t.match(errMessage(slowErrors[0]?.err), /TimeoutError|abort/i);
    srv.answers.set('slow', { status: 200, body: 'b' });
    t.equal(await slowDir.lookup('slow'), 'b', 'the next lookup asks again');
    t.equal(srv.count('slow'), 2);
  });
});

/** A server whose answer starts with `head` and then streams `filler` for up to 10 s (or until the client goes). */
async function endlessServer(t: Test, head: string, filler: Buffer | undefined): Promise<{ url: string; sent: () => number }> {
  let sent = 0;
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write(head);
    if (filler === undefined) return; // headers (and head), then silence
    const started = Date.now();
    const pump = (): void => {
      while (!res.destroyed && Date.now() - started < 10_000) {
        sent += filler.length;
        if (!res.write(filler)) {
          res.once('drain', pump);
          return;
        }
      }
      res.destroy();
    };
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${String((server.address() as net.AddressInfo).port)}/who`, sent: () => sent };
}

t.test('UserDirectory: a huge or endless answer is read only as far as its first word', async (t) => {
  const clock = new ManualClock(0);
  const MiB = 1024 * 1024;
  const rssBefore = process.memoryUsage().rss;
  const named = await endlessServer(t, 'b\n', Buffer.alloc(MiB, 0x78));
  const errs: unknown[] = [];
  const d = new UserDirectory({ lookupUrl: named.url, ttlMs: 60_000, clock, onError: (_w, e) => errs.push(e) });
  t.equal(await d.lookup('alice'), 'b', 'the first word, from an endless body');
  const word = await endlessServer(t, '', Buffer.alloc(MiB, 0x78));
  const d2 = new UserDirectory({ lookupUrl: word.url, ttlMs: 60_000, clock, onError: (_w, e) => errs.push(e) });
  t.equal(await d2.lookup('bob'), undefined, 'a first word longer than 1 KiB: no answer');
  t.equal(errs.length, 1, 'and it is reported');
  t.ok(process.memoryUsage().rss - rssBefore < 64 * MiB, `RSS grew by ${String(Math.round((process.memoryUsage().rss - rssBefore) / MiB))} MiB (the servers sent ${String(Math.round((named.sent() + word.sent()) / MiB))} MiB)`);
});

t.test('UserDirectory: headers, then silence: the lookup timeout covers the body', async (t) => {
  const clock = new ManualClock(0);
  const silent = await endlessServer(t, '', undefined);
  const errs: unknown[] = [];
  const d = new UserDirectory({ lookupUrl: silent.url, ttlMs: 60_000, clock, onError: (_w, e) => errs.push(e) });
  t.equal(await d.lookup('carol'), undefined, 'no answer');
  t.equal(errs.length, 1, 'reported');
});
