// Stand-ins for systemd's two sides of a service, on the real kernel interfaces: a notify
// socket (AF_UNIX datagrams, answering barriers as systemd does) and a launcher that passes
// listening sockets the way socket activation does (fds from 3, LISTEN_PID/FDS/FDNAMES, then
// exec, so tether keeps the launcher's PID). Both are python3, which binds AF_UNIX datagram
// sockets and execs without a fork; Node can do neither.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Whether `cmd` runs here (for skips with a visible reason). */
export function hasCommand(cmd: string, args: readonly string[] = ['--version']): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore', timeout: 10_000 });
  return r.error === undefined && r.status === 0;
}

const RECEIVER = String.raw`
import array, json, os, socket, struct, sys, time
path, answer = sys.argv[1], sys.argv[2] == 'answer'
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.settimeout(1.0)
print(json.dumps({'bound': True}), flush=True)
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        msg, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(64) + socket.CMSG_SPACE(12))
    except socket.timeout:
        continue
    pid, fds = None, []
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack('iII', data[:12])[0]
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            a = array.array('i'); a.frombytes(data[:len(data) - len(data) % 4]); fds += list(a)
    fields = dict(line.split('=', 1) for line in msg.decode().split('\n') if '=' in line)
    print(json.dumps({'pid': pid, 'fields': fields, 'fds': len(fds), 'monoUsec': time.monotonic_ns() // 1000}), flush=True)
    if answer:
        for fd in fds: os.close(fd)
`;

/** One datagram the notify socket received. */
export interface NotifyMessage {
  /** The sender's PID (SCM_CREDENTIALS). */
  readonly pid: number | null;
  readonly fields: Readonly<Record<string, string>>;
  /** Descriptors it carried (a barrier's pipe). */
  readonly fds: number;
  /** CLOCK_MONOTONIC at receipt, microseconds. */
  readonly monoUsec: number;
}

export interface NotifyReceiver {
  readonly path: string;
  readonly messages: NotifyMessage[];
  /** Resolves with the first message (seen or future) matching `pred`; rejects after `ms`. */
  waitFor(pred: (m: NotifyMessage) => boolean, ms?: number): Promise<NotifyMessage>;
  close(): Promise<void>;
}

/**
 * Binds an AF_UNIX datagram socket in a fresh directory under the system's temp dir (a socket
 * path has at most 107 bytes, too few for tap's test dirs). With `answerBarriers` (the default)
 * it closes the descriptors of BARRIER=1 messages, which is how systemd answers them.
 */
export async function startNotifyReceiver(opts: { answerBarriers?: boolean } = {}): Promise<NotifyReceiver> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tether-notify-'));
  const sockPath = path.join(dir, 'notify.sock');
  const child = spawn('python3', ['-c', RECEIVER, sockPath, opts.answerBarriers === false ? 'silent' : 'answer'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const messages: NotifyMessage[] = [];
  const waiters: { pred: (m: NotifyMessage) => boolean; resolve: (m: NotifyMessage) => void }[] = [];
  let pending = '';
  let stderr = '';
  const bound = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      pending += d.toString();
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = JSON.parse(pending.slice(0, nl)) as NotifyMessage & { bound?: boolean };
        pending = pending.slice(nl + 1);
        if (line.bound === true) {
          resolve();
          continue;
        }
        messages.push(line);
        for (const w of [...waiters]) {
          if (w.pred(line)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(line);
          }
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => {
      reject(new Error(`notify receiver exited with ${String(code)}: ${stderr}`));
    });
  });
  await bound;
  const exited = new Promise<void>((resolve) => {
    child.on('exit', () => {
      resolve();
    });
  });
  return {
    path: sockPath,
    messages,
    waitFor(pred, ms = 10_000) {
      const seen = messages.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          reject(new Error(`no matching notification within ${String(ms)}ms; got ${JSON.stringify(messages.map((m) => m.fields))}`));
        }, ms);
        waiters.push({
          pred,
          resolve: (m) => {
            clearTimeout(t);
            resolve(m);
          },
        });
      });
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const ACTIVATOR = String.raw`
import fcntl, json, os, socket, sys
spec = json.loads(sys.argv[1])
argv = sys.argv[2:]
held, ports = [], []
for s in spec['sockets']:
    kind = s['type']
    if kind == 'fifo':
        r, w = os.pipe(); held.append(r); ports.append(None); continue
    if kind == 'unix':
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); sock.bind(s['path']); sock.listen(16)
        ports.append(None)
    else:
        family = socket.AF_INET6 if ':' in s['host'] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM if kind == 'udp' else socket.SOCK_STREAM)
        sock.bind((s['host'], s.get('port', 0)))
        if kind == 'tcp': sock.listen(16)
        ports.append(sock.getsockname()[1])
    held.append(sock.detach())
# Park every descriptor high, then place them at 3, 4, … in order.
high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in held]
for fd in held: os.close(fd)
for i, fd in enumerate(high):
    os.dup2(fd, 3 + i, inheritable=True); os.close(fd)
env = spec.get('env', {})
os.environ['LISTEN_FDS'] = env.get('LISTEN_FDS', str(len(high)))
os.environ['LISTEN_PID'] = str(os.getpid()) if env.get('LISTEN_PID', 'self') == 'self' else env['LISTEN_PID']
if 'LISTEN_FDNAMES' in env: os.environ['LISTEN_FDNAMES'] = env['LISTEN_FDNAMES']
print(json.dumps({'activator': {'pid': os.getpid(), 'ports': ports}}), flush=True)
def fill(text):
    for i, p in enumerate(ports): text = text.replace('{port%d}' % i, str(p))
    return text
argv = [fill(a) for a in argv]
for name, text in spec.get('files', {}).items():
    with open(name, 'w') as f: f.write(fill(text))
os.execv(argv[0], argv)
`;

/** A socket the launcher creates and passes: listening TCP (the usual), UDP, AF_UNIX stream, or a pipe. */
export type PassedSocket =
  | { readonly type: 'tcp'; readonly host: string; readonly port?: number }
  | { readonly type: 'udp'; readonly host: string }
  | { readonly type: 'unix'; readonly path: string }
  | { readonly type: 'fifo' };

/**
 * A runTether launcher passing `sockets` as fds 3, 4, … with LISTEN_FDS/LISTEN_PID set (and
 * `env` overriding them; LISTEN_PID "self" is the launcher's own, which tether inherits). In
 * tether's arguments and in `files` (path → text, written before the exec) `{port0}`,
 * `{port1}`… become the ports bound. The launcher prints one JSON line
 * `{"activator": {"pid", "ports"}}` before it execs.
 */
export function activationLauncher(
  sockets: readonly PassedSocket[],
  env: Readonly<Record<string, string>> = {},
  files: Readonly<Record<string, string>> = {},
): [string, ...string[]] {
  return ['python3', '-c', ACTIVATOR, JSON.stringify({ sockets, env, files })];
}
