import t from 'tap';
import { runTether } from '../helpers/run-tether.js';
import { startBackend, whoAnswers } from '../helpers/named-backend.js';

t.test('same source reaches the same backend', async (t) => {
  const bs = await Promise.all(['a', 'b', 'c'].map((n) => startBackend(n)));
  t.teardown(() => Promise.all(bs.map((b) => b.close())));
  const rt = await runTether(['--listen', '127.0.0.1:0', '--affinity', 'source', ...bs.flatMap((b) => ['--backend', `${b.name}=127.0.0.1:${b.port}`])]);
  t.teardown(() => rt.stop());
  const port = rt.ports[0]!;
  const first = await whoAnswers(port);
  t.ok(['a', 'b', 'c'].includes(first));
  for (let i = 0; i < 5; i++) t.equal(await whoAnswers(port), first);
});
