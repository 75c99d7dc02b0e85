// lib/cli/systemd-unit.ts: which flags reach ExecStart (runFlagsFrom, pure), and the unit and
// warnings built from a validated configuration (buildUnit; it stats files to warn).
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { buildUnit, runFlagsFrom } from '../../lib/cli/systemd-unit.js';
import { frontendWithDefaults } from '../../lib/options/build.js';
import type { Config } from '../../lib/config/types.js';
import { TetherError } from '../../lib/errors.js';

t.test('runFlagsFrom: the run flags as written, paths absolute, systemd-unit\'s own options out', (t) => {
  const cwd = '/srv/mail';
  t.same(
    runFlagsFrom(['systemd-unit', '--listen', '0.0.0.0:993', '--backend', 'a=10.0.0.1:993', '--user', 'tether', '--socket', '--exec', '/usr/bin/tether'], cwd),
    ['--listen', '0.0.0.0:993', '--backend', 'a=10.0.0.1:993'],
  );
  t.same(runFlagsFrom(['systemd-unit', '--user=tether', '--exec=/x', '--listen=0.0.0.0:993'], cwd), ['--listen=0.0.0.0:993'], '--flag=value forms');
  t.same(
    runFlagsFrom(['systemd-unit', '--tls-cert', 'certs/c.pem', '--tls-key=../k.pem', '--key-module', '/abs/k.mjs', '--user-map', 'u.txt', '--backend-ca', 'ca.pem', '--config', 't.yaml'], cwd),
    ['--tls-cert', '/srv/mail/certs/c.pem', '--tls-key=/srv/k.pem', '--key-module', '/abs/k.mjs', '--user-map', '/srv/mail/u.txt', '--backend-ca', '/srv/mail/ca.pem', '--config', '/srv/mail/t.yaml'],
    'file paths resolved against the working directory',
  );
  t.same(runFlagsFrom(['systemd-unit', '--name', './edge', '--require-tls', '--log-level', 'debug'], cwd), ['--name', './edge', '--require-tls', '--log-level', 'debug'], 'other values untouched; switches kept');
  t.same(
    runFlagsFrom(['--name', 'systemd-unit', '--grace', '5s', 'systemd-unit', '--listen', '127.0.0.1:1'], cwd),
    ['--name', 'systemd-unit', '--grace', '5s', '--listen', '127.0.0.1:1'],
    'flags before the subcommand count; a value spelled like the subcommand is a value',
  );
  t.same(runFlagsFrom(['systemd-unit', '--name', '--user'], cwd), ['--name', '--user'], 'a value that looks like a flag is still the value');
  t.end();
});

const config = (over: Parameters<typeof frontendWithDefaults>[0] = {}, graceMs = 30_000): Config => ({
  logLevel: 'info',
  graceMs,
  frontends: [frontendWithDefaults({ listen: [{ host: '0.0.0.0', portLow: 993, portHigh: 993 }], backends: [{ name: 'a', host: '10.0.0.1', port: 993, weight: 1, backup: false }], ...over })],
});
const LAUNCHER = ['/usr/bin/node', '/opt/tether/bin/tether'];
const execStart = (text: string): string | undefined => /^ExecStart=(.*)$/m.exec(text)?.[1];

t.test('buildUnit: the service runs the launcher with the flags', (t) => {
  const out = buildUnit(config(), {}, ['--listen', '0.0.0.0:993', '--backend', 'a=10.0.0.1:993'], LAUNCHER, '/srv');
  t.equal(execStart(out.text), '/usr/bin/node /opt/tether/bin/tether --listen 0.0.0.0:993 --backend a=10.0.0.1:993');
  t.match(out.text, /^Description=tether Layer-4 proxy \(default\)$/m);
  t.match(out.text, /^DynamicUser=yes$/m);
  t.same(out.warnings, [], 'nothing to warn about');
  const named = buildUnit(config(), { user: 'mailproxy' }, [], ['/usr/local/bin/tether'], '/srv');
  t.match(named.text, /^User=mailproxy$/m);
  t.equal(execStart(named.text), '/usr/local/bin/tether');
  t.end();
});

t.test('buildUnit: options systemd cannot take are usage errors, all at once', (t) => {
  const err = (f: () => unknown): TetherError | undefined => {
    try {
      f();
    } catch (e) {
      return e instanceof TetherError ? e : undefined;
    }
    return undefined;
  };
  const e = err(() => buildUnit(config(), { user: 'two words', exec: 'tether' }, [], ['tether'], '/srv'));
  t.equal(e?.code, 'TETHER_ERR_USAGE');
  t.equal(e?.message, `--user: expected a user name (letters, digits, '_', '-') or a UID, got "two words"\n--exec: must be an absolute path, got "tether"`);
  const s = err(() => buildUnit(config({ listen: [{ host: 'localhost', portLow: 993, portHigh: 993 }, { host: '::1', portLow: 0, portHigh: 0 }] }), { socket: true }, [], LAUNCHER, '/srv'));
  t.equal(s?.message, '--socket: cannot listen on localhost:993: systemd binds IP addresses only, not host names\n--socket: cannot listen on [::1]:0: systemd needs a fixed port, not 0');
  t.end();
});

t.test('buildUnit --socket: every port of every frontend; the name when there is one frontend', (t) => {
  const one = buildUnit(config({ name: 'imaps', listen: [{ host: '0.0.0.0', portLow: 993, portHigh: 994 }] }), { socket: true }, [], LAUNCHER, '/srv');
  t.same(one.text.match(/^(ListenStream|FileDescriptorName)=.*$/gm), ['ListenStream=0.0.0.0:993', 'ListenStream=0.0.0.0:994', 'FileDescriptorName=imaps']);
  const c = config();
  const two: Config = { ...c, frontends: [...c.frontends, frontendWithDefaults({ name: 'pop3s', listen: [{ host: '::', portLow: 995, portHigh: 995 }], backends: [...c.frontends[0]!.backends] })] };
  t.same(buildUnit(two, { socket: true }, [], LAUNCHER, '/srv').text.match(/^(ListenStream|FileDescriptorName)=.*$/gm), ['ListenStream=0.0.0.0:993', 'ListenStream=[::]:995'], 'two frontends: matched by address');
  t.end();
});

t.test('buildUnit: warnings about files the service will not be able to read', (t) => {
  const dir = t.testdir({ 'open.pem': 'x', 'secret.pem': 'x' });
  chmodSync(path.join(dir, 'open.pem'), 0o644);
  chmodSync(path.join(dir, 'secret.pem'), 0o600);
  const mail = (tlsCert: string, tlsKey: string): Parameters<typeof frontendWithDefaults>[0] => ({ protocol: 'imap', mail: { tls: 'implicit', tlsCert, tlsKey } });
  const abs = (f: string): string => path.join(dir, f);
  // Fixtures live wherever the checkout is (maybe under /tmp or /home): hide no folder here.
  const out = buildUnit(config(mail(abs('open.pem'), abs('secret.pem'))), {}, [], LAUNCHER, '/srv', []);
  t.same(out.warnings, [`${abs('secret.pem')} is not readable by other users, and DynamicUser=yes runs tether as a fresh one: use --user NAME with a user that can read it, or loosen its mode`]);
  t.same(buildUnit(config(mail(abs('open.pem'), abs('secret.pem'))), { user: 'tether' }, [], LAUNCHER, '/srv', []).warnings, [], 'a named user may well read it');
  t.same(buildUnit(config(mail(abs('open.pem'), abs('gone.pem'))), {}, [], LAUNCHER, '/srv', []).warnings, [`${abs('gone.pem')} does not exist (yet): tether reads it at start`]);
  const hidden = buildUnit(config(), { user: 'tether' }, [], ['/root/.nvm/node', '/home/me/tether/bin/tether'], '/srv');
  t.same(hidden.warnings, [
    '/root/.nvm/node is under /root, which ProtectHome=yes hides from the service: move it (e.g. to /opt or /etc/tether), or edit the unit',
    '/home/me/tether/bin/tether is under /home, which ProtectHome=yes hides from the service: move it (e.g. to /opt or /etc/tether), or edit the unit',
  ]);
  t.end();
});

t.test('buildUnit: a config file with relative paths gets the working directory they were checked in', (t) => {
  const dir = t.testdir({ 'c.pem': 'x' });
  writeFileSync(path.join(dir, 'tether.yaml'), '');
  chmodSync(path.join(dir, 'c.pem'), 0o644);
  chmodSync(path.join(dir, 'tether.yaml'), 0o644);
  const cfg = config({ protocol: 'imap', mail: { tls: 'implicit', tlsCert: 'c.pem', tlsKey: 'c.pem' } });
  const out = buildUnit(cfg, { configFile: path.join(dir, 'tether.yaml') }, ['--config', path.join(dir, 'tether.yaml')], LAUNCHER, dir, []);
  t.match(out.text, new RegExp(`^WorkingDirectory=${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
  t.same(out.warnings, []);
  t.notMatch(buildUnit(cfg, {}, [], LAUNCHER, dir).text, /^WorkingDirectory=/m, 'flags were made absolute: no working directory needed');
  t.end();
});
