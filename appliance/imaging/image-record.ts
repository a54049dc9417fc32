// What an acquisition records (the custody record's `acquisition`): the types;
// record-assembly.ts fills them in.
import type { MemoryPlan } from './memory-plan.js';
import type { EwfCompression } from './ewf/chunk-store.js';
import type { ReadTiming } from './read/read-timing.js';
import type { EwfSettings } from './ewf/ewf-plan.js';
import type { DeviceString } from '../sanitize.js';
import type { ImagingEvent } from '../events.js';
import type { HashAlgorithm } from './hash/hash-algorithms.js';
import type { ImageFormat } from './write/image-layout.js';
import type { BadRange } from './read/read-recovery.js';
import type { DeferredRange } from './read/fast-first.js';
import type { HashComparison } from './verify/verify-image.js';
import type { WriteBlockSummary } from '../writeblock/source-writeblock.js';

/** What the record says of an E01 image. */
export interface EwfRecord {
  compression: EwfCompression;
  segmentSize: number;
  chunkSize: number;
  setIdentifier: string;
  /** What the image's hash and digest sections hold. */
  storedHashes: { md5: string; sha1: string };
  error2Runs: number;
}

export const IMAGE_RECORD_SCHEMA = 'custos.image/1';

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
 * The acquisition itself: what `acquire` returns and prints with --json, and
 * what custody.json holds as `acquisition` (its events go to events.jsonl).
 * docs/json.md describes every field.
 */
export interface ImageRecord {
  schema: typeof IMAGE_RECORD_SCHEMA;
  status: AcquisitionStatus;
  tool: { name: 'custos'; version: string; node: string };
  source: SourceInfo;
  image: { name: string; format: ImageFormat; splitSize: number | null; sizeBytes: number; sectorSize: number; files: ImageFile[]; ewf: EwfRecord | null };
  settings: {
    hashes: HashAlgorithm[];
    pieceSize: number;
    blockSize: number;
    buffers: number;
    retries: number;
    fill: number;
    fastFirst: boolean;
    verify: boolean;
    verifySource: boolean;
    ewf?: EwfSettings;
    /** How the buffers and compression workers were sized for the memory left. */
    memory?: MemoryPlan;
  };
  /** --fast-first only: what the first pass left, what the recovery pass got, and where the hashes come from. */
  recovery: RecoveryRecord | null;
  /** A resumed acquisition: where it went on from and what was checked first; null for one that ran through. */
  resume: ResumeRecord | null;
  /** The resume journal kept by this run: how many resume points, the last one's position; null when none was kept. */
  journal: { checkpoints: number; lastPosition: number } | null;
  hashes: Partial<Record<HashAlgorithm, string>>;
  pieces: { size: number; count: number; sha256: string[]; merkleRoot: string; merkle: string };
  badSectors: number;
  badRanges: BadRange[];
  destinations: { dir: string; fsType: string; freeBytesAtStart: number; verification: HashComparison | null }[];
  sourceVerification: HashComparison | null;
  writeBlock: WriteBlockSummary | null;
  /** startupS: from the request (the process start for the CLI, the start key in the TUI) to the first read, apart from acquireS. */
  timing: { started: string; finished: string; startupS: number; acquireS: number; totalS: number; averageMiBs: number; peakRssMiB: number };
  stages: { name: string; kind: string; bytes: number; busyS: number }[];
  /** How long the source's reads took (null before the first). */
  readTiming: ReadTiming | null;
  error: { code: string; message: string } | null;
  events: ImagingEvent[];
}

/** One output file; `sha256` of the file itself (null in an aborted run). */
export interface ImageFile {
  file: string;
  size: number;
  sha256: string | null;
}

export interface ResumeRecord {
  /** Bytes of the image stream taken from the destination (read back and checked), not from the source, in this run. */
  position: number;
  checkpoint: number;
  journalWritten: string;
  /** When the acquisition first started (this run's start is in timing). */
  firstStarted: string;
  /** How many times this acquisition has been resumed, this one included. */
  resumes: number;
  /** Windows before the resume point checked against the journal, in every copy. */
  windowsChecked: number;
  readBackFrom: string;
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
