// How many segment files, and how much space, an E01 image can need: the
// worst case, every chunk stored raw with its checksum. Preflight checks
// names and free space against it before anything is read.
import type { Segment } from '../write/segment.js';
import { segmentFileName } from './ewf-names.js';
import type { EwfCompression } from './chunk-store.js';
import { closingSize, DESCRIPTOR_SIZE, FILE_HEADER_SIZE, tableSectionSize, VOLUME_BODY_SIZE } from './ewf-sections.js';

/** --format e01's own settings: compression and the largest segment file. */
export interface EwfSettings {
  compression: EwfCompression;
  /** Largest size of one segment file. */
  segmentSize: number;
}

export const EWF_CHUNK_SIZE = 32 * 1024;
/** Room every segment keeps for its closing sections: error2 with this many runs fits without passing the segment size. */
export const ERROR2_RESERVED_RUNS = 4096;
/** Segment sizes allowed: at least 1 MiB (as ewfacquire), at most what a 64-bit file and 16-bit segment number can sensibly hold. */
export const MIN_SEGMENT_SIZE = 1024 * 1024;
export const DEFAULT_SEGMENT_SIZE = Math.floor((1.4 * 1024 ** 3) / 4096) * 4096;
/** Headers, volume and a generous allowance for the header texts. */
const SEGMENT_OVERHEAD = FILE_HEADER_SIZE + 4 * DESCRIPTOR_SIZE + VOLUME_BODY_SIZE + 64 * 1024;

/** Bytes each segment keeps free after its chunks for a table pair of `entries` and the closing sections. */
export function segmentReserve(entries: number): number {
  return 2 * tableSectionSize(entries) + closingSize(ERROR2_RESERVED_RUNS);
}

export function e01WorstCase(name: string, size: number, segmentSize: number): Segment[] {
  const chunks = Math.max(1, Math.ceil(size / EWF_CHUNK_SIZE));
  // Each chunk: 32 KiB + Adler-32, plus 8 bytes of table entries (table and table2).
  const perChunk = EWF_CHUNK_SIZE + 4 + 8;
  const perSegment = Math.max(1, Math.floor((segmentSize - SEGMENT_OVERHEAD - segmentReserve(0)) / perChunk));
  const count = Math.ceil(chunks / perSegment);
  return Array.from({ length: count }, (_, i) => {
    const n = Math.min(perSegment, chunks - i * perSegment);
    return {
      file: segmentFileName(name, i + 1),
      start: i * perSegment * EWF_CHUNK_SIZE,
      size: Math.min(segmentSize, SEGMENT_OVERHEAD + n * perChunk + segmentReserve(0)),
    };
  });
}

export const DEFAULT_EWF_SETTINGS: EwfSettings = { compression: 'fast', segmentSize: DEFAULT_SEGMENT_SIZE };

/** What rules out these settings for an E01 acquisition, or null; the CLI and the engine ask the same. */
export function ewfSettingsProblem(o: { ewf: EwfSettings; blockSize: number; hashes: readonly string[] }): string | null {
  if (!Number.isInteger(o.ewf.segmentSize) || o.ewf.segmentSize < MIN_SEGMENT_SIZE) return '--segment-size must be at least 1M';
  if (o.blockSize % EWF_CHUNK_SIZE !== 0) return `--block-size must be a multiple of the E01 chunk size (${EWF_CHUNK_SIZE}) with --format e01`;
  if (!o.hashes.includes('md5') || !o.hashes.includes('sha1')) return '--format e01 stores MD5 and SHA-1 in the image: both must be among the hashes';
  return null;
}
