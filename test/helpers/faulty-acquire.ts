// Acquisitions through a fault-injecting reader over a real loop device.
import type { ExecutionContext } from 'ava';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { patternLoop, tempDir } from './loop.js';
import { FaultyReader, type FaultOptions } from './faulty-reader.js';
import { DeviceReader, type SectorReader } from '../../appliance/imaging/read/sector-reader.js';
import { acquire } from '../../appliance/imaging/acquire.js';
import type { AcquireOptions } from '../../appliance/imaging/acquire-options.js';
import type { ImageRecord, SourceInfo } from '../../appliance/imaging/image-record.js';
import type { ImagingEvent } from '../../appliance/events.js';

export const SECTORS = 20481;

export function sourceInfo(r: { name: string; size: number; sectorSize: number }): SourceInfo {
  return {
    path: r.name,
    name: path.basename(r.name),
    stableId: null,
    vendor: null,
    model: null,
    serial: null,
    sizeBytes: r.size,
    logicalSectorSize: r.sectorSize,
    physicalSectorSize: null,
    sectors: r.size / r.sectorSize,
  };
}

/** An acquisition of `reader` over the loop device `disk` with what these tests share (1 MiB blocks and windows, 4 buffers, one retry, zero fill, verify); `o` gives the rest. */
export function loopAcquisition(
  reader: SectorReader,
  disk: string,
  o: Pick<AcquireOptions, 'destinations' | 'name' | 'format' | 'hashes'> & Partial<AcquireOptions>,
): AcquireOptions {
  const MiB = 1024 * 1024;
  return {
    reader,
    source: sourceInfo(reader),
    sourceDisk: disk,
    writeBlock: null,
    splitSize: 0,
    pieceSize: MiB,
    blockSize: MiB,
    buffers: 4,
    policy: { retries: 1, fill: 0 },
    fastFirst: false,
    verify: true,
    verifySource: false,
    ...o,
  };
}

export interface FaultyAcquireOptions extends FaultOptions {
  fill?: number;
  retries?: number;
  blockSize?: number;
  fastFirst?: boolean;
  /** Split into segments of this size, into two destinations (default: one raw image). */
  splitTwo?: number;
  /** Sees every event as it happens, with the image path and the reader (to look at both mid-run). */
  onEvent?: (e: ImagingEvent, at: { imagePath: string; reader: FaultyReader }) => void;
}

export async function imageWithFaults(bad: number[], o: FaultyAcquireOptions = {}) {
  const loop = await patternLoop(SECTORS * 512, {}, 21);
  const reader = new FaultyReader(new DeviceReader(loop.dev), bad, o);
  const out = tempDir();
  const out2 = o.splitTwo ? tempDir() : null;
  const events: ImagingEvent[] = [];
  let record: ImageRecord;
  try {
    record = await acquire({
      reader,
      source: sourceInfo(reader),
      sourceDisk: loop.name,
      writeBlock: null,
      destinations: out2 ? [out, out2] : [out],
      name: 'faulty',
      format: o.splitTwo ? 'split' : 'raw',
      splitSize: o.splitTwo ?? 0,
      hashes: ['md5', 'sha256'],
      pieceSize: 1024 * 1024,
      blockSize: o.blockSize ?? 1024 * 1024,
      buffers: 4,
      policy: { retries: o.retries ?? 2, fill: o.fill ?? 0 },
      fastFirst: o.fastFirst ?? false,
      verify: true,
      verifySource: false,
      onEvent: (e) => {
        events.push(e);
        o.onEvent?.(e, { imagePath: path.join(out, 'faulty.raw'), reader });
      },
    });
  } finally {
    reader.close();
  }
  const source = readFileSync(loop.file);
  // Each copy read back as one stream (segments concatenated in order).
  const copies = [out, ...(out2 ? [out2] : [])].map((dir) => Buffer.concat(record.image.files.map((f) => readFileSync(path.join(dir, f.file)))));
  await loop.detach();
  for (const dir of [out, out2]) if (dir) rmSync(dir, { recursive: true, force: true });
  return { record, source, image: copies[0] as Buffer, copies, events, reader };
}

/** Sorted bad LBAs to the ranges custos should report. */
export function ranges(lbas: number[]): { firstLba: number; lastLba: number }[] {
  const out: { firstLba: number; lastLba: number }[] = [];
  for (const l of [...lbas].sort((a, b) => a - b)) {
    const last = out[out.length - 1];
    if (last && last.lastLba === l - 1) last.lastLba = l;
    else out.push({ firstLba: l, lastLba: l });
  }
  return out;
}

export function checkImage(t: ExecutionContext, source: Buffer, image: Buffer, bad: Set<number>, fill: number): void {
  t.is(image.length, source.length, 'image as long as the source');
  let wrong = 0;
  for (let lba = 0; lba < SECTORS; lba++) {
    const img = image.subarray(lba * 512, lba * 512 + 512);
    const ok = bad.has(lba) ? img.every((b) => b === fill) : img.equals(source.subarray(lba * 512, lba * 512 + 512));
    if (!ok) wrong++;
  }
  t.is(wrong, 0, 'fill exactly at the bad LBAs, source bytes everywhere else');
}
