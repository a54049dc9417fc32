import si from 'systeminformation';
import { readFileSync } from 'node:fs';
import { sanitizeText, type DeviceString } from './sanitize.js';

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
}

const s = (v: unknown) => sanitizeText(typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v), 128);

export async function hostIdentity(): Promise<HostIdentity> {
  const [system, board, bios, cpu, mem, os] = await Promise.all([
    si.system(),
    si.baseboard(),
    si.bios(),
    si.cpu(),
    si.mem(),
    si.osInfo(),
  ]);
  const time = si.time();
  let cmdline: DeviceString | null = null;
  try {
    cmdline = sanitizeText(readFileSync('/proc/cmdline', 'utf8').trim(), 1024);
  } catch {
    cmdline = null;
  }
  return {
    system: { manufacturer: s(system.manufacturer), model: s(system.model), version: s(system.version), serial: s(system.serial), uuid: s(system.uuid), sku: s(system.sku) },
    baseboard: { manufacturer: s(board.manufacturer), model: s(board.model), version: s(board.version), serial: s(board.serial), assetTag: s(board.assetTag) },
    bios: { vendor: s(bios.vendor), version: s(bios.version), releaseDate: s(bios.releaseDate) },
    cpu: { manufacturer: s(cpu.manufacturer), brand: s(cpu.brand), cores: cpu.cores, physicalCores: cpu.physicalCores },
    memoryBytes: mem.total,
    clock: { rtcUtc: new Date(time.current).toISOString(), timezone: s(time.timezone), uptimeSeconds: time.uptime },
    os: { kernel: s(os.kernel), platform: os.platform, arch: os.arch, cmdline },
  };
}
