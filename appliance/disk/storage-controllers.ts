// Stage 1, no invisible disk: the machine's storage controllers (PCI class
// 01xx, USB mass-storage interfaces, MMC hosts, Hyper-V and Xen virtual
// disks), the driver bound to each and the disks found behind it. A
// controller without a driver hides every disk behind it; the examiner is
// told so on the first screen and in the record.
import { release } from 'node:os';
import path from 'node:path';
import { sanitizeText, type DeviceString } from '../sanitize.js';
import { driverModules, type ModuleIndex } from './module-index.js';
import { Sysfs } from './sysfs.js';
import { FirmwareFailureFollower, type FirmwareFailure } from './firmware-log.js';

export type ControllerBus = 'pci' | 'usb' | 'mmc' | 'vmbus' | 'xen';

export interface StorageController {
  bus: ControllerBus;
  /** Where it sits: a PCI address (0000:00:1f.2), a USB interface (2-1:1.0), mmc0, a VMBus or Xen device name. */
  address: string;
  /** vendor:device (PCI, USB), null where the bus has no such ids. */
  id: string | null;
  /** PCI class code (0x010601), USB interface class/subclass/protocol (08/06/50), null otherwise. */
  classCode: string | null;
  /** What kind of controller, in words (from the class code, or a known device). */
  kind: string;
  /** The driver bound to it (sysfs `driver` link), null when none is. */
  driver: string | null;
  /** Modules of this system that claim its modalias (modules.alias); empty when none does or the index is missing. */
  modules: string[];
  /** Whole disks whose sysfs path runs through this controller. */
  disks: string[];
  /** The device's own modalias, as sysfs gives it (sanitized). */
  modalias: DeviceString | null;
  /** Firmware files its driver asked for and the system did not have (from the kernel log). */
  firmwareMissing: DeviceString[];
}

export type ControllerWarningCode = 'controller-no-driver' | 'controller-hides-disks' | 'controller-firmware-missing';

export interface ControllerWarning {
  code: ControllerWarningCode;
  controller: string;
  message: string;
  /** The same in at most 76 columns, for the disk list's warning lines. */
  short: string;
}

export interface StorageInventory {
  controllers: StorageController[];
  warnings: ControllerWarning[];
}

export interface StorageOptions {
  sysfsRoot?: string;
  /** modules.alias and modules.builtin of the running kernel; default /lib/modules/$(uname -r). */
  moduleDir?: string;
  /** Failed firmware loads; default: those in the kernel log (/dev/kmsg). */
  firmwareFailures?: readonly FirmwareFailure[];
}

/** PCI class 01 subclasses (PCI Code and ID Assignment, base class 01h). */
const PCI_STORAGE_KIND: Record<string, string> = {
  '00': 'SCSI controller',
  '01': 'IDE controller',
  '02': 'floppy controller',
  '03': 'IPI controller',
  '04': 'RAID controller',
  '05': 'ATA controller',
  '06': 'SATA controller',
  '07': 'SAS controller',
  '08': 'NVM controller',
  '09': 'UFS controller',
  '80': 'storage controller',
};

/** Intel Volume Management Device: NVMe drives sit behind it, invisible without the vmd driver (drivers/pci/controller/vmd.c). */
const INTEL_VMD = new Set(['201d', '28c0', '467f', '4c3d', '7d0b', '9a0b', 'a77f', 'ad0b', 'b60b', 'b06f', 'c4a5']);

/** Hyper-V VMBus storage classes (drivers/scsi/storvsc_drv.c): SCSI, IDE, Fibre Channel. */
const VMBUS_STORAGE: Record<string, string> = {
  'ba6163d9-04a1-4d29-b605-72e2ffb1dc7f': 'Hyper-V SCSI controller',
  '32412632-86cb-44a2-9b5c-50d1417354f5': 'Hyper-V IDE controller',
  '2f9bcc4a-0069-4af3-b76b-6fd0be528cda': 'Hyper-V Fibre Channel adapter',
};

const text = (v: string | null, max = 256): DeviceString | null => (v === null ? null : sanitizeText(v, max));
/** A name the kernel gives (addresses, driver names) is kept only if it is plainly one. */
const plain = (v: string | null): string | null => (v !== null && /^[A-Za-z0-9:._+-]{1,64}$/.test(v) ? v : null);

/** The running kernel's log, followed for the life of the process. */
const kernelLog = new FirmwareFailureFollower();

/** Every storage controller the kernel shows, the driver of each, and the disks behind it. */
export function listStorageControllers(disks: readonly string[], o: StorageOptions = {}): StorageInventory {
  const sysfs = new Sysfs(o.sysfsRoot ?? '/sys');
  const modules = driverModules(o.moduleDir ?? path.join('/lib/modules', release()), sysfs);
  const diskPaths = disks.map((d) => ({ name: d, at: sysfs.resolve(`block/${d}`) }));
  const behind = (devicePath: string | null) =>
    devicePath === null ? [] : diskPaths.filter((d) => d.at !== null && d.at.startsWith(devicePath + '/')).map((d) => d.name);
  const failures = o.firmwareFailures ?? kernelLog.failures();
  // A USB driver may name the device (2-1) rather than its interface (2-1:1.0).
  const askedBy = (address: string) => failures.filter((f) => f.device === address || address.startsWith(`${f.device}:`)).map((f) => f.file);
  const controllers = [...pciControllers(sysfs), ...usbStorage(sysfs), ...mmcHosts(sysfs), ...virtualControllers(sysfs)].map((c) => ({
    ...c.controller,
    modules: c.controller.modalias ? modules.forAlias(c.controller.modalias.raw) : [],
    disks: behind(c.path),
    firmwareMissing: [...new Map(askedBy(c.controller.address).map((f) => [f.text, f])).values()],
  }));
  return { controllers, warnings: controllers.flatMap((c) => controllerWarnings(c, modules)) };
}

interface Found {
  controller: Omit<StorageController, 'modules' | 'disks' | 'firmwareMissing'>;
  /** Its device directory relative to the sysfs root, to find the disks below it. */
  path: string | null;
}

function driverOf(sysfs: Sysfs, dir: string): string | null {
  const link = sysfs.resolve(`${dir}/driver`);
  return link === null ? null : plain(path.basename(link));
}

function pciControllers(sysfs: Sysfs): Found[] {
  const out: Found[] = [];
  for (const addr of sysfs.list('bus/pci/devices')) {
    const dir = `bus/pci/devices/${addr}`;
    const cls = sysfs.readText(`${dir}/class`);
    if (!cls || !/^0x01[0-9a-f]{4}$/i.test(cls)) continue;
    const vendor = (sysfs.readText(`${dir}/vendor`) ?? '').replace(/^0x/, '').toLowerCase();
    const device = (sysfs.readText(`${dir}/device`) ?? '').replace(/^0x/, '').toLowerCase();
    const id = /^[0-9a-f]{4}$/.test(vendor) && /^[0-9a-f]{4}$/.test(device) ? `${vendor}:${device}` : null;
    const sub = cls.slice(4, 6).toLowerCase();
    const vmd = vendor === '8086' && INTEL_VMD.has(device);
    const kind = vmd ? 'Intel VMD' : cls.toLowerCase() === '0x010802' ? 'NVMe controller' : (PCI_STORAGE_KIND[sub] ?? 'storage controller');
    out.push({
      controller: {
        bus: 'pci',
        address: plain(addr) ?? '?',
        id,
        classCode: cls.toLowerCase(),
        kind,
        driver: driverOf(sysfs, dir),
        modalias: text(sysfs.readText(`${dir}/modalias`)),
      },
      path: sysfs.resolve(dir),
    });
  }
  return out;
}

function usbStorage(sysfs: Sysfs): Found[] {
  const out: Found[] = [];
  for (const name of sysfs.list('bus/usb/devices')) {
    // Interfaces are named bus-port[.port]:config.interface; class 08 is mass storage.
    if (!name.includes(':')) continue;
    const dir = `bus/usb/devices/${name}`;
    if (sysfs.readText(`${dir}/bInterfaceClass`) !== '08') continue;
    const usbDevice = `bus/usb/devices/${name.split(':')[0] ?? ''}`;
    const vendor = sysfs.readText(`${usbDevice}/idVendor`);
    const product = sysfs.readText(`${usbDevice}/idProduct`);
    const sub = sysfs.readText(`${dir}/bInterfaceSubClass`) ?? '??';
    const proto = sysfs.readText(`${dir}/bInterfaceProtocol`) ?? '??';
    const id = vendor && product && /^[0-9a-f]{4}$/.test(vendor) && /^[0-9a-f]{4}$/.test(product) ? `${vendor}:${product}` : null;
    out.push({
      controller: {
        bus: 'usb',
        address: plain(name) ?? '?',
        id,
        classCode: plain(`08/${sub}/${proto}`),
        kind: proto === '62' ? 'USB mass storage (UAS)' : 'USB mass storage',
        driver: driverOf(sysfs, dir),
        modalias: text(sysfs.readText(`${dir}/modalias`)),
      },
      path: sysfs.resolve(dir),
    });
  }
  return out;
}

function mmcHosts(sysfs: Sysfs): Found[] {
  return sysfs.list('class/mmc_host').map((name) => {
    const dir = `class/mmc_host/${name}`;
    // The host's parent is the controller device (SDHCI on PCI, ACPI, a card reader); its driver drives the slot.
    return {
      controller: {
        bus: 'mmc' as const,
        address: plain(name) ?? '?',
        id: null,
        classCode: null,
        kind: 'SD/MMC host',
        driver: driverOf(sysfs, `${dir}/device`),
        modalias: null,
      },
      path: sysfs.resolve(dir),
    };
  });
}

function virtualControllers(sysfs: Sysfs): Found[] {
  const out: Found[] = [];
  for (const name of sysfs.list('bus/vmbus/devices')) {
    const dir = `bus/vmbus/devices/${name}`;
    const classId = (sysfs.readText(`${dir}/class_id`) ?? '').replace(/[{}]/g, '').toLowerCase();
    const kind = VMBUS_STORAGE[classId];
    if (!kind) continue;
    out.push({
      controller: {
        bus: 'vmbus',
        address: plain(name) ?? '?',
        id: null,
        classCode: plain(classId),
        kind,
        driver: driverOf(sysfs, dir),
        modalias: text(sysfs.readText(`${dir}/modalias`)),
      },
      path: sysfs.resolve(dir),
    });
  }
  for (const name of sysfs.list('bus/xen/devices')) {
    if (!name.startsWith('vbd-')) continue;
    const dir = `bus/xen/devices/${name}`;
    out.push({
      controller: {
        bus: 'xen',
        address: plain(name) ?? '?',
        id: null,
        classCode: null,
        kind: 'Xen virtual disk',
        driver: driverOf(sysfs, dir),
        modalias: text(sysfs.readText(`${dir}/modalias`)),
      },
      path: sysfs.resolve(dir),
    });
  }
  return out;
}

const fit = (s: string) => (s.length <= 76 ? s : `${s.slice(0, 75)}~`);

function label(c: StorageController): string {
  const what = c.id ? `${c.id} (${c.kind})` : `${c.address} (${c.kind})`;
  return `storage controller ${what}`;
}

/** What the examiner must be told about one controller. */
export function controllerWarnings(c: StorageController, modules: ModuleIndex): ControllerWarning[] {
  const at = `${c.bus} ${c.address}`;
  // Said whatever else is true of it: a driver without its firmware may bind and still show nothing, or only part.
  const firmware: ControllerWarning[] =
    c.firmwareMissing.length === 0
      ? []
      : [
          {
            code: 'controller-firmware-missing',
            controller: at,
            message: `${label(c)} at ${at}: its driver${c.driver ? ` ${c.driver}` : ''} asked for firmware this system does not have (${c.firmwareMissing
              .slice(0, 3)
              .map((f) => f.text.slice(0, 64))
              .join(', ')}${c.firmwareMissing.length > 3 ? ` and ${c.firmwareMissing.length - 3} more` : ''}): disks behind it may be missing`,
            short: fit(`${c.id ?? c.address} ${c.kind}: FIRMWARE MISSING (${c.firmwareMissing[0]?.text ?? ''})`),
          },
        ];
  return [...firmware, ...driverWarnings(c, modules, at)];
}

function driverWarnings(c: StorageController, modules: ModuleIndex, at: string): ControllerWarning[] {
  if (c.driver === null) {
    const known = c.modules;
    const why =
      known.length === 0
        ? 'no driver in this system knows it'
        : known.some((m) => modules.isLoaded(m))
          ? `its driver ${known.join(', ')} is loaded but did not take it (see the kernel log)`
          : `its driver ${known.join(', ')} is not loaded`;
    return [
      {
        code: 'controller-no-driver',
        controller: at,
        message: `${label(c)} at ${at} has no driver (${why}): disks behind it are not listed`,
        short: fit(`${c.id ?? c.address} ${c.kind}: NO DRIVER, disks behind it are not listed`),
      },
    ];
  }
  // A RAID-mode or VMD controller whose driver is bound but shows nothing: the disks may be hidden behind it.
  if ((c.kind === 'Intel VMD' || c.kind === 'RAID controller') && c.disks.length === 0) {
    return [
      {
        code: 'controller-hides-disks',
        controller: at,
        message: `${label(c)} at ${at} (driver ${c.driver}) shows no disks: in RAID or VMD mode the drives behind it may be hidden; check the firmware setup`,
        short: fit(`${c.id ?? c.address} ${c.kind}: shows no disks (RAID/VMD mode may hide them)`),
      },
    ];
  }
  return [];
}
