import path from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { Sysfs } from './sysfs.js';
import { BlockDevice } from './block-device.js';
import { errnoOf } from './errors.js';
import { errnoName } from './errno.js';
import { readMountinfo, readSwaps, type MountEntry } from './mountinfo.js';
import { deviceString, safeText, type DeviceString } from './sanitize.js';
import { systemRoles, type DiskRole } from './system-disks.js';
import { transportOf, usbBridgeOf, type Transport, type UsbBridge } from './transport.js';
import { identityOf, type DeviceIdentity } from './device-identity.js';
import { stableIdOf, type StableIdSource } from './stable-id.js';
import { diskWarnings, type DiskWarning } from './disk-warnings.js';

/** sysfs `size`, `start` and partition geometry are always in 512-byte units. */
export const SYSFS_SECTOR = 512;

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
  loop: { backingFile: DeviceString; offset: number; sizeLimit: number } | null;
  nvme: { controller: string; namespaces: string[] } | null;
  warnings: DiskWarning[];
}

export interface InventoryOptions {
  sysfsRoot?: string;
  procRoot?: string;
  devRoot?: string;
  /** Open each device node for BLKGETSIZE64 and friends (off for fixture trees). */
  probe?: boolean;
}

/** glibc's makedev() encoding, as fs.Stats.rdev reports it. */
export function devNumber(majMin: string): number {
  const [major = -1, minor = -1] = majMin.split(':').map(Number);
  return (major & 0xfff) * 256 + (minor & 0xff) + Math.floor(minor / 256) * 2 ** 20 + Math.floor(major / 4096) * 2 ** 44;
}

function probeNode(nodePath: string, majMin: string): IoctlProbe {
  const failed = (error: string): IoctlProbe => ({
    ok: false, sizeBytes: null, logicalSectorSize: null, physicalSectorSize: null, readOnly: null, error,
  });
  let dev: BlockDevice;
  try {
    dev = BlockDevice.open(nodePath);
  } catch (e) {
    const n = errnoOf(e);
    return failed(n === null ? String((e as Error).message) : errnoName(n));
  }
  try {
    // A stale or planted node could point elsewhere: only trust the one whose rdev matches sysfs.
    if (dev.rdev !== devNumber(majMin)) {
      return failed(`${nodePath} is not device ${majMin}`);
    }
    return {
      ok: true,
      sizeBytes: dev.size(),
      logicalSectorSize: dev.logicalSectorSize(),
      physicalSectorSize: dev.physicalSectorSize(),
      readOnly: dev.isReadOnly(),
      error: null,
    };
  } catch (e) {
    const n = errnoOf(e);
    return failed(n === null ? String((e as Error).message) : errnoName(n));
  } finally {
    dev.close();
  }
}

function mountsFor(mounts: MountEntry[], majMin: string, device: string): MountRef[] {
  return mounts
    .filter((m) => m.majMin === majMin)
    .map((m) => ({ device, mountPoint: safeText(m.mountPoint), fsType: safeText(m.fsType, 32), readOnly: m.readOnly }));
}

function isUnusedVirtual(name: string, sysfs: Sysfs): boolean {
  // Unattached loop devices and empty ram disks are placeholders, not disks.
  if (/^(loop|ram|zram|nbd)\d+$/.test(name)) return (sysfs.readInt(`block/${name}/size`) ?? 0) === 0;
  return false;
}

interface InventoryContext {
  sysfs: Sysfs;
  mounts: MountEntry[];
  roles: Map<string, Set<DiskRole>>;
  probe: boolean;
  devRoot: string;
}

/** Written by the appliance's init: the kernel name of the device it booted from. */
export function bootMediumFile(): string {
  return path.join(process.env['CUSTOS_STATE_DIR'] ?? '/run/custos', 'boot-medium');
}

function markBootMedium(sysfs: Sysfs, roles: Map<string, Set<DiskRole>>): void {
  let name: string;
  try {
    name = readFileSync(bootMediumFile(), 'utf8').trim();
  } catch {
    return;
  }
  if (!/^[A-Za-z0-9._-]+$/.test(name)) return;
  const dir = sysfs.resolve(`class/block/${name}`);
  if (dir === null) return;
  // A partition's disk is the directory above it.
  const disk = existsSync(path.join(dir, 'partition')) ? path.basename(path.dirname(dir)) : name;
  const set = roles.get(disk) ?? new Set<DiskRole>();
  set.add('boot-medium');
  roles.set(disk, set);
}

function context(options: InventoryOptions): InventoryContext {
  const sysfs = new Sysfs(options.sysfsRoot ?? '/sys');
  const procRoot = options.procRoot ?? '/proc';
  const mounts = readMountinfo(procRoot);
  const roles = systemRoles(sysfs, mounts, readSwaps(procRoot));
  // The live system mounts nothing from its boot medium, so its init names it (by the ISO's volume label).
  if (options.sysfsRoot === undefined) markBootMedium(sysfs, roles);
  return {
    sysfs,
    mounts,
    roles,
    probe: options.probe ?? true,
    devRoot: options.devRoot ?? '/dev',
  };
}

/** Lists whole disks from sysfs, one Disk each, sorted by kernel name. */
export function listDisks(options: InventoryOptions = {}): Disk[] {
  const ctx = context(options);
  const disks: Disk[] = [];
  for (const name of ctx.sysfs.list('block')) {
    const disk = isUnusedVirtual(name, ctx.sysfs) ? null : readDisk(ctx, name);
    if (disk) disks.push(disk);
  }
  return disks.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

/** One disk by kernel name, or null when sysfs has no such (listed) whole disk. */
export function readDiskByName(name: string, options: InventoryOptions = {}): Disk | null {
  const ctx = context(options);
  if (!ctx.sysfs.list('block').includes(name) || isUnusedVirtual(name, ctx.sysfs)) return null;
  return readDisk(ctx, name);
}

function readDisk(ctx: InventoryContext, name: string): Disk | null {
  const { sysfs, mounts, probe, devRoot } = ctx;
  const roleSet = ctx.roles.get(name);
  const base = `block/${name}`;
  const kernelRel = sysfs.resolve(base);
  const majMin = sysfs.readText(`${base}/dev`);
  if (kernelRel === null || majMin === null) return null;
  const transport = transportOf(name, kernelRel);
  const usbBridge = transport === 'usb' ? usbBridgeOf(sysfs, kernelRel) : null;
  const identity = identityOf(sysfs, name, transport, usbBridge);
  const sysfsSizeBytes = (sysfs.readInt(`${base}/size`) ?? 0) * SYSFS_SECTOR;
  const devicePath = path.join(devRoot, name);
  const ioctl: IoctlProbe = probe
    ? probeNode(devicePath, majMin)
    : { ok: false, sizeBytes: null, logicalSectorSize: null, physicalSectorSize: null, readOnly: null, error: 'not probed' };

  const partitions: Partition[] = [];
  for (const child of sysfs.list(base)) {
    if (!sysfs.exists(`${base}/${child}/partition`)) continue;
    const pRel = `${base}/${child}`;
    const pMajMin = sysfs.readText(`${pRel}/dev`) ?? '';
    partitions.push({
      name: child,
      devicePath: path.join(devRoot, child),
      majMin: pMajMin,
      number: sysfs.readInt(`${pRel}/partition`),
      startBytes: (sysfs.readInt(`${pRel}/start`) ?? 0) * SYSFS_SECTOR,
      sizeBytes: (sysfs.readInt(`${pRel}/size`) ?? 0) * SYSFS_SECTOR,
      readOnly: sysfs.readText(`${pRel}/ro`) === '1',
      holders: sysfs.list(`${pRel}/holders`),
      mounts: mountsFor(mounts, pMajMin, child),
    });
  }
  partitions.sort((a, b) => a.startBytes - b.startBytes || a.name.localeCompare(b.name));

  let loop: Disk['loop'] = null;
  const backing = sysfs.readBytes(`${base}/loop/backing_file`);
  if (backing !== null) {
    loop = {
      backingFile: deviceString(backing, 256),
      offset: sysfs.readInt(`${base}/loop/offset`) ?? 0,
      sizeLimit: sysfs.readInt(`${base}/loop/sizelimit`) ?? 0,
    };
  }

  let nvme: Disk['nvme'] = null;
  if (transport === 'nvme') {
    // Namespaces of one controller sit side by side in its sysfs directory.
    const controllerRel = sysfs.resolve(`${base}/device`);
    if (controllerRel !== null) {
      const controller = path.basename(controllerRel);
      const namespaces = sysfs.list(controllerRel).filter((n) => /^nvme\d+n\d+$/.test(n));
      nvme = { controller, namespaces: namespaces.length > 0 ? namespaces : [name] };
    }
  }

  const { id, source } = stableIdOf({
    transport,
    wwn: identity.wwn,
    model: identity.model,
    serial: identity.serial,
    loopBacking: loop ? loop.backingFile.raw : null,
    loopOffset: loop?.offset ?? 0,
    kernelPath: kernelRel,
  });

  const devType = sysfs.readText(`${base}/device/type`);
  const kind: Disk['kind'] = devType === '5' || /^sr\d+$/.test(name) ? 'cdrom' : transport === 'virtual' ? 'virtual' : 'disk';
  const logical = sysfs.readInt(`${base}/queue/logical_block_size`) ?? ioctl.logicalSectorSize ?? SYSFS_SECTOR;
  const physical = sysfs.readInt(`${base}/queue/physical_block_size`) ?? ioctl.physicalSectorSize ?? logical;
  const roles: DiskRole[] = roleSet ? (['running-system', 'boot-medium'] as const).filter((r) => roleSet.has(r)) : [];

  const disk: Disk = {
    name,
    devicePath,
    majMin,
    stableId: id,
    stableIdSource: source,
    kernelPath: path.join(sysfs.root, kernelRel),
    transport,
    kind,
    ...identity,
    usbBridge,
    sizeBytes: ioctl.sizeBytes ?? sysfsSizeBytes,
    sysfsSizeBytes,
    logicalSectorSize: logical,
    physicalSectorSize: physical,
    rotational: sysfs.readText(`${base}/queue/rotational`) === '1',
    removable: sysfs.readText(`${base}/removable`) === '1',
    readOnly: sysfs.readText(`${base}/ro`) === '1',
    probe: ioctl,
    partitions,
    holders: sysfs.list(`${base}/holders`),
    mounts: mountsFor(mounts, majMin, name),
    roles,
    loop,
    nvme,
    warnings: [],
  };
  disk.warnings = diskWarnings(disk, probe);
  return disk;
}
