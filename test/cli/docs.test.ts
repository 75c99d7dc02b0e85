// The README's option and error tables must equal the ones made from the option table (lib/options/table.ts) and ERROR_CODES.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { errorTableMarkdown, optionTableMarkdown } from '../../lib/cli/docs.js';
import { ROOT } from '../helpers/run-tether.js';

const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

function section(name: string): string {
  const m = new RegExp(`<!-- ${name}:begin -->\\n([\\s\\S]*?)\\n<!-- ${name}:end -->`).exec(readme);
  return m?.[1] ?? '(section missing)';
}

t.equal(section('options'), optionTableMarkdown(), 'README option table matches the option table (paste the expected value)');
t.equal(section('errors'), errorTableMarkdown(), 'README error table matches ERROR_CODES (paste the expected value)');
t.match(readme.split('\n').slice(0, 12).join('\n'), /npm ci && npm start[\s\S]*npm ci && npm test/, 'README opens with the two commands');

t.test('the README config example is a valid configuration', async (t) => {
  const { parse } = await import('yaml');
  const { configFromDocument } = await import('../../lib/config/document.js');
  const { validateConfig } = await import('../../lib/config/validate.js');
  const block = /```yaml\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  const { config, issues } = configFromDocument(parse(block));
  t.same(issues, [], 'parses without issues');
  t.same(validateConfig(config), [], 'passes validation');
  t.ok(config.frontends.length >= 3);
});
