// A read that does not return: the host cannot make a real disk stall (no
// device-mapper delay, no nbd), so a reader over a real loop device holds
// one read back, as a failing drive's retries do.
import test from 'ava';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { patternLoop, tempDir } from './helpers/loop.js';
import { sourceInfo } from './helpers/faulty-acquire.js';
import { DeviceReader, type SectorReader } from '../appliance/imaging/sector-reader.js';
import { acquire } from '../appliance/imaging/acquire.js';
import type { ImagingEvent } from '../appliance/imaging/events.js';
import type { ProgressReport } from '../appliance/imaging/progress.js';

class StallingReader implements SectorReader {
  readonly name: string;
  readonly size: number;
  readonly sectorSize: number;
  constructor(
    private readonly inner: SectorReader,
    private readonly at: number,
    private readonly ms: number,
  ) {
    this.name = inner.name;
    this.size = inner.size;
    this.sectorSize = inner.sectorSize;
  }
  async read(buffer: Buffer, length: number, offset: number): Promise<number> {
    if (offset === this.at) await new Promise((r) => setTimeout(r, this.ms));
    return this.inner.read(buffer, length, offset);
  }
  close(): void {
    this.inner.close();
  }
}

test.serial('a read that hangs: progress keeps coming and says how long nothing moved, the log names the read, the record times it', async (t) => {
  const loop = await patternLoop(8 * 1024 * 1024, {}, 41);
  t.teardown(loop.detach);
  const out = tempDir();
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const stallAt = 3 * 1024 * 1024;
  const reader = new StallingReader(new DeviceReader(loop.dev), stallAt, 3500);
  const events: ImagingEvent[] = [];
  const reports: ProgressReport[] = [];
  try {
    const rec = await acquire({
      reader,
      source: sourceInfo(reader),
      sourceDisk: loop.name,
      writeBlock: null,
      destinations: [out],
      name: 'slow',
      format: 'raw',
      splitSize: 0,
      hashes: ['sha256'],
      pieceSize: 1024 * 1024,
      blockSize: 1024 * 1024,
      buffers: 4,
      policy: { retries: 1, fill: 0 },
      fastFirst: false,
      verify: false,
      verifySource: false,
      slowReadMs: 1000,
      progressIntervalMs: 250,
      onEvent: (e) => events.push(e),
      onProgress: (p) => reports.push(p),
    });
    t.is(rec.status, 'complete');
    // Buffer.equals: ava's deepEqual on megabytes takes seconds.
    t.true(readFileSync(path.join(out, 'slow.raw')).equals(readFileSync(loop.file)));
    // Live: reports kept coming while the read hung, and said so.
    const stalled = reports.filter((p) => p.stalledS !== null);
    t.true(stalled.length >= 4, `${stalled.length} reports while stalled`);
    t.true(Math.max(...stalled.map((p) => p.stalledS ?? 0)) >= 3);
    t.true(reports.filter((p) => p.stalledS === null && p.bytesDone > stallAt).length > 0, 'the stall ends once the read returns');
    // The log: when it was noticed and when it came back, with the offset.
    const stalls = events.filter((e) => e.type === 'read-stall');
    t.is(stalls.length, 2);
    t.regex(stalls[0]?.message ?? '', new RegExp(`at offset ${stallAt} \\(LBA ${stallAt / 512}\\) has not returned for`));
    t.regex(stalls[1]?.message ?? '', new RegExp(`read at offset ${stallAt} returned after 3\\.\\d+ s`));
    // The record: every read timed, the slow one first.
    const timing = rec.readTiming;
    t.truthy(timing);
    t.is(timing?.slowest[0]?.offset, stallAt);
    t.true((timing?.slowest[0]?.seconds ?? 0) >= 3.5);
    t.is(timing?.slowReads, 1);
    t.is(timing?.histogram.reduce((n, b) => n + b.reads, 0), timing?.reads);
    t.true((timing?.reads ?? 0) >= 8);
  } finally {
    reader.close();
  }
});

/** Reads overlapping [from, to) take `ms` each, and every read's offset is noted in order. */
class SlowAreaReader implements SectorReader {
  readonly name: string;
  readonly size: number;
  readonly sectorSize: number;
  readonly order: number[] = [];
  constructor(
    private readonly inner: SectorReader,
    private readonly from: number,
    private readonly to: number,
    private readonly ms: number,
  ) {
    this.name = inner.name;
    this.size = inner.size;
    this.sectorSize = inner.sectorSize;
  }
  async read(buffer: Buffer, length: number, offset: number): Promise<number> {
    this.order.push(offset);
    if (offset < this.to && offset + length > this.from) await new Promise((r) => setTimeout(r, this.ms));
    return this.inner.read(buffer, length, offset);
  }
  close(): void {
    this.inner.close();
  }
}

test.serial('--fast-first: a slow area is kept as read, what follows it is left for the end, and the image is exact', async (t) => {
  const MiB = 1024 * 1024;
  const loop = await patternLoop(8 * MiB, {}, 43);
  t.teardown(loop.detach);
  const out = tempDir();
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const reader = new SlowAreaReader(new DeviceReader(loop.dev), 3 * MiB, 5 * MiB, 400);
  const events: ImagingEvent[] = [];
  try {
    const rec = await acquire({
      reader,
      source: sourceInfo(reader),
      sourceDisk: loop.name,
      writeBlock: null,
      destinations: [out],
      name: 'slowarea',
      format: 'raw',
      splitSize: 0,
      hashes: ['sha256'],
      pieceSize: MiB,
      blockSize: MiB,
      buffers: 4,
      policy: { retries: 1, fill: 0 },
      fastFirst: true,
      verify: true,
      verifySource: false,
      slowBlockMs: 250,
      onEvent: (e) => events.push(e),
    });
    t.is(rec.status, 'complete');
    t.true(readFileSync(path.join(out, 'slowarea.raw')).equals(readFileSync(loop.file)));
    const slow = events.filter((e) => e.type === 'slow-area');
    t.is(slow[0]?.data?.['offset'], 3 * MiB, 'the first slow block is noticed');
    t.deepEqual(rec.recovery?.deferred[0], { offset: 4 * MiB, length: MiB, errno: null }, 'the block after it is left for later');
    // Good data first: offset 5 MiB was read before the deferred 4 MiB.
    t.true(reader.order.indexOf(5 * MiB) < reader.order.indexOf(4 * MiB));
    t.is(rec.badSectors, 0);
  } finally {
    reader.close();
  }
});
