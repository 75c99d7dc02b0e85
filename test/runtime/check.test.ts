// checkRuntime on real files in a tap testdir, with real certificates (fixtures/pki.ts): every
// file a start loads that is missing, unreadable or wrong is one issue with the start's own
// message, every problem in one pass, a file shared by two frontends once.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { frontendWithDefaults } from '../../lib/options/build.js';
import type { FrontendDraft } from '../../lib/options/table.js';
import type { Config, FrontendConfig } from '../../lib/config/types.js';
import { validateConfig } from '../../lib/config/validate.js';
import type { ConfigIssue } from '../../lib/errors.js';
import { realClock, realRng } from '../../lib/clock.js';
import { createLogger } from '../../lib/log.js';
import { checkRuntime } from '../../lib/runtime/check.js';
import { buildFrontend } from '../../lib/runtime/frontend.js';
import { generateLeaf, generatePki } from '../../fixtures/pki.js';

/** OpenSSL 3's words (Node 20) for a private key that is not the certificate's. */
const KEY_MISMATCH = 'error:05800074:x509 certificate routines::key values mismatch';

/** The files of one test folder: a good set, and wrong ones to swap in. */
interface Files {
  readonly dir: string;
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
  readonly otherKey: string;
  readonly module: string;
  readonly throwingModule: string;
  readonly userMap: string;
  readonly token: string;
  readonly emptyToken: string;
  readonly state: string;
  /** A name in `dir` that does not exist. */
  readonly missing: (name: string) => string;
}

async function writeFiles(dir: string): Promise<Files> {
  const pki = await generatePki();
  // A second keypair from the same CA: a valid key, just not the certificate's.
  const other = await generateLeaf(['other.test']);
  const file = (name: string, text: string): string => {
    const f = path.join(dir, name);
    writeFileSync(f, text);
    return f;
  };
  return {
    dir,
    cert: file('cert.pem', pki.cert),
    key: file('key.pem', pki.key),
    ca: file('ca.pem', pki.ca),
    otherKey: file('other-key.pem', other.key),
    module: file('key.mjs', 'export function key(input) { return input.source; }\n'),
    throwingModule: file('throws.mjs', "throw new Error('module refuses to load');\n"),
    userMap: file('users.map', 'alice a\nbob b\n'),
    token: file('token', 'tok3n\n'),
    emptyToken: file('empty-token', '  \n'),
    state: path.join(dir, 'state.json'),
    missing: (name) => path.join(dir, name),
  };
}

/** An imap frontend that reads every kind of file: key module, TLS pair, backend CA, user map. */
function mailFrontend(f: Files, i: number, d: FrontendDraft = {}): FrontendConfig {
  return frontendWithDefaults({
    name: `mail${String(i)}`,
    listen: [{ host: '127.0.0.1', portLow: 7000 + i, portHigh: 7000 + i }],
    backends: [{ name: 'a', host: '127.0.0.1', port: 143, weight: 1, backup: false }],
    affinity: [{ kind: 'key-module' }, { kind: 'login' }],
    keyModule: f.module,
    protocol: 'imap',
    ...d,
    mail: { tls: 'starttls', tlsCert: f.cert, tlsKey: f.key, backendTls: 'starttls', backendCa: f.ca, userMap: f.userMap, ...d.mail },
  });
}

function configOf(f: Files, frontends: readonly FrontendConfig[], over: Partial<Config> = {}): Config {
  return {
    logLevel: 'info',
    graceMs: 1_000,
    stateFile: f.state,
    admin: { host: '127.0.0.1', port: 0, tokenFile: f.token },
    frontends,
    ...over,
  };
}

interface Case {
  readonly name: string;
  readonly config: (f: Files) => Config;
  readonly issues: (f: Files) => ConfigIssue[];
}

const CASES: readonly Case[] = [
  {
    name: 'every file good',
    config: (f) => configOf(f, [mailFrontend(f, 0)]),
    issues: () => [],
  },
  {
    name: 'missing --tls-cert',
    config: (f) => configOf(f, [mailFrontend(f, 0, { mail: { tlsCert: f.missing('nocert.pem') } })]),
    issues: (f) => [{ path: 'frontends[0].tls-cert', message: `cannot read --tls-cert ${f.missing('nocert.pem')}: ENOENT` }],
  },
  {
    name: 'missing --tls-key',
    config: (f) => configOf(f, [mailFrontend(f, 0, { mail: { tlsKey: f.missing('nokey.pem') } })]),
    issues: (f) => [{ path: 'frontends[0].tls-key', message: `cannot read --tls-key ${f.missing('nokey.pem')}: ENOENT` }],
  },
  {
    name: 'a key from another keypair (the mismatch is on tls-key)',
    config: (f) => configOf(f, [mailFrontend(f, 0, { mail: { tlsKey: f.otherKey } })]),
    issues: () => [{ path: 'frontends[0].tls-key', message: `--tls-cert/--tls-key: ${KEY_MISMATCH}` }],
  },
  {
    name: 'missing --backend-ca',
    config: (f) => configOf(f, [mailFrontend(f, 0, { mail: { backendCa: f.missing('noca.pem') } })]),
    issues: (f) => [{ path: 'frontends[0].backend-ca', message: `cannot read --backend-ca ${f.missing('noca.pem')}: ENOENT` }],
  },
  {
    name: 'unreadable --backend-ca (a folder)',
    config: (f) => configOf(f, [mailFrontend(f, 0, { mail: { backendCa: f.dir } })]),
    issues: (f) => [{ path: 'frontends[0].backend-ca', message: `cannot read --backend-ca ${f.dir}: is a directory, not a regular file` }],
  },
  {
    name: 'a key module that throws while loading',
    config: (f) => configOf(f, [mailFrontend(f, 0, { keyModule: f.throwingModule })]),
    issues: (f) => [{ path: 'frontends[0].key-module', message: `cannot load key module ${f.throwingModule}: module refuses to load` }],
  },
  {
    name: 'a missing key module',
    config: (f) => configOf(f, [mailFrontend(f, 0, { keyModule: f.missing('nomodule.mjs') })]),
    issues: (f) => [{ path: 'frontends[0].key-module', message: `cannot load key module ${f.missing('nomodule.mjs')}: ENOENT` }],
  },
  {
    name: 'a missing --user-map',
    config: (f) => configOf(f, [mailFrontend(f, 0, { mail: { userMap: f.missing('nousers.map') } })]),
    issues: (f) => [{ path: 'frontends[0].user-map', message: `cannot read --user-map ${f.missing('nousers.map')}: ENOENT` }],
  },
  {
    name: 'a state file in a folder that does not exist',
    config: (f) => configOf(f, [mailFrontend(f, 0)], { stateFile: path.join(f.missing('nofolder'), 'state.json') }),
    issues: (f) => [{ path: 'state-file', message: `cannot use --state-file ${path.join(f.missing('nofolder'), 'state.json')}: folder ${f.missing('nofolder')} does not exist` }],
  },
  {
    name: 'an empty admin token file',
    config: (f) => configOf(f, [mailFrontend(f, 0)], { admin: { host: '127.0.0.1', port: 0, tokenFile: f.emptyToken } }),
    issues: (f) => [{ path: 'admin-token-file', message: `--admin-token-file ${f.emptyToken}: expected one token with no spaces` }],
  },
  {
    name: 'two frontends sharing a missing certificate: one issue, at the first',
    config: (f) => {
      const mail = { tlsCert: f.missing('shared.pem') };
      return configOf(f, [mailFrontend(f, 0, { mail }), mailFrontend(f, 1, { mail })]);
    },
    issues: (f) => [{ path: 'frontends[0].tls-cert', message: `cannot read --tls-cert ${f.missing('shared.pem')}: ENOENT` }],
  },
  {
    name: 'several problems at once: every one, in the order a start meets them',
    config: (f) =>
      configOf(
        f,
        [
          mailFrontend(f, 0, { keyModule: f.throwingModule, mail: { tlsKey: f.missing('nokey.pem'), userMap: f.missing('nousers.map') } }),
          mailFrontend(f, 1, { mail: { tlsKey: f.otherKey, backendCa: f.missing('noca.pem') } }),
        ],
        { stateFile: path.join(f.missing('nofolder'), 'state.json'), admin: { host: '127.0.0.1', port: 0, tokenFile: f.missing('notoken') } },
      ),
    issues: (f) => [
      { path: 'state-file', message: `cannot use --state-file ${path.join(f.missing('nofolder'), 'state.json')}: folder ${f.missing('nofolder')} does not exist` },
      { path: 'admin-token-file', message: `cannot read --admin-token-file ${f.missing('notoken')}: ENOENT` },
      { path: 'frontends[0].key-module', message: `cannot load key module ${f.throwingModule}: module refuses to load` },
      { path: 'frontends[0].tls-key', message: `cannot read --tls-key ${f.missing('nokey.pem')}: ENOENT` },
      { path: 'frontends[0].user-map', message: `cannot read --user-map ${f.missing('nousers.map')}: ENOENT` },
      { path: 'frontends[1].tls-key', message: `--tls-cert/--tls-key: ${KEY_MISMATCH}` },
      { path: 'frontends[1].backend-ca', message: `cannot read --backend-ca ${f.missing('noca.pem')}: ENOENT` },
    ],
  },
];

for (const c of CASES) {
  t.test(c.name, async (t) => {
    const f = await writeFiles(t.testdir());
    const config = c.config(f);
    // The config itself is valid: every issue below comes from loading its files.
    t.same(validateConfig(config), [], 'validateConfig finds nothing');
    const issues = c.issues(f);
    t.same(await checkRuntime(config), issues);
    // The same words as a start: building frontends[0] as a start does stops at its first issue.
    const first = issues.find((i) => i.path.startsWith('frontends[0].'));
    const fe = config.frontends[0];
    if (fe === undefined) throw new Error('no frontend');
    const deps = { logger: createLogger('silent', { write: () => undefined }), clock: realClock, rng: realRng };
    const built = buildFrontend(fe, deps, { maxConns: undefined, opens: [] });
    if (first === undefined) await (await built).keyModule?.close();
    else await t.rejects(built, { code: 'TETHER_ERR_CONFIG', message: first.message }, 'a start fails with the same message');
  });
}

t.test('an auto frontend reads no mail file, as at start', async (t) => {
  const f = await writeFiles(t.testdir());
  // Mail fields on an auto frontend are validate.ts's to refuse; a start never reads them.
  const fe = mailFrontend(f, 0, { protocol: 'auto', affinity: [{ kind: 'key-module' }], mail: { tlsCert: f.missing('nocert.pem'), backendCa: f.missing('noca.pem'), userMap: f.missing('nousers.map') } });
  t.same(await checkRuntime(configOf(f, [fe])), []);
});

t.test('a config with no state file, no admin and no files to read has no issues', async (t) => {
  const fe = frontendWithDefaults({
    listen: [{ host: '127.0.0.1', portLow: 7000, portHigh: 7000 }],
    backends: [{ name: 'a', host: '127.0.0.1', port: 7001, weight: 1, backup: false }],
  });
  t.same(await checkRuntime({ logLevel: 'info', graceMs: 1_000, frontends: [fe] }), []);
});

t.test('the state file may be present; a folder where it should be is refused', async (t) => {
  const dir = t.testdir();
  const f = await writeFiles(dir);
  const folder = path.join(dir, 'state-is-a-folder');
  mkdirSync(folder);
  writeFileSync(f.state, '');
  t.same(await checkRuntime(configOf(f, [mailFrontend(f, 0)])), [], 'an existing state file is fine');
  t.same(await checkRuntime(configOf(f, [mailFrontend(f, 0)], { stateFile: folder })), [{ path: 'state-file', message: `cannot use --state-file ${folder}: not a regular file` }]);
});
