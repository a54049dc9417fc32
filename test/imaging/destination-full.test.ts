import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { execa } from 'execa';
import { mkdirSync, readFileSync, readdirSync, writeFileSync, statSync, statfsSync, rmSync, symlinkSync, truncateSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { attachLoop, ext4Loop, patternLoop, sha256File, tempDir } from '../helpers/loop.js';
import { DeviceReader, type SectorReader } from '../../appliance/imaging/read/sector-reader.js';
import { acquire } from '../../appliance/imaging/acquire.js';
import { AcquisitionAborted } from '../../appliance/imaging/acquire-options.js';
import { WriteBlockGuardian } from '../../appliance/writeblock/guardian.js';
import { SourceWriteBlock } from '../../appliance/writeblock/source-writeblock.js';
import { readDiskByName } from '../../appliance/disk/inventory.js';
import type { ImageRecord } from '../../appliance/imaging/image-record.js';
import type { ImagingEvent } from '../../appliance/events.js';
import { Sysfs } from '../../appliance/disk/sysfs.js';
import { readCounters } from '../../appliance/disk/kernel-stat.js';
import { custos } from '../helpers/cli.js';
import { loopAcquisition } from '../helpers/faulty-acquire.js';

/** Runs `before` once, just before the first read: after preflight, before any byte. */
class GatedReader implements SectorReader {
  readonly name: string;
  readonly size: number;
  readonly sectorSize: number;
  private gate: (() => void) | null;
  constructor(
    private readonly inner: SectorReader,
    before: () => void,
  ) {
    this.name = inner.name;
    this.size = inner.size;
    this.sectorSize = inner.sectorSize;
    this.gate = before;
  }
  read(buffer: Buffer, length: number, offset: number): Promise<number> {
    const g = this.gate;
    this.gate = null;
    g?.();
    return this.inner.read(buffer, length, offset);
  }
  close(): void {
    this.inner.close();
  }
}

for (const format of ['raw', 'e01'] as const)
  test(`destination fills up mid-run (${format}): clear error, aborted event, source untouched, nothing complete`, async (t) => {
    const src = await patternLoop(24 * 1024 * 1024, {}, 31);
    t.teardown(src.detach);
    const srcHash = await sha256File(src.file);
    // The evidence drive: a small ext4 file system on its own loop device.
    const fsDir = tempDir();
    t.teardown(() => rmSync(fsDir, { recursive: true, force: true }));
    const fsFile = path.join(fsDir, 'dest.img');
    await execa('truncate', ['-s', '48M', fsFile]);
    await execa('mkfs.ext4', ['-q', '-F', '-m', '0', fsFile]);
    const destLoop = await attachLoop(fsFile);
    t.teardown(destLoop.detach);
    const mnt = tempDir();
    await execa('mount', [destLoop.dev, mnt]);
    t.teardown(() => execa('umount', [mnt]).then(() => undefined));

    const guardian = new WriteBlockGuardian({ include: (d) => d.name === src.name });
    guardian.protect(src.dev);
    const disk = readDiskByName(src.name);
    if (!disk) throw new Error('source not listed');
    const wb = new SourceWriteBlock(guardian, disk);
    const before = readCounters(new Sysfs(), src.name);

    // Preflight sees enough room; then someone else takes most of it.
    const reader = new GatedReader(new DeviceReader(src.dev), () => {
      const sf = statfsSync(mnt);
      const leave = 8 * 1024 * 1024;
      writeFileSync(path.join(mnt, 'other-case.bin'), Buffer.alloc(Math.max(0, sf.bavail * sf.bsize - leave)));
    });
    t.teardown(() => reader.close());
    const events: ImagingEvent[] = [];
    const err = await t.throwsAsync(
      acquire({
        reader,
        source: {
          path: src.dev,
          name: src.name,
          stableId: disk.stableId,
          vendor: null,
          model: null,
          serial: null,
          sizeBytes: reader.size,
          logicalSectorSize: 512,
          physicalSectorSize: 512,
          sectors: reader.size / 512,
        },
        sourceDisk: src.name,
        writeBlock: wb,
        destinations: [mnt],
        name: 'case1',
        format,
        splitSize: 0,
        // E01 without compression, so that it fills the drive as raw does.
        ...(format === 'e01' ? { ewf: { compression: 'none' as const, segmentSize: 1024 ** 3 } } : {}),
        hashes: format === 'e01' ? ['md5', 'sha1', 'sha256'] : ['md5', 'sha256'],
        pieceSize: 4 * 1024 * 1024,
        blockSize: 1024 * 1024,
        buffers: 4,
        policy: { retries: 2, fill: 0 },
        fastFirst: false,
        verify: true,
        verifySource: false,
        onEvent: (e) => events.push(e),
      }),
    );
    t.true(err instanceof AcquisitionAborted);
    const aborted = err as AcquisitionAborted;
    t.is(aborted.code, 'ENOSPC');
    const file = format === 'e01' ? 'case1.E01' : 'case1.raw';
    t.regex(aborted.message, new RegExp(`write ${mnt}/${file} at offset \\d+: ENOSPC`));
    t.is(aborted.record.status, 'aborted');
    t.deepEqual(aborted.record.hashes, {});
    t.true(events.some((e) => e.type === 'aborted'));
    t.false(events.some((e) => e.type === 'acquired' || e.type === 'completed'));
    // Nothing on the destination claims to be a complete image.
    const names = readdirSync(mnt);
    t.true(names.includes(file));
    for (const f of names.filter((n) => n.endsWith('.custos.json'))) {
      t.is((JSON.parse(readFileSync(path.join(mnt, f), 'utf8')) as ImageRecord).status, 'aborted');
    }
    // The source: no writes by the kernel's count, same bytes.
    t.is(readCounters(new Sysfs(), src.name)?.writeIos, before?.writeIos);
    t.is(aborted.record.writeBlock?.writesDuring?.writeIos, 0);
    t.is(await sha256File(src.file), srcHash);
  });

// Seen in QEMU: a USB source unplugged between two reads; the progress tick's write-block re-check found its node gone before the reader did, and its error escaped from the timer and took the UI down.
test('the source node vanishing between two reads does not throw from the progress tick; the run goes on and the re-checks resume', async (t) => {
  const src = await patternLoop(16 * 1024 * 1024, {}, 37);
  t.teardown(src.detach);
  const srcHash = await sha256File(src.file);
  const out = tempDir();
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const guardian = new WriteBlockGuardian({ include: (d) => d.name === src.name });
  guardian.protect(src.dev);
  const real = readDiskByName(src.name);
  if (!real) throw new Error('source not listed');
  // The source as named through a link of our own: removing the link is the node going away; the loop device itself stays readable.
  const links = tempDir();
  t.teardown(() => rmSync(links, { recursive: true, force: true }));
  const link = path.join(links, src.name);
  symlinkSync(src.dev, link);
  const wb = new SourceWriteBlock(guardian, { ...real, devicePath: link });
  let ticks = 0;
  let reads = 0;
  const inner = new DeviceReader(src.dev);
  t.teardown(() => inner.close());
  const reader: SectorReader = {
    name: inner.name,
    size: inner.size,
    sectorSize: inner.sectorSize,
    close: () => inner.close(),
    read: async (buffer, length, offset) => {
      reads++;
      if (reads === 2) unlinkSync(link);
      // Ticks run while the node is gone, then it is back.
      if (reads === 4) {
        const at = ticks;
        while (ticks < at + 3) await new Promise((r) => setTimeout(r, 5));
        symlinkSync(src.dev, link);
      }
      return inner.read(buffer, length, offset);
    },
  };
  const checks: number[] = [];
  const result = await acquire({
    reader,
    source: {
      path: src.dev,
      name: src.name,
      stableId: real.stableId,
      vendor: null,
      model: null,
      serial: null,
      sizeBytes: reader.size,
      logicalSectorSize: 512,
      physicalSectorSize: 512,
      sectors: reader.size / 512,
    },
    sourceDisk: src.name,
    writeBlock: wb,
    destinations: [out],
    name: 'gone',
    format: 'raw',
    splitSize: 0,
    hashes: ['sha256'],
    pieceSize: 4 * 1024 * 1024,
    blockSize: 1024 * 1024,
    buffers: 2,
    policy: { retries: 0, fill: 0 },
    fastFirst: false,
    verify: false,
    verifySource: false,
    progressIntervalMs: 10,
    onProgress: (p) => {
      ticks++;
      if (p.writeBlock) checks.push(p.writeBlock.checks);
    },
    onEvent: () => undefined,
  });
  t.is(result.status, 'complete');
  t.is(result.hashes.sha256, srcHash);
  // While the node was gone the count stood still; after it came back it went on.
  const counts = [...new Set(checks)];
  t.true(checks.length > counts.length, 'some ticks made no check');
  t.true((counts.at(-1) ?? 0) > 1, 'checks went on after the node was back');
});

/** A small ext4 evidence drive on its own loop device, mounted; unmounted and detached after the test. */
async function ext4Drive(t: ExecutionContext, mib: number): Promise<{ file: string; dev: string; mnt: string }> {
  const loop = await ext4Loop(t, mib);
  const mnt = tempDir();
  await execa('mount', [loop.dev, mnt]);
  t.teardown(() => execa('umount', [mnt], { reject: false }).then(() => undefined));
  return { file: loop.file, dev: loop.dev, mnt };
}

/**
 * Makes the second half of `image` unreadable through the real kernel: the
 * loop device under its file system is shrunk to end inside the file, so
 * reads there fail with EIO (past the end of the device). Returns the first
 * byte of the file that can no longer be read.
 */
function cutDriveInside(drive: { file: string; dev: string }, image: string): number {
  const map = execFileSync('filefrag', ['-v', image], { encoding: 'utf8' });
  const bs = Number(/blocks of (\d+) bytes/.exec(map)?.[1]);
  const extents = [...map.matchAll(/^\s*\d+:\s+(\d+)\.\.\s*(\d+):\s+(\d+)\.\.\s*(\d+):/gm)].map((m) => ({
    l: Number(m[1]),
    lEnd: Number(m[2]),
    p: Number(m[3]),
  }));
  const half = Math.floor(statSync(image).size / bs / 2);
  const at = extents.find((e) => e.l <= half && half <= e.lEnd);
  if (!bs || !at) throw new Error(`no extent at block ${half}: ${map}`);
  const cut = at.p + (half - at.l);
  // Extents placed lower on the disk stay readable: the first lost block is the lowest logical one at or past the cut.
  const firstLost = Math.min(...extents.filter((e) => e.p + (e.lEnd - e.l) >= cut).map((e) => e.l + Math.max(0, cut - e.p)));
  truncateSync(drive.file, cut * bs);
  execFileSync('losetup', ['--set-capacity', drive.dev]);
  return firstLost * bs;
}

// Seen in QEMU: the evidence drive pulled just after the image was flushed. Verify then read EIO and retried and filled it
// as if it were the source, for minutes, counting "unreadable sectors". A copy is not a source: its first read error ends its verify.
test('verify meets a read error on the evidence drive: that copy is reported unreadable at once (file, offset, EIO), nothing retried or filled, the acquisition verify-failed', async (t) => {
  const src = await patternLoop(8 * 1024 * 1024, {}, 38);
  t.teardown(src.detach);
  const srcHash = await sha256File(src.file);
  const drive = await ext4Drive(t, 48);
  const out = path.join(drive.mnt, 'case');
  mkdirSync(out);
  const reader = new DeviceReader(src.dev);
  t.teardown(() => reader.close());
  const events: ImagingEvent[] = [];
  let lostAt = -1;
  const record = await acquire({
    ...loopAcquisition(reader, src.name, { destinations: [out], name: 'cut', format: 'raw', hashes: ['md5', 'sha256'] }),
    policy: { retries: 3, fill: 0 },
    onEvent: (e) => {
      events.push(e);
      if (e.type === 'verify-started') lostAt = cutDriveInside(drive, path.join(out, 'cut.raw'));
    },
  });
  t.true(lostAt > 0);
  t.is(record.status, 'verify-failed');
  t.is(record.hashes.sha256, srcHash, 'the acquisition itself read the source whole');
  t.is(record.badSectors, 0);
  const v = record.destinations[0]?.verification;
  t.is(v?.match, false);
  t.is(v?.unreadable?.file, path.join(out, 'cut.raw'));
  const offset = v?.unreadable?.offset ?? -1;
  t.true(offset <= lostAt && offset > lostAt - 1024 * 1024, `read error at ${offset}, first lost byte ${lostAt}`);
  t.regex(v?.unreadable?.error ?? '', /EIO/);
  const after = events.slice(events.findIndex((e) => e.type === 'verify-started'));
  t.false(
    after.some((e) => e.type === 'read-error' || e.type === 'bad-range' || e.type === 'read-recovered'),
    'nothing retried or filled',
  );
  t.regex(after.find((e) => e.type === 'verify-result')?.message ?? '', /image UNREADABLE: reading back .*cut\.raw at offset \d+: EIO/);
  t.is(await sha256File(src.file), srcHash);
});

test('custos verify on a copy its drive can no longer read: "image readable" fails with the file and EIO, exit 1', async (t) => {
  const src = await patternLoop(8 * 1024 * 1024, {}, 39);
  t.teardown(src.detach);
  const drive = await ext4Drive(t, 48);
  const state = tempDir();
  t.teardown(() => rmSync(state, { recursive: true, force: true }));
  const out = path.join(drive.mnt, 'case');
  mkdirSync(out);
  const a = await custos(['writeblock', 'protect', src.dev], state);
  t.is(a.exitCode, 0, String(a.stderr));
  const r = await custos(['acquire', '--source', src.dev, '--out', out, '--name', 'cut', '--case', 'c-1', '--examiner', 'Jane', '--json'], state);
  t.is(r.exitCode, 0, String(r.stderr));
  t.is((await custos(['verify', out], state)).exitCode, 0);
  cutDriveInside(drive, path.join(out, 'cut.raw'));
  const v = await custos(['verify', out], state);
  t.is(v.exitCode, 1, String(v.stdout));
  t.regex(String(v.stdout), /image readable.*reading back .*cut\.raw at offset \d+: EIO/);
  t.notRegex(String(v.stdout) + String(v.stderr), /at .*\.js:\d+/, 'no stack trace');
});
