import { Buffer } from 'node:buffer';
import t from 'tap';
import { captureTls12TicketResumption, captureTls13Resumption } from '../../fixtures/client-hellos.js';
import { MAX_STORED_KEY_BYTES, chainLookups, chainNeedsPeek, storedValue, tableKey } from '../../lib/affinity/chain.js';
import type { Lookup } from '../../lib/place/place.js';
import { ticketKeyName } from '../../lib/wire/tls/ticket-key-name.js';
import { parseAffinityChain } from '../helpers/parse.js';
import type { Facts } from '../../lib/facts.js';
import type { PeekFacts } from '../../lib/peek/sniff.js';
import { parseRequestHead, type RequestHead } from '../../lib/wire/http/request-head.js';
import { parseClientHello, type ClientHello } from '../../lib/wire/tls/client-hello.js';

const [tls12, tls13] = await Promise.all([captureTls12TicketResumption(), captureTls13Resumption()]);

const CTX = { backendNames: new Set(['a', 'b']) };
const SOURCE = '192.0.2.7';

function facts(peek?: PeekFacts, moduleKey?: string, source = SOURCE): Facts {
  return { source, sourcePort: 50_000, localPort: 443, ...(peek === undefined ? {} : { peek }), ...(moduleKey === undefined ? {} : { moduleKey }) };
}

/** The lookups of the chain spelled as in --affinity. */
const lookups = (chain: string, f: Facts): Lookup[] => chainLookups(parseAffinityChain(chain), f, CTX);

/** A lookup as the chain must build it. */
function want(kind: string, value: string, learned = false, names?: string): Lookup {
  const l = { kind, value, tableKey: `${kind}\u0000${value}`, learned };
  return names === undefined ? l : { ...l, names };
}

function hello(o: Partial<ClientHello> = {}): ClientHello {
  return { legacyVersion: 0x0303, sessionId: '', alpn: [], supportedVersions: [], pskIdentities: [], ...o };
}

function parsedHello(bytes: Buffer): ClientHello {
  const p = parseClientHello(bytes);
  if (p.kind !== 'match') throw new Error('fixture ClientHello does not parse');
  return p.value;
}

function head(text: string): RequestHead {
  const p = parseRequestHead(Buffer.from(text, 'latin1'));
  if (p.kind !== 'match') throw new Error(`not a request head: ${JSON.stringify(text)}`);
  return p.value;
}

const tlsFacts = (h: ClientHello): Facts => facts({ protocol: 'tls', tls: h });
const httpFacts = (text: string): Facts => facts({ protocol: 'http', http: head(text) });

/** A ticket in RFC 5077 §4's layout: key_name(16) iv(16) state mac(32), `bytes` long in all. */
function ticket(keyNameByte: number, bytes = 64): Buffer {
  const b = Buffer.alloc(bytes, 0xee);
  b.fill(keyNameByte, 0, Math.min(16, bytes));
  return b;
}
const keyName = (byte: number): string => Buffer.alloc(16, byte).toString('hex');

t.test('tableKey namespaces the value by its kind', (t) => {
  t.equal(tableKey({ kind: 'sni', value: 'a.example' }), 'sni\u0000a.example');
  t.not(tableKey({ kind: 'sni', value: 'x' }), tableKey({ kind: 'http-host', value: 'x' }), 'kinds never collide');
  t.end();
});

t.test('source: the masked address, kind spelled source even with a mask', (t) => {
  t.same(lookups('source', facts()), [want('source', '192.0.2.7/32')]);
  t.same(lookups('source/24', facts()), [want('source', '192.0.2.0/24')]);
  t.same(lookups('source/24/64', facts(undefined, undefined, '::ffff:192.0.2.7')), [want('source', '192.0.2.0/24')], 'IPv4-mapped is IPv4');
  t.same(lookups('source/24/64', facts(undefined, undefined, '2001:db8:1:2:3::9')), [want('source', '2001:db8:1:2::/64')]);
  t.same(lookups('source', facts(undefined, undefined, '')), [], 'no address, no key');
  t.end();
});

t.test('sni', (t) => {
  t.same(lookups('sni', tlsFacts(hello({ sni: 'mail.example.com' }))), [want('sni', 'mail.example.com')]);
  t.same(lookups('sni', tlsFacts(hello())), [], 'a hello without SNI');
  t.same(lookups('sni', facts()), [], 'nothing peeked');
  t.same(lookups('sni', httpFacts('GET / HTTP/1.1\r\nHost: a\r\n\r\n')), [], 'not TLS');
  t.end();
});

t.test('tls-session: the session id, learned (counts only on a table hit)', (t) => {
  const id = 'ab'.repeat(32);
  t.same(lookups('tls-session', tlsFacts(hello({ sessionId: id }))), [want('tls-session', id, true)]);
  t.same(lookups('tls-session', tlsFacts(hello())), [], 'an empty session id');
  t.same(lookups('tls-session', facts()), []);
  t.end();
});

t.test('tls-ticket: key names of the ticket and PSK identities, learned, deduplicated', (t) => {
  t.same(lookups('tls-ticket', tlsFacts(hello({ ticket: ticket(1) }))), [want('tls-ticket', keyName(1), true)], 'from a TLS 1.2 ticket');
  t.same(
    lookups('tls-ticket', tlsFacts(hello({ pskIdentities: [ticket(2), ticket(3)] }))),
    [want('tls-ticket', keyName(2), true), want('tls-ticket', keyName(3), true)],
    'from each PSK identity, in order',
  );
  t.same(
    lookups('tls-ticket', tlsFacts(hello({ ticket: ticket(4), pskIdentities: [ticket(4, 100), ticket(5), ticket(4, 48)] }))),
    [want('tls-ticket', keyName(4), true), want('tls-ticket', keyName(5), true)],
    'one lookup per key name',
  );
  t.same(lookups('tls-ticket', tlsFacts(hello({ ticket: ticket(6, 47), pskIdentities: [ticket(7, 16)] }))), [], 'blobs under 48 bytes have no key name');
  t.same(lookups('tls-ticket', tlsFacts(hello({ ticket: ticket(6, 48) }))), [want('tls-ticket', keyName(6), true)], '48 bytes is enough');
  t.same(lookups('tls-ticket', tlsFacts(hello())), []);
  t.same(lookups('tls-ticket', facts()), []);
  t.end();
});

t.test('tls-ticket from real resumed hellos: the key name of the ticket the client got', (t) => {
  t.ok(tls12.ticket, 'the TLS 1.2 fixture client holds a ticket');
  const name12 = tls12.ticket!.subarray(0, 16).toString('hex');
  t.same(lookups('tls-ticket', tlsFacts(parsedHello(tls12.resumedHello))), [want('tls-ticket', name12, true)], 'TLS 1.2 session_ticket');
  t.ok(tls13.ticket, 'the TLS 1.3 fixture client holds a ticket');
  const name13 = tls13.ticket!.subarray(0, 16).toString('hex');
  t.same(lookups('tls-ticket', tlsFacts(parsedHello(tls13.resumedHello))), [want('tls-ticket', name13, true)], 'TLS 1.3 PSK identity');
  t.equal(ticketKeyName(tls13.ticket!), name13);
  t.end();
});

t.test('http-host', (t) => {
  t.same(lookups('http-host', httpFacts('GET / HTTP/1.1\r\nHost: Shop.Example:8080\r\n\r\n')), [want('http-host', 'shop.example')]);
  t.same(lookups('http-host', httpFacts('GET / HTTP/1.0\r\n\r\n')), [], 'no Host');
  t.end();
});

t.test('http-header:NAME matches the header name case-insensitively', (t) => {
  const f = httpFacts('GET / HTTP/1.1\r\nX-Route: blue\r\nX-Empty: \r\n\r\n');
  t.same(lookups('http-header:X-Route', f), [want('http-header:X-Route', 'blue')]);
  t.same(lookups('http-header:x-route', f), [want('http-header:x-route', 'blue')]);
  t.same(lookups('http-header:X-ROUTE', f), [want('http-header:X-ROUTE', 'blue')], 'the kind keeps the spelling given');
  t.same(lookups('http-header:X-Empty', f), [], 'an empty value is no key');
  t.same(lookups('http-header:X-Other', f), [], 'an absent header');
  t.end();
});

t.test('http-cookie:NAME, with a route when the value ends in .BACKEND', (t) => {
  const cookie = (v: string): Facts => httpFacts(`GET / HTTP/1.1\r\nCookie: JSESSIONID=${v}; other=1\r\n\r\n`);
  t.same(lookups('http-cookie:JSESSIONID', cookie('abc.b')), [want('http-cookie:JSESSIONID', 'abc.b', false, 'b')]);
  const unknown = lookups('http-cookie:JSESSIONID', cookie('abc.zz'));
  t.same(unknown, [want('http-cookie:JSESSIONID', 'abc.zz')], 'not a backend of the pool: names none');
  t.notOk(unknown[0] !== undefined && 'names' in unknown[0], 'no names field at all');
  t.same(lookups('http-cookie:JSESSIONID', cookie('abc')), [want('http-cookie:JSESSIONID', 'abc')], 'no suffix');
  t.same(lookups('http-cookie:JSESSIONID', cookie('x.a.b')), [want('http-cookie:JSESSIONID', 'x.a.b', false, 'b')], 'the last dot counts');
  t.same(lookups('http-cookie:JSESSIONID', cookie('')), [], 'an empty value is no key');
  t.same(lookups('http-cookie:jsessionid', cookie('abc.b')), [], 'cookie names are case-sensitive (RFC 6265 §5.4)');
  t.same(lookups('http-cookie:JSESSIONID', httpFacts('GET / HTTP/1.1\r\n\r\n')), [], 'no Cookie header');
  t.end();
});

t.test('url-param:NAME prefers a path parameter to the query, with routes', (t) => {
  t.same(
    lookups('url-param:jsessionid', httpFacts('GET /app;jsessionid=p1.a?jsessionid=q1.b HTTP/1.1\r\n\r\n')),
    [want('url-param:jsessionid', 'p1.a', false, 'a')],
    'the path parameter wins',
  );
  t.same(lookups('url-param:jsessionid', httpFacts('GET /app?jsessionid=q1.b HTTP/1.1\r\n\r\n')), [want('url-param:jsessionid', 'q1.b', false, 'b')], 'the query when there is no path parameter');
  t.same(lookups('url-param:sid', httpFacts('GET /?sid=42 HTTP/1.1\r\n\r\n')), [want('url-param:sid', '42')]);
  t.same(lookups('url-param:sid', httpFacts('GET /?sid= HTTP/1.1\r\n\r\n')), [], 'an empty value');
  t.same(lookups('url-param:sid', httpFacts('GET /?other=1 HTTP/1.1\r\n\r\n')), []);
  t.end();
});

t.test('xmpp-to', (t) => {
  t.same(lookups('xmpp-to', facts({ protocol: 'xmpp', xmpp: { to: 'im.example.com' } })), [want('xmpp-to', 'im.example.com')]);
  t.same(lookups('xmpp-to', facts({ protocol: 'xmpp', xmpp: {} })), []);
  t.end();
});

t.test('key-module: the module key', (t) => {
  t.same(lookups('key-module', facts(undefined, 'tenant-7')), [want('key-module', 'tenant-7')]);
  t.same(lookups('key-module', facts()), []);
  t.same(lookups('key-module', facts(undefined, '')), [], 'an empty key is none');
  t.end();
});

t.test('the chain keeps its order and skips absent keys; none gives nothing', (t) => {
  const f = tlsFacts(hello({ sni: 's.example', sessionId: 'cd'.repeat(32) }));
  t.same(lookups('tls-session,sni,source', f), [want('tls-session', 'cd'.repeat(32), true), want('sni', 's.example'), want('source', '192.0.2.7/32')]);
  t.same(lookups('http-host,source/24', f), [want('source', '192.0.2.0/24')], 'absent http-host is skipped');
  t.same(lookups('none', f), []);
  const plain = lookups('tls-session,sni', f).find((l) => !l.learned);
  t.same(plain && { kind: plain.kind, value: plain.value }, { kind: 'sni', value: 's.example' }, 'the first plain key skips learned kinds');
  t.end();
});

t.test('chainNeedsPeek', (t) => {
  const needs = (chain: string): boolean => chainNeedsPeek(parseAffinityChain(chain));
  t.equal(needs('source,sni'), false, 'a source key is always present: sni is never reached');
  t.equal(needs('source/24,sni'), false);
  t.equal(needs('sni,source'), true);
  t.equal(needs('none'), false);
  t.equal(needs('source/24/64'), false);
  // A key module's input carries the peeked protocol, sni, http and xmppTo: it needs peeking.
  t.equal(needs('key-module'), true);
  t.equal(needs('key-module,source'), true);
  for (const kind of ['sni', 'tls-session', 'tls-ticket', 'http-host', 'http-header:X', 'http-cookie:X', 'url-param:x', 'xmpp-to']) {
    t.equal(needs(kind), true, kind);
  }
  t.end();
});

t.test('long key values are stored as a fixed-length hash; short ones as they are', (t) => {
  const long = 'x'.repeat(15_000);
  const k = tableKey({ kind: 'http-cookie:sid', value: long });
  t.equal(k, tableKey({ kind: 'http-cookie:sid', value: long }), 'the same value, the same table key (the same placement)');
  t.ok(k.length < 'http-cookie:sid'.length + 1 + 50, `a 15 KB value stores as ${String(k.length)} characters`);
  t.match(storedValue(long), /^#h:[A-Za-z0-9_-]{43}$/, '#h: + SHA-256 base64url');
  t.not(storedValue(long), storedValue(`${long}y`), 'different values, different hashes');
  const edge = 'y'.repeat(MAX_STORED_KEY_BYTES);
  t.equal(storedValue(edge), edge, `${String(MAX_STORED_KEY_BYTES)} bytes: as it is`);
  t.match(storedValue(`${edge}y`), /^#h:/, 'one more byte: hashed');
  t.match(storedValue('é'.repeat(65)), /^#h:/, 'counted in UTF-8 bytes (65 × 2)');
  t.equal(storedValue('é'.repeat(64)), 'é'.repeat(64), '64 × 2 bytes: as it is');
  t.equal(tableKey({ kind: 'sni', value: 'a.example' }), 'sni\u0000a.example', 'short values unchanged');
  // A short value cannot pose as a long one's hash.
  const posing = storedValue(long);
  t.not(storedValue(posing), posing, 'a value that looks like a hash is hashed itself');
  t.end();
});
