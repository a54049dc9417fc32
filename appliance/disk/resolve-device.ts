// Stage 1: what the examiner typed, resolved to one kernel device by its
// device number.
import { statSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { Sysfs } from './sysfs.js';
import { DeviceError } from '../errors.js';
import { safeText } from '../sanitize.js';

export interface ResolvedDevice {
  /** Kernel name of the whole disk, e.g. "sdb". */
  disk: string;
  /** Kernel name of the partition when the argument named one. */
  partition: string | null;
  majMin: string;
}

/**
 * Maps what a user typed (/dev/sdb, sdb, /dev/disk/by-id/...) to a kernel
 * device through its device number, so a renamed or symlinked node cannot
 * point custos at the wrong disk.
 */
export function resolveDevice(arg: string, sysfs = new Sysfs(), devRoot = '/dev'): ResolvedDevice {
  const shown = safeText(arg, 128);
  if (arg.trim() === '') throw new DeviceError('ENOENT', arg, 'no device given');
  const candidate = arg.includes('/') ? arg : path.join(devRoot, arg);
  let st;
  try {
    st = statSync(candidate);
  } catch {
    // A bare kernel name without a node (fixture trees, odd /dev) is still found through sysfs.
    if (!arg.includes('/') && sysfs.exists(`class/block/${arg}`)) return fromSysfsName(sysfs, arg);
    throw new DeviceError('ENOENT', arg, `${shown}: no such device`);
  }
  if (st.isFile()) throw new DeviceError('ENOTBLK', arg, `${shown} is a regular file, not a block device`);
  if (!st.isBlockDevice()) throw new DeviceError('ENOTBLK', arg, `${shown} is not a block device`);
  const major = Math.floor(st.rdev / 256) % 4096;
  const minor = (st.rdev % 256) + (Math.floor(st.rdev / 2 ** 20) % 2 ** 24) * 256;
  const majMin = `${major}:${minor}`;
  const rel = sysfs.resolve(`dev/block/${majMin}`);
  if (rel === null) throw new DeviceError('ENOENT', arg, `${shown} (${majMin}) is not known to sysfs`);
  const real = safeText(realpathSync(candidate), 128);
  const r = fromSysfsDir(sysfs, rel, majMin);
  if (r === null) throw new DeviceError('ENOENT', arg, `${real} (${majMin}) is not a disk custos can use`);
  return r;
}

function fromSysfsName(sysfs: Sysfs, name: string): ResolvedDevice {
  const rel = sysfs.resolve(`class/block/${name}`);
  const majMin = sysfs.readText(`class/block/${name}/dev`);
  const r = rel && majMin ? fromSysfsDir(sysfs, rel, majMin) : null;
  if (r === null) throw new DeviceError('ENOENT', name, `${safeText(name, 64)}: no such device`);
  return r;
}

function fromSysfsDir(sysfs: Sysfs, rel: string, majMin: string): ResolvedDevice | null {
  const name = path.basename(rel);
  if (sysfs.exists(`${rel}/partition`)) {
    return { disk: path.basename(path.dirname(rel)), partition: name, majMin };
  }
  if (!sysfs.exists(`block/${name}`)) return null;
  return { disk: name, partition: null, majMin };
}

/** For commands that act on whole disks: a partition is refused with the disk it belongs to. */
export function requireWholeDisk(arg: string, r: ResolvedDevice): string {
  if (r.partition !== null) {
    throw new DeviceError('EISPARTITION', arg, `${safeText(arg, 128)} is partition ${r.partition} of disk ${r.disk}; give the whole disk (/dev/${r.disk})`);
  }
  return r.disk;
}
