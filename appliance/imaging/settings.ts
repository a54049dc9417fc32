// What an acquisition is asked to do, and the defaults: the settings a
// journal keeps and a resume goes on with.
import { PreflightError } from '../errors.js';
import { DEFAULT_EWF_SETTINGS, EWF_CHUNK_SIZE, ewfSettingsProblem, type EwfSettings } from './ewf/ewf-plan.js';
import type { HashAlgorithm } from './hash/hash-algorithms.js';
import { DEFAULT_READ_POLICY, type ReadPolicy } from './read/read-recovery.js';
import type { ImageFormat } from './write/image-layout.js';

export interface AcquireSettings {
  name: string;
  format: ImageFormat;
  splitSize: number;
  hashes: HashAlgorithm[];
  pieceSize: number;
  blockSize: number;
  /** Buffers in the pool; 0: as many as the memory left allows (memory-plan.ts), at most 12. */
  buffers: number;
  policy: ReadPolicy;
  /** Skip past read errors first and come back to them at the end (ddrescue style). */
  fastFirst: boolean;
  verify: boolean;
  verifySource: boolean;
  /** --format e01 only: compression and segment size (default fast, 1.4 GiB). */
  ewf?: EwfSettings;
}

export const DEFAULT_BLOCK_SIZE = 4 * 1024 * 1024;
/** Buffers sized from the memory left (see memory-plan.ts). */
export const DEFAULT_BUFFERS = 0;
export const DEFAULT_PIECE_SIZE = 64 * 1024 * 1024;

/**
 * An acquisition's settings: the defaults, with what the examiner chose over
 * them. The one place the CLI and the UI build them, so a new setting gets its
 * default once.
 */
export function acquireSettings(chosen: Partial<AcquireSettings>): AcquireSettings {
  return {
    name: 'image',
    format: 'raw',
    splitSize: 2 * 1024 ** 3,
    hashes: ['md5', 'sha256'],
    pieceSize: DEFAULT_PIECE_SIZE,
    blockSize: DEFAULT_BLOCK_SIZE,
    buffers: DEFAULT_BUFFERS,
    policy: DEFAULT_READ_POLICY,
    fastFirst: false,
    verify: false,
    verifySource: false,
    ...chosen,
  };
}

/** What the settings are checked against: the source as the reader sees it. */
export interface SourceShape {
  name: string;
  size: number;
  sectorSize: number;
}

/** The one check of an acquisition's settings against its source, before anything is written. */
export function checkSettings(o: AcquireSettings, source: SourceShape): void {
  const ss = source.sectorSize;
  const bad = (what: string) => new PreflightError('EUSAGE', what);
  if (source.size <= 0) throw bad(`source ${source.name} is empty`);
  if (source.size % ss !== 0) throw bad(`source size ${source.size} is not a multiple of its ${ss}-byte sector`);
  if (o.blockSize % 4096 !== 0 || o.blockSize % ss !== 0 || o.blockSize > 256 * 1024 * 1024)
    throw bad('--block-size must be a multiple of 4096 and of the sector size, at most 256M');
  if (o.pieceSize % ss !== 0) throw bad(`--piece-size must be a multiple of the ${ss}-byte sector`);
  if (o.format === 'split' && (o.splitSize % 4096 !== 0 || o.splitSize < 1024 * 1024)) throw bad('--split-size must be a multiple of 4096 and at least 1M');
  if (o.buffers !== DEFAULT_BUFFERS && (o.buffers < 2 || o.buffers > 256)) throw bad('--buffers must be 2..256');
  if (o.hashes.length === 0) throw bad('at least one hash is needed');
  if (o.format === 'e01') {
    const problem = ewfSettingsProblem({ ...o, ewf: ewfSettingsOf(o) });
    if (problem) throw bad(problem);
    if (EWF_CHUNK_SIZE % ss !== 0) throw bad(`the ${ss}-byte sector does not divide the E01 chunk`);
  }
}

/** --format e01's settings, the defaults where none were chosen. */
export function ewfSettingsOf(o: AcquireSettings): EwfSettings {
  return o.ewf ?? DEFAULT_EWF_SETTINGS;
}
