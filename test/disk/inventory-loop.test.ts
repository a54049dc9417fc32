import test from 'ava';
import { execa } from 'execa';
import { listDisks, readDiskByName } from '../../appliance/disk/inventory.js';
import { blockdev, patternLoop, tempDir } from '../helpers/loop.js';

for (const sectorSize of [512, 4096] as const) {
  for (const partitioned of [false, true]) {
    test(`inventory matches blockdev on a ${sectorSize}-byte-sector loop ${partitioned ? 'with' : 'without'} a partition table`, async (t) => {
      const loop = await patternLoop(20481 * sectorSize, { sectorSize, partitionsMiB: partitioned ? [4, 0] : undefined });
      t.teardown(loop.detach);
      const d = readDiskByName(loop.name);
      t.truthy(d);
      if (!d) return;
      t.is(d.sizeBytes, Number(await blockdev('--getsize64', loop.dev)));
      t.is(d.sysfsSizeBytes, d.sizeBytes);
      t.is(d.logicalSectorSize, Number(await blockdev('--getss', loop.dev)));
      t.is(d.physicalSectorSize, Number(await blockdev('--getpbsz', loop.dev)));
      t.is(d.probe.sizeBytes, d.sizeBytes);
      t.is(d.probe.logicalSectorSize, sectorSize);
      t.is(d.transport, 'loop');
      t.is(d.stableIdSource, 'loop-backing');
      t.is(d.loop?.backingFile.text, loop.file);
      t.false(d.readOnly);
      t.false(d.warnings.some((w) => w.code === 'size-mismatch' || w.code === 'probe-failed'));
      if (!partitioned) {
        t.deepEqual(d.partitions, []);
        return;
      }
      const dump = (await execa('sfdisk', ['--json', loop.dev])).stdout;
      const table = JSON.parse(dump) as { partitiontable: { sectorsize?: number; partitions: { node: string; start: number; size: number }[] } };
      const ss = table.partitiontable.sectorsize ?? sectorSize;
      t.deepEqual(
        d.partitions.map((p) => ({ node: p.devicePath, start: p.startBytes, size: p.sizeBytes })),
        table.partitiontable.partitions.map((p) => ({ node: p.node, start: p.start * ss, size: p.size * ss })),
      );
      for (const p of d.partitions) {
        t.is(p.sizeBytes, Number(await blockdev('--getsize64', p.devicePath)));
      }
    });
  }
}

test('a mounted partition is reported with its mount point and warned about', async (t) => {
  const loop = await patternLoop(16 * 1024 * 1024, { partitionsMiB: [8, 0] });
  t.teardown(loop.detach);
  const part = `/dev/${loop.partitions[0]}`;
  await execa('mkfs.ext4', ['-q', '-F', part]);
  const mnt = tempDir('custos mnt-');
  await execa('mount', ['-t', 'ext4', '-o', 'ro,noload', part, mnt]);
  t.teardown(() => execa('umount', [mnt]).then(() => undefined));
  const d = listDisks().find((x) => x.name === loop.name);
  t.deepEqual(
    d?.partitions[0]?.mounts.map((m) => [m.mountPoint, m.fsType, m.readOnly]),
    [[mnt, 'ext4', true]],
  );
  t.true(d?.warnings.some((w) => w.code === 'mounted' && w.message.includes(mnt)));
});

test('the disk holding / is marked as the running system', (t) => {
  const disks = listDisks();
  const root = disks.filter((d) => d.roles.includes('running-system'));
  // On this host / is a block device (CI and developer VMs); the appliance runs from RAM and has none.
  const rootMount = disks.flatMap((d) => [...d.mounts, ...d.partitions.flatMap((p) => p.mounts)]).find((m) => m.mountPoint === '/');
  if (rootMount) t.true(root.length >= 1);
  else t.pass('/ is not on a listed block device');
});
