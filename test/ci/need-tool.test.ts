// test/helpers/tools.ts: under CI=true a missing tool is a failure, elsewhere a skip with its reason.
import t from 'tap';
import { needTool } from '../helpers/tools.js';

t.test('needTool', (t) => {
  const failures: string[] = [];
  const fail = (m: string): void => {
    failures.push(m);
  };
  t.equal(needTool(false, { env: { CI: 'true' }, fail }), false, 'a tool that is there: no skip');
  t.equal(needTool(undefined, { env: { CI: 'true' }, fail }), false);
  t.same(failures, [], 'and no failure');
  t.equal(needTool('nginx is not installed', { env: {}, fail }), 'nginx is not installed', 'off CI: a skip with the reason');
  t.same(failures, [], 'and no failure');
  t.equal(needTool('nginx is not installed', { env: { CI: 'true' }, fail }), 'nginx is not installed', 'under CI=true: still skipped…');
  t.same(failures, ['CI=true, but nginx is not installed (.ci/run installs it; a skip here would hide a test)'], '…and reported as a failure');
  t.end();
});
