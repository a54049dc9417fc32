import test from 'ava';
import { execa } from 'execa';
import { closeSync, constants, openSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { WriteBlockGuardian, type GuardianEvent } from '../../appliance/writeblock/guardian.js';
import { readCounters } from '../../appliance/disk/kernel-stat.js';
import { Sysfs } from '../../appliance/disk/sysfs.js';
import { allocAligned } from '../../appliance/disk/block-device.js';
import { readDiskByName } from '../../appliance/disk/inventory.js';
import { errnoOf, WriteBlockError } from '../../appliance/errors.js';
import { attachLoop, patternLoop, sha256File, tempDir, writePatternImage, type Loop } from '../helpers/loop.js';

const sysfs = new Sysfs();

/** Tries a buffered write() and an O_DIRECT write to a node; returns the errno of each (0 = it wrote). */
function tryWrites(node: string, sectorSize: number): { buffered: number; direct: number } {
  const attempt = (flags: number, buf: Buffer) => {
    let fd: number | null = null;
    try {
      fd = openSync(node, flags);
      writeSync(fd, buf, 0, buf.length, 0);
      return 0;
    } catch (e) {
      return errnoOf(e) ?? -1;
    } finally {
      if (fd !== null) closeSync(fd);
    }
  };
  const buffered = attempt(constants.O_WRONLY, Buffer.alloc(sectorSize, 0xee));
  const aligned = allocAligned(sectorSize);
  aligned.fill(0xdd);
  const direct = attempt(constants.O_WRONLY | constants.O_DIRECT, aligned);
  return { buffered, direct };
}

/** A guardian that manages only this test's loop devices, so parallel tests are not touched. */
function scopedGuardian(dir: string, intervalMs = 100) {
  return new WriteBlockGuardian({ include: (d) => d.loop?.backingFile.text.startsWith(dir + '/') ?? false, intervalMs });
}

async function waitFor(events: GuardianEvent[], pred: (e: GuardianEvent) => boolean, ms = 3000): Promise<GuardianEvent | undefined> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const hit = events.find(pred);
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}

for (const sectorSize of [512, 4096] as const) {
  test(`protect: write() and O_DIRECT writes fail with EPERM on disk and partitions (${sectorSize}-byte sectors); counters and content unchanged; release makes it writable`, async (t) => {
    const loop = await patternLoop(16 * 1024 * 1024, { sectorSize, partitionsMiB: [4, 0] });
    t.teardown(loop.detach);
    const before = await sha256File(loop.file);
    const g = scopedGuardian(loop.dir);
    g.protect(loop.dev);
    t.is(sysfs.readText(`block/${loop.name}/ro`), '1');
    for (const p of loop.partitions) t.is(sysfs.readText(`block/${loop.name}/${p}/ro`), '1');
    const countersBefore = readCounters(sysfs, loop.name);
    const partsBefore = loop.partitions.map((p) => readCounters(sysfs, loop.name, p));
    for (const node of [loop.dev, ...loop.partitions.map((p) => `/dev/${p}`)]) {
      t.deepEqual(tryWrites(node, sectorSize), { buffered: 1, direct: 1 }, `${node}: EPERM for both`);
    }
    t.deepEqual(readCounters(sysfs, loop.name), countersBefore);
    t.deepEqual(
      loop.partitions.map((p) => readCounters(sysfs, loop.name, p)),
      partsBefore,
    );
    const st = g.status([loop.dev])[0];
    t.deepEqual(st?.sinceProtect, { writeIos: 0, writeSectors: 0, discardIos: 0, discardSectors: 0, flushIos: 0 });
    t.true(st?.intact);
    t.is(await sha256File(loop.file), before, 'backing file unchanged');

    g.release(loop.dev, WriteBlockGuardian.confirmationFor(readDiskByName(loop.name)!));
    t.is(sysfs.readText(`block/${loop.name}/ro`), '0');
    for (const node of [loop.dev, ...loop.partitions.map((p) => `/dev/${p}`)]) {
      t.deepEqual(tryWrites(node, sectorSize), { buffered: 0, direct: 0 }, `${node}: writable after release`);
    }
    t.not(await sha256File(loop.file), before);
    t.deepEqual(
      g.log.map((e) => e.type),
      ['protected', 'released'],
    );
  });
}

test("a flag reset behind the guardian's back (blockdev --setrw) is set back and logged", async (t) => {
  const loop = await patternLoop(8 * 1024 * 1024, { partitionsMiB: [2, 0] });
  t.teardown(loop.detach);
  const g = scopedGuardian(loop.dir, 100);
  const events: GuardianEvent[] = [];
  g.on('event', (e) => events.push(e));
  g.protect(loop.dev);
  g.start();
  t.teardown(() => g.stop());
  await execa('blockdev', ['--setrw', loop.dev]);
  const reset = await waitFor(events, (e) => e.type === 'reset-detected' && e.device === loop.name);
  t.truthy(reset, 'reset detected');
  t.truthy(await waitFor(events, (e) => e.type === 'reprotected' && e.device === loop.name));
  t.is(sysfs.readText(`block/${loop.name}/ro`), '1');
  // Partition flags too: clear one and the disk, the guardian restores both.
  const part = loop.partitions[0] ?? '';
  await execa('blockdev', ['--setrw', `/dev/${part}`]);
  await execa('blockdev', ['--setrw', loop.dev]);
  t.truthy(await waitFor(events, (e) => e.type === 'reprotected' && e.device === part));
  t.is(sysfs.readText(`block/${loop.name}/${part}/ro`), '1');
  t.deepEqual(tryWrites(`/dev/${part}`, 512), { buffered: 1, direct: 1 });
  for (const e of events) t.regex(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

test('a device that appears while guarding is protected within a second, and new partitions too', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const g = scopedGuardian(dir, 100);
  const events: GuardianEvent[] = [];
  g.on('event', (e) => events.push(e));
  g.protectAll();
  g.start();
  t.teardown(() => g.stop());
  const file = path.join(dir, 'hotplug.img');
  writePatternImage(file, 8 * 1024 * 1024);
  // A partition table in the image, added to the kernel only later (as a rescan would).
  await execa('sfdisk', ['-q', file], { input: 'label: dos\n,2MiB\n,\n' });
  const attachedAt = Date.now();
  const loop: Loop = await attachLoop(file, { keepReadOnlyFlag: true });
  t.teardown(loop.detach);
  const prot = await waitFor(events, (e) => e.type === 'protected' && e.device === loop.name, 2000);
  t.truthy(prot);
  t.true(Date.parse(prot?.time ?? '') - attachedAt < 1000, `protected after ${Date.parse(prot?.time ?? '') - attachedAt} ms`);
  t.true(events.some((e) => e.type === 'device-appeared' && e.device === loop.name));
  t.is(sysfs.readText(`block/${loop.name}/ro`), '1');
  // Partitions added through BLKPG while protected, as a rescan would; both get their own flag.
  await execa('partx', ['-a', loop.dev]);
  loop.partitions = [`${loop.name}p1`, `${loop.name}p2`];
  for (const p of loop.partitions) {
    t.truthy(await waitFor(events, (e) => e.type === 'partition-appeared' && e.device === p), `${p} appeared`);
    t.deepEqual(tryWrites(`/dev/${p}`, 512), { buffered: 1, direct: 1 });
  }
  // The loop's own detach: once only, so the teardown cannot touch a number reused since.
  await loop.detach();
  t.truthy(await waitFor(events, (e) => e.type === 'device-vanished' && e.device === loop.name));
});

test('protectAll skips released disks; release refuses the source, a wrong confirmation, and partitions', async (t) => {
  const src = await patternLoop(4 * 1024 * 1024, { partitionsMiB: [1, 0] });
  t.teardown(src.detach);
  const dst = await patternLoop(4 * 1024 * 1024, {}, 2);
  t.teardown(dst.detach);
  const g = new WriteBlockGuardian({ include: (d) => d.name === src.name || d.name === dst.name });
  const seen: GuardianEvent[] = [];
  g.on('event', (e: GuardianEvent) => seen.push(e));
  const protectedNow = g.protectAll().map((d) => d.name);
  const why = () => `protected ${protectedNow.join(',')}; events ${JSON.stringify(seen.map((e) => [e.type, e.device, e.detail]))}`;
  t.is(sysfs.readText(`block/${src.name}/ro`), '1', why());
  t.is(sysfs.readText(`block/${dst.name}/ro`), '1', why());
  g.holdAsSource(src.dev);
  const srcDisk = readDiskByName(src.name)!;
  const e1 = t.throws(() => g.release(src.dev, WriteBlockGuardian.confirmationFor(srcDisk)), { instanceOf: WriteBlockError });
  t.is(e1?.code, 'ESOURCE');
  t.throws(() => g.release(`/dev/${src.partitions[0]}`, 'x'), { message: /is partition .* give the whole disk/ });
  const e2 = t.throws(() => g.release(dst.dev, 'not-the-serial'), { instanceOf: WriteBlockError });
  t.is(e2?.code, 'ECONFIRM');
  t.is(sysfs.readText(`block/${src.name}/ro`), '1', 'refusals changed nothing');
  t.is(sysfs.readText(`block/${dst.name}/ro`), '1');
  g.release(dst.dev, WriteBlockGuardian.confirmationFor(readDiskByName(dst.name)!));
  t.is(sysfs.readText(`block/${dst.name}/ro`), '0');
  g.protectAll();
  t.is(sysfs.readText(`block/${dst.name}/ro`), '0', 'a released destination stays writable');
  t.deepEqual(tryWrites(dst.dev, 512), { buffered: 0, direct: 0 });
  t.deepEqual(tryWrites(src.dev, 512), { buffered: 1, direct: 1 });
});

// Seen in QEMU: the evidence drive pulled and plugged in again kept its release, so the UI skipped the confirmation while the kernel had just set the new attachment read-only, and mounting it failed.
test('a release ends when the drive goes: the same drive attached again is protected on sight and must be confirmed again', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const g = scopedGuardian(dir, 100);
  const events: GuardianEvent[] = [];
  g.on('event', (e) => events.push(e));
  g.start();
  t.teardown(() => g.stop());
  const file = path.join(dir, 'evidence.img');
  writePatternImage(file, 4 * 1024 * 1024);
  const first: Loop = await attachLoop(file, { keepReadOnlyFlag: true });
  t.teardown(first.detach);
  t.truthy(await waitFor(events, (e) => e.type === 'protected' && e.device === first.name));
  const disk = readDiskByName(first.name);
  if (!disk) throw new Error('not listed');
  g.release(first.dev, WriteBlockGuardian.confirmationFor(disk));
  t.true(g.isReleased(disk));
  t.is(sysfs.readText(`block/${first.name}/ro`), '0');
  await first.detach();
  const gone = await waitFor(events, (e) => e.type === 'device-vanished' && e.device === first.name);
  t.regex(gone?.detail ?? '', /its release ends/);
  t.false(g.isReleased(disk), 'the release went with the drive');

  const again: Loop = await attachLoop(file, { keepReadOnlyFlag: true });
  t.teardown(again.detach);
  const back = readDiskByName(again.name);
  t.is(back?.stableId, disk.stableId, 'the same identity');
  t.truthy(await waitFor(events, (e) => e.type === 'protected' && e.device === again.name && Date.parse(e.time) >= Date.parse(gone?.time ?? '')));
  t.is(sysfs.readText(`block/${again.name}/ro`), '1');
  t.deepEqual(tryWrites(again.dev, 512), { buffered: 1, direct: 1 });
  t.false(g.isReleased(back as NonNullable<typeof back>));
});
