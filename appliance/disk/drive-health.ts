// The drive's health, read before and after an acquisition (issue 17): ATA
// SMART (READ DATA and RETURN STATUS) or the NVMe SMART / Health log. Read-only
// commands through the native allowlist; no self-test is started, no setting
// changed. A drive with reallocated, pending or uncorrectable sectors, media
// errors or a failing status is flagged, and a first pass that skips bad areas
// (--fast-first) is proposed.
import { native } from '../native.js';
import { ataCdb } from './ata-probe.js';
import { aborted, ataRegisters } from './ata-sense.js';

const TIMEOUT_MS = 15_000;

export interface SmartAttribute {
  id: number;
  name: string | null;
  value: number;
  worst: number;
  /** The 48-bit raw value (its meaning is the vendor's; for the counters below it is a count). */
  raw: number;
}

export interface DriveHealth {
  from: 'ATA SMART' | 'NVMe SMART / Health log';
  /** SMART RETURN STATUS (ATA) or the critical warning byte (NVMe): false when the drive says it is failing; null when it did not say. */
  passed: boolean | null;
  attributes: SmartAttribute[];
  /** ATA: the SMART self-test log (log 06h), newest first; empty when the drive keeps none or ran none. */
  selfTests: SelfTest[];
  /** NVMe: the log's counters. */
  nvme: {
    criticalWarning: number;
    temperatureK: number;
    availableSparePct: number;
    percentUsed: number;
    mediaErrors: number;
    powerOnHours: number;
    unsafeShutdowns: number;
  } | null;
  /** What makes this drive a risk to read, in words; empty when nothing does. */
  flags: string[];
  /** The raw answer in hex, for the record (smartctl's own decoders can be held against it). */
  rawHex: string;
}

export interface SelfTest {
  /** The test run: 'short', 'extended', 'conveyance', 'selective' or the subcommand in hex. */
  type: string;
  /** The execution status (high nibble of its byte): 0 completed without error; 3 to 8 a failure. */
  status: number;
  failed: boolean;
  lifetimeHours: number;
  /** The LBA of the first failure, when it failed on one. */
  firstErrorLba: number | null;
}

const TEST_TYPES: Record<number, string> = {
  0x01: 'short',
  0x02: 'extended',
  0x03: 'conveyance',
  0x04: 'selective',
  0x81: 'short',
  0x82: 'extended',
  0x83: 'conveyance',
  0x84: 'selective',
};

/** The SMART self-test log: 21 descriptors of 24 bytes from offset 2, byte 508 the index of the newest (1-based; 0 when none). */
export function decodeSelfTestLog(b: Uint8Array): SelfTest[] {
  if (b.length !== 512) return [];
  const newest = b[508] as number;
  if (newest < 1 || newest > 21) return [];
  const out: SelfTest[] = [];
  for (let k = 0; k < 21; k++) {
    const i = (newest - 1 - k + 21) % 21;
    const at = 2 + 24 * i;
    const sub = b[at] as number;
    if (sub === 0) continue;
    const status = (b[at + 1] as number) >> 4;
    const failed = status >= 3 && status <= 8;
    const lba = (b[at + 5] as number) + (b[at + 6] as number) * 2 ** 8 + (b[at + 7] as number) * 2 ** 16 + (b[at + 8] as number) * 2 ** 24;
    out.push({
      type: TEST_TYPES[sub] ?? `0x${sub.toString(16).padStart(2, '0')}`,
      status,
      failed,
      lifetimeHours: (b[at + 2] as number) | ((b[at + 3] as number) << 8),
      firstErrorLba: failed && lba !== 0xffffffff ? lba : null,
    });
  }
  return out;
}

const NAMES: Record<number, string> = {
  1: 'Raw_Read_Error_Rate',
  5: 'Reallocated_Sector_Ct',
  9: 'Power_On_Hours',
  12: 'Power_Cycle_Count',
  187: 'Reported_Uncorrect',
  188: 'Command_Timeout',
  190: 'Airflow_Temperature_Cel',
  194: 'Temperature_Celsius',
  196: 'Reallocated_Event_Count',
  197: 'Current_Pending_Sector',
  198: 'Offline_Uncorrectable',
  199: 'UDMA_CRC_Error_Count',
};
/** Counters whose raw value above zero means sectors that failed or may fail. */
const RISK: Record<number, string> = { 5: 'reallocated', 187: 'reported uncorrectable', 197: 'pending', 198: 'offline uncorrectable' };

/** The 30 attribute entries of a SMART READ DATA answer (12 bytes each from offset 2); entries with id 0 are empty. */
export function decodeSmartData(b: Uint8Array): SmartAttribute[] | null {
  if (b.length !== 512 || b.every((x) => x === 0)) return null;
  const out: SmartAttribute[] = [];
  for (let i = 0; i < 30; i++) {
    const at = 2 + 12 * i;
    const id = b[at] as number;
    if (id === 0) continue;
    let raw = 0;
    for (let k = 5; k >= 0; k--) raw = raw * 256 + (b[at + 5 + k] as number);
    out.push({ id, name: NAMES[id] ?? null, value: b[at + 3] as number, worst: b[at + 4] as number, raw });
  }
  return out;
}

function le(b: Uint8Array, at: number, bytes: number): number {
  let n = 0;
  // The log's 16-byte counters: a count past 2^53 is not exact as a number; the raw hex keeps it.
  for (let k = Math.min(bytes, 8) - 1; k >= 0; k--) n = n * 256 + (b[at + k] as number);
  return n;
}

/** The NVMe SMART / Health Information log (log page 02h, 512 bytes). */
export function decodeNvmeSmart(b: Uint8Array): NonNullable<DriveHealth['nvme']> | null {
  if (b.length !== 512) return null;
  return {
    criticalWarning: b[0] as number,
    temperatureK: le(b, 1, 2),
    availableSparePct: b[3] as number,
    percentUsed: b[5] as number,
    powerOnHours: le(b, 128, 16),
    unsafeShutdowns: le(b, 144, 16),
    mediaErrors: le(b, 160, 16),
  };
}

export function healthFlags(h: Pick<DriveHealth, 'passed' | 'attributes' | 'nvme'> & { selfTests?: SelfTest[] }): string[] {
  const f: string[] = [];
  if (h.passed === false) f.push('the drive reports a FAILING health status');
  const last = h.selfTests?.[0];
  if (last?.failed) f.push(`its last self-test (${last.type}) failed${last.firstErrorLba !== null ? ` at LBA ${last.firstErrorLba}` : ''}`);
  for (const a of h.attributes) if (RISK[a.id] && a.raw > 0) f.push(`${a.raw} ${RISK[a.id]} sector(s)`);
  const n = h.nvme;
  if (n && n.mediaErrors > 0) f.push(`${n.mediaErrors} media error(s)`);
  if (n && n.criticalWarning & 0x04) f.push('NVMe reliability degraded (critical warning)');
  if (n && n.criticalWarning & 0x08) f.push('NVMe media read-only (critical warning)');
  return f;
}

async function ataStatus(fd: number): Promise<boolean | null> {
  const a = await native().scsiRead(fd, ataCdb(0xb0, { protocol: 3, feature: 0xda, lbaMid: 0x4f, lbaHigh: 0xc2, checkCondition: true }), 0, TIMEOUT_MS);
  const r = ataRegisters(a.sense);
  if (a.hostStatus !== 0 || r === null || aborted(r) || r.lba === null) return null;
  const mid = Math.floor(r.lba / 2 ** 8) % 256;
  const high = Math.floor(r.lba / 2 ** 16) % 256;
  if (mid === 0x4f && high === 0xc2) return true;
  if (mid === 0xf4 && high === 0x2c) return false;
  return null;
}

/** SMART READ LOG of log 06h (the self-test log); empty without an answer. */
async function ataSelfTests(fd: number): Promise<SelfTest[]> {
  const a = await native().scsiRead(fd, ataCdb(0xb0, { protocol: 4, feature: 0xd5, lbaLow: 0x06, lbaMid: 0x4f, lbaHigh: 0xc2 }), 512, TIMEOUT_MS);
  return a.status === 0 && a.hostStatus === 0 ? decodeSelfTestLog(a.data) : [];
}

/** ATA SMART through ATA PASS-THROUGH(16); null when the drive gives no SMART data. */
export async function ataHealth(fd: number): Promise<DriveHealth | null> {
  const a = await native().scsiRead(fd, ataCdb(0xb0, { protocol: 4, feature: 0xd0, lbaMid: 0x4f, lbaHigh: 0xc2 }), 512, TIMEOUT_MS);
  if (a.status !== 0 || a.hostStatus !== 0) return null;
  const attributes = decodeSmartData(a.data);
  if (!attributes) return null;
  const passed = await ataStatus(fd).catch(() => null);
  const selfTests = await ataSelfTests(fd).catch(() => []);
  const h = { from: 'ATA SMART' as const, passed, attributes, selfTests, nvme: null, rawHex: a.data.toString('hex') };
  return { ...h, flags: healthFlags(h) };
}

/** The NVMe SMART / Health log for the whole controller (NSID FFFFFFFFh). */
export async function nvmeHealth(fd: number): Promise<DriveHealth | null> {
  // Get Log Page: CDW10 bits 31:16 NUMDL (dwords - 1), bits 7:0 the log identifier.
  const a = await native().nvmeAdminRead(fd, 0x02, 0xffffffff, Uint32Array.of((127 << 16) | 0x02, 0, 0, 0, 0, 0), 512, TIMEOUT_MS);
  if (a.status !== 0) return null;
  const nvme = decodeNvmeSmart(a.data);
  if (!nvme) return null;
  const h = {
    from: 'NVMe SMART / Health log' as const,
    passed: (nvme.criticalWarning & 0x1f) === 0,
    attributes: [],
    selfTests: [],
    nvme,
    rawHex: a.data.toString('hex'),
  };
  return { ...h, flags: healthFlags(h) };
}
