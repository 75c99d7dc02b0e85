// The text of tether's systemd units: a hardened .service and, for socket activation, a
// .socket. Pure: the CLI (lib/cli/systemd-unit.ts) gathers the inputs and prints the result.
import ipaddr from 'ipaddr.js';
import type { BindAddress } from '../accept/port-range.js';

/** What the .service unit needs to know. */
export interface ServiceUnitSpec {
  /** Description= (the frontends it runs). */
  readonly description: string;
  /** ExecStart='s argv: an absolute, normalized executable path first. */
  readonly command: readonly string[];
  /** User= to run as; DynamicUser=yes (a fresh unprivileged user per start) when absent. */
  readonly user?: string;
  /** tether's --grace in milliseconds: systemd's stop timeout must leave room for it. */
  readonly graceMs: number;
  /** WorkingDirectory=, for relative file paths in a config file. */
  readonly workingDirectory?: string;
}

/** What the .socket unit needs to know. */
export interface SocketUnitSpec {
  readonly description: string;
  /** One ListenStream= each; hosts must be IP literals and ports fixed (not 0). */
  readonly listen: readonly BindAddress[];
  /** FileDescriptorName=: tether hands these sockets to the frontend of that name. */
  readonly fdName?: string;
}

/** Seconds systemd waits for a stop beyond --grace: the last log lines and the notifications. */
const STOP_MARGIN_S = 15;
/** Per-process descriptor limit: each proxied connection holds two (client and backend). */
const LIMIT_NOFILE = 65_536;

/**
 * A user name systemd accepts in User= (systemd's valid_user_group_name in its default,
 * strict mode), or a numeric UID.
 */
export function isUnitUserName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_-]{0,30}$/.test(name) || /^\d{1,10}$/.test(name);
}

/**
 * Why `path` cannot be ExecStart's executable, or undefined when it can: systemd wants an
 * absolute, normalized path, and expands `$VAR` in arguments but not in the executable.
 */
export function execPathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return 'must be an absolute path';
  if (path.split('/').some((part) => part === '.' || part === '..')) return 'must be a normalized path (no . or .. parts)';
  // eslint-disable-next-line no-control-regex
  if (/[$\u0000-\u001f\u007f]/.test(path)) return 'must not contain $ or control characters';
  return undefined;
}

/**
 * One word of a systemd command line (systemd.service(5) "Command lines", systemd.syntax(7)):
 * `%` starts a specifier and `$` a variable everywhere in the line, quoted or not, so both are
 * doubled; a word with white space, quotes, a backslash, `;` or a control character is
 * double-quoted, with C escapes for `\`, `"` and control characters.
 */
export function quoteExecWord(word: string): string {
  const expanded = word.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  // eslint-disable-next-line no-control-regex
  if (expanded !== '' && !/[\s"'\\;\u0000-\u001f\u007f]/.test(expanded)) return expanded;
  let out = '';
  for (const ch of expanded) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '\\' || ch === '"') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `"${out}"`;
}

/** A whole ExecStart= value. */
export function execLine(argv: readonly string[]): string {
  return argv.map(quoteExecWord).join(' ');
}

/** A one-line setting value in which `%` must not start a specifier (Description=). */
function plainValue(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/%/g, '%%');
}

/** The .service unit text. */
export function serviceUnit(spec: ServiceUnitSpec): string {
  const stopS = Math.ceil(spec.graceMs / 1_000) + STOP_MARGIN_S;
  const lines = [
    '# tether as a systemd service, written by `tether systemd-unit`. Install it as',
    '# /etc/systemd/system/tether.service, then: systemctl daemon-reload; systemctl enable --now tether',
    '[Unit]',
    `Description=${plainValue(spec.description)}`,
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    '# tether says READY=1 once it listens, STOPPING=1 when a stop begins, RELOADING=1 on SIGHUP.',
    '# It sends them through systemd-notify, a child process (Node has no AF_UNIX datagram',
    '# sockets), so systemd must accept notifications from any process of the unit.',
    'Type=notify',
    'NotifyAccess=all',
    `ExecStart=${execLine(spec.command)}`,
    'ExecReload=/bin/kill -HUP $MAINPID',
    'Restart=on-failure',
    'RestartSec=2s',
    `# --grace (${String(Math.ceil(spec.graceMs / 1_000))}s) for open connections, then a margin to close them.`,
    `TimeoutStopSec=${String(stopS)}s`,
    'SyslogIdentifier=tether',
    ...(spec.workingDirectory === undefined ? [] : ['# The config file names files by relative paths.', `WorkingDirectory=${plainValue(spec.workingDirectory)}`]),
    ...(spec.user === undefined
      ? ['# A fresh unprivileged user for each start; it must be able to read the files tether reads.', 'DynamicUser=yes']
      : [`User=${spec.user}`]),
    '# /var/lib/tether, for state that outlives a restart.',
    'StateDirectory=tether',
    'StateDirectoryMode=0700',
    '# Each proxied connection holds two descriptors (client and backend).',
    `LimitNOFILE=${String(LIMIT_NOFILE)}`,
    'UMask=0077',
    '',
    '# Binding ports below 1024 is the only privilege tether needs.',
    'AmbientCapabilities=CAP_NET_BIND_SERVICE',
    'CapabilityBoundingSet=CAP_NET_BIND_SERVICE',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'ProtectHome=yes',
    'PrivateTmp=yes',
    'PrivateDevices=yes',
    'PrivateMounts=yes',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes',
    'ProtectControlGroups=yes',
    'ProtectClock=yes',
    'ProtectHostname=yes',
    'ProtectProc=invisible',
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
    'RestrictNamespaces=yes',
    'RestrictRealtime=yes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
    'RemoveIPC=yes',
    'SystemCallArchitectures=native',
    'SystemCallFilter=@system-service',
    'SystemCallErrorNumber=EPERM',
    '# Left out on purpose: MemoryDenyWriteExecute= (V8 compiles JavaScript to machine code at',
    '# run time) and PrivateUsers= (capabilities inside a user namespace do not reach the',
    "# host's ports).",
    '',
    '[Install]',
    'WantedBy=multi-user.target',
  ];
  return `${lines.join('\n')}\n`;
}

/** Why `addr` cannot be a ListenStream=, or undefined when it can. */
export function listenStreamProblem(addr: BindAddress): string | undefined {
  if (!ipaddr.isValid(addr.host)) return 'systemd binds IP addresses only, not host names';
  if (addr.port === 0) return 'systemd needs a fixed port, not 0';
  return undefined;
}

/** `0.0.0.0:993`, `[::]:993` (ListenStream= syntax; the caller checked listenStreamProblem). */
export function listenStreamValue(addr: BindAddress): string {
  const host = ipaddr.parse(addr.host).toString();
  return host.includes(':') ? `[${host}]:${String(addr.port)}` : `${host}:${String(addr.port)}`;
}

/** The .socket unit text: systemd binds every address and passes the sockets to tether. */
export function socketUnit(spec: SocketUnitSpec): string {
  const lines = [
    '# Listening sockets for tether.service (socket activation), written by `tether systemd-unit',
    '# --socket`. systemd binds them, so tether needs no privilege for ports below 1024 and',
    '# clients queue in the kernel while tether restarts. Install it as',
    '# /etc/systemd/system/tether.socket, next to tether.service (the same name), then:',
    '# systemctl daemon-reload; systemctl enable --now tether.socket',
    '[Unit]',
    `Description=${plainValue(spec.description)}`,
    '',
    '[Socket]',
    ...spec.listen.map((a) => `ListenStream=${listenStreamValue(a)}`),
    ...(spec.fdName === undefined ? [] : [`FileDescriptorName=${spec.fdName}`]),
    'Backlog=1024',
    'NoDelay=yes',
    '',
    '[Install]',
    'WantedBy=sockets.target',
  ];
  return `${lines.join('\n')}\n`;
}
