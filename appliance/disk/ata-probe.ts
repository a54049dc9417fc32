// Asks an ATA drive (directly on libata, or behind a SAT bridge) for its own
// view of itself: IDENTIFY DEVICE, its native max address (READ NATIVE MAX
// ADDRESS (EXT), or GET NATIVE MAX ADDRESS EXT where the drive has AMA) and its
// DCO factory maximum, so that an HPA or a DCO is found and measured. Only
// read-only commands, through the native allowlist (docs/passthrough.md).
import { native, type ScsiAnswer } from '../native.js';
import { decodeIdentify, IDENTIFY_BYTES, type AtaIdentity } from './ata-identify.js';
import { aborted, ataRegisters } from './ata-sense.js';

const TIMEOUT_MS = 10_000;

export interface AtaProbe {
  identify: AtaIdentity;
  /** The 512 bytes of IDENTIFY DEVICE in hex, for the record: `hdparm --Istdin` decodes them again. */
  identifyHex: string;
  /** Sectors up to the native max address; null when the drive did not say. */
  nativeSectors: number | null;
  /** The command that gave it. */
  nativeFrom: 'READ NATIVE MAX ADDRESS EXT' | 'READ NATIVE MAX ADDRESS' | 'GET NATIVE MAX ADDRESS EXT' | null;
  /** Sectors past the user max and up to the native max: the Host Protected Area. */
  hpaSectors: number | null;
  /** Sectors up to the DCO's factory maximum (DEVICE CONFIGURATION IDENTIFY); null without DCO or an answer. */
  dcoSectors: number | null;
  /** Sectors past the native max and up to the DCO maximum. */
  dcoHiddenSectors: number | null;
  /** What the drive would not answer, said in words. */
  notes: string[];
}

/** An ATA PASS-THROUGH(16) CDB. protocol 4 reads one 512-byte block, 3 carries no data; CK_COND asks for the registers back. */
export function ataCdb(
  command: number,
  opts: { protocol: 3 | 4; feature?: number; extend?: boolean; checkCondition?: boolean; lbaLow?: number; lbaMid?: number; lbaHigh?: number },
): Uint8Array {
  const cdb = new Uint8Array(16);
  cdb[0] = 0x85;
  cdb[1] = (opts.protocol << 1) | (opts.extend ? 1 : 0);
  // CK_COND 0x20; for data-in: T_DIR (from the device) 0x08, BYT_BLOK 0x04, T_LENGTH 2 (in the COUNT field).
  cdb[2] = (opts.checkCondition ? 0x20 : 0) | (opts.protocol === 4 ? 0x0e : 0);
  cdb[4] = (opts.feature ?? 0) & 0xff;
  cdb[6] = opts.protocol === 4 ? 1 : 0;
  // LBA 7:0 (a log address), 15:8 and 23:16 (SMART takes its signature 4Fh/C2h there).
  cdb[8] = (opts.lbaLow ?? 0) & 0xff;
  cdb[10] = (opts.lbaMid ?? 0) & 0xff;
  cdb[12] = (opts.lbaHigh ?? 0) & 0xff;
  cdb[13] = 0x40; // DEVICE: LBA addressing
  cdb[14] = command;
  return cdb;
}

/** SCSI status GOOD (0), or CHECK CONDITION (2) carrying ATA registers that say the command completed. */
function ok(a: ScsiAnswer): boolean {
  if (a.hostStatus !== 0) return false;
  if (a.status === 0) return true;
  const r = ataRegisters(a.sense);
  return a.status === 2 && r !== null && !aborted(r);
}

async function readBlock(fd: number, command: number, feature = 0): Promise<Buffer | null> {
  const a = await native().scsiRead(fd, ataCdb(command, { protocol: 4, feature }), IDENTIFY_BYTES, TIMEOUT_MS);
  // A SCSI target that does not know ATA PASS-THROUGH may still answer GOOD with a block of zeros (QEMU's scsi-hd does).
  return ok(a) && a.data.length === IDENTIFY_BYTES && a.data.some((b) => b !== 0) ? a.data : null;
}

/** An IDENTIFY DEVICE answer from an ATA device: word 0 bit 15 clear (set is ATAPI) and a size in it. */
function plausible(id: AtaIdentity, raw: Uint8Array): boolean {
  return ((raw[1] as number) & 0x80) === 0 && id.userSectors > 0;
}

/** The max address a non-data command returns in its registers, as a sector count (max LBA + 1). */
async function maxAddress(fd: number, command: number, extend: boolean, feature = 0): Promise<number | null> {
  const a = await native().scsiRead(fd, ataCdb(command, { protocol: 3, extend, feature, checkCondition: true }), 0, TIMEOUT_MS);
  const r = ataRegisters(a.sense);
  // DRDY (status bit 6) is set after every command a drive completes; registers without it came from no drive.
  if (a.hostStatus !== 0 || r === null || aborted(r) || (r.status & 0x40) === 0 || r.lba === null) return null;
  const lba = extend ? r.lba : (r.lba % 2 ** 24) + (r.device & 0x0f) * 2 ** 24;
  return lba + 1;
}

/** The DCO's maximum LBA (words 3-6 of DEVICE CONFIGURATION IDENTIFY) as a sector count. */
export function dcoSectorsOf(dco: Uint8Array): number | null {
  if (dco.length !== 512) return null;
  const w = (i: number) => (dco[2 * i] as number) | ((dco[2 * i + 1] as number) << 8);
  // Word 0 is the DCO revision (0002h in ATA-6 to ACS-2); anything else is not a DCO answer.
  if (w(0) === 0 || w(0) > 0x00ff) return null;
  const max = w(3) + w(4) * 2 ** 16 + w(5) * 2 ** 32 + Math.min(w(6), 0x1f) * 2 ** 48;
  return max > 0 ? max + 1 : null;
}

/**
 * Probes the drive behind `fd` (a read-only fd of its block device). Null when it
 * is not ATA or not reachable with ATA PASS-THROUGH (the kernel or a USB bridge
 * refuses it); the caller says so.
 */
export async function probeAta(fd: number): Promise<AtaProbe | null> {
  const raw = await readBlock(fd, 0xec).catch(() => null);
  if (raw === null) return null;
  const identify = decodeIdentify(raw);
  if (!plausible(identify, raw)) return null;
  const notes: string[] = [];
  let nativeSectors: number | null = null;
  let nativeFrom: AtaProbe['nativeFrom'] = null;
  if (identify.amaSupported) {
    nativeSectors = await maxAddress(fd, 0x78, true, 0x00).catch(() => null);
    if (nativeSectors !== null) nativeFrom = 'GET NATIVE MAX ADDRESS EXT';
  }
  // Asked even where IDENTIFY reports no HPA feature set: the drive's own answer is better than an inference, and an abort costs nothing.
  if (nativeSectors === null) {
    const extend = identify.lba48;
    nativeSectors = await maxAddress(fd, extend ? 0x27 : 0xf8, extend).catch(() => null);
    if (nativeSectors !== null) nativeFrom = extend ? 'READ NATIVE MAX ADDRESS EXT' : 'READ NATIVE MAX ADDRESS';
  }
  if (nativeSectors !== null && nativeSectors < identify.userSectors) {
    notes.push(`the native max address the drive gave (${nativeSectors} sectors) is below its user size: not believed`);
    nativeSectors = null;
    nativeFrom = null;
  }
  if (nativeSectors === null) {
    if (identify.hpa.supported || identify.amaSupported) notes.push('the drive did not give its native max address');
    else {
      notes.push('the drive has no HPA or AMA feature set and did not answer READ NATIVE MAX ADDRESS: its user size is taken as its native size');
      nativeSectors = identify.userSectors;
    }
  }
  let dcoSectors: number | null = null;
  if (identify.dcoSupported) {
    const dco = await readBlock(fd, 0xb1, 0xc2).catch(() => null);
    dcoSectors = dco ? dcoSectorsOf(dco) : null;
    // A frozen DCO aborts DEVICE CONFIGURATION IDENTIFY too (ACS-2): said, not guessed.
    if (dcoSectors === null) notes.push('DCO supported, but DEVICE CONFIGURATION IDENTIFY gave no answer (frozen, or the bridge refused it)');
  }
  const hpaSectors = nativeSectors === null ? null : Math.max(0, nativeSectors - identify.userSectors);
  const dcoHiddenSectors = dcoSectors === null || nativeSectors === null ? null : Math.max(0, dcoSectors - nativeSectors);
  return { identify, identifyHex: raw.toString('hex'), nativeSectors, nativeFrom, hpaSectors, dcoSectors, dcoHiddenSectors, notes };
}
