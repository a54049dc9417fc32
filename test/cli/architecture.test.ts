// The architecture rules (.dependency-cruiser.cjs, run by `npm test`) hold on
// the tree, and each of them really fails a tree that breaks it.
import test from 'ava';
import { execa } from 'execa';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
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
  for (const rule of ['tui-no-device-io', 'disk-first', 'writeblock-before-imaging', 'imaging-no-ui', 'no-circular']) t.regex(r.stdout, new RegExp(`error ${rule}:`), rule);
});
