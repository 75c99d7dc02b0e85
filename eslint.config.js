// ESLint flat config: typescript-eslint strict + stylistic (type-checked), plus the layout's
// dependency rules (see ../shared/STYLE.md §2 and §9).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

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
            message: 'Pure stages do no I/O: take inputs as values (STYLE.md §2 rule 1/2).',
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
        { selector: "MemberExpression[object.name='process'][property.name=/^(argv|exit|env)$/]", message: 'Only lib/cli/ reads argv/env or exits (STYLE.md §2 rule 4).' },
        { selector: "CallExpression[callee.object.name='process'][callee.property.name=/^(on|once)$/]", message: 'Only lib/cli/ handles signals (STYLE.md §2 rule 4).' },
      ],
    },
  },
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
