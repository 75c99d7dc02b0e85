// A real nginx for tests that need a third-party consumer of tether's output (PROXY protocol
// headers). Found on PATH or in the sbin folders; run in the foreground with a config, pid file
// and logs of its own in a test folder, on loopback ports only, and stopped by its PID.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Test } from 'tap';

export interface NginxInstall {
  readonly bin: string;
  readonly version: string;
  /** How the stream module is had: built in, a module file to load_module, or not at all. */
  readonly stream: { readonly kind: 'static' } | { readonly kind: 'dynamic'; readonly module: string } | { readonly kind: 'absent' };
}

/** Finds nginx and its stream module; undefined when nginx is not installed. */
export function findNginx(): NginxInstall | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  const bin = dirs.map((d) => path.join(d, 'nginx')).find((p) => p !== 'nginx' && existsSync(p));
  if (bin === undefined) return undefined;
  // `nginx -V` prints its build flags on stderr.
  const v = spawnSync(bin, ['-V'], { encoding: 'utf8', timeout: 10_000 });
  const flags = `${v.stderr}${v.stdout}`;
  const version = /nginx version: (\S+)/.exec(flags)?.[1] ?? 'nginx';
  const modulesPath = /--modules-path=(\S+)/.exec(flags)?.[1] ?? '/usr/lib/nginx/modules';
  const module = path.join(modulesPath, 'ngx_stream_module.so');
  if (/--with-stream(\s|$)/.test(flags)) return { bin, version, stream: { kind: 'static' } };
  if (flags.includes('--with-stream=dynamic') && existsSync(module)) return { bin, version, stream: { kind: 'dynamic', module } };
  return { bin, version, stream: { kind: 'absent' } };
}

export interface RunningNginx {
  readonly pid: number;
  /** The error log so far (for failure messages). */
  errorLog(): string;
}

/** The server blocks to run, inside `stream { }` and `http { }`. */
export interface NginxServers {
  readonly stream?: string;
  readonly http?: string;
}

/**
 * Writes `servers` into a config with its pid file, error log and
 * temporary folders under `dir`, runs nginx in the foreground as one process (no workers to
 * leave behind), waits for its pid file — written once the listeners are bound — and stops it by
 * PID on teardown. Rejects when nginx exits first or is not up within 10 s.
 */
export async function startNginx(t: Test, install: NginxInstall, dir: string, servers: NginxServers): Promise<RunningNginx> {
  const pidFile = path.join(dir, 'nginx.pid');
  const errorLog = path.join(dir, 'error.log');
  // The compiled-in temporary folders and access log are under /var: http needs its own here.
  const httpPaths = [...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `${k}_temp_path ${path.join(dir, k)};`), `access_log ${path.join(dir, 'access.log')};`];
  const conf = [
    install.stream.kind === 'dynamic' ? `load_module ${install.stream.module};` : '',
    'master_process off;',
    `pid ${pidFile};`,
    `error_log ${errorLog} info;`,
    'events { worker_connections 64; }',
    servers.stream === undefined ? '' : `stream {\n${servers.stream}\n}`,
    servers.http === undefined ? '' : `http {\n${httpPaths.join('\n')}\n${servers.http}\n}`,
  ].join('\n');
  const confFile = path.join(dir, 'nginx.conf');
  writeFileSync(confFile, conf);
  const child = spawn(install.bin, ['-p', dir, '-c', confFile, '-e', errorLog, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => { resolve(code); }));
  const readLog = (): string => (existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : '');
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t0 = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(t0);
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`nginx exited (${String(child.exitCode ?? child.signalCode)}): ${output}${readLog()}`);
    if (existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() === String(child.pid)) break;
    if (Date.now() > deadline) throw new Error(`nginx did not start within 10s: ${output}${readLog()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { pid: child.pid ?? 0, errorLog: readLog };
}
