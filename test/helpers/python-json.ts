// Runs a python3 script that reads one JSON argument and prints one JSON document (the imaplib and
// poplib drivers of the mail tests).
import { spawn } from 'node:child_process';

/**
 * Runs `script` with `input` (as JSON in argv[1]) and resolves with what it printed, parsed.
 * Rejects when python3 exits non-zero, prints no JSON, or exceeds `timeoutMs` (killed by PID).
 */
export function pythonJson<T>(script: string, input: unknown, timeoutMs: number): Promise<T> {
  const child = spawn('python3', ['-c', script, JSON.stringify(input)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) {
        reject(new Error(`python3 exited with ${String(code ?? signal)}: ${err}`));
        return;
      }
      try {
        resolve(JSON.parse(out) as T);
      } catch (e) {
        reject(new Error(`python3 printed no JSON (${String(e)}): ${out} ${err}`));
      }
    });
  });
}
