// Stage 1: what an examiner must be told about a disk before choosing it
// (system disk, boot medium, twins, removable, zero size, ...).
import type { Disk, DiskWarning, WarningCode } from './disk.js';

export type { DiskWarning, WarningCode } from './disk.js';

/** The facts an examiner must see before choosing a disk, each as a one-line warning. */
export function diskWarnings(disk: Disk, probed: boolean): DiskWarning[] {
  const w: DiskWarning[] = [];
  const add = (code: WarningCode, message: string) => w.push({ code, message });
  const p = disk.probe;
  if (probed && !p.ok && p.error !== null) add('probe-failed', `could not query ${disk.devicePath}: ${p.error}`);
  if (p.sizeBytes !== null && p.sizeBytes !== disk.sysfsSizeBytes) {
    add('size-mismatch', `sysfs size ${disk.sysfsSizeBytes} B differs from BLKGETSIZE64 ${p.sizeBytes} B`);
  }
  if (p.logicalSectorSize !== null && p.logicalSectorSize !== disk.logicalSectorSize) {
    add('sector-size-mismatch', `sysfs logical sector ${disk.logicalSectorSize} B differs from BLKSSZGET ${p.logicalSectorSize} B`);
  }
  if (disk.transport === 'usb' && disk.logicalSectorSize === 4096) {
    add('usb-4k-logical-sector', 'USB bridge presents 4096-byte logical sectors; partition offsets may differ when the drive is attached directly');
  }
  if (disk.nvme && disk.nvme.namespaces.length > 1) {
    add(
      'nvme-multiple-namespaces',
      `NVMe controller ${disk.nvme.controller} has ${disk.nvme.namespaces.length} namespaces (${disk.nvme.namespaces.join(', ')}); image each one`,
    );
  }
  const mounts = [...disk.mounts, ...disk.partitions.flatMap((x) => x.mounts)];
  if (mounts.length > 0) {
    add('mounted', `mounted: ${mounts.map((m) => `${m.device} on ${m.mountPoint}${m.readOnly ? ' (ro)' : ''}`).join(', ')}`);
  }
  if (disk.roles.includes('running-system')) add('running-system', 'holds the running system');
  if (disk.roles.includes('boot-medium')) add('boot-medium', 'is the boot medium');
  const holders = [...disk.holders, ...disk.partitions.flatMap((x) => x.holders)];
  if (holders.length > 0) add('in-use-by-holder', `in use by ${holders.join(', ')}`);
  if (disk.stableIdSource === 'path') add('no-stable-id', 'no serial or WWN: identity rests on the bus path only');
  if (disk.serialSource === 'usb-bridge') add('serial-from-usb-bridge', "serial is the USB bridge's, not the drive's");
  if (disk.sysfsSizeBytes === 0 && disk.removable) add('no-medium', 'no medium present');
  return w;
}
