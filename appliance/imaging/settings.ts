// What an acquisition is asked to do, and the defaults: the settings a
// journal keeps and a resume goes on with.
import type { EwfSettings } from './ewf/ewf-plan.js';
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
export const DEFAULT_BUFFERS = 12;
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
