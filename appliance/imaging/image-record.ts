import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CustosError } from '../errors.js';
import type { DeviceString } from '../sanitize.js';
import type { ImagingEvent } from './events.js';
import type { HashAlgorithm } from './hash-algorithms.js';
import type { ImageFormat } from './image-layout.js';
import type { BadRange } from './read-recovery.js';
import type { DeferredRange } from './fast-first.js';
import type { HashComparison } from './verify-image.js';
import type { WriteBlockSummary } from './source-writeblock.js';

export const IMAGE_RECORD_SCHEMA = 'custos.image/1';
export const RECORD_SUFFIX = '.custos.json';

export interface SourceInfo {
  path: string;
  name: string;
  stableId: string | null;
  vendor: DeviceString | null;
  model: DeviceString | null;
  serial: DeviceString | null;
  sizeBytes: number;
  logicalSectorSize: number;
  physicalSectorSize: number | null;
  sectors: number;
}

export type AcquisitionStatus = 'complete' | 'complete-with-bad-sectors' | 'verify-failed' | 'aborted';

/**
 * What custos writes beside each image (NAME.custos.json) and prints with
 * --json: enough to re-verify the image later with custos or by hand.
 * docs/json.md describes every field.
 */
export interface ImageRecord {
  schema: typeof IMAGE_RECORD_SCHEMA;
  status: AcquisitionStatus;
  tool: { name: 'custos'; version: string; node: string };
  source: SourceInfo;
  image: { name: string; format: ImageFormat; splitSize: number | null; sizeBytes: number; sectorSize: number; files: ImageFile[] };
  settings: { hashes: HashAlgorithm[]; pieceSize: number; blockSize: number; buffers: number; retries: number; fill: number; fastFirst: boolean; verify: boolean; verifySource: boolean };
  /** --fast-first only: what the first pass left, what the recovery pass got, and where the hashes come from. */
  recovery: RecoveryRecord | null;
  hashes: Partial<Record<HashAlgorithm, string>>;
  pieces: { size: number; count: number; sha256: string[]; merkleRoot: string; merkle: string };
  badSectors: number;
  badRanges: BadRange[];
  destinations: { dir: string; fsType: string; freeBytesAtStart: number; verification: HashComparison | null }[];
  sourceVerification: HashComparison | null;
  writeBlock: WriteBlockSummary | null;
  timing: { started: string; finished: string; acquireS: number; totalS: number; averageMiBs: number; peakRssMiB: number };
  stages: { name: string; kind: string; bytes: number; busyS: number }[];
  error: { code: string; message: string } | null;
  events: ImagingEvent[];
}

/** One output file; `sha256` of the file itself (null in an aborted run). */
export interface ImageFile {
  file: string;
  size: number;
  sha256: string | null;
}

export interface RecoveryRecord {
  deferred: DeferredRange[];
  recoveredSectors: number;
  /**
   * 'source-stream': hashed as read, as without --fast-first (nothing changed
   * in the recovery pass). 'destination-reread': the recovery pass replaced
   * fill with data, so the hashes are of a re-read of `rereadDir`; the pieces
   * of windows it did not touch were compared with those hashed from the source.
   */
  hashesFrom: 'source-stream' | 'destination-reread';
  rereadDir: string | null;
  untouchedPieces: { compared: number; mismatched: number[] } | null;
}

export const MERKLE_DESCRIPTION = 'RFC 6962 tree hash over the piece digests: leaf=SHA256(0x00||digest), node=SHA256(0x01||left||right)';

export function recordFileName(imageName: string): string {
  return imageName + RECORD_SUFFIX;
}

/** Writes the record once, read-only; an existing record is never replaced. */
export function writeRecord(dir: string, record: ImageRecord): string {
  const file = path.join(dir, recordFileName(record.image.name));
  writeFileSync(file, JSON.stringify(record, null, 2) + '\n', { flag: 'wx', mode: 0o444 });
  return file;
}

/** Finds and reads the record in DIR (of image NAME, or the only one there). */
export function readRecord(dir: string, name?: string): { file: string; record: ImageRecord } {
  let file: string;
  if (name) file = path.join(dir, recordFileName(name));
  else {
    let found: string[];
    try {
      found = readdirSync(dir).filter((f) => f.endsWith(RECORD_SUFFIX));
    } catch (e) {
      throw new CustosError('ENOENT', `cannot read ${dir}: ${(e as { code?: string }).code ?? 'error'}`);
    }
    if (found.length === 0) throw new CustosError('ENORECORD', `${dir} holds no custos image record (*${RECORD_SUFFIX})`);
    if (found.length > 1) throw new CustosError('EAMBIGUOUS', `${dir} holds ${found.length} image records; name one with --name`);
    file = path.join(dir, found[0] as string);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CustosError('EBADRECORD', `${file}: ${e instanceof SyntaxError ? 'not valid JSON' : ((e as { code?: string }).code ?? 'unreadable')}`);
  }
  const r = parsed as Partial<ImageRecord>;
  if (r.schema !== IMAGE_RECORD_SCHEMA || !r.image || !r.hashes || !r.pieces) throw new CustosError('EBADRECORD', `${file} is not a ${IMAGE_RECORD_SCHEMA} record`);
  return { file, record: r as ImageRecord };
}
