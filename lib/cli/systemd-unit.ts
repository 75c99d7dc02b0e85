// `tether systemd-unit [run flags…]`: the run flags (already validated like `tether` itself
// does) become a unit whose ExecStart runs tether with the same flags. The command line is
// taken from argv as the user wrote it, with file paths made absolute (a service starts in /),
// and the options of systemd-unit itself left out.
import { statSync } from 'node:fs';
import path from 'node:path';
import { expandListen, formatAddress } from '../accept/port-range.js';
import type { Config } from '../config/types.js';
import { TetherError } from '../errors.js';
import { execPathProblem, isUnitUserName, listenStreamProblem, serviceUnit, socketUnit } from '../systemd/unit.js';
import { OPTIONS } from '../options/table.js';

/** The options of `systemd-unit` itself (not passed on to ExecStart). */
export interface UnitOptions {
  user?: string;
  exec?: string;
  socket?: boolean;
}

/** Options of systemd-unit that take a value, and switches; as commander spells them. */
const UNIT_VALUE_FLAGS = new Set(['--user', '--exec']);
const UNIT_SWITCHES = new Set(['--socket']);
/** Run flags whose value is a file path: made absolute. */
const PATH_FLAGS = new Set(OPTIONS.flatMap((r) => (r.takesFile && r.flag !== undefined ? [r.flag] : [])));
const RUN_VALUE_FLAGS = new Set(OPTIONS.flatMap((r) => (r.flag !== undefined && r.flags?.includes('<') === true ? [r.flag] : [])));

/**
 * The run flags of `tokens` (argv after the program name, as commander accepted it): drops the
 * first operand (the subcommand's name) and systemd-unit's own options, and resolves file
 * paths against `cwd`. `--flag=value` stays in that form.
 */
export function runFlagsFrom(tokens: readonly string[], cwd: string): string[] {
  const out: string[] = [];
  let operandSeen = false;
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i] ?? '';
    if (!tok.startsWith('--') || tok === '--') {
      // The first operand is the subcommand; commander refused any other before we got here.
      if (!operandSeen) {
        operandSeen = true;
        continue;
      }
      out.push(tok);
      continue;
    }
    const eq = tok.indexOf('=');
    const flag = eq < 0 ? tok : tok.slice(0, eq);
    const takesValue = RUN_VALUE_FLAGS.has(flag) || UNIT_VALUE_FLAGS.has(flag);
    let value: string | undefined;
    if (eq >= 0) value = tok.slice(eq + 1);
    else if (takesValue) value = tokens[++i];
    if (UNIT_VALUE_FLAGS.has(flag) || UNIT_SWITCHES.has(flag)) continue;
    if (value === undefined) {
      out.push(flag);
      continue;
    }
    const v = PATH_FLAGS.has(flag) ? path.resolve(cwd, value) : value;
    out.push(...(eq >= 0 ? [`${flag}=${v}`] : [flag, v]));
  }
  return out;
}

/** The files a configuration makes tether read at start (besides the config file). */
function filesRead(config: Config): string[] {
  return config.frontends.flatMap((f) => [f.keyModule, f.mail.tlsCert, f.mail.tlsKey, f.mail.backendCa, f.mail.userMap].filter((p): p is string => p !== undefined));
}

/** Directories the service cannot see: ProtectHome=yes empties the first, PrivateTmp=yes the others. */
export const HIDDEN_DIRS: readonly { readonly dir: string; readonly by: string }[] = [
  { dir: '/home', by: 'ProtectHome=yes' },
  { dir: '/root', by: 'ProtectHome=yes' },
  { dir: '/run/user', by: 'ProtectHome=yes' },
  { dir: '/tmp', by: 'PrivateTmp=yes' },
  { dir: '/var/tmp', by: 'PrivateTmp=yes' },
];

/** What `tether systemd-unit` prints: the unit text, and notes for stderr. */
export interface UnitOutput {
  readonly text: string;
  readonly warnings: readonly string[];
}

/**
 * Builds the unit for a validated `config`. `runFlags` are the flags for ExecStart (see
 * runFlagsFrom); `launcher` is how to start tether: `[node, bin/tether]`, or `[--exec PATH]`.
 * Throws TETHER_ERR_USAGE for options systemd cannot take. Reads the file system only to warn
 * about files the service will not be able to read; `hiddenDirs`: the folders the unit hides.
 */
export function buildUnit(
  config: Config,
  o: UnitOptions & { readonly configFile?: string | undefined },
  runFlags: readonly string[],
  launcher: readonly string[],
  cwd: string,
  hiddenDirs: typeof HIDDEN_DIRS = HIDDEN_DIRS,
): UnitOutput {
  const problems: string[] = [];
  if (o.user !== undefined && !isUnitUserName(o.user)) problems.push(`--user: expected a user name (letters, digits, '_', '-') or a UID, got ${JSON.stringify(o.user)}`);
  const exe = launcher[0] ?? '';
  const exeProblem = execPathProblem(exe);
  if (exeProblem !== undefined) problems.push(`--exec: ${exeProblem}, got ${JSON.stringify(exe)}`);
  const names = config.frontends.map((f) => f.name);
  const description = `tether Layer-4 proxy (${names.join(', ')})`;
  if (o.socket === true) {
    const listen = config.frontends.flatMap((f) => f.listen.flatMap(expandListen));
    for (const a of listen) {
      const p = listenStreamProblem(a);
      if (p !== undefined) problems.push(`--socket: cannot listen on ${formatAddress(a.host, a.port)}: ${p}`);
    }
    if (problems.length > 0) throw new TetherError('TETHER_ERR_USAGE', problems.join('\n'));
    // FileDescriptorName= names every socket of the unit; it can name a frontend only when
    // there is one. tether matches sockets to frontends by address anyway.
    const only = names.length === 1 ? names[0] : undefined;
    return { text: socketUnit({ description: `${description}: listening sockets`, listen, ...(only === undefined ? {} : { fdName: only }) }), warnings: [] };
  }
  if (problems.length > 0) throw new TetherError('TETHER_ERR_USAGE', problems.join('\n'));

  const files = filesRead(config);
  // Flags' paths were made absolute for ExecStart; a config file's relative paths are read
  // from the working directory, as they were when this command validated them.
  const relative = o.configFile !== undefined && files.some((f) => !path.isAbsolute(f));
  const read = [...files, ...(o.configFile === undefined ? [] : [o.configFile])].map((f) => path.resolve(cwd, f));
  const warnings: string[] = [];
  for (const p of new Set([...launcher.filter((a) => path.isAbsolute(a)), ...read, ...(relative ? [cwd] : [])])) {
    const hidden = hiddenDirs.find((h) => p === h.dir || p.startsWith(`${h.dir}/`));
    if (hidden !== undefined) warnings.push(`${p} is under ${hidden.dir}, which ${hidden.by} hides from the service: move it (e.g. to /opt or /etc/tether), or edit the unit`);
  }
  if (o.user === undefined) {
    for (const f of new Set(read)) {
      const r = worldReadable(f);
      if (r === 'missing') warnings.push(`${f} does not exist (yet): tether reads it at start`);
      else if (!r) warnings.push(`${f} is not readable by other users, and DynamicUser=yes runs tether as a fresh one: use --user NAME with a user that can read it, or loosen its mode`);
    }
  }
  const text = serviceUnit({
    description,
    command: [...launcher, ...runFlags],
    ...(o.user === undefined ? {} : { user: o.user }),
    graceMs: config.graceMs,
    ...(relative ? { workingDirectory: cwd } : {}),
  });
  return { text, warnings };
}

/** Whether a user who is neither owner nor group may read `file`; 'missing' when it is not there. */
function worldReadable(file: string): boolean | 'missing' {
  try {
    return (statSync(file).mode & 0o004) !== 0;
  } catch {
    // Missing or unreachable now: tether's own start will fail on it, so say so here too.
    return 'missing';
  }
}
