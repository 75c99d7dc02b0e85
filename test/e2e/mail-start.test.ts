// Start-up failures of mail frontends: unreadable TLS files or user map exit 2 with one line.
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import t from 'tap';
import { runTetherToExit } from '../helpers/run-tether.js';

const base = ['--listen', '127.0.0.1:0', '--protocol', 'imap', '--affinity', 'login', '--backend', 'a=127.0.0.1:9'];

t.test('a missing --tls-cert is a clear error, not a crash', async (t) => {
  const dir = t.testdir();
  const r = await runTetherToExit([...base, '--tls', 'implicit', '--tls-cert', path.join(dir, 'nope.pem'), '--tls-key', path.join(dir, 'nope.key')]);
  t.equal(r.code, 2);
  t.match(r.stderr, /^tether: error: cannot read --tls-cert .*nope\.pem: ENOENT\n$/);
});

t.test('a cert file that is not PEM is a clear error', async (t) => {
  const dir = t.testdir();
  writeFileSync(path.join(dir, 'bad.pem'), 'not a certificate\n');
  const r = await runTetherToExit([...base, '--tls', 'starttls', '--tls-cert', path.join(dir, 'bad.pem'), '--tls-key', path.join(dir, 'bad.pem')]);
  t.equal(r.code, 2);
  t.match(r.stderr, /^tether: error: --tls-cert\/--tls-key: /);
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

t.test('a missing --user-map is a clear error', async (t) => {
  const r = await runTetherToExit([...base, '--user-map', path.join(t.testdir(), 'users.map')]);
  t.equal(r.code, 2);
  t.match(r.stderr, /^tether: error: cannot read --user-map .*users\.map: ENOENT\n$/);
});
