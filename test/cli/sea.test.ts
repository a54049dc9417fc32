import test from 'ava';
import { execa } from 'execa';
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/cli.js';
import { patternLoop, sha256File, tempDir } from '../helpers/loop.js';
import type { CustodyRecord } from '../../appliance/custody/custody-record.js';

/** Where the executable unpacks its code when run as root (appliance/sea/bootstrap.cts). */
const APP_BASE = '/run/custos/app';

// The single executable that goes into the ISO: built from this checkout, then used like the CLI.
test('the single executable acquires and verifies like the checkout, records its own hash, and builds reproducibly', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const exe = path.join(dir, 'custos');
  const build = await execa('sh', [path.join(REPO_ROOT, 'scripts/build-sea.sh'), exe], { cwd: REPO_ROOT });
  t.regex(build.stdout, /files inside \(code archive [0-9a-f]{16}\)/);
  t.regex((await execa(exe, ['version'])).stdout, /^custos \d+\.\d+\.\d+ \(node v24\./);
  // The executable runs its one-file bundle (out/custos.cjs): with the CLI's own module taken out of
  // the unpacked tree, every command below still runs, and its workers still load from the files beside it.
  const id = /\(code archive ([0-9a-f]{16})\)/.exec(build.stdout)?.[1] ?? '';
  const unpacked = path.join(APP_BASE, id);
  t.true(existsSync(path.join(unpacked, 'out/custos.cjs')), `the bundle is unpacked in ${unpacked}`);
  const cli = path.join(unpacked, 'out/appliance/cli.js');
  renameSync(cli, `${cli}.away`);
  t.teardown(() => renameSync(`${cli}.away`, cli));

  const loop = await patternLoop(3 * 1024 * 1024 + 512, {}, 71);
  t.teardown(loop.detach);
  const state = path.join(dir, 'state');
  const env = { CUSTOS_STATE_DIR: state };
  await execa(exe, ['writeblock', 'protect', loop.dev], { env });
  const out = path.join(dir, 'out');
  await execa('mkdir', [out]);
  const r = await execa(exe, ['acquire', '--source', loop.dev, '--out', out, '--hash', 'md5,sha256', '--verify', '--json'], { env, reject: false });
  t.is(r.exitCode, 0, r.stderr);
  t.is(await sha256File(path.join(out, 'image.raw')), await sha256File(loop.file));
  const rec = JSON.parse(readFileSync(path.join(out, 'custody.json'), 'utf8')) as CustodyRecord;
  t.is(rec.tool.executable.path, exe);
  t.is(rec.tool.executable.sha256, await sha256File(exe));
  t.is((await execa(exe, ['verify', out], { env, reject: false })).exitCode, 0);
  // E01 from the packaged code: its compression and file-hash workers and the addon's Adler-32.
  const e01 = path.join(dir, 'e01');
  await execa('mkdir', [e01]);
  const e = await execa(exe, ['acquire', '--source', loop.dev, '--out', e01, '--format', 'e01', '--verify'], { env, reject: false });
  t.is(e.exitCode, 0, e.stderr);
  const ev = await execa('ewfverify', ['-q', path.join(e01, 'image.E01')], { reject: false });
  t.is(ev.exitCode, 0, ev.stdout);

  // Same commit, same bytes.
  const again = path.join(dir, 'custos-again');
  await execa('sh', [path.join(REPO_ROOT, 'scripts/build-sea.sh'), again], { cwd: REPO_ROOT });
  t.is(await sha256File(again), await sha256File(exe));
});
