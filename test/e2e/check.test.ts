// `tether check` as an operator runs it: "configuration ok" means a start will not fail on a
// file. Missing or mismatched --tls-cert/--tls-key, a --state-file folder that does not exist,
// and bad values all come out in one run, each once, in the words a start would use.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { generateLeaf, generatePki } from '../../fixtures/pki.js';
import { runTetherToExit } from '../helpers/run-tether.js';
import { errorLines, otherLines } from '../helpers/e2e-tools.js';

const IMAP = ['--listen', '127.0.0.1:0', '--backend', 'a=127.0.0.1:1', '--protocol', 'imap', '--affinity', 'login', '--tls', 'starttls'];

t.test('check loads what a start loads: every file problem, each once', async (t) => {
  const dir = t.testdir();
  const pki = await generatePki();
  const other = await generateLeaf(['localhost']);
  const file = (name: string, text: string): string => {
    const f = path.join(dir, name);
    writeFileSync(f, text);
    return f;
  };
  const cert = file('cert.pem', pki.cert);
  const key = file('key.pem', pki.key);
  const otherKey = file('other-key.pem', other.key);
  const missing = path.join(dir, 'missing.pem');
  const noFolder = path.join(dir, 'no-such-folder', 'state.json');

  const ok = await runTetherToExit(['check', ...IMAP, '--tls-cert', cert, '--tls-key', key, '--state-file', path.join(dir, 'state.json')]);
  t.equal(ok.stderr, '');
  t.equal(ok.stdout, 'tether: configuration ok (1 frontend)\n');
  t.equal(ok.code, 0, 'a matching pair and an existing folder pass');

  const bad = await runTetherToExit(['check', ...IMAP, '--tls-cert', missing, '--tls-key', otherKey, '--state-file', noFolder]);
  t.equal(bad.code, 2);
  t.same(errorLines(bad.stderr), [
    `tether: error: cannot use --state-file ${noFolder}: folder ${path.dirname(noFolder)} does not exist`,
    `tether: error: cannot read --tls-cert ${missing}: ENOENT`,
  ], 'the missing cert and the missing folder; the key read fine');
  t.same(otherLines(bad.stderr), []);
  t.equal(bad.stdout, '');

  const mismatch = await runTetherToExit(['check', ...IMAP, '--tls-cert', cert, '--tls-key', otherKey]);
  t.equal(mismatch.code, 2);
  t.match(errorLines(mismatch.stderr), [/^tether: error: --tls-cert\/--tls-key: .*key values mismatch/], 'a key that is not the certificate\'s');
  t.equal(errorLines(mismatch.stderr).length, 1);
  // A start of the same flags fails with that same line.
  const start = await runTetherToExit([...IMAP, '--tls-cert', cert, '--tls-key', otherKey]);
  t.equal(start.code, 2);
  t.same(errorLines(start.stderr), errorLines(mismatch.stderr), 'check says what a start would say');
});

t.test('a config file: bad values, cross-field rules and file problems in one run, each with its path', async (t) => {
  const dir = t.testdir();
  const missing = path.join(dir, 'nope.pem');
  const conf = path.join(dir, 'tether.yaml');
  writeFileSync(conf, `frontends:
  - name: mail
    listen: 127.0.0.1:7001
    backends: [a=127.0.0.1:8001, a=127.0.0.1:8002]
    protocol: imap
    affinity: login
    tls: implicit
    tls-cert: ${missing}
    tls-key: ${missing}
    retries: 99
  - name: mail
    listen: 127.0.0.1:7002
    backends: [b=127.0.0.1:8003]
`);
  const r = await runTetherToExit(['check', '--config', conf]);
  t.equal(r.code, 2);
  t.same(errorLines(r.stderr), [
    `tether: error: ${conf}: frontends[0].retries: expected a whole number from 0 to 16, got "99"`,
    `tether: error: ${conf}: frontends[0].backends[1]: duplicate backend name "a"; give each a NAME= prefix`,
    `tether: error: ${conf}: frontends[1].name: duplicate frontend name "mail"`,
    `tether: error: ${conf}: frontends[0].tls-cert: cannot read --tls-cert ${missing}: ENOENT`,
    `tether: error: ${conf}: frontends[0].tls-key: cannot read --tls-key ${missing}: ENOENT`,
  ]);
  t.same(otherLines(r.stderr), []);
});
