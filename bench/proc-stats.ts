// Linux /proc readings for the bench: the ports a process listens on, its RSS and CPU time, and
// the whole machine's busy time (to tell how much other processes took during a measurement).
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * TCP ports in LISTEN state on sockets that process `pid` holds open: its fds that are
 * `socket:[INODE]`, looked up in /proc/net/tcp{,6}. Lets the bench run tether with
 * `--listen 127.0.0.1:0 --log-level warn`, where the `listen.ready` line (info) is not printed.
 */
export function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // the fd was closed between readdir and readlink: it is not a listener then
    }
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m?.[1] !== undefined) inodes.add(m[1]);
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const row of readFileSync(table, 'utf8').split('\n').slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
      const f = row.trim().split(/\s+/);
      const [local, state, inode] = [f[1], f[3], f[9]];
      if (local === undefined || state !== '0A' || inode === undefined || !inodes.has(inode)) continue;
      ports.push(parseInt(local.slice(local.lastIndexOf(':') + 1), 16));
    }
  }
  return ports;
}

/** Resident set size of process `pid` in KiB (VmRSS of /proc/PID/status). */
export function readRssKib(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m?.[1] === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/**
 * CPU time used so far by every thread of process `pid`, in nanoseconds: the sum of the first
 * field of /proc/PID/task/TID/schedstat (time on CPU; exact, unlike the 10 ms ticks of stat).
 */
export function readCpuNs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      continue; // the thread exited between readdir and read; its time is no longer attributed
    }
  }
  return ns;
}


/** Machine-wide CPU time from the first line of /proc/stat, all cores, in ms. */
export interface MachineCpu {
  readonly busyMs: number;
  readonly totalMs: number;
}

/** Clock ticks per second of /proc/stat (USER_HZ); 100 on every Linux architecture Node runs on. */
const USER_HZ = 100;

export function readMachineCpu(): MachineCpu {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  // cpu user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busyMs: ((total - idle) * 1000) / USER_HZ, totalMs: (total * 1000) / USER_HZ };
}
