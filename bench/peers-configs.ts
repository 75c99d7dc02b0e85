// The peers section's outside programs: which of them this machine has, and the config files
// HAProxy and nginx run with. Every config listens on 127.0.0.1 only, keeps the process in the
// foreground (HAProxy -db; nginx daemon off, master_process off) with everything it writes
// (pid, temp files) inside the section's temp dir, and logs only warnings, to stderr.
import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';

/** Debian's libnginx-mod-stream puts the stream module here (bench/setup-peers.sh installs it). */
export const NGINX_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

/** The outside programs the section runs; null: not found in PATH (its column or rows are skipped). */
export interface Tools {
  readonly haproxy: string | null;
  readonly nginx: string | null;
  /** The stream module's .so, when nginx and the module are both there. */
  readonly nginxStream: string | null;
  readonly wrk: string | null;
  readonly iperf3: string | null;
  readonly taskset: string | null;
  readonly openssl: string | null;
}

/** `name` as PATH finds it (an executable file), or null. */
export function which(name: string): string | null {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      continue; // not here (or not executable): the next PATH entry
    }
  }
  return null;
}

export function findTools(): Tools {
  const nginx = which('nginx');
  return {
    haproxy: which('haproxy'),
    nginx,
    nginxStream: nginx !== null && existsSync(NGINX_STREAM_MODULE) ? NGINX_STREAM_MODULE : null,
    wrk: which('wrk'),
    iperf3: which('iperf3'),
    taskset: which('taskset'),
    openssl: which('openssl'),
  };
}

/**
 * HAProxy as a plain TCP proxy: one thread, one frontend, one server. Timeouts far above any
 * measurement (the idle row holds connections for seconds); `maxconn` is the caller's (each
 * connection takes two fds, and HAProxy refuses to start when the fd limit cannot cover it).
 */
export function haproxyConfig(listenPort: number, backendPort: number, maxconn: number): string {
  return [
    'global',
    '  nbthread 1',
    `  maxconn ${maxconn}`,
    'defaults',
    '  mode tcp',
    `  maxconn ${maxconn}`,
    '  timeout connect 5s',
    '  timeout client 600s',
    '  timeout server 600s',
    'frontend bench',
    `  bind 127.0.0.1:${listenPort}`,
    '  default_backend b',
    'backend b',
    `  server b 127.0.0.1:${backendPort}`,
    '',
  ].join('\n');
}

/** The part every nginx config here shares: one process in the foreground, its files in `dir`. */
function nginxMain(dir: string, name: string, connections: number, fdLimit: number): string[] {
  return [
    'worker_processes 1;',
    'daemon off;',
    'master_process off;',
    'error_log stderr warn;',
    `pid ${path.join(dir, `${name}.pid`)};`,
    `worker_rlimit_nofile ${fdLimit};`,
    `events { worker_connections ${connections}; }`,
  ];
}

/** nginx's stream module as a plain TCP proxy in front of one backend. */
export function nginxStreamConfig(dir: string, name: string, listenPort: number, backendPort: number, connections: number, fdLimit: number): string {
  return [
    `load_module ${NGINX_STREAM_MODULE};`,
    ...nginxMain(dir, name, connections, fdLimit),
    'stream {',
    '  server {',
    `    listen 127.0.0.1:${listenPort} backlog=4096;`,
    `    proxy_pass 127.0.0.1:${backendPort};`,
    '    proxy_connect_timeout 5s;',
    '    proxy_timeout 600s;',
    '  }',
    '}',
    '',
  ].join('\n');
}

export interface NginxBackendPorts {
  readonly http: number;
  /** The TLS server (same answer); undefined: none (no certificate). */
  readonly https: number | undefined;
}

/**
 * The HTTP backend: `200 ok` to every request, keep-alive for as long as any row needs, no
 * access log. `tempKinds`: the `--http-KIND-temp-path` of `nginx -V` (client-body, proxy, …):
 * each is moved into `dir`, since the built-in paths are the system service's.
 */
export function nginxBackendConfig(
  dir: string,
  ports: NginxBackendPorts,
  tls: { readonly cert: string; readonly key: string } | undefined,
  tempKinds: readonly string[],
  connections: number,
  fdLimit: number,
): string {
  const location = '    location / { return 200 "ok\\n"; }';
  const https =
    ports.https === undefined || tls === undefined
      ? []
      : ['  server {', `    listen 127.0.0.1:${ports.https} ssl backlog=4096;`, `    ssl_certificate ${tls.cert};`, `    ssl_certificate_key ${tls.key};`, location, '  }'];
  return [
    ...nginxMain(dir, 'backend', connections, fdLimit),
    'http {',
    '  access_log off;',
    '  keepalive_requests 1000000;',
    '  keepalive_timeout 600s;',
    ...tempKinds.map((k) => `  ${k.replace(/-/g, '_')}_temp_path ${path.join(dir, `temp-${k}`)};`),
    '  server {',
    `    listen 127.0.0.1:${ports.http} backlog=4096;`,
    location,
    '  }',
    ...https,
    '}',
    '',
  ].join('\n');
}

/** The temp-path kinds in `nginx -V` output (`--http-client-body-temp-path=…` → `client-body`). */
export function nginxTempKinds(versionText: string): string[] {
  return [...versionText.matchAll(/--http-([a-z-]+)-temp-path=/g)].map((m) => m[1] ?? '').filter((k) => k !== '');
}
