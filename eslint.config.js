// Lint rules for the whole tree, type-aware (typescript-eslint reads
// tsconfig.json). Run by `npm test` through `npm run lint`.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['out/**', 'build/**', 'dist/**', 'node_modules/**', 'native/build/**', '**/*.js', '**/*.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
  },
  {
    rules: {
      // `_name` marks a parameter an interface requires but this implementation does not need; `...rest` drops a field on purpose.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
      // Flags `let x = fallback; try { x = ... } catch {}`, which we keep for the fallback's sake; a read before any write is caught by tsc.
      'no-useless-assignment': 'off',
    },
  },
  {
    // Tests feed control bytes and escape sequences to the sanitizers and match them in what comes out.
    files: ['test/**/*.ts'],
    rules: { 'no-control-regex': 'off' },
  },
  {
    // The shipped code: small modules with one job, short functions, no `any`.
    files: ['appliance/**/*.ts', 'appliance/**/*.cts', 'tui/**/*.ts'],
    rules: {
      'max-lines': ['error', { max: 450 }],
      'max-lines-per-function': ['error', { max: 120 }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
);
