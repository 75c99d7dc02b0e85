// `tether demo` / `npm start`, I/O. Three loopback backends a, b, c that answer with their name,
// tether in front with source affinity, a few connections from two loopback source addresses to
// show that each source sticks to one backend, and a hint for trying it by hand.
import net from 'node:net';
import type { Writable } from 'node:stream';
import { formatAddress } from '../accept/port-range.js';
import { realClock, realRng } from '../clock.js';
import { frontendWithDefaults } from '../options/build.js';
import type { ListenSpec } from '../config/types.js';
import { createLogger, flushLog } from '../log.js';
import { startTether } from '../proxy.js';
import { startNamedBackend } from './named-backend.js';

/** Connects from `localAddress`, reads the greeting line, closes; resolves with the name. */
function askWho(host: string, port: number, localAddress: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, localAddress });
    let got = '';
    s.setTimeout(3_000, () => s.destroy());
    s.on('data', (d: Buffer) => {
      got += d.toString('utf8');
      if (got.includes('\n')) s.end();
    });
    s.on('error', () => undefined); // reported below as "(no answer)"
    s.on('close', () => {
      const m = /backend (\S+)/.exec(got);
      resolve(m?.[1] ?? '(no answer)');
    });
  });
}

export interface DemoOptions {
  readonly listen: ListenSpec;
  /** Show the demo connections, then stop instead of serving until a signal. */
  readonly once: boolean;
  readonly out: Writable;
}

/** A running demo. */
export interface Demo {
  stop(): Promise<void>;
}

/** Starts the demo and prints its connections; with `once`, stops before returning. */
export async function runDemo(o: DemoOptions): Promise<Demo> {
  const backends = await Promise.all(['a', 'b', 'c'].map((n) => startNamedBackend(n)));
  const logger = createLogger('warn');
  const fe = frontendWithDefaults({
    name: 'demo',
    listen: [o.listen],
    backends: backends.map((b) => ({ name: b.name, host: '127.0.0.1', port: b.port, weight: 1, backup: false })),
    affinity: [{ kind: 'source', v4Bits: 32, v6Bits: 128 }],
  });
  const tether = await startTether({ logLevel: 'warn', graceMs: 1_000, frontends: [fe] }, { logger, clock: realClock, rng: realRng });
  const l = tether.frontends[0]?.listeners[0];
  const host = l?.host ?? '127.0.0.1';
  const port = l?.port ?? 0;
  const addr = formatAddress(host, port);
  const w = (s: string): boolean => o.out.write(`${s}\n`);
  w(`tether demo: backends a, b, c on 127.0.0.1:${backends.map((b) => String(b.port)).join(', ')}`);
  w(`tether listening on ${addr} with --affinity source --balance hash`);
  w('');
  for (const src of ['127.0.0.1', '127.0.0.2', '127.0.0.3']) {
    const names: string[] = [];
    for (let i = 0; i < 4; i++) names.push(await askWho(host, port, src));
    w(`  4 connections from ${src.padEnd(10)} → ${names.join(' ')}`);
  }
  w('');
  const stop = async (): Promise<void> => {
    await tether.stop(1_000);
    await Promise.all(backends.map((b) => b.close()));
    await flushLog(logger);
  };
  if (o.once) {
    await stop();
    return { stop: () => Promise.resolve() };
  }
  w('Try it (each source address keeps its backend):');
  w(`  curl http://${addr}/`);
  w(`  curl --interface 127.0.0.2 http://${addr}/`);
  w(`  nc ${host} ${String(port)}        # greets with its backend's name, echoes lines`);
  w('Ctrl-C to stop.');
  return { stop };
}
