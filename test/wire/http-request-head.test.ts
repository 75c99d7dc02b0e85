import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import t from 'tap';
import { capturePlainHello } from '../../fixtures/client-hellos.js';
import type { Parse } from '../../lib/wire/parse.js';
import { MAX_REQUEST_HEAD_BYTES, parseRequestHead, type RequestHead } from '../../lib/wire/http/request-head.js';
import { seedFastCheck } from '../helpers/fc-seed.js';

seedFastCheck({ numRuns: 300 });

const hello = await capturePlainHello();

function valueOf(p: Parse<RequestHead>): RequestHead {
  if (p.kind !== 'match') throw new Error(`expected a match, got ${JSON.stringify(p)}`);
  return p.value;
}

/** A match as plain data (Maps become entry lists) for comparisons and messages. */
function plain(p: Parse<RequestHead>): unknown {
  if (p.kind !== 'match') return p;
  const v = p.value;
  return { ...v, cookies: [...v.cookies], query: [...v.query], pathParams: [...v.pathParams] };
}

const sameParse = (a: Parse<RequestHead>, b: Parse<RequestHead>): boolean => JSON.stringify(plain(a)) === JSON.stringify(plain(b));

interface Want {
  readonly method?: string;
  readonly target?: string;
  readonly version?: string;
  readonly host?: string | undefined;
  readonly headers?: readonly (readonly [string, string])[];
  readonly cookies?: Record<string, string>;
  readonly query?: Record<string, string>;
  readonly pathParams?: Record<string, string>;
}

/** Hand-written heads, each a complete head (as a client would send it) and what it must yield. */
const HEADS: readonly (readonly [string, string, Want])[] = [
  ['minimal GET', 'GET / HTTP/1.1\r\nHost: example.com\r\n\r\n', { method: 'GET', target: '/', version: 'HTTP/1.1', host: 'example.com', headers: [['host', 'example.com']] }],
  ['Host with a port, mixed case', 'GET / HTTP/1.1\r\nHost: Example.COM:8080\r\n\r\n', { host: 'example.com' }],
  ['IPv6 Host with a port', 'GET / HTTP/1.1\r\nHost: [2001:DB8::1]:8443\r\n\r\n', { host: '[2001:db8::1]' }],
  ['IPv6 Host without a port', 'GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n', { host: '[::1]' }],
  ['Host with a trailing dot', 'GET / HTTP/1.1\r\nHost: example.com.:80\r\n\r\n', { host: 'example.com' }],
  ['the first of two Host headers wins', 'GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n', { host: 'a.example' }],
  ['empty Host', 'GET / HTTP/1.1\r\nHost: \r\n\r\n', { host: undefined }],
  ['an unclosed IPv6 Host', 'GET / HTTP/1.1\r\nHost: [::1\r\n\r\n', { host: undefined }],
  ['HTTP/1.0 without Host', 'GET /index.html HTTP/1.0\r\n\r\n', { version: 'HTTP/1.0', host: undefined, headers: [] }],
  [
    'header names are lower-cased, values trimmed, order kept',
    'POST /api HTTP/1.1\r\nHOST: h\r\nX-Route:   blue  \r\nContent-Length:0\r\n\r\n',
    { method: 'POST', headers: [['host', 'h'], ['x-route', 'blue'], ['content-length', '0']] },
  ],
  ['multiple Cookie headers; the first of a name wins', 'GET / HTTP/1.1\r\nCookie: a=1; b=2\r\nCookie: c=3; a=9\r\n\r\n', { cookies: { a: '1', b: '2', c: '3' } }],
  ['a quoted cookie value', 'GET / HTTP/1.1\r\nCookie: SID="abc.node1"; x=y\r\n\r\n', { cookies: { SID: 'abc.node1', x: 'y' } }],
  ['cookie pairs without = or with an empty name are skipped', 'GET / HTTP/1.1\r\nCookie: flag; =v; ok=1;;\r\n\r\n', { cookies: { ok: '1' } }],
  ['a cookie whose value holds =', 'GET / HTTP/1.1\r\nCookie: t=a=b==\r\n\r\n', { cookies: { t: 'a=b==' } }],
  ['a lone " is not a quoted value', 'GET / HTTP/1.1\r\nCookie: q="\r\n\r\n', { cookies: { q: '"' } }],
  ['a ;jsessionid= path parameter (Servlet URL rewriting)', 'GET /shop/cart;jsessionid=abc.node1 HTTP/1.1\r\nHost: s\r\n\r\n', { pathParams: { jsessionid: 'abc.node1' }, query: {} }],
  ['path parameters on several segments', 'GET /a;x=1;y=2/b;x=3;z HTTP/1.1\r\n\r\n', { pathParams: { x: '1', y: '2', z: '' } }],
  ['a path parameter and a query', 'GET /app;jsessionid=abc.node1?page=2 HTTP/1.1\r\n\r\n', { pathParams: { jsessionid: 'abc.node1' }, query: { page: '2' } }],
  ['?$ServerID=x&a=b', 'GET /?$ServerID=x&a=b HTTP/1.1\r\n\r\n', { query: { $ServerID: 'x', a: 'b' } }],
  ['% escapes and + in the query', 'GET /s?q=caf%C3%A9&n=a%20b+c&%24ServerID=y HTTP/1.1\r\n\r\n', { query: { q: 'café', n: 'a b c', $ServerID: 'y' } }],
  ['a malformed % escape is kept as sent', 'GET /s?q=100%&r=%zz HTTP/1.1\r\n\r\n', { query: { q: '100%', r: '%zz' } }],
  ['% escapes in a path parameter', 'GET /x;sid=a%2Fb HTTP/1.1\r\n\r\n', { pathParams: { sid: 'a/b' } }],
  ['the first of a repeated query name wins; empty pairs skipped', 'GET /?a=1&&a=2&b&=c HTTP/1.1\r\n\r\n', { query: { a: '1', b: '' } }],
  ['a fragment is not part of the query', 'GET /?a=1#b=2 HTTP/1.1\r\n\r\n', { query: { a: '1' } }],
  ['bare LF line ends (RFC 9112 §2.2)', 'GET /lf HTTP/1.1\nHost: lf.example\nCookie: s=1\n\n', { target: '/lf', host: 'lf.example', cookies: { s: '1' } }],
  ['CRLF header lines ended by a bare LF', 'GET / HTTP/1.1\r\nHost: a\r\n\n', { host: 'a' }],
  ['bare LF header lines ended by a CRLF', 'GET / HTTP/1.1\nHost: b\n\r\n', { host: 'b' }],
  ['absolute-form target (to a proxy)', 'GET http://example.com/x;k=v?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n', { target: 'http://example.com/x;k=v?q=1', pathParams: { k: 'v' }, query: { q: '1' } }],
  ['authority-form CONNECT', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', { method: 'CONNECT', target: 'example.com:443', host: 'example.com' }],
  ['asterisk-form OPTIONS', 'OPTIONS * HTTP/1.1\r\nHost: o\r\n\r\n', { method: 'OPTIONS', target: '*' }],
  ['a WebDAV method with a dash', 'VERSION-CONTROL /doc HTTP/1.1\r\n\r\n', { method: 'VERSION-CONTROL' }],
  ['a header value holding a colon', 'GET / HTTP/1.1\r\nReferer: http://a.example:81/\r\n\r\n', { headers: [['referer', 'http://a.example:81/']] }],
];

/** What a head must be refused as: [name, bytes]. */
const NOT_MINE: readonly (readonly [string, Buffer])[] = [
  ['a TLS ClientHello', hello],
  ['an SSH banner', Buffer.from('SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n')],
  ['an SSH banner before its line end', Buffer.from('SSH-2.0-Open')],
  ['garbage', Buffer.from([0x00, 0xff, 0x13, 0x37])],
  ['an XMPP stream', Buffer.from("<?xml version='1.0'?><stream:stream to='example.com'>")],
  ['a lower-case method', Buffer.from('get / HTTP/1.1\r\n\r\n')],
  ['a method of 21 letters', Buffer.from(`${'A'.repeat(21)} / HTTP/1.1\r\n\r\n`)],
  ['a method still arriving but already too long', Buffer.from('A'.repeat(21))],
  ['HTTP/2 prior knowledge (RFC 9113 §3.4)', Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')],
  ['HTTP/0.9', Buffer.from('GET /\r\n\r\n')],
  ['two spaces in the request line', Buffer.from('GET  / HTTP/1.1\r\n\r\n')],
  ['a request line with an empty target', Buffer.from('GET  HTTP/1.1\r\n\r\n')],
  ['a header line without a colon', Buffer.from('GET / HTTP/1.1\r\nHost example.com\r\n\r\n')],
  ['a header line starting with a colon', Buffer.from('GET / HTTP/1.1\r\n: x\r\n\r\n')],
  ['a space before the colon (RFC 9112 §5.1)', Buffer.from('GET / HTTP/1.1\r\nHost : x\r\n\r\n')],
  ['an obs-fold continuation line', Buffer.from('GET / HTTP/1.1\r\nX-A: 1\r\n  2\r\n\r\n')],
  ['a request line over the cap', Buffer.from(`GET /${'a'.repeat(MAX_REQUEST_HEAD_BYTES)}`)],
  ['a head over the cap', Buffer.from(`GET / HTTP/1.1\r\n${'X-Pad: 0123456789abcdef\r\n'.repeat(1_000)}`)],
  ['a POP3 greeting', Buffer.from('+OK POP3 server ready\r\n')],
  ['an IMAP command', Buffer.from('a1 LOGIN user pass\r\n')],
];

const NEED_MORE: readonly string[] = ['', 'G', 'GET', 'GET ', 'GET /', 'GET / HTTP/1.1', 'GET / HTTP/1.1\r', 'GET / HTTP/1.1\r\n', 'GET / HTTP/1.1\r\nHost: a\r\n', 'GET / HTTP/1.1\r\nHost: a\r\n\r', 'GET / HTTP/1.1\nHost: a\n'];

t.test('case table: hand-written heads', (t) => {
  for (const [name, text, want] of HEADS) {
    const parsed = parseRequestHead(Buffer.from(text, 'latin1'));
    if (!t.equal(parsed.kind, 'match', `${name}: matches`)) continue;
    const got = valueOf(parsed);
    const { cookies, query, pathParams, ...rest } = want;
    for (const [key, value] of Object.entries(rest)) t.same(got[key as keyof RequestHead], value, `${name}: ${key}`);
    if (cookies) t.same(Object.fromEntries(got.cookies), cookies, `${name}: cookies`);
    if (query) t.same(Object.fromEntries(got.query), query, `${name}: query`);
    if (pathParams) t.same(Object.fromEntries(got.pathParams), pathParams, `${name}: path parameters`);
  }
  t.end();
});

t.test('case table: not an HTTP/1.x request', (t) => {
  for (const [name, bytes] of NOT_MINE) t.equal(parseRequestHead(bytes).kind, 'not-mine', name);
  t.end();
});

t.test('case table: need-more', (t) => {
  for (const text of NEED_MORE) t.equal(parseRequestHead(Buffer.from(text)).kind, 'need-more', JSON.stringify(text));
  t.end();
});

t.test('maxBytes: a head that fits matches, one byte more is not-mine', (t) => {
  const head = Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
  t.equal(parseRequestHead(head, head.length).kind, 'match', 'exactly at the cap');
  t.equal(parseRequestHead(head, head.length - 1).kind, 'not-mine', 'one byte over the cap');
  t.equal(parseRequestHead(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\nbody...'), head.length).kind, 'match', 'a body past the cap does not matter');
  t.end();
});

t.test('split at every offset: need-more until the empty line, then the same match', (t) => {
  for (const [name, text] of HEADS) {
    const bytes = Buffer.from(text, 'latin1');
    const want = parseRequestHead(bytes);
    let firstBad: string | undefined;
    for (let i = 0; i < bytes.length && firstBad === undefined; i++) {
      const got = parseRequestHead(bytes.subarray(0, i));
      if (got.kind !== 'need-more') firstBad = `at ${String(i)}: ${JSON.stringify(got)}`;
    }
    t.equal(firstBad, undefined, `${name}: need-more at every shorter prefix`);
    t.ok(sameParse(parseRequestHead(Buffer.concat([bytes, Buffer.from('{"body":1}')])), want), `${name}: a body after the head changes nothing`);
  }
  t.end();
});

t.test('properties', (t) => {
  const kinds = ['need-more', 'not-mine', 'match'];
  const anyHead = fc.constantFrom(...HEADS.map(([, text]) => Buffer.from(text, 'latin1')));
  // Pieces of HTTP, so generated inputs reach the header and parameter code, not just the
  // request-line check.
  const piece = fc.constantFrom('GET', 'POST', ' ', '/', '/a;b=c', '?', '&', '=', '%', '%4', '%41', ';', 'HTTP/1.1', 'HTTP/1.0', '\r\n', '\n', '\r', ':', 'Host', 'Cookie', 'a=1', '"', '[::1]', ':80', 'x', '#');
  const httpish = fc.array(piece, { maxLength: 40 }).map((ps) => Buffer.from(ps.join(''), 'latin1'));

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)), httpish), fc.integer({ min: 1, max: 600 }), (bytes, maxBytes) => {
        const got = parseRequestHead(bytes, maxBytes);
        return kinds.includes(got.kind) && !(got.kind === 'need-more' && bytes.length >= maxBytes);
      }),
      { numRuns: 2_000 },
    );
  }, 'random and HTTP-ish bytes never throw, and at the cap the answer is never need-more');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(httpish, (bytes) => {
        const full = parseRequestHead(bytes);
        if (full.kind !== 'match') return true;
        for (let i = 0; i < bytes.length; i++) {
          const got = parseRequestHead(bytes.subarray(0, i));
          if (got.kind === 'not-mine' || (got.kind === 'match' && !sameParse(got, full))) return false;
        }
        return true;
      }),
      { numRuns: 2_000 },
    );
  }, 'a prefix of a matching HTTP-ish input is need-more or the same match, never not-mine or a different match');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(anyHead, fc.uint8Array({ maxLength: 200 }), (head, junk) => sameParse(parseRequestHead(Buffer.concat([head, junk])), parseRequestHead(head))),
    );
  }, 'junk appended after a complete head does not change the value');

  t.doesNotThrow(() => {
    fc.assert(
      fc.property(anyHead, fc.nat(), fc.integer({ min: 0, max: 255 }), (head, at, byte) => {
        // HTTP has no length fields; its framing is the line ends, so corrupt any one byte.
        const copy = Buffer.from(head);
        copy[at % copy.length] = byte;
        const got = parseRequestHead(copy);
        return kinds.includes(got.kind);
      }),
      { numRuns: 1_000 },
    );
  }, 'a corrupted byte never throws');
  t.end();
});
