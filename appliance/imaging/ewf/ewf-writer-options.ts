// What the E01 writer is given: where and how to write, and what closes the image.
import type { EwfSettings } from './ewf-plan.js';
import type { CompressPool } from './compress-pool.js';
import type { EwfCaseInfo } from './ewf-header.js';
import type { EwfWriterState } from './ewf-writer-state.js';
import type { SectorRun } from './ewf-sections.js';

export interface EwfWriterOptions extends EwfSettings {
  label: string;
  dir: string;
  name: string;
  imageSize: number;
  sectorSize: number;
  caseInfo: EwfCaseInfo;
  /** 0x03 for a physical disk, 0x01 for anything else. */
  mediaFlags: number;
  setIdentifier: Buffer;
  /** Shared by every destination's writer: each block is compressed once. */
  compressor: CompressPool;
  /** How many writers take each block from `compressor`. */
  writers: number;
  showCompression: boolean;
  /** SHA-256 each segment file once written (the first copy's go into the record). */
  hashFiles: boolean;
  /** Go on from a resume point: the state the journal kept, and the image offset it stands at. */
  resume?: { state: EwfWriterState; position: number; onDiscard: (file: string, bytes: number) => void };
  /** --fast-first: whether the chunk at this image offset holds filled, deferred bytes; it is then stored raw, to be written again in place. */
  keepRaw?: (offset: number, length: number) => boolean;
}

/** What closes the image: the hashes for the digest and hash sections, and the unreadable sectors for error2. */
export interface EwfClosing {
  md5: Buffer;
  sha1: Buffer;
  badRuns: SectorRun[];
}
