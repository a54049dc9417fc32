// The drive's own view of itself, next to the kernel's (issue 17): for an ATA
// drive (libata, or a SAT bridge on USB or SCSI) its IDENTIFY, native max and DCO;
// for NVMe its controller and every namespace. What custos cannot ask (virtio,
// MMC, a bridge that passes no ATA) is said, not left out. Read-only commands
// only, through the native allowlist; run once per listing, never in the
// write-block guardian's loop.
import { native } from '../native.js';
import { probeAta, type AtaProbe } from './ata-probe.js';
import { probeNvme, type NvmeProbe } from './nvme-probe.js';
import { probeScsi, type ScsiProbe } from './scsi-probe.js';
import type { Disk, DiskWarning } from './disk.js';
import { Sysfs } from './sysfs.js';
import { ataLevel0, nvmeLevel0, scsiLevel0, type TcgDiscovery } from './tcg-discovery.js';
import { ataHealth, nvmeHealth, type DriveHealth } from './drive-health.js';

export interface DriveReport {
  ata: AtaProbe | null;
  nvme: NvmeProbe | null;
  /** INQUIRY and READ CAPACITY(16), from any disk behind the kernel's SCSI layer (SATA on libata, USB, SCSI, SAS). */
  scsi: ScsiProbe | null;
  /** TCG Level 0 Discovery, asked when IDENTIFY or Identify Controller says the drive takes security commands; null otherwise or without an answer. */
  tcg: TcgDiscovery | null;
  /** SMART (ATA) or the SMART / Health log (NVMe) at the time of the probe; null when the drive gave none. */
  health: DriveHealth | null;
  /** The kernel's size of the disk in bytes, held against what the drive says. */
  kernelBytes: number;
  /** Why the drive's native size could not be asked, in words; null when it was. */
  unreachable: string | null;
}

const ATA_CAPABLE = new Set(['sata', 'usb', 'scsi']);

function nsidOf(disk: Disk): number {
  const n = new Sysfs().readInt(`block/${disk.name}/nsid`);
  return n !== null && n > 0 ? n : 1;
}

/** A report of a disk whose drive could not be asked, with why. */
function unasked(disk: Disk, why: string): DriveReport {
  return { ata: null, nvme: null, scsi: null, tcg: null, health: null, kernelBytes: disk.sizeBytes, unreachable: why };
}

/** TCG Level 0 Discovery where the drive says it has security protocols: an ATA drive by IDENTIFY word 48, a SCSI drive by trying (SPC has no flag for it). */
async function tcgOf(fd: number, ata: AtaProbe | null, scsi: ScsiProbe | null): Promise<TcgDiscovery | null> {
  if (ata) return ata.identify.trustedComputing ? ataLevel0(fd).catch(() => null) : null;
  return scsi ? scsiLevel0(fd).catch(() => null) : null;
}

/** Probes one disk through a read-only fd of its block device. */
export async function probeDrive(disk: Disk): Promise<DriveReport> {
  if (disk.kind !== 'disk') return unasked(disk, 'not a disk');
  if (disk.transport !== 'nvme' && !ATA_CAPABLE.has(disk.transport)) {
    return unasked(disk, `a ${disk.transport} disk takes no ATA or NVMe commands: its native size cannot be asked`);
  }
  let fd: number;
  try {
    fd = native().openReadOnly(disk.devicePath, false, false);
  } catch (e) {
    return unasked(disk, `could not open ${disk.devicePath}: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    if (disk.transport === 'nvme') {
      const nvme = await probeNvme(fd, nsidOf(disk));
      const tcg = nvme?.controller.securityCommands ? await nvmeLevel0(fd).catch(() => null) : null;
      const health = nvme ? await nvmeHealth(fd).catch(() => null) : null;
      return { ata: null, nvme, scsi: null, tcg, health, kernelBytes: disk.sizeBytes, unreachable: nvme ? null : 'the controller did not answer Identify' };
    }
    const ata = await probeAta(fd);
    const scsi = await probeScsi(fd);
    const tcg = await tcgOf(fd, ata, scsi);
    const health = ata ? await ataHealth(fd).catch(() => null) : null;
    return {
      ata,
      nvme: null,
      scsi,
      tcg,
      health,
      kernelBytes: disk.sizeBytes,
      unreachable: ata ? null : 'no valid answer to ATA IDENTIFY through ATA PASS-THROUGH (a SCSI drive, or a bridge that passes no ATA commands)',
    };
  } finally {
    native().close(fd);
  }
}

function sscText(r: DriveReport): string {
  return r.tcg?.sscs.join(', ') || 'TCG';
}

function sectors(n: number): string {
  return n.toLocaleString('en-US');
}

/** What the drive's answers mean for the examiner, as disk-list warnings. */
export function driveWarnings(r: DriveReport): DiskWarning[] {
  const w: DiskWarning[] = [];
  const a = r.ata;
  if (a) {
    if (a.hpaSectors)
      w.push({
        code: 'hpa',
        message: `HPA ${sectors(a.hpaSectors)} sectors: the drive hides them past its user size (native ${sectors(a.nativeSectors ?? 0)})`,
      });
    if (a.dcoHiddenSectors)
      w.push({ code: 'dco-hidden', message: `DCO hides ${sectors(a.dcoHiddenSectors)} sectors past the native size (factory ${sectors(a.dcoSectors ?? 0)})` });
    const s = a.identify.security;
    if (s.locked) w.push({ code: 'ata-locked', message: 'ATA security LOCKED: the drive refuses reads until unlocked; an image would hold no data' });
    if (s.countExpired) w.push({ code: 'ata-locked', message: 'ATA security: password attempts exhausted until the drive is power-cycled' });
    if (a.identify.integrity === 'bad') w.push({ code: 'identify-damaged', message: 'the IDENTIFY answer fails its checksum: what it says is not reliable' });
  }
  if (r.health && r.health.flags.length > 0)
    w.push({ code: 'drive-health', message: `drive health (${r.health.from}): ${r.health.flags.join(', ')}; consider --fast-first (good areas first)` });
  const l = r.tcg?.locking;
  if (l?.locked)
    w.push({
      code: 'sed-locked',
      message: `self-encrypting drive (${sscText(r)}) LOCKED: its locked ranges read as errors until unlocked; an image would hold no data there`,
    });
  else if (l?.enabled)
    w.push({
      code: 'sed-locking',
      message: `self-encrypting drive (${sscText(r)}) with locking enabled, unlocked now: it locks again at power-off; image it in this session`,
    });
  if (l?.mbrEnabled && !l.mbrDone)
    w.push({ code: 'sed-shadow-mbr', message: 'self-encrypting drive shows its shadow MBR (pre-boot image) at LBA 0, not the user data: unlock it first' });
  const c = r.scsi?.capacity;
  if (c && c.sectors * c.blockBytes !== r.kernelBytes) {
    w.push({
      code: 'capacity-mismatch',
      message: `READ CAPACITY(16) says ${sectors(c.sectors)} sectors of ${c.blockBytes} B (${c.sectors * c.blockBytes} B); the kernel shows ${r.kernelBytes} B`,
    });
  }
  const n = r.nvme;
  if (n && n.detachedBytes > 0) {
    const ids = n.namespaces.filter((x) => !x.attached).map((x) => x.nsid);
    w.push({ code: 'nvme-detached', message: `NVMe namespace(s) ${ids.join(', ')} not attached: ${n.detachedBytes} bytes the kernel does not show` });
  }
  return w;
}
