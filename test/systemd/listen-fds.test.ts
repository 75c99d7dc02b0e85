// lib/systemd/listen-fds.ts: reading LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES, and matching
// inherited sockets to frontend listen addresses. Pure.
import t from 'tap';
import { LISTEN_FDS_START, MAX_LISTEN_FDS, matchInherited, parseListenFds, type InheritedAddress, type ListenWants } from '../../lib/systemd/listen-fds.js';

const PID = 4321;

t.test('parseListenFds', (t) => {
  const cases: [string, Parameters<typeof parseListenFds>[0], ReturnType<typeof parseListenFds>][] = [
    ['not activated', {}, { fds: [], problems: [] }],
    ['two sockets for us, named', { LISTEN_PID: String(PID), LISTEN_FDS: '2', LISTEN_FDNAMES: 'imaps:pop3s' }, {
      fds: [{ fd: 3, name: 'imaps' }, { fd: 4, name: 'pop3s' }], problems: [],
    }],
    ['no names: unknown', { LISTEN_PID: String(PID), LISTEN_FDS: '1' }, { fds: [{ fd: 3, name: 'unknown' }], problems: [] }],
    ['zero sockets', { LISTEN_PID: String(PID), LISTEN_FDS: '0' }, { fds: [], problems: [] }],
    ['meant for another process: silently not ours', { LISTEN_PID: '1', LISTEN_FDS: '2' }, { fds: [], problems: [] }],
    ['LISTEN_FDS without LISTEN_PID', { LISTEN_FDS: '2' }, { fds: [], problems: ['LISTEN_PID=null is not a process id: inherited sockets ignored'] }],
    ['LISTEN_PID not a number', { LISTEN_PID: 'self', LISTEN_FDS: '1' }, { fds: [], problems: ['LISTEN_PID="self" is not a process id: inherited sockets ignored'] }],
    ['LISTEN_PID without LISTEN_FDS', { LISTEN_PID: String(PID) }, { fds: [], problems: [`LISTEN_FDS=null is not a count from 0 to ${String(MAX_LISTEN_FDS)}: inherited sockets ignored`] }],
    ['LISTEN_FDS negative', { LISTEN_PID: String(PID), LISTEN_FDS: '-1' }, { fds: [], problems: [`LISTEN_FDS="-1" is not a count from 0 to ${String(MAX_LISTEN_FDS)}: inherited sockets ignored`] }],
    ['LISTEN_FDS too large', { LISTEN_PID: String(PID), LISTEN_FDS: String(MAX_LISTEN_FDS + 1) }, { fds: [], problems: [`LISTEN_FDS="65537" is not a count from 0 to ${String(MAX_LISTEN_FDS)}: inherited sockets ignored`] }],
    ['LISTEN_FDS with junk', { LISTEN_PID: String(PID), LISTEN_FDS: '2x' }, { fds: [], problems: [`LISTEN_FDS="2x" is not a count from 0 to ${String(MAX_LISTEN_FDS)}: inherited sockets ignored`] }],
    ['too few names: all dropped', { LISTEN_PID: String(PID), LISTEN_FDS: '2', LISTEN_FDNAMES: 'one' }, {
      fds: [{ fd: 3, name: 'unknown' }, { fd: 4, name: 'unknown' }], problems: ['LISTEN_FDNAMES has 1 names for 2 sockets: names ignored'],
    }],
  ];
  for (const [name, env, want] of cases) t.same(parseListenFds(env, PID), want, name);
  const many = parseListenFds({ LISTEN_PID: String(PID), LISTEN_FDS: String(MAX_LISTEN_FDS) }, PID);
  t.equal(many.fds.length, MAX_LISTEN_FDS, 'the largest count is believed');
  t.equal(many.fds.at(-1)?.fd, LISTEN_FDS_START + MAX_LISTEN_FDS - 1);
  t.end();
});

const sock = (fd: number, host: string, port: number, name = 'unknown'): InheritedAddress => ({ fd, name, host, port });
const wants = (frontend: string, ...addrs: [string, number][]): ListenWants => ({ frontend, addresses: addrs.map(([host, port]) => ({ host, port })) });
/** The matching as plain data: frontend → address → fd. */
const plain = (m: ReturnType<typeof matchInherited>): { by: Record<string, Record<string, number>>; unused: readonly number[] } => ({
  by: Object.fromEntries([...m.byFrontend].map(([f, addrs]) => [f, Object.fromEntries(addrs)])),
  unused: m.unused,
});

t.test('matchInherited', (t) => {
  t.same(plain(matchInherited([wants('a', ['127.0.0.1', 993])], [sock(3, '127.0.0.1', 993)])), { by: { a: { '127.0.0.1:993': 3 } }, unused: [] }, 'same host and port');
  t.same(plain(matchInherited([wants('a', ['0:0:0:0:0:0:0:1', 993])], [sock(3, '::1', 993)])), { by: { a: { '[0:0:0:0:0:0:0:1]:993': 3 } }, unused: [] }, 'IPv6 compared in canonical form');
  t.same(plain(matchInherited([wants('a', ['127.0.0.1', 993])], [sock(3, '127.0.0.1', 995)])), { by: { a: {} }, unused: [3] }, 'another port: unused');
  t.same(plain(matchInherited([wants('a', ['127.0.0.1', 993])], [sock(3, '127.0.0.2', 993)])), { by: { a: {} }, unused: [3] }, 'another host: unused');
  t.same(plain(matchInherited([wants('a', ['0.0.0.0', 993])], [sock(3, '::', 993)])), { by: { a: { '0.0.0.0:993': 3 } }, unused: [] }, "0.0.0.0 takes systemd's [::] (dual-stack) socket");
  t.same(plain(matchInherited([wants('a', ['::', 993])], [sock(3, '0.0.0.0', 993)])), { by: { a: { '[::]:993': 3 } }, unused: [] }, 'and :: an IPv4 wildcard one');
  t.same(plain(matchInherited([wants('a', ['127.0.0.1', 993])], [sock(3, '::', 993)])), { by: { a: {} }, unused: [3] }, 'a specific address never takes a wildcard socket');
  t.same(
    plain(matchInherited([wants('a', ['::', 80], ['0.0.0.0', 80])], [sock(3, '0.0.0.0', 80), sock(4, '::', 80)])),
    { by: { a: { '[::]:80': 4, '0.0.0.0:80': 3 } }, unused: [] },
    'exact matches win over the wildcard fallback, whatever the order',
  );
  t.same(
    plain(matchInherited([wants('a', ['0.0.0.0', 80]), wants('b', ['::', 80])], [sock(3, '::', 80), sock(4, '0.0.0.0', 80)])),
    { by: { a: { '0.0.0.0:80': 4 }, b: { '[::]:80': 3 } }, unused: [] },
    'across frontends too',
  );
  t.same(plain(matchInherited([wants('a', ['127.0.0.1', 0])], [sock(3, '127.0.0.1', 0)])), { by: { a: {} }, unused: [3] }, 'port 0 is never matched');
  t.same(plain(matchInherited([wants('a', ['127.0.0.1', 993])], [sock(3, '', 0)])), { by: { a: {} }, unused: [3] }, 'a non-TCP socket is never matched');
  t.same(
    plain(matchInherited([wants('a', ['127.0.0.1', 993]), wants('b', ['127.0.0.1', 993])], [sock(3, '127.0.0.1', 993)])),
    { by: { a: { '127.0.0.1:993': 3 }, b: {} }, unused: [] },
    'a socket serves one address only',
  );
  t.same(
    plain(matchInherited([wants('a', ['127.0.0.1', 993]), wants('b', ['127.0.0.1', 993])], [sock(3, '127.0.0.1', 993, 'b')])),
    { by: { a: {}, b: { '127.0.0.1:993': 3 } }, unused: [] },
    'a socket named after a frontend serves only that frontend',
  );
  t.same(
    plain(matchInherited([wants('a', ['127.0.0.1', 993])], [sock(3, '127.0.0.1', 993, 'tether.socket')])),
    { by: { a: { '127.0.0.1:993': 3 } }, unused: [] },
    'a name that is no frontend\'s does not restrict',
  );
  t.same(
    plain(matchInherited([wants('r', ['127.0.0.1', 10], ['127.0.0.1', 11], ['127.0.0.1', 12])], [sock(5, '127.0.0.1', 12), sock(3, '127.0.0.1', 10), sock(9, '127.0.0.1', 99), sock(4, '10.0.0.1', 11)])),
    { by: { r: { '127.0.0.1:10': 3, '127.0.0.1:12': 5 } }, unused: [4, 9] },
    'a port range takes what matches and binds the rest; unused listed in fd order',
  );
  t.end();
});
