// health/monitor.ts in-process on real loopback sockets: one probe per address however many
// pools share it, a transition logged once per pool, and nothing after stop().
import t from 'tap';
import { realClock } from '../../lib/clock.js';
import { frontendWithDefaults } from '../../lib/options/build.js';
import type { BackendSpec } from '../../lib/config/types.js';
import { startHealthChecks } from '../../lib/health/monitor.js';
import { createLogger } from '../../lib/log.js';
import { Pool } from '../../lib/place/pool.js';
import { deadPort, startBackend } from '../helpers/named-backend.js';

interface Line {
  readonly event?: string;
  readonly [k: string]: unknown;
}

/** A debug logger whose lines land in `lines`. */
function capture(): { lines: Line[]; logger: ReturnType<typeof createLogger> } {
  const lines: Line[] = [];
  const logger = createLogger('debug', { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
  return { lines, logger };
}

async function until(pred: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const spec = (name: string, port: number): BackendSpec => ({ name, host: '127.0.0.1', port, weight: 1, backup: false });

t.test('pools sharing an address share its probe; each pool logs its own transition, once', async (t) => {
  const live = await startBackend('live');
  t.teardown(() => live.close());
  const dead = await deadPort();
  const config = frontendWithDefaults({ name: 'fe', health: { check: 'tcp', intervalMs: 50, rise: 1, fall: 1 } });
  const checks = { rise: 1, fall: 1 };
  const one = new Pool([spec('live', live.port), spec('dead', dead)], { checks });
  const two = new Pool([spec('live2', live.port), spec('dead2', dead)], { checks });
  const { lines, logger } = capture();
  const stop = startHealthChecks(config, [{ name: 'default', pool: one }, { name: 'other', pool: two }], { logger, clock: realClock });
  t.teardown(stop);

  const checksOf = (address: string): Line[] => lines.filter((l) => l.event === 'health.check' && l['address'] === address);
  await until(() => checksOf(`127.0.0.1:${String(dead)}`).length >= 4 && checksOf(`127.0.0.1:${String(live.port)}`).length >= 4, 'four rounds');
  const liveChecks = checksOf(`127.0.0.1:${String(live.port)}`).length;
  t.ok(live.accepted() >= liveChecks && live.accepted() <= liveChecks + 1, `one connection per round (${String(live.accepted())} for ${String(liveChecks)} logged checks), not one per pool`);
  const downs = lines.filter((l) => l.event === 'backend.down');
  t.same(
    downs.map((l) => [l['pool'], l['backend'], l['reason'], l['code'], l['frontend']]).sort(),
    [
      ['default', 'dead', 'check', 'ECONNREFUSED', 'fe'],
      ['other', 'dead2', 'check', 'ECONNREFUSED', 'fe'],
    ],
    'one backend.down per pool, though the address failed every round',
  );
  t.equal(lines.filter((l) => l.event === 'backend.up').length, 0);
  t.same([one.state(one.get('dead')!, Date.now()), two.state(two.get('dead2')!, Date.now())], ['down', 'down']);
  t.same(one.get('dead')!.lastCheck?.code, 'ECONNREFUSED');
  t.same([one.state(one.get('live')!, Date.now()), two.state(two.get('live2')!, Date.now())], ['up', 'up']);

  stop();
  const after = lines.length;
  const accepted = live.accepted();
  await new Promise((r) => setTimeout(r, 300));
  t.equal(lines.length, after, 'nothing logged after stop');
  t.ok(live.accepted() <= accepted + 1, 'no new rounds after stop');
});

t.test('a backend without a port is checked on the first listen port; a :0 listen skips it', async (t) => {
  const live = await startBackend('live');
  t.teardown(() => live.close());
  const config = frontendWithDefaults({
    listen: [{ host: '127.0.0.1', portLow: live.port, portHigh: live.port }],
    health: { check: 'tcp', intervalMs: 50, rise: 1, fall: 1 },
  });
  const pool = new Pool([{ name: 'p', host: '127.0.0.1', port: undefined, weight: 1, backup: false }], { checks: { rise: 1, fall: 1 } });
  const { lines, logger } = capture();
  const stop = startHealthChecks(config, [{ name: 'default', pool }], { logger, clock: realClock });
  t.teardown(stop);
  await until(() => live.accepted() >= 2, 'two checks');
  t.same(lines.find((l) => l.event === 'health.check')?.['address'], `127.0.0.1:${String(live.port)}`);

  const zero = frontendWithDefaults({ listen: [{ host: '127.0.0.1', portLow: 0, portHigh: 0 }], health: { check: 'tcp', intervalMs: 50 } });
  const quiet = capture();
  const stopZero = startHealthChecks(zero, [{ name: 'default', pool }], { logger: quiet.logger, clock: realClock });
  t.teardown(stopZero);
  await new Promise((r) => setTimeout(r, 200));
  t.equal(quiet.lines.length, 0, 'no port to check: no checks');
});
