// lib/accept/acl.ts: allow/deny CIDRs, deny wins, IPv4-mapped clients match IPv4 rules.
import t from 'tap';
import { compileAcl } from '../../lib/accept/acl.js';
import { parseCidr } from '../helpers/parse.js';

t.test('no rules admit everyone, even without an address', (t) => {
  const acl = compileAcl({ allow: [], deny: [] });
  t.equal(acl.admits('192.0.2.7'), true);
  t.equal(acl.admits(''), true);
  t.end();
});

t.test('allow lists admit only their networks; deny wins', (t) => {
  const acl = compileAcl({ allow: ['10.0.0.0/8', '2001:db8::/32'], deny: ['10.1.0.0/16'] });
  t.equal(acl.admits('10.2.3.4'), true);
  t.equal(acl.admits('10.1.2.3'), false, 'denied inside an allowed network');
  t.equal(acl.admits('192.0.2.7'), false, 'outside every allowed network');
  t.equal(acl.admits('2001:db8::1'), true);
  t.equal(acl.admits('2001:db9::1'), false);
  t.equal(acl.admits('::ffff:10.2.3.4'), true, 'IPv4-mapped client matches the IPv4 rule');
  t.equal(acl.admits('::ffff:10.1.2.3'), false);
  t.equal(acl.admits('not-an-address'), false, 'no usable address is refused when rules exist');
  t.end();
});

t.test('deny-only lists refuse their networks and admit the rest', (t) => {
  const acl = compileAcl({ allow: [], deny: ['127.0.0.2/32', '::ffff:192.0.2.0/120'] });
  t.equal(acl.admits('127.0.0.1'), true);
  t.equal(acl.admits('127.0.0.2'), false);
  t.equal(acl.admits('192.0.2.9'), false, 'a v4-mapped deny rule names the IPv4 network');
  t.end();
});

t.test('parseCidr normalises and refuses junk', (t) => {
  t.equal(parseCidr('10.0.0.0/8'), '10.0.0.0/8');
  t.equal(parseCidr('192.0.2.7'), '192.0.2.7/32');
  t.equal(parseCidr('2001:db8::/32'), '2001:db8::/32');
  t.equal(parseCidr('::1'), '::1/128');
  t.throws(() => parseCidr('10.0.0.0/33'), { message: 'expected an address or CIDR such as 10.0.0.0/8 or 2001:db8::/32, got "10.0.0.0/33"' });
  t.throws(() => parseCidr('example.com'), { message: 'expected an address or CIDR such as 10.0.0.0/8 or 2001:db8::/32, got "example.com"' });
  t.end();
});
