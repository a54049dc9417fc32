// Stage: written, before anything is read: each destination checked (not on
// the source, writable, room, file-size limits, no files in the way).
import { accessSync, constants, existsSync, realpathSync, statSync, statfsSync } from 'node:fs';
import path from 'node:path';
import { Sysfs } from '../../disk/sysfs.js';
import { disksUnder } from '../../disk/system-disks.js';
import { readMountinfo } from '../../disk/mountinfo.js';
import type { Segment } from './segment.js';
import { PreflightError } from '../../errors.js';

export { PreflightError };

export interface DestinationFacts {
  dir: string;
  /** major:minor of the file system holding the directory. */
  fsDevice: string;
  /** The whole disks that file system lives on, per sysfs. */
  disks: string[];
  fsType: string;
  freeBytes: number;
  maxFileBytes: number | null;
}

/** The largest file FAT can hold. */
export const FAT_MAX_FILE = 2 ** 32 - 1;

// statfs f_type values (linux/magic.h) that matter for image files.
const FS_TYPES: Record<number, { name: string; maxFile: number | null }> = {
  0x4d44: { name: 'vfat', maxFile: FAT_MAX_FILE },
  0x2011bab0: { name: 'exfat', maxFile: null },
  0xef53: { name: 'ext2/3/4', maxFile: null },
  0x58465342: { name: 'xfs', maxFile: null },
  0x9123683e: { name: 'btrfs', maxFile: null },
  0x01021994: { name: 'tmpfs', maxFile: null },
  0x5346544e: { name: 'ntfs', maxFile: null },
  0x7366746e: { name: 'ntfs3', maxFile: null },
};

const FUSE_SUPER_MAGIC = 0x65735546;

/**
 * A FUSE file system. custos mounts NTFS with ntfs-3g, a `fuseblk` mount of a
 * block device; NTFS as Windows reads it holds at most 2^32 - 1 clusters less
 * 64 KiB per file (16 TiB with 4 KiB clusters), and ntfs-3g reports the
 * cluster as its block size. Another fuseblk file system (exfat-fuse) allows
 * more, so the limit is never too loose. Other FUSE mounts: unknown limits.
 */
function fuseType(fsDevice: string, bsize: bigint): { name: string; maxFile: number | null } {
  const blockBacked = readMountinfo().some((m) => m.majMin === fsDevice && m.fsType === 'fuseblk');
  return blockBacked ? { name: 'fuseblk (ntfs-3g)', maxFile: (2 ** 32 - 1) * Number(bsize) - 64 * 1024 } : { name: 'fuse', maxFile: null };
}

/** Room kept for the acquisition record next to the image. */
export const RECORD_RESERVE = 4 * 1024 * 1024;

export interface PreflightInput {
  dirs: string[];
  segments: Segment[];
  /** Files that will be created beside the segments (the record). */
  extraFiles: string[];
  /** The source's kernel name; null when the source is not a block device here. */
  sourceDisk: string | null;
  sysfs?: Sysfs;
  /** Resuming: the image's files are there up to this offset of the stream (they are expected, not refused). */
  resumingAt?: number;
}

/**
 * Everything that can be known before reading: each destination is a
 * writable directory, distinct, not on the source, holds no image of the same
 * name, has room for the whole image, and allows files that big.
 */
export function preflightDestinations(input: PreflightInput): DestinationFacts[] {
  const sysfs = input.sysfs ?? new Sysfs();
  if (input.dirs.length === 0) throw new PreflightError('ENODEST', 'no destination given (--out DIR)');
  const facts: DestinationFacts[] = [];
  const seen = new Set<string>();
  for (const dir of input.dirs) {
    let real: string;
    try {
      real = realpathSync(dir);
    } catch (e) {
      throw new PreflightError('EDEST', `destination ${dir} does not exist (${(e as { code?: string }).code ?? 'error'})`);
    }
    const st = statSync(real);
    if (!st.isDirectory()) throw new PreflightError('ENOTDIR', `destination ${dir} is not a directory`);
    // Checked before writability: a source mounted read-only is still the source.
    const fsDevice = `${Math.floor(st.dev / 256) & 0xfff}:${(st.dev & 0xff) | ((st.dev >> 12) & 0xfff00)}`;
    const disks = disksUnder(sysfs, fsDevice);
    if (input.sourceDisk && disks.includes(input.sourceDisk)) {
      throw new PreflightError('EDESTONSOURCE', `destination ${dir} is on the source disk ${input.sourceDisk}`);
    }
    try {
      accessSync(real, constants.W_OK);
    } catch (e) {
      throw new PreflightError('EDEST', `destination ${dir} is not writable (${(e as { code?: string }).code ?? 'error'})`);
    }
    if (seen.has(real)) throw new PreflightError('EDUPDEST', `destination ${dir} is given twice`);
    seen.add(real);
    for (const f of input.resumingAt === undefined ? [...input.segments.map((s) => s.file), ...input.extraFiles] : []) {
      if (existsSync(path.join(real, f))) throw new PreflightError('EEXIST', `${path.join(dir, f)} already exists; custos never overwrites an image`);
    }
    const sf = statfsSync(real, { bigint: true });
    const type =
      Number(sf.type) === FUSE_SUPER_MAGIC ? fuseType(fsDevice, sf.bsize) : (FS_TYPES[Number(sf.type)] ?? { name: `0x${sf.type.toString(16)}`, maxFile: null });
    facts.push({ dir: real, fsDevice, disks, fsType: type.name, freeBytes: Number(sf.bavail * sf.bsize), maxFileBytes: type.maxFile });
  }
  // Resuming, the files there already hold part of the image (even past the resume point: it is written over).
  const there = (dir: string) =>
    input.resumingAt === undefined
      ? 0
      : input.segments.reduce((n, s) => n + (existsSync(path.join(dir, s.file)) ? statSync(path.join(dir, s.file)).size : 0), 0);
  const need = (dir: string) => Math.max(0, input.segments.reduce((n, s) => n + s.size, 0) - there(dir)) + RECORD_RESERVE;
  const largest = Math.max(...input.segments.map((s) => s.size));
  // Destinations sharing a file system share its free space.
  const byFs = new Map<string, DestinationFacts[]>();
  for (const f of facts) byFs.set(f.fsDevice, [...(byFs.get(f.fsDevice) ?? []), f]);
  for (const group of byFs.values()) {
    const first = group[0] as DestinationFacts;
    const total = group.reduce((n, g) => n + need(g.dir), 0);
    if (first.freeBytes < total) {
      throw new PreflightError('ENOSPC', `destination ${group.map((g) => g.dir).join(' and ')}: ${first.freeBytes} bytes free, ${total} needed`);
    }
    if (first.maxFileBytes !== null && largest > first.maxFileBytes) {
      throw new PreflightError(
        'EFBIG',
        `destination ${first.dir} is ${first.fsType}: files are limited to ${first.maxFileBytes} bytes; use --format split with a smaller --split-size, or --format e01 with a smaller --segment-size`,
      );
    }
  }
  return facts;
}
