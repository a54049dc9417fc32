// A read that does not return: the host cannot make a real disk stall (no
// device-mapper delay, no nbd), so a reader over a real loop device holds
// one read back, as a failing drive's retries do.
import test from 'ava';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { patternLoop, tempDir } from '../helpers/loop.js';
import { sourceInfo } from '../helpers/faulty-acquire.js';
import { DeviceReader, type SectorReader } from '../../appliance/imaging/read/sector-reader.js';
import { acquire } from '../../appliance/imaging/acquire.js';
import type { ImagingEvent } from '../../appliance/events.js';
import type { ProgressReport } from '../../appliance/imaging/pipeline/progress.js';

/** Delays each read by what `delayMs` says for it, and notes every read's offset in order. */
class DelayingReader implements SectorReader {
  readonly name: string;
  readonly size: number;
  readonly sectorSize: number;
  readonly order: number[] = [];
  constructor(
    private readonly inner: SectorReader,
    private readonly delayMs: (offset: number, length: number) => number,
  ) {
    this.name = inner.name;
    this.size = inner.size;
    this.sectorSize = inner.sectorSize;
  }
  async read(buffer: Buffer, length: number, offset: number): Promise<number> {
    this.order.push(offset);
    const ms = this.delayMs(offset, length);
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
    return this.inner.read(buffer, length, offset);
  }
  close(): void {
    this.inner.close();
  }
}

/** A raw SHA-256 acquisition of `reader` into `out` in 1 MiB blocks, no source re-read. */
function rawInto(reader: SectorReader, disk: string, out: string, name: string) {
  return {
    reader,
    source: sourceInfo(reader),
    sourceDisk: disk,
    writeBlock: null,
    destinations: [out],
    name,
    format: 'raw' as const,
    splitSize: 0,
    hashes: ['sha256' as const],
    pieceSize: 1024 * 1024,
    blockSize: 1024 * 1024,
    buffers: 4,
    policy: { retries: 1, fill: 0 },
    verifySource: false,
  };
}

test.serial('a read that hangs: progress keeps coming and says how long nothing moved, the log names the read, the record times it', async (t) => {
  const loop = await patternLoop(8 * 1024 * 1024, {}, 41);
  t.teardown(loop.detach);
  const out = tempDir();
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const stallAt = 3 * 1024 * 1024;
  const reader = new DelayingReader(new DeviceReader(loop.dev), (offset) => (offset === stallAt ? 4500 : 0));
  const events: ImagingEvent[] = [];
  const reports: ProgressReport[] = [];
  try {
    const rec = await acquire({
      ...rawInto(reader, loop.name, out, 'slow'),
      fastFirst: false,
      verify: false,
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
    t.true(stalled.length >= 3, `${stalled.length} reports while stalled`);
    t.true(Math.max(...stalled.map((p) => p.stalledS ?? 0)) >= 3);
    t.true(reports.filter((p) => p.stalledS === null && p.bytesDone > stallAt).length > 0, 'the stall ends once the read returns');
    // The log: when it was noticed and when it came back, with the offset.
    const stalls = events.filter((e) => e.type === 'read-stall');
    t.is(stalls.length, 2);
    t.regex(stalls[0]?.message ?? '', new RegExp(`at offset ${stallAt} \\(LBA ${stallAt / 512}\\) has not returned for`));
    t.regex(stalls[1]?.message ?? '', new RegExp(`read at offset ${stallAt} returned after 4\\.\\d+ s`));
    // The record: every read timed, the slow one first.
    const timing = rec.readTiming;
    t.truthy(timing);
    t.is(timing?.slowest[0]?.offset, stallAt);
    t.true((timing?.slowest[0]?.seconds ?? 0) >= 4.5);
    t.is(timing?.slowReads, 1);
    t.is(
      timing?.histogram.reduce((n, b) => n + b.reads, 0),
      timing?.reads,
    );
    t.true((timing?.reads ?? 0) >= 8);
  } finally {
    reader.close();
  }
});

test.serial('--fast-first: a slow area is kept as read, what follows it is left for the end, and the image is exact', async (t) => {
  const MiB = 1024 * 1024;
  const loop = await patternLoop(8 * MiB, {}, 43);
  t.teardown(loop.detach);
  const out = tempDir();
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  // Reads overlapping 3-5 MiB take 1.5 s each (the threshold is 1 s: a loaded machine must not make others slow).
  const reader = new DelayingReader(new DeviceReader(loop.dev), (offset, length) => (offset < 5 * MiB && offset + length > 3 * MiB ? 1500 : 0));
  const events: ImagingEvent[] = [];
  try {
    const rec = await acquire({
      ...rawInto(reader, loop.name, out, 'slowarea'),
      fastFirst: true,
      verify: true,
      slowBlockMs: 1000,
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
