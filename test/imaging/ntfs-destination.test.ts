import test from 'ava';
import { execa } from 'execa';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { custos } from '../helpers/cli.js';
import { ntfsLoop, patternLoop, sha256File, tempDir } from '../helpers/loop.js';
import { preflightDestinations } from '../../appliance/imaging/write/preflight.js';
import type { ImageRecord } from '../../appliance/imaging/image-record.js';

// NTFS evidence drives, mounted through ntfs-3g (FUSE) as custos mounts them: an image lands exactly,
// free space is checked before a byte is read, and the file size limit is NTFS's.

test('an NTFS evidence drive through ntfs-3g: the image lands exactly, preflight knows its free space and NTFS’s file size limit', async (t) => {
  const ntfs = await ntfsLoop(t, 40);
  const mnt = path.join(tempDir(), 'ntfs');
  mkdirSync(mnt);
  const m = await execa('ntfs-3g', ['-o', 'rw,nosuid,nodev,noexec', ntfs.dev, mnt], { reject: false });
  t.is(m.exitCode, 0, m.stderr);
  t.teardown(() => execa('umount', [mnt], { reject: false }).then(() => rmSync(path.dirname(mnt), { recursive: true, force: true })));

  const facts = preflightDestinations({ dirs: [mnt], segments: [{ file: 'x.raw', start: 0, size: 1024 * 1024 }], extraFiles: [], sourceDisk: null });
  t.is(facts[0]?.fsType, 'fuseblk (ntfs-3g)');
  // 4 KiB clusters (mkntfs's default at this size): 2^32 - 1 of them, less 64 KiB, as Windows reads NTFS.
  t.is(facts[0]?.maxFileBytes, (2 ** 32 - 1) * 4096 - 64 * 1024);
  t.deepEqual(facts[0]?.disks, [ntfs.name], 'the fuse mount is traced to its disk (a destination on the source is refused by disk)');

  const state = tempDir();
  t.teardown(() => rmSync(state, { recursive: true, force: true }));
  const src = await patternLoop(8 * 1024 * 1024 + 512 * 3, {}, 71);
  t.teardown(src.detach);
  t.is((await custos(['writeblock', 'protect', src.dev], state)).exitCode, 0);
  const r = await custos(['acquire', '--source', src.dev, '--out', mnt, '--json'], state);
  t.is(r.exitCode, 0, String(r.stderr));
  const rec = JSON.parse(String(r.stdout)) as ImageRecord;
  t.is(rec.destinations[0]?.fsType, 'fuseblk (ntfs-3g)');
  t.is(await sha256File(path.join(mnt, 'image.raw')), await sha256File(src.file));

  // Too big for what is left: refused before anything is read or written.
  const big = await patternLoop(48 * 1024 * 1024, {}, 72);
  t.teardown(big.detach);
  t.is((await custos(['writeblock', 'protect', big.dev], state)).exitCode, 0);
  const second = path.join(mnt, 'second');
  mkdirSync(second);
  const full = await custos(['acquire', '--source', big.dev, '--out', second], state);
  t.is(full.exitCode, 1);
  t.regex(String(full.stderr), /bytes free, \d+ needed/);
  t.deepEqual(readdirSync(second), [], 'nothing written');
});
