// lib/systemd/unit.ts: ExecStart= quoting (checked against a reader written from
// systemd.syntax(7) and systemd.service(5), for any argument fast-check thinks of; the e2e test
// checks it against systemd itself), and the content of the .service and .socket units. Pure.
import fc from 'fast-check';
import t from 'tap';
import { execLine, execPathProblem, isUnitUserName, listenStreamProblem, listenStreamValue, quoteExecWord, serviceUnit, socketUnit } from '../../lib/systemd/unit.js';

const C_ESCAPES: Readonly<Record<string, string>> = { n: '\n', t: '\t', '\\': '\\', '"': '"', "'": "'", a: '\u0007', b: '\b', f: '\f', r: '\r', v: '\v', s: ' ' };

/**
 * How systemd reads an ExecStart= value into argv: specifiers first (only `%%` may appear
 * here), then words split at unquoted white space with "…"/'…' quoting and C escapes, then
 * `$$` → `$` in each word. Throws on anything else, so the test fails on it.
 */
function systemdArgv(value: string): string[] {
  const s = value.replace(/%(.?)/gs, (_m, c: string) => {
    if (c !== '%') throw new Error(`specifier %${c} in ${value}`);
    return '%';
  });
  const words: string[] = [];
  let cur: string | undefined;
  let i = 0;
  const escape = (): string => {
    const c = s[i + 1];
    if (c === 'x') {
      const hex = s.slice(i + 2, i + 4);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new Error(`bad \\x in ${value}`);
      i += 4;
      return String.fromCharCode(parseInt(hex, 16));
    }
    const e = c === undefined ? undefined : C_ESCAPES[c];
    if (e === undefined) throw new Error(`unknown escape \\${String(c)} in ${value}`);
    i += 2;
    return e;
  };
  while (i < s.length) {
    const c = s[i] ?? '';
    if (/\s/.test(c)) {
      if (cur !== undefined) words.push(cur);
      cur = undefined;
      i++;
      continue;
    }
    cur ??= '';
    if (c === '"' || c === "'") {
      i++;
      while (s[i] !== c) {
        if (i >= s.length) throw new Error(`unterminated quote in ${value}`);
        if (s[i] === '\\') cur += escape();
        else cur += s[i++] ?? '';
      }
      i++;
      continue;
    }
    if (c === '\\') {
      cur += escape();
      continue;
    }
    cur += c;
    i++;
  }
  if (cur !== undefined) words.push(cur);
  return words.map((w) => w.replace(/\$\$/g, '$'));
}

t.test('quoteExecWord: plain words stay plain, % and $ are doubled', (t) => {
  const cases: [string, string][] = [
    ['--listen', '--listen'],
    ['0.0.0.0:993', '0.0.0.0:993'],
    ['a=10.0.0.1:993,weight=2', 'a=10.0.0.1:993,weight=2'],
    ['/opt/tether/bin/tether', '/opt/tether/bin/tether'],
    ['50%', '50%%'],
    ['$HOME', '$$HOME'],
    ['${X}', '$${X}'],
    ['', '""'],
    ['two words', '"two words"'],
    ['say "hi"', '"say \\"hi\\""'],
    ["it's", '"it\'s"'],
    ['back\\slash', '"back\\\\slash"'],
    [';', '";"'],
    ['line\nbreak', '"line\\nbreak"'],
    ['tab\there', '"tab\\there"'],
    ['bell\u0007', '"bell\\x07"'],
    ['é✓', 'é✓'],
  ];
  for (const [word, want] of cases) t.equal(quoteExecWord(word), want, JSON.stringify(word));
  t.end();
});

t.test('execLine: systemd reads back exactly the argv it was given', (t) => {
  const argv = ['/usr/bin/node', '/opt/tether/bin/tether', '--name', 'a b', '--insert-cookie', '50%$x', '', ';', 'q"\'\\', 'x\ny'];
  t.same(systemdArgv(execLine(argv)), argv, 'a hand-picked argv');
  // C strings cannot hold NUL, so no argv does.
  const word = fc.string({ unit: 'binary', maxLength: 40 }).filter((w) => !w.includes('\u0000'));
  fc.assert(
    fc.property(fc.array(word, { minLength: 1, maxLength: 6 }), (words) => {
      const back = systemdArgv(execLine(words));
      return back.length === words.length && back.every((w, i) => w === words[i]);
    }),
    { numRuns: 2_000 },
  );
  t.pass('2000 random argvs round-trip');
  t.end();
});

t.test('what can be an executable, a user, a ListenStream=', (t) => {
  t.equal(execPathProblem('/usr/bin/node'), undefined);
  t.equal(execPathProblem('node'), 'must be an absolute path');
  t.equal(execPathProblem('/opt/../bin/tether'), 'must be a normalized path (no . or .. parts)');
  t.equal(execPathProblem('/opt/$X/tether'), 'must not contain $ or control characters');
  for (const ok of ['tether', '_tether', 'mail-proxy', 'x1', '998']) t.ok(isUnitUserName(ok), `user ${ok}`);
  for (const bad of ['', '1abc', 'two words', 'a:b', 'x'.repeat(40), 'root\n']) t.notOk(isUnitUserName(bad), `not a user: ${JSON.stringify(bad)}`);
  t.equal(listenStreamProblem({ host: '0.0.0.0', port: 993 }), undefined);
  t.equal(listenStreamProblem({ host: 'localhost', port: 993 }), 'systemd binds IP addresses only, not host names');
  t.equal(listenStreamProblem({ host: '127.0.0.1', port: 0 }), 'systemd needs a fixed port, not 0');
  t.equal(listenStreamValue({ host: '0.0.0.0', port: 993 }), '0.0.0.0:993');
  t.equal(listenStreamValue({ host: '::', port: 143 }), '[::]:143');
  t.equal(listenStreamValue({ host: '0:0:0:0:0:0:0:1', port: 110 }), '[::1]:110', 'IPv6 in canonical form');
  t.end();
});

/** The `Key=value` settings of a unit text, in order (comments and sections left out). */
function settings(text: string): [string, string][] {
  return text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('['))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]);
}

t.test('serviceUnit: notify type, reload by SIGHUP, restart on failure, hardened', (t) => {
  const text = serviceUnit({ description: 'tether (imaps)', command: ['/usr/bin/node', '/opt/tether/bin/tether', '--listen', '0.0.0.0:993'], graceMs: 30_000 });
  const s = settings(text);
  const one = (k: string): string | undefined => {
    const all = s.filter(([key]) => key === k);
    t.equal(all.length, 1, `${k}= appears once`);
    return all[0]?.[1];
  };
  t.match(text, /^# .*\n(?:# .*\n)*\[Unit\]\n/, 'opens with a comment on how to install it');
  t.same(text.match(/^\[\w+\]$/gm), ['[Unit]', '[Service]', '[Install]'], 'the three sections, in order');
  t.equal(one('Description'), 'tether (imaps)');
  t.equal(one('ExecStart'), '/usr/bin/node /opt/tether/bin/tether --listen 0.0.0.0:993');
  const want: Record<string, string> = {
    Type: 'notify',
    NotifyAccess: 'all',
    ExecReload: '/bin/kill -HUP $MAINPID',
    Restart: 'on-failure',
    TimeoutStopSec: '45s',
    DynamicUser: 'yes',
    StateDirectory: 'tether',
    LimitNOFILE: '65536',
    AmbientCapabilities: 'CAP_NET_BIND_SERVICE',
    CapabilityBoundingSet: 'CAP_NET_BIND_SERVICE',
    NoNewPrivileges: 'yes',
    ProtectSystem: 'strict',
    ProtectHome: 'yes',
    PrivateTmp: 'yes',
    PrivateDevices: 'yes',
    ProtectKernelTunables: 'yes',
    ProtectKernelModules: 'yes',
    ProtectKernelLogs: 'yes',
    ProtectControlGroups: 'yes',
    RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX',
    RestrictNamespaces: 'yes',
    SystemCallFilter: '@system-service',
    WantedBy: 'multi-user.target',
  };
  for (const [k, v] of Object.entries(want)) t.equal(one(k), v, `${k}=${v}`);
  t.notOk(s.some(([k]) => k === 'User'), 'no User= with DynamicUser=yes');
  t.notOk(s.some(([k]) => k === 'MemoryDenyWriteExecute' || k === 'PrivateUsers'), 'nothing that breaks V8 or the capability');
  t.notOk(s.some(([k]) => k === 'WorkingDirectory'), 'no WorkingDirectory= unless asked');
  t.same(
    s.filter(([k]) => s.filter(([x]) => x === k).length > 1),
    [],
    'no setting twice',
  );
  t.ok(text.endsWith('\n'), 'ends with a newline');
  t.end();
});

t.test('serviceUnit: a named user, a working directory, the stop timeout follows --grace, % in the description', (t) => {
  const s = settings(serviceUnit({ description: '100% tether', command: ['/usr/local/bin/tether', '--config', '/etc/tether/tether.yaml'], user: 'tether', graceMs: 90_500, workingDirectory: '/etc/tether' }));
  const get = (k: string): string | undefined => s.find(([key]) => key === k)?.[1];
  t.equal(get('User'), 'tether');
  t.equal(get('DynamicUser'), undefined);
  t.equal(get('WorkingDirectory'), '/etc/tether');
  t.equal(get('TimeoutStopSec'), '106s', '91 s of grace (rounded up) and 15 s to close');
  t.equal(get('Description'), '100%% tether', '% is not a specifier');
  t.equal(get('ExecStart'), '/usr/local/bin/tether --config /etc/tether/tether.yaml');
  t.end();
});

t.test('socketUnit: one ListenStream= per address, the frontend name when given', (t) => {
  const text = socketUnit({ description: 'tether sockets', listen: [{ host: '0.0.0.0', port: 993 }, { host: '::', port: 995 }], fdName: 'mail' });
  t.same(settings(text), [
    ['Description', 'tether sockets'],
    ['ListenStream', '0.0.0.0:993'],
    ['ListenStream', '[::]:995'],
    ['FileDescriptorName', 'mail'],
    ['Backlog', '1024'],
    ['NoDelay', 'yes'],
    ['WantedBy', 'sockets.target'],
  ]);
  t.same(text.match(/^\[\w+\]$/gm), ['[Unit]', '[Socket]', '[Install]']);
  t.notOk(settings(socketUnit({ description: 'x', listen: [{ host: '127.0.0.1', port: 1 }] })).some(([k]) => k === 'FileDescriptorName'), 'no name: none written');
  t.end();
});
