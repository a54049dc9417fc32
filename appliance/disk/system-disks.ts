// Stage 1: which disks carry the running system or the medium it booted from.
import path from 'node:path';
import type { Sysfs } from './sysfs.js';
import type { MountEntry } from './mountinfo.js';

export type DiskRole = 'running-system' | 'boot-medium';

/** Mount points that mean "this disk carries the operating system we run on". */
const SYSTEM_MOUNTS = new Set(['/', '/usr', '/boot', '/boot/efi', '/efi', '/var', '/home']);
/** Mount points live systems (ours and others) use for the medium they booted from. */
const BOOT_MEDIUM_MOUNTS = new Set(['/run/custos/boot', '/run/live/medium', '/run/initramfs/live', '/lib/live/mount/medium', '/run/archiso/bootmnt', '/cdrom']);

/**
 * Whole disks under a block device given by major:minor: the disk itself for a
 * partition, and the physical members for dm/md devices (through `slaves/`).
 */
export function disksUnder(sysfs: Sysfs, majMin: string, depth = 0): string[] {
  if (depth > 8) return [];
  const dir = sysfs.resolve(`dev/block/${majMin}`);
  if (dir === null) return [];
  return disksUnderDir(sysfs, dir, depth);
}

function disksUnderDir(sysfs: Sysfs, dir: string, depth: number): string[] {
  const name = path.basename(dir);
  const isPartition = sysfs.exists(`${dir}/partition`);
  const diskDir = isPartition ? path.dirname(dir) : dir;
  const slaves = sysfs.list(`${diskDir}/slaves`);
  if (slaves.length > 0) {
    const out = new Set<string>();
    for (const s of slaves) {
      const sdir = sysfs.resolve(`class/block/${s}`);
      if (sdir !== null && depth < 8) for (const d of disksUnderDir(sysfs, sdir, depth + 1)) out.add(d);
    }
    return [...out];
  }
  return [isPartition ? path.basename(diskDir) : name];
}

/**
 * Which disks hold the running system or the boot medium, from the mount table
 * and active swap. A disk may have both roles (a workstation booted from its
 * own disk); running-system is reported first.
 */
export function systemRoles(sysfs: Sysfs, mounts: MountEntry[], swaps: string[]): Map<string, Set<DiskRole>> {
  const roles = new Map<string, Set<DiskRole>>();
  const add = (disk: string, role: DiskRole) => {
    const set = roles.get(disk) ?? new Set<DiskRole>();
    set.add(role);
    roles.set(disk, set);
  };
  for (const m of mounts) {
    const role = SYSTEM_MOUNTS.has(m.mountPoint) ? 'running-system' : BOOT_MEDIUM_MOUNTS.has(m.mountPoint) ? 'boot-medium' : null;
    if (role === null) continue;
    for (const d of disksUnder(sysfs, m.majMin)) add(d, role);
  }
  for (const swap of swaps) {
    const dir = sysfs.resolve(`class/block/${path.basename(swap)}`);
    if (dir !== null) for (const d of disksUnderDir(sysfs, dir, 0)) add(d, 'running-system');
  }
  return roles;
}
