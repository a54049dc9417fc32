// Stage: recorded (virtual disks). Where the container files live: the file
// system holding the examiner's folder, how it is mounted (read-only, with
// options that replay no journal), the block device under it, whether that
// device is write-blocked, and the writes the kernel counted on its disk
// while the acquisition ran: the evidence that opening the VM files on a
// suspect drive left the drive unwritten.
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { native } from '../native.js';
import { readMountinfo, type MountEntry } from '../disk/mountinfo.js';
import { parseStat, writesBetween, type IoCounters } from '../disk/kernel-stat.js';
import { safeText } from '../sanitize.js';

export interface ContainerFileSystem {
  mountPoint: string;
  fsType: string;
  /** Per-mount options, then the file system's own (noload, norecovery, ...). */
  mountOptions: string[];
  readOnlyMount: boolean;
  /** The block device named by the mount (a partition or a disk), or null (tmpfs, a network or FUSE file system without one). */
  device: string | null;
  /** The whole disk whose counters are kept (the device itself if it is a disk). */
  disk: string | null;
  /** The device's read-only flag (BLKROGET) at the start: true when it is write-blocked. */
  deviceReadOnly: boolean | null;
  /** What the kernel counted on the disk between the start and the end; null until the end, or without a disk. */
  writes: ReturnType<typeof writesBetween> | null;
}

function majMinOf(dev: number): string {
  // Linux's new_encode_dev: minor low byte, major, then the minor's high bits.
  return `${(dev >>> 8) & 0xfff}:${(dev & 0xff) | ((dev >>> 12) & 0xfff00)}`;
}

/** The mount holding `folder`: the deepest mount point above it with the folder's device number. */
function mountOf(folder: string, entries: MountEntry[]): MountEntry | null {
  const majMin = majMinOf(statSync(folder).dev);
  const within = (m: MountEntry) => m.mountPoint === '/' || folder === m.mountPoint || folder.startsWith(`${m.mountPoint}/`);
  return entries.filter((m) => m.majMin === majMin && within(m)).sort((a, b) => b.mountPoint.length - a.mountPoint.length)[0] ?? null;
}

/** The kernel name of a block device path, if /sys knows it. */
function blockName(source: string): string | null {
  if (!source.startsWith('/dev/')) return null;
  try {
    const name = path.basename(realpathSync(source));
    return existsSync(`/sys/class/block/${name}`) ? name : null;
  } catch {
    return null;
  }
}

/** The whole disk a block device belongs to: its parent in /sys for a partition. */
function diskOf(name: string): string {
  if (!existsSync(`/sys/class/block/${name}/partition`)) return name;
  return path.basename(path.dirname(realpathSync(`/sys/class/block/${name}`)));
}

function counters(disk: string): IoCounters | null {
  try {
    return parseStat(readFileSync(`/sys/class/block/${disk}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

function readOnlyFlag(device: string): boolean | null {
  const n = native();
  let fd: number;
  try {
    fd = n.openReadOnly(device, false, false);
  } catch {
    return null;
  }
  try {
    return n.getReadOnly(fd);
  } finally {
    n.close(fd);
  }
}

/** Takes the file system and the disk's counters at the start; `end()` adds the writes counted since. */
export class ContainerFileSystemWatch {
  private readonly start: IoCounters | null;
  readonly fs: ContainerFileSystem | null;

  constructor(folder: string, entries: MountEntry[] = readMountinfo()) {
    const m = mountOf(folder, entries);
    if (!m) {
      this.fs = null;
      this.start = null;
      return;
    }
    const name = blockName(m.source);
    const disk = name ? diskOf(name) : null;
    this.start = disk ? counters(disk) : null;
    const text = (s: string) => safeText(s, 200);
    this.fs = {
      mountPoint: text(m.mountPoint),
      fsType: text(m.fsType),
      mountOptions: [...m.options, ...m.superOptions].map(text),
      readOnlyMount: m.readOnly,
      device: name ? `/dev/${name}` : null,
      disk: disk ? `/dev/${disk}` : null,
      deviceReadOnly: name ? readOnlyFlag(`/dev/${name}`) : null,
      writes: null,
    };
  }

  /** The record at the end: the writes counted on the disk since the start. */
  end(): ContainerFileSystem | null {
    if (!this.fs) return null;
    const disk = this.fs.disk ? path.basename(this.fs.disk) : null;
    const now = disk ? counters(disk) : null;
    return { ...this.fs, writes: this.start && now ? writesBetween(this.start, now) : null };
  }
}

/** The file system in words, for the log and the report. */
export function fileSystemText(f: ContainerFileSystem): string {
  const where = f.device ? `${f.device}${f.disk !== f.device ? ` on ${f.disk ?? '?'}` : ''}` : 'no block device';
  const block = f.deviceReadOnly === null ? '' : f.deviceReadOnly ? ', device write-blocked' : ', DEVICE WRITABLE';
  const writes = f.writes ? `; ${f.writes.writeIos} write(s), ${f.writes.discardIos} discard(s) counted on the disk while read` : '';
  return `the container files are on ${f.fsType} at ${f.mountPoint} (${f.readOnlyMount ? 'read-only' : 'READ-WRITE'}: ${f.mountOptions.join(',')}), ${where}${block}${writes}`;
}
