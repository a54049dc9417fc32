import test from 'ava';
import { execa } from 'execa';
import { truncateSync } from 'node:fs';
import { patternLoop } from '../helpers/loop.js';
import { WriteBlockGuardian } from '../../appliance/writeblock/guardian.js';
import { SourceWriteBlock } from '../../appliance/writeblock/source-writeblock.js';
import { readDiskByName } from '../../appliance/disk/inventory.js';
import { ReattachingSource } from '../../appliance/imaging/read/reattaching-source.js';
import { CustosError } from '../../appliance/errors.js';
import { allocAligned } from '../../appliance/disk/block-device.js';

const MiB = 1024 * 1024;

/** A 16 MiB loop source under write-block, read through the reader that survives an unplug; its backing file is cut to `cutTo` after the first read. */
async function cutMidRead(cutTo: number): Promise<{ read: () => Promise<number>; detach: () => Promise<void> }> {
  const src = await patternLoop(16 * MiB, {}, 7);
  const guardian = new WriteBlockGuardian({ include: (d) => d.name === src.name });
  guardian.protect(src.dev);
  const disk = readDiskByName(src.name);
  if (!disk) throw new Error('source not listed');
  const reader = new ReattachingSource({ disk, guardian, writeBlock: new SourceWriteBlock(guardian, disk), pollMs: 50 });
  const buf = allocAligned(MiB);
  if ((await reader.read(buf, MiB, 0)) !== MiB) throw new Error('first read short');
  truncateSync(src.file, cutTo);
  // The kernel now reports the new capacity, as it does (0) for a disk being removed.
  await execa('losetup', ['-c', src.dev]);
  return {
    read: () => reader.read(buf, MiB, 12 * MiB),
    detach: async () => {
      reader.close();
      await src.detach();
    },
  };
}

test('a source whose capacity drops to 0 mid-read (a disk being removed, its node still there) is a lost source, not a short disk', async (t) => {
  const s = await cutMidRead(0);
  t.teardown(s.detach);
  // A loop device has no serial: a lost source without one stops the acquisition, saying it went away.
  const err = await t.throwsAsync(s.read());
  t.true(err instanceof CustosError);
  t.is((err as CustosError).code, 'ESOURCELOST');
  t.regex(err?.message ?? '', /went away \(end of device at offset 12582912\)/);
});

test('a source that shrank but is still there ends early: the read returns 0 after the removal wait, for the caller to report the truncation', async (t) => {
  const s = await cutMidRead(8 * MiB);
  t.teardown(s.detach);
  const t0 = Date.now();
  t.is(await s.read(), 0);
  t.true(Date.now() - t0 >= 4000, 'it watched for a removal first');
});
