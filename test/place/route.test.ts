import { Buffer } from 'node:buffer';
import t from 'tap';
import type { RouteRule } from '../../lib/config/types.js';
import type { PeekFacts } from '../../lib/peek/sniff.js';
import { hostMatches, selectPool } from '../../lib/place/route.js';
import { parseRequestHead, type RequestHead } from '../../lib/wire/http/request-head.js';
import type { ClientHello } from '../../lib/wire/tls/client-hello.js';

const tlsPeek = (o: { sni?: string; alpn?: string[] } = {}): PeekFacts => {
  const tls: ClientHello = { legacyVersion: 0x0303, sessionId: '', alpn: o.alpn ?? [], supportedVersions: [], pskIdentities: [], ...(o.sni === undefined ? {} : { sni: o.sni }) };
  return { protocol: 'tls', tls };
};

function httpPeek(host: string): PeekFacts {
  const p = parseRequestHead(Buffer.from(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`));
  if (p.kind !== 'match') throw new Error('bad head');
  const http: RequestHead = p.value;
  return { protocol: 'http', http };
}

t.test('hostMatches: *.domain matches names below it at any depth, never the apex', (t) => {
  const p = '*.example.com';
  t.equal(hostMatches(p, 'a.example.com'), true);
  t.equal(hostMatches(p, 'a.b.example.com'), true);
  t.equal(hostMatches(p, 'A.Example.COM'), true, 'the host is compared case-insensitively');
  t.equal(hostMatches(p, 'example.com'), false, 'not the apex');
  t.equal(hostMatches(p, 'badexample.com'), false, 'not a name that merely ends the same');
  t.equal(hostMatches(p, '.example.com'), false, 'not an empty label');
  t.equal(hostMatches(p, 'example.com.evil'), false);
  t.equal(hostMatches(p, undefined), false, 'no host');
  t.end();
});

t.test('hostMatches: an exact name matches only itself, case-insensitively', (t) => {
  t.equal(hostMatches('mail.example.com', 'mail.example.com'), true);
  t.equal(hostMatches('mail.example.com', 'MAIL.Example.Com'), true);
  t.equal(hostMatches('mail.example.com', 'a.mail.example.com'), false);
  t.equal(hostMatches('mail.example.com', 'mail.example.co'), false);
  t.equal(hostMatches('mail.example.com', undefined), false);
  t.end();
});

t.test('selectPool: the first matching rule, in order; else default', (t) => {
  const routes: RouteRule[] = [
    { pool: 'ssh', protocol: 'ssh' },
    { pool: 'mail', sni: 'mail.example.com' },
    { pool: 'wild', sni: '*.example.com' },
    { pool: 'web', httpHost: '*.example.org' },
  ];
  t.equal(selectPool(routes, { protocol: 'ssh' }), 'ssh');
  t.equal(selectPool(routes, tlsPeek({ sni: 'mail.example.com' })), 'mail', 'the exact rule comes first');
  t.equal(selectPool(routes, tlsPeek({ sni: 'www.example.com' })), 'wild');
  t.equal(selectPool([routes[2]!, routes[1]!], tlsPeek({ sni: 'mail.example.com' })), 'wild', 'order decides, not specificity');
  t.equal(selectPool(routes, httpPeek('shop.example.org:8080')), 'web', 'the Host port is ignored');
  t.equal(selectPool(routes, tlsPeek({ sni: 'other.test' })), 'default');
  t.equal(selectPool(routes, tlsPeek()), 'default', 'no SNI');
  t.equal(selectPool(routes, { protocol: 'unknown' }), 'default');
  t.equal(selectPool(routes, undefined), 'default', 'nothing peeked');
  t.equal(selectPool([], tlsPeek({ sni: 'mail.example.com' })), 'default', 'no rules');
  t.end();
});

t.test('selectPool: every condition of a rule must hold', (t) => {
  const routes: RouteRule[] = [
    { pool: 'h2', protocol: 'tls', sni: '*.example.com', alpn: 'h2' },
    { pool: 'tls', protocol: 'tls' },
  ];
  t.equal(selectPool(routes, tlsPeek({ sni: 'a.example.com', alpn: ['h2', 'http/1.1'] })), 'h2');
  t.equal(selectPool(routes, tlsPeek({ sni: 'a.example.com', alpn: ['http/1.1'] })), 'tls', 'alpn missing');
  t.equal(selectPool(routes, tlsPeek({ sni: 'a.example.net', alpn: ['h2'] })), 'tls', 'sni does not match');
  t.equal(selectPool(routes, tlsPeek({ alpn: ['h2'] })), 'tls', 'sni absent');
  t.equal(selectPool([{ pool: 'x', protocol: 'http', httpHost: 'a.example' }], tlsPeek({ sni: 'a.example' })), 'default', 'protocol differs');
  t.equal(selectPool([{ pool: 'x', sni: 'a.example' }], httpPeek('a.example')), 'default', 'an sni rule does not read the Host header');
  t.equal(selectPool([{ pool: 'x', httpHost: 'a.example' }], tlsPeek({ sni: 'a.example' })), 'default', 'an http-host rule does not read SNI');
  t.end();
});
