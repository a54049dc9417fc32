// What custos knows of one whole disk, as the inventory reads it: the type
// every stage after discovery works with.
import type { DeviceIdentity } from './device-identity.js';
import type { StableIdSource } from './stable-id.js';
import type { Transport, UsbBridge } from './transport.js';
import type { DiskRole } from './system-disks.js';
import type { DeviceString } from '../sanitize.js';
import type { CustosMedium } from './custos-medium.js';

export type WarningCode =
  | 'size-mismatch'
  | 'sector-size-mismatch'
  | 'usb-4k-logical-sector'
  | 'nvme-multiple-namespaces'
  | 'mounted'
  | 'boot-medium'
  | 'running-system'
  | 'in-use-by-holder'
  | 'no-stable-id'
  | 'serial-from-usb-bridge'
  | 'no-medium'
  | 'probe-failed'
  | 'twin'
  | 'boot-medium-ambiguous'
  | 'holds-custos-image'
  | 'hpa'
  | 'dco-hidden'
  | 'ata-locked'
  | 'identify-damaged'
  | 'nvme-detached'
  | 'capacity-mismatch'
  | 'encrypted-volume'
  | 'sed-locked'
  | 'sed-locking'
  | 'sed-shadow-mbr'
  | 'drive-health';

export interface DiskWarning {
  code: WarningCode;
  message: string;
}

export interface MountRef {
  device: string;
  mountPoint: string;
  fsType: string;
  readOnly: boolean;
}

export interface Partition {
  name: string;
  devicePath: string;
  majMin: string;
  number: number | null;
  startBytes: number;
  sizeBytes: number;
  readOnly: boolean;
  holders: string[];
  mounts: MountRef[];
}

/** What the ioctls on the device node say; null fields when the node could not be opened. */
export interface IoctlProbe {
  ok: boolean;
  sizeBytes: number | null;
  logicalSectorSize: number | null;
  physicalSectorSize: number | null;
  readOnly: boolean | null;
  error: string | null;
}

/** A whole disk; identity fields (vendor, model, serial, serialSource, firmware, wwn) come from DeviceIdentity. */
export interface Disk extends DeviceIdentity {
  name: string;
  devicePath: string;
  majMin: string;
  /**
   * This attachment of this device: kernel name plus the kernel's per-attachment
   * sequence number (`diskseq`, never reused within a boot). Every write-block
   * decision is keyed by it; the stable id only recognises a device.
   */
  attachment: string;
  diskseq: number | null;
  stableId: string;
  stableIdSource: StableIdSource;
  /** Resolved sysfs device path, e.g. /sys/devices/pci0000:00/.../block/sda. */
  kernelPath: string;
  transport: Transport;
  kind: 'disk' | 'cdrom' | 'virtual';
  usbBridge: UsbBridge | null;
  /** Size in bytes: BLKGETSIZE64 when probed, else sysfs. */
  sizeBytes: number;
  sysfsSizeBytes: number;
  logicalSectorSize: number;
  physicalSectorSize: number;
  rotational: boolean;
  removable: boolean;
  /** sysfs `ro`: the kernel's effective read-only state. */
  readOnly: boolean;
  probe: IoctlProbe;
  partitions: Partition[];
  holders: string[];
  mounts: MountRef[];
  roles: DiskRole[];
  /** Other attached disks with the same serial or stable id (USB docks that report one fixed serial, two loops on one file). */
  twins: string[];
  /** Whether the disk holds a custos ISO, and whether that is proven to be the medium this system booted from. */
  custosMedium: CustosMedium;
  loop: { backingFile: DeviceString; offset: number; sizeLimit: number } | null;
  nvme: { controller: string; namespaces: string[] } | null;
  warnings: DiskWarning[];
}
