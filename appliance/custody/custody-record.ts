// custody.json: the signed chain-of-custody record. Canonical JSON (RFC 8785),
// so its bytes are reproducible; docs/json.md and schema/ describe it.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CustosError } from '../errors.js';
import type { HostIdentity } from '../host-identity.js';
import type { Disk } from '../disk/inventory.js';
import type { DriveReport } from '../disk/drive-probe.js';
import type { DriveCoverage } from '../disk/drive-coverage.js';
import type { EncryptedVolume } from '../disk/encrypted-volumes.js';
import type { DriveHealth } from '../disk/drive-health.js';
import type { VirtualDiskRecord } from '../vdisk/virtual-disk-record.js';
import type { AcquisitionStatus, ImageRecord } from '../imaging/image-record.js';
import type { CaseData } from './case-data.js';
import type { ClockRecord } from './clock.js';
import type { ToolIdentity } from './tool-identity.js';

export const CUSTODY_SCHEMA = 'custos.custody/1';
export const CUSTODY_FILE = 'custody.json';
export const ALLOWED_SIGNERS_FILE = 'allowed_signers';
export const REPORT_TXT = 'report.txt';
export const REPORT_HTML = 'report.html';
export const SIG_SUFFIX = '.sig';

export interface SignerRecord {
  kind: 'examiner' | 'one-time';
  principal: string;
  fingerprint: string;
  /** OpenSSH public key line. */
  publicKey: string;
  namespace: string;
}

export interface CustodyRecord {
  schema: typeof CUSTODY_SCHEMA;
  status: AcquisitionStatus;
  case: CaseData;
  clock: ClockRecord;
  signer: SignerRecord;
  tool: ToolIdentity;
  kernel: { release: string; version: string };
  host: HostIdentity | null;
  /** Everything the inventory knew about the source disk at the start. */
  sourceDisk: Disk | null;
  /** The drive's own view of itself (IDENTIFY, native max, namespaces, READ CAPACITY) and what the image covers of it; absent in records older than it. */
  sourceDrive?: SourceDrive | null;
  /** A virtual disk source: its folder, chain and container files with their SHA-256; absent for a physical source and in older records. */
  virtualDisk?: VirtualDiskRecord | null;
  /** The acquisition: settings, hashes, pieces, bad ranges, files with their SHA-256, write-block evidence, timings. Its events are in the log. */
  acquisition: Omit<ImageRecord, 'events'>;
  log: { file: string; entries: number; head: string };
}

export interface SourceDrive {
  report: DriveReport;
  coverage: DriveCoverage;
  /** The drive refused reads (locked) and the examiner confirmed imaging it anyway. */
  lockedConfirmed: boolean;
  /** SMART or the NVMe health log read again when the acquisition ended (the snapshot before is report.health); absent in older records. */
  healthAfter?: DriveHealth | null;
  /** Encrypted volumes on the visible data (libblkid), each with the advice shown; absent in records older than it. */
  encryptedVolumes?: EncryptedVolume[];
}

export function kernelIdentity(): { release: string; version: string } {
  return { release: os.release(), version: os.version() };
}

/** Reads custody.json from DIR as raw bytes (what the signature covers) and parsed. */
export function readCustody(dir: string): { file: string; bytes: Buffer; record: CustodyRecord } {
  const file = path.join(dir, CUSTODY_FILE);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new CustosError('ENORECORD', `${file}: ${(e as { code?: string }).code === 'ENOENT' ? 'no custody record here' : 'unreadable'}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new CustosError('EBADRECORD', `${file} is not valid JSON (changed or damaged)`);
  }
  const r = parsed as Partial<CustodyRecord>;
  if (r.schema !== CUSTODY_SCHEMA || !r.acquisition || !r.signer || !r.log) throw new CustosError('EBADRECORD', `${file} is not a ${CUSTODY_SCHEMA} record`);
  return { file, bytes, record: r as CustodyRecord };
}
