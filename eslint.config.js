// ESLint flat config: typescript-eslint strict + stylistic (type-checked), plus the layout's
// dependency rules (README "Layout": pure folders do no I/O, only lib/cli/ touches the process,
// and imports point down the flow, never up).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Import direction. In flat config a later object's setting of a rule replaces an earlier one
// for the files both match, so each block below lists every pattern that applies to its files.
// These use @typescript-eslint/no-restricted-imports (type-only imports count too), leaving the
// core no-restricted-imports to the pure-folder block.
const LAYOUT = 'README "Layout"';
/** (a) lib/cli/ and lib/proxy.ts sit on top: only lib/cli/ and lib/demo/ import them. */
const onTop = () => [
  { group: ['**/cli/**'], message: `Only lib/cli/ and lib/demo/ import lib/cli/ (${LAYOUT}).` },
  { group: ['**/proxy.js'], message: `Only lib/cli/ and lib/demo/ import lib/proxy.ts, the flow (lib/runtime/ is handed it as serve) (${LAYOUT}).` },
];
/** (b) Stage folders know nothing of what runs them or sits around them. */
const STAGES = ['accept', 'peek', 'greet', 'affinity', 'place', 'connect', 'splice', 'conn', 'wire', 'health'];
const aroundTheFlow = ['runtime', 'admin', 'state', 'systemd', 'demo', 'options'].map((dir) => ({
  group: [`**/${dir}/**`],
  message: `Stage folders do not import lib/${dir}/: take what you need as a value or a callback (${LAYOUT}).`,
}));
const restrictImports = (patterns) => ({ '@typescript-eslint/no-restricted-imports': ['error', { patterns }] });

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.tap/**', 'coverage/**', 'bin/**', 'eslint.config.js', 'test/wire/coverage-map.mjs', '.ci/**'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  ...tseslint.configs.stylisticTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      'no-restricted-exports': ['error', { restrictDefaultExports: { direct: true, named: true, defaultFrom: true, namedFrom: true, namespaceFrom: true } }],
    },
  },
  {
    files: ['lib/**/*.ts'],
    ignores: ['lib/clock.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'Take a Clock (lib/clock.ts) instead.' },
        { object: 'Math', property: 'random', message: 'Take an Rng (lib/clock.ts) instead.' },
      ],
    },
  },
  {
    files: ['lib/affinity/**/*.ts', 'lib/place/**/*.ts', 'lib/config/**/*.ts', 'lib/wire/**/*.ts', 'lib/state/table-state.ts', 'lib/health/check.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['node:net', 'node:tls', 'node:timers', 'pino', 'net', 'tls'].map((name) => ({
            name,
            message: `Pure stages do no I/O: take inputs as values (${LAYOUT}).`,
          })),
        },
      ],
    },
  },
  {
    files: ['lib/**/*.ts'],
    ignores: ['lib/cli/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: "MemberExpression[object.name='process'][property.name=/^(argv|exit|env)$/]", message: `Only lib/cli/ reads argv/env or exits (${LAYOUT}).` },
        { selector: "CallExpression[callee.object.name='process'][callee.property.name=/^(on|once)$/]", message: `Only lib/cli/ handles signals (${LAYOUT}).` },
      ],
    },
  },
  // Tests, bench and fixtures are not covered: they may import anything.
  { files: ['lib/**/*.ts'], ignores: ['lib/cli/**', 'lib/demo/**'], rules: restrictImports(onTop()) },
  { files: STAGES.map((dir) => `lib/${dir}/**/*.ts`), rules: restrictImports([...onTop(), ...aroundTheFlow]) },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'fixtures/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-floating-promises': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
    },
  },
);
