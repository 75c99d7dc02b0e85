// `tether systemd-unit` through the real binary: the same validation as `tether` (same lines,
// exit 2), the unit printed for real flags, and systemd's own judgement of it where systemd
// is installed: `systemd-analyze verify` must accept both units without a word, and systemd's
// unit loader (`systemd --test`, which prints each ExecStart as it parsed it) must read back
// exactly the argv tether meant, awkward characters included.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HIDDEN_DIRS } from '../../lib/cli/systemd-unit.js';
import t from 'tap';
import { BIN, runTetherToExit } from '../helpers/run-tether.js';
import { errorLines } from '../helpers/e2e-tools.js';
import { hasCommand } from '../helpers/systemd.js';
import { needTool } from '../helpers/tools.js';

const SYSTEMD = '/lib/systemd/systemd';

t.test('systemd-unit validates like tether: the same problem lines, exit 2, nothing on stdout', async (t) => {
  const cases: readonly (readonly string[])[] = [
    [],
    ['--listen', '127.0.0.1:99999', '--backend', 'a=127.0.0.1:1'],
    ['--listen', '127.0.0.1:0', '--backend', 'a=127.0.0.1:1', '--backend', 'a=127.0.0.1:2'],
    ['--listen', '127.0.0.1:0', '--backend', 'a=127.0.0.1:1', '--affinity', 'none,source'],
    ['--config', 'tether.yaml', '--listen', '127.0.0.1:0'],
    ['--config', path.join(os.tmpdir(), `tether-no-such-${String(process.pid)}.yaml`)],
  ];
  for (const args of cases) {
    const [run, unit] = await Promise.all([runTetherToExit(args), runTetherToExit(['systemd-unit', ...args])]);
    t.equal(unit.code, 2, `${args.join(' ') || '(no flags)'}: exit 2`);
    t.equal(run.code, 2);
    t.same(errorLines(unit.stderr), errorLines(run.stderr), 'the same problem lines as tether itself');
    t.ok(errorLines(unit.stderr).length > 0, '(at least one)');
    t.equal(unit.stdout, '', 'no unit printed');
  }
});

t.test('the printed unit runs this node and bin/tether with the same flags', async (t) => {
  const r = await runTetherToExit(['systemd-unit', '--listen', '0.0.0.0:993', '--backend', 'a=10.0.0.1:993', '--affinity', 'source/24', '--grace', '1m', '--user', 'tether']);
  t.equal(r.code, 0);
  // No warning but about this checkout's own place, when it is somewhere the unit hides.
  const hiddenHere = [process.execPath, BIN].flatMap((p) => {
    const h = HIDDEN_DIRS.find((d) => p.startsWith(`${d.dir}/`));
    return h ? [`tether: warning: ${p} is under ${h.dir}, which ${h.by} hides from the service: move it (e.g. to /opt or /etc/tether), or edit the unit`] : [];
  });
  t.same(r.stderr.split('\n').filter((l) => l !== ''), hiddenHere, 'no warnings (but where this checkout lies)');
  t.match(r.stdout, new RegExp(`^ExecStart=${process.execPath} ${BIN} --listen 0\\.0\\.0\\.0:993 --backend a=10\\.0\\.0\\.1:993 --affinity source/24 --grace 1m$`, 'm'));
  t.match(r.stdout, /^User=tether$/m);
  t.match(r.stdout, /^TimeoutStopSec=75s$/m, '--grace 1m leaves 75 s to stop');
  t.match(r.stdout, /^Type=notify$/m);
  const s = await runTetherToExit(['systemd-unit', '--socket', '--listen', '0.0.0.0:993', '--listen', '[::]:143', '--backend', 'a=10.0.0.1']);
  t.equal(s.code, 0);
  t.same(s.stdout.match(/^(ListenStream|FileDescriptorName)=.*$/gm), ['ListenStream=0.0.0.0:993', 'ListenStream=[::]:143', 'FileDescriptorName=default']);
  const bad = await runTetherToExit(['systemd-unit', '--socket', '--listen', 'localhost:993', '--backend', 'a=10.0.0.1:1', '--exec', 'tether']);
  t.equal(bad.code, 2, 'what systemd cannot take is a usage error');
  t.same(errorLines(bad.stderr), [
    'tether: error: --exec: must be an absolute path, got "tether"',
    'tether: error: --socket: cannot listen on localhost:993: systemd binds IP addresses only, not host names',
  ]);
});

/** The flags of a run whose ExecStart needs every kind of quoting systemd has. */
function awkwardFlags(dir: string): string[] {
  return [
    '--listen', '127.0.0.1:1143', '--backend', 'm1=127.0.0.1:143', '--protocol', 'imap', '--affinity', 'login',
    // `%` would be a specifier and `$` a variable; the quote and backslash need escapes.
    '--user-lookup', 'http://127.0.0.1:9/who?a=%20&b=$x',
    '--key-module', path.join(dir, `odd dir/it's "we\\ird".mjs`),
    '--name', 'edge',
  ];
}

/** Reads the `Command Line:` of `systemd --test`'s dump (shell-like quoting with C escapes). */
function dumpArgv(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    if (line[i] === ' ') {
      i++;
      continue;
    }
    let w = '';
    if (line[i] === '"') {
      i++;
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\') {
          const c = line[i + 1] ?? '';
          if (/[0-7]/.test(c)) {
            w += String.fromCharCode(parseInt(line.slice(i + 1, i + 4), 8));
            i += 4;
            continue;
          }
          w += ({ n: '\n', t: '\t', r: '\r', a: '\u0007', b: '\b', f: '\f', v: '\v' } as Record<string, string>)[c] ?? c;
          i += 2;
          continue;
        }
        w += line[i++] ?? '';
      }
      i++;
    } else {
      while (i < line.length && line[i] !== ' ') w += line[i++] ?? '';
    }
    words.push(w);
  }
  return words;
}

t.test('systemd accepts the units and reads ExecStart back exactly', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tether-unit-'));
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  chmodSync(dir, 0o755);
  const flags = awkwardFlags(dir);
  const service = await runTetherToExit(['systemd-unit', '--user', 'tether', ...flags]);
  t.equal(service.code, 0, 'printed');
  const socket = await runTetherToExit(['systemd-unit', '--socket', ...flags]);
  t.equal(socket.code, 0, 'printed');
  const name = `tether-e2e-${String(process.pid)}`;
  writeFileSync(path.join(dir, `${name}.service`), service.stdout, { mode: 0o644 });
  writeFileSync(path.join(dir, `${name}.socket`), socket.stdout, { mode: 0o644 });

  await t.test('systemd-analyze verify', { skip: needTool(hasCommand('systemd-analyze') ? false : 'systemd-analyze is not installed: the units were checked by the unit tests only') }, (t) => {
    const v = spawnSync('systemd-analyze', ['verify', path.join(dir, `${name}.service`), path.join(dir, `${name}.socket`)], { encoding: 'utf8', timeout: 60_000 });
    t.equal(v.status, 0, 'verify passes');
    t.equal(v.stderr, '', 'without a single warning');
    t.end();
  });

  // systemd refuses --test as root; it runs as nobody, who must be able to read the units.
  const asRoot = process.getuid?.() === 0;
  const oracle = needTool(
    !hasCommand(SYSTEMD, ['--version'])
      ? `${SYSTEMD} is not installed`
      : asRoot && !hasCommand('setpriv', ['--version'])
        ? 'running as root without setpriv to drop to nobody for `systemd --test`'
        : false,
  );
  await t.test('systemd --test reads ExecStart back as the argv tether meant', { skip: oracle }, (t) => {
    const cmd = [SYSTEMD, '--test', '--system', `--unit=${name}.service`, '--no-pager'];
    const argv = asRoot ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...cmd] : cmd;
    const r = spawnSync(argv[0]!, argv.slice(1), {
      encoding: 'utf8',
      timeout: 60_000,
      maxBuffer: 64 * 1024 * 1024,
      // The trailing ':' keeps systemd's own unit directories (the unit needs their targets).
      env: { PATH: process.env['PATH'], HOME: os.tmpdir(), SYSTEMD_UNIT_PATH: `${dir}:`, SYSTEMD_LOG_TARGET: 'console' },
    });
    t.equal(r.status, 0, `systemd --test ran (${r.stderr.split('\n').slice(-3).join(' ')})`);
    const line = r.stdout.split('\n').find((l) => l.includes('Command Line: ') && l.includes(BIN));
    t.ok(line, 'our ExecStart is in the dump');
    // The dump shows arguments before $$ → $ (that happens when the command runs).
    const want = [process.execPath, BIN, ...flags].map((w) => w.replace(/\$/g, '$$$$'));
    t.same(dumpArgv(line?.split('Command Line: ')[1] ?? ''), want, 'word for word');
    t.notMatch(r.stdout + r.stderr, new RegExp(`${name}\\.service:\\d+:`), 'no complaint about any line of the unit');
    t.end();
  });
});
