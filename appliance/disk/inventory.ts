// Stage 1, a disk is found: every whole disk from /sys/block as a Disk, with
// identity, attachment, twins, roles and warnings. The first screen and
// `custos disks` show exactly this.
import path from 'node:path';
import { Sysfs } from './sysfs.js';
import { BlockDevice } from './block-device.js';
import { errnoOf } from '../errors.js';
import { errnoName } from '../errno.js';
import { readMountinfo, readSwaps, type MountEntry } from './mountinfo.js';
import { deviceString, safeText } from '../sanitize.js';
import { systemRoles, type DiskRole } from './system-disks.js';
import { transportOf, usbBridgeOf } from './transport.js';
import { identityOf } from './device-identity.js';
import { stableIdOf } from './stable-id.js';
import { diskWarnings } from './disk-warnings.js';
import { bootKernel, custosMediumOf, type BootKernel } from './custos-medium.js';
import type { Disk, IoctlProbe, MountRef, Partition } from './disk.js';

export type { Disk, IoctlProbe, MountRef, Partition } from './disk.js';

/** sysfs `size`, `start` and partition geometry are always in 512-byte units. */
export const SYSFS_SECTOR = 512;

export interface InventoryOptions {
  sysfsRoot?: string;
  procRoot?: string;
  devRoot?: string;
  /** Open each device node for BLKGETSIZE64 and friends (off for fixture trees). */
  probe?: boolean;
  /** Where the running system names its kernel (default /etc/custos/boot-kernel, the appliance's). */
  bootKernelFile?: string;
}

/** glibc's makedev() encoding, as fs.Stats.rdev reports it. */
export function devNumber(majMin: string): number {
  const [major = -1, minor = -1] = majMin.split(':').map(Number);
  return (major & 0xfff) * 256 + (minor & 0xff) + Math.floor(minor / 256) * 2 ** 20 + Math.floor(major / 4096) * 2 ** 44;
}

function probeNode(nodePath: string, majMin: string): IoctlProbe {
  const failed = (error: string): IoctlProbe => ({
    ok: false,
    sizeBytes: null,
    logicalSectorSize: null,
    physicalSectorSize: null,
    readOnly: null,
    error,
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
  bootKernel: BootKernel | null;
}

function context(options: InventoryOptions): InventoryContext {
  const sysfs = new Sysfs(options.sysfsRoot ?? '/sys');
  const procRoot = options.procRoot ?? '/proc';
  const mounts = readMountinfo(procRoot);
  const roles = systemRoles(sysfs, mounts, readSwaps(procRoot));
  return {
    sysfs,
    mounts,
    roles,
    probe: options.probe ?? true,
    devRoot: options.devRoot ?? '/dev',
    // The live system mounts nothing from its boot medium: it is found by content, only where the running
    // system says which kernel it booted (the appliance; a workstation reads no disk for it), never in fixture trees.
    bootKernel: options.sysfsRoot === undefined ? bootKernel(options.bootKernelFile) : null,
  };
}

/**
 * Kernel names in natural order (sda < sdaa < sdb, nvme2n1 < nvme10n1, as before): digit runs
 * compared as numbers, the rest as strings. Not localeCompare with options: its first call loads ICU's
 * collation data, over a second under TCG before the first screen.
 */
export function byKernelName(a: string, b: string): number {
  const pa = a.match(/\d+|\D+/g) ?? [];
  const pb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    if (x === y) continue;
    if (/^\d/.test(x) && /^\d/.test(y) && Number(x) !== Number(y)) return Number(x) - Number(y);
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

/** Lists whole disks from sysfs, one Disk each, sorted by kernel name. */
export function listDisks(options: InventoryOptions = {}): Disk[] {
  const ctx = context(options);
  const disks: Disk[] = [];
  for (const name of ctx.sysfs.list('block')) {
    const disk = isUnusedVirtual(name, ctx.sysfs) ? null : readDisk(ctx, name);
    if (disk) disks.push(disk);
  }
  disks.sort((a, b) => byKernelName(a.name, b.name));
  markTwins(disks);
  markBootMedia(disks);
  return disks;
}

/**
 * One disk by kernel name, or null when sysfs has no such (listed) whole disk.
 * Its twins and boot-medium standing depend on the other disks, so all are read.
 */
export function readDiskByName(name: string, options: InventoryOptions = {}): Disk | null {
  return listDisks(options).find((d) => d.name === name) ?? null;
}

/** Disks sharing a serial (trimmed exact bytes) or a stable id are twins: only kernel name and size tell them apart. */
function markTwins(disks: Disk[]): void {
  const serialOf = (d: Disk) => (d.serial ? d.serial.raw.trim() : null);
  for (const d of disks) {
    const s = serialOf(d);
    const twins = disks.filter((o) => o !== d && (o.stableId === d.stableId || (s !== null && s !== '' && serialOf(o) === s)));
    d.twins = twins.map((o) => o.name);
    if (twins.length > 0) {
      const what = s !== null && s !== '' && twins.every((o) => serialOf(o) === s) ? 'serial' : 'stable id';
      d.warnings.push({ code: 'twin', message: `${what} shared with ${d.twins.join(', ')}: identify by kernel name and size` });
    }
  }
}

/** The disk(s) holding this very build: marked boot media; two at once cannot be told apart, and the examiner is told so. */
function markBootMedia(disks: Disk[]): void {
  const media = disks.filter((d) => d.custosMedium === 'boot-medium');
  for (const d of disks) {
    if (d.custosMedium === 'boot-medium') {
      if (!d.roles.includes('boot-medium')) {
        d.roles.push('boot-medium');
        d.warnings.push({ code: 'boot-medium', message: 'is the boot medium (it holds the kernel this system runs)' });
      }
      if (media.length > 1) {
        // First, so it is the first line of the details.
        d.warnings.unshift({
          code: 'boot-medium-ambiguous',
          message: `${media.length} disks hold this very custos build (${media.map((m) => m.name).join(', ')}): which one booted cannot be told; none is offered as a source or destination`,
        });
      }
    } else if (d.custosMedium === 'custos-image') {
      d.warnings.push({ code: 'holds-custos-image', message: 'holds a custos image (not the medium this system booted from): an ordinary disk' });
    }
  }
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
  partitions.sort((a, b) => a.startBytes - b.startBytes || byKernelName(a.name, b.name));

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

  const diskseq = sysfs.readInt(`${base}/diskseq`);
  const devType = sysfs.readText(`${base}/device/type`);
  const kind: Disk['kind'] = devType === '5' || /^sr\d+$/.test(name) ? 'cdrom' : transport === 'virtual' ? 'virtual' : 'disk';
  const logical = sysfs.readInt(`${base}/queue/logical_block_size`) ?? ioctl.logicalSectorSize ?? SYSFS_SECTOR;
  const physical = sysfs.readInt(`${base}/queue/physical_block_size`) ?? ioctl.physicalSectorSize ?? logical;
  const roles: DiskRole[] = roleSet ? (['running-system', 'boot-medium'] as const).filter((r) => roleSet.has(r)) : [];

  const disk: Disk = {
    name,
    devicePath,
    majMin,
    // Kernels before 5.15 have no diskseq: the device number then stands in (the guardian still sees a replug as vanish + appear).
    attachment: diskseq !== null ? `${name}#${diskseq}` : `${name}@${majMin}`,
    diskseq,
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
    twins: [],
    custosMedium: null,
    loop,
    nvme,
    warnings: [],
  };
  if (ctx.bootKernel && sysfsSizeBytes > 0) disk.custosMedium = custosMediumOf(disk, ctx.bootKernel);
  disk.warnings = diskWarnings(disk, probe);
  return disk;
}
