// The architecture rules (.dependency-cruiser.cjs, run by `npm test`) hold on
// the tree, and each of them really fails a tree that breaks it.
import test from 'ava';
import { execa } from 'execa';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/cli.js';
import { tempDir } from '../helpers/loop.js';

const depcruise = path.join(REPO_ROOT, 'node_modules/.bin/depcruise');
const config = path.join(REPO_ROOT, '.dependency-cruiser.cjs');

test('the tree keeps every architecture rule', async (t) => {
  const r = await execa(depcruise, ['appliance', 'tui', 'bench', '--config', config], { cwd: REPO_ROOT, reject: false });
  t.is(r.exitCode, 0, r.stdout);
});

test('a forbidden import or a cycle fails the check, naming the rule', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const put = (file: string, text: string) => {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
  };
  copyFileSync(path.join(REPO_ROOT, 'tsconfig.json'), path.join(dir, 'tsconfig.json'));
  put('appliance/native.ts', 'export const addon = 1;\n');
  put('appliance/imaging/engine.ts', "import { ui } from '../../tui/screen.js';\nexport const engine = ui;\n");
  put('appliance/disk/inventory.ts', "import { engine } from '../imaging/engine.js';\nexport const inventory = engine;\n");
  put('appliance/writeblock/guardian.ts', "import type { Record } from '../custody/record.js';\nexport type G = Record;\n");
  put('appliance/custody/record.ts', 'export type Record = { a: 1 };\n');
  put('tui/screen.ts', "import { addon } from '../appliance/native.js';\nexport const ui = addon;\n");
  put('appliance/imaging/a.ts', "import type { B } from './b.js';\nexport type A = B;\n");
  put('appliance/imaging/b.ts', "import type { A } from './a.js';\nexport type B = A | 1;\n");
  const r = await execa(depcruise, ['appliance', 'tui', '--config', config], { cwd: dir, reject: false });
  t.not(r.exitCode, 0);
  for (const rule of ['tui-no-device-io', 'disk-first', 'writeblock-before-imaging', 'imaging-no-ui', 'no-circular'])
    t.regex(r.stdout, new RegExp(`error ${rule}:`), rule);
});

const eslint = path.join(REPO_ROOT, 'node_modules/.bin/eslint');
const prettier = path.join(REPO_ROOT, 'node_modules/.bin/prettier');

test('a formatting error, a type-aware lint error, an over-long file or function fails the check', async (t) => {
  const file = 'appliance/imaging/settings.ts';
  const real = readFileSync(path.join(REPO_ROOT, file), 'utf8');
  const check = (tool: string, args: string[], text: string) => execa(tool, [...args, file], { cwd: REPO_ROOT, input: text, reject: false });
  t.is((await check(prettier, ['--check', '--stdin-filepath'], real)).exitCode, 0, 'the file as it is passes');
  t.not((await check(prettier, ['--check', '--stdin-filepath'], real + 'export const x = {a:1}\n')).exitCode, 0, 'prettier fails a badly formatted line');
  t.is((await check(eslint, ['--stdin', '--stdin-filename'], real)).exitCode, 0, 'eslint passes the file as it is');
  const body = Array.from({ length: 125 }, (_, i) => `  const v${i} = ${i};`).join('\n');
  const broken = [
    'export function floating(): void {\n  Promise.resolve(1);\n}',
    'export const untyped = (v: any): unknown => v;',
    `export function long(): number {\n${body}\n  return v0;\n}`,
    '\n'.repeat(300),
  ].join('\n');
  const lint = await check(eslint, ['--stdin', '--stdin-filename'], real + broken);
  t.not(lint.exitCode, 0);
  t.regex(lint.stdout, /no-floating-promises/, 'a floating promise (a rule that needs the types)');
  t.regex(lint.stdout, /no-explicit-any/, '`any` in the core');
  t.regex(lint.stdout, /max-lines-per-function/, 'a function over 120 lines');
  t.regex(lint.stdout, /File has too many lines/, 'a file over 450 lines');
});
