// The runtime's last guard around the flow (runtime/listeners.ts): if carrying one client ever
// rejects (a bug), that client is closed, one internal.error line is logged, and the listener
// goes on serving the next client. In-process, on real loopback sockets, with the real runtime.
import net from 'node:net';
import t from 'tap';
import { realClock, realRng } from '../../lib/clock.js';
import { createLogger } from '../../lib/log.js';
import { frontendWithDefaults } from '../../lib/options/build.js';
import { startRuntime } from '../../lib/runtime/tether.js';
import { within } from '../helpers/e2e-tools.js';

type Line = Record<string, unknown>;

t.test('a flow that rejects closes its client, logs once, and the next client is served', async (t) => {
  const lines: Line[] = [];
  const logger = createLogger('debug', { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
  let calls = 0;
  const fe = frontendWithDefaults({ name: 'f', listen: [{ host: '127.0.0.1', portLow: 0, portHigh: 0 }], backends: [{ name: 'a', host: '127.0.0.1', port: 1, weight: 1, backup: false }] });
  const tether = await startRuntime({ logLevel: 'debug', graceMs: 1_000, frontends: [fe] }, { logger, clock: realClock, rng: realRng }, async (client) => {
    calls++;
    if (calls === 1) throw new Error('a bug in the flow');
    client.end('served\n');
    await new Promise((resolve) => client.once('close', resolve));
  });
  t.teardown(() => tether.stop(0));
  const port = tether.frontends[0]?.listeners[0]?.port ?? 0;
  const talk = (): Promise<{ text: string; closed: boolean }> =>
    new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      let text = '';
      c.on('data', (b: Buffer) => (text += b.toString('latin1')));
      c.on('error', () => undefined);
      c.on('close', () => {
        resolve({ text, closed: true });
      });
    });
  t.same(await within(talk(), 5_000, 'first client'), { text: '', closed: true }, 'the first client is closed, nothing sent');
  t.same(await within(talk(), 5_000, 'second client'), { text: 'served\n', closed: true }, 'the next client is served');
  const errors = lines.filter((l) => l['event'] === 'internal.error');
  t.equal(errors.length, 1, 'one internal.error line');
  t.equal(errors[0]?.['code'], 'TETHER_ERR_INTERNAL');
  t.match(String(errors[0]?.['err']), /a bug in the flow/, 'with the stack');
  t.equal(tether.frontends[0]?.current.open.size, 0, 'nothing left open');
});
