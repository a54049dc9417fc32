// The machine's identity for the custody record's host section (DMI, CPU,
// memory, kernel command line, storage controllers), read alongside an acquisition.
import si from 'systeminformation';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readdirSync } from 'node:fs';
import { sanitizeText, type DeviceString } from './sanitize.js';
import { listStorageControllers, type StorageInventory } from './disk/storage-controllers.js';

/**
 * Identity of the machine custos runs on, for the custody record. Every value
 * comes from firmware tables (DMI) that the suspect machine's owner controls,
 * so each string is sanitized like a device string.
 */
export interface HostIdentity {
  system: { manufacturer: DeviceString; model: DeviceString; version: DeviceString; serial: DeviceString; uuid: DeviceString; sku: DeviceString };
  baseboard: { manufacturer: DeviceString; model: DeviceString; version: DeviceString; serial: DeviceString; assetTag: DeviceString };
  bios: { vendor: DeviceString; version: DeviceString; releaseDate: DeviceString };
  cpu: { manufacturer: DeviceString; brand: DeviceString; cores: number; physicalCores: number };
  memoryBytes: number;
  clock: { rtcUtc: string; timezone: DeviceString; uptimeSeconds: number };
  os: { kernel: DeviceString; platform: string; arch: string; cmdline: DeviceString | null };
  /** The storage controllers, their drivers and disks, and what hides disks; read fresh (hot-plug changes it). */
  storage: StorageInventory;
  /** 'cache': the firmware, CPU, memory and OS facts were read earlier in this boot (same boot_id). */
  from: 'computed' | 'cache';
}

const s = (v: unknown) => sanitizeText(typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '', 128);

type StaticPart = Omit<HostIdentity, 'clock' | 'storage' | 'from'>;

async function readStatic(): Promise<StaticPart> {
  const [system, board, bios, cpu, mem, os] = await Promise.all([si.system(), si.baseboard(), si.bios(), si.cpu(), si.mem(), si.osInfo()]);
  let cmdline: DeviceString | null = null;
  try {
    cmdline = sanitizeText(readFileSync('/proc/cmdline', 'utf8').trim(), 1024);
  } catch {
    cmdline = null;
  }
  return {
    system: {
      manufacturer: s(system.manufacturer),
      model: s(system.model),
      version: s(system.version),
      serial: s(system.serial),
      uuid: s(system.uuid),
      sku: s(system.sku),
    },
    baseboard: { manufacturer: s(board.manufacturer), model: s(board.model), version: s(board.version), serial: s(board.serial), assetTag: s(board.assetTag) },
    bios: { vendor: s(bios.vendor), version: s(bios.version), releaseDate: s(bios.releaseDate) },
    cpu: { manufacturer: s(cpu.manufacturer), brand: s(cpu.brand), cores: cpu.cores, physicalCores: cpu.physicalCores },
    memoryBytes: mem.total,
    os: { kernel: s(os.kernel), platform: os.platform, arch: os.arch, cmdline },
  };
}

function bootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return null;
  }
}

const CACHE_FILE = 'host-identity.json';

/**
 * The firmware, CPU, memory and kernel facts cannot change within a boot, and
 * reading them runs a dozen subprocesses (about 0.1 s of CPU, taken from a
 * running acquisition). With `cacheDir` they are read once per boot (keyed by
 * the kernel's boot_id) and kept there; the clock is always read fresh.
 */
export async function hostIdentity(cacheDir: string | null = null): Promise<HostIdentity> {
  const boot = bootId();
  const cacheFile = cacheDir && boot ? path.join(cacheDir, CACHE_FILE) : null;
  let part: StaticPart | null = null;
  let from: HostIdentity['from'] = 'computed';
  if (cacheFile) {
    try {
      const c = JSON.parse(readFileSync(cacheFile, 'utf8')) as { bootId?: string; host?: StaticPart };
      if (c.bootId === boot && c.host) {
        part = c.host;
        from = 'cache';
      }
    } catch {
      // No cache yet: read it.
    }
  }
  if (!part) {
    part = await readStatic();
    if (cacheFile) {
      try {
        writeFileSync(cacheFile, JSON.stringify({ bootId: boot, host: part }), { mode: 0o600 });
      } catch {
        // Only costs time next run.
      }
    }
  }
  const time = si.time();
  return {
    ...part,
    clock: { rtcUtc: new Date(time.current).toISOString(), timezone: s(time.timezone), uptimeSeconds: time.uptime },
    storage: storageNow(),
    from,
  };
}

function storageNow(): StorageInventory {
  let disks: string[] = [];
  try {
    disks = readdirSync('/sys/block');
  } catch {
    // No sysfs: no controllers either.
  }
  return listStorageControllers(disks);
}
