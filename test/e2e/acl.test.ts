// --allow / --deny through the real binary: a refused client is closed before tether reads a
// byte or dials a backend; others are served.
import net from 'node:net';
import t from 'tap';
import { runTether } from '../helpers/run-tether.js';
import { startBackend, whoAnswers } from '../helpers/named-backend.js';

function closedWithoutData(port: number, localAddress: string): Promise<{ data: string; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const s = net.connect({ host: '127.0.0.1', port, localAddress });
    let data = '';
    s.on('data', (d: Buffer) => (data += d.toString()));
    s.on('error', () => undefined); // a reset is as good as a FIN here: both are "closed"
    s.on('close', () => {
      resolve({ data, ms: Date.now() - started });
    });
    s.setTimeout(3_000, () => s.destroy());
    s.write('hello');
  });
}

t.test('deny wins, allow limits, refused clients never reach a backend', async (t) => {
  const a = await startBackend('a');
  t.teardown(() => a.close());
  const rt = await runTether([
    '--listen', '127.0.0.1:0', '--backend', `a=127.0.0.1:${String(a.port)}`,
    '--allow', '127.0.0.0/24', '--deny', '127.0.0.2', '--log-level', 'info', '--grace', '1s',
  ]);
  t.teardown(() => rt.stop());
  const port = rt.ports[0]!;
  t.equal(await whoAnswers(port, { localAddress: '127.0.0.1' }), 'a', 'an allowed client is served');
  const before = a.accepted();
  const denied = await closedWithoutData(port, '127.0.0.2');
  t.equal(denied.data, '', 'a denied client gets no byte');
  t.ok(denied.ms < 2_000, `closed at once (${String(denied.ms)} ms)`);
  const outside = await closedWithoutData(port, '127.0.1.1');
  t.equal(outside.data, '', 'a client outside --allow gets no byte');
  t.equal(a.accepted(), before, 'no backend was dialled for refused clients');
  const line = await rt.waitFor((l) => l.event === 'conn.close' && (l['termination'] as { code?: string } | undefined)?.code === 'acl-deny');
  t.match(line, { backend: null, bytesIn: 0, termination: { cause: 'client', stage: 'accept', code: 'acl-deny' } });
});

t.test('a bad CIDR is a usage error', async (t) => {
  const { runTetherToExit } = await import('../helpers/run-tether.js');
  const r = await runTetherToExit(['--listen', '127.0.0.1:0', '--backend', '127.0.0.1:9', '--deny', '10.0.0.0/40']);
  t.equal(r.code, 2);
  t.match(r.stderr, /--deny <CIDR>' argument '10.0.0.0\/40' is invalid\. expected an address or CIDR/);
});
