// How the chunks of a block are stored: each as a zlib stream when that is
// smaller than the chunk, otherwise as the raw bytes followed by their
// Adler-32. The work runs in native code on the thread pool
// (native/src/ewf_chunks.cc, with the zlib inside Node: the streams are
// node:zlib's, byte for byte).
//   none:  every chunk raw.
//   empty: a chunk of one repeated byte (zeroed or wiped) as a stream, the rest raw.
//   fast:  level 1; a chunk whose sampled byte entropy is above 7.95 bits
//          (compressed or encrypted data, where deflate gains nothing) is kept
//          raw without trying: deflating it would be the slowest part of a run.
//   best:  level 9 on every chunk.
import { native } from '../../native.js';

export const EWF_COMPRESSIONS = ['none', 'empty', 'fast', 'best'] as const;
export type EwfCompression = (typeof EWF_COMPRESSIONS)[number];

/** The volume section's compression level byte: empty-block mode counts as none, as in libewf. */
export function compressionLevelByte(c: EwfCompression): number {
  return c === 'fast' ? 1 : c === 'best' ? 2 : 0;
}

/**
 * The stored form of each chunk of a block: `sizes[i]` > 0 is the length of
 * chunk i's zlib stream in `packed` (streams back to back); 0 means chunk i
 * is stored raw, from the block itself, with checksum `adlers[i]`.
 */
export interface StoredBlock {
  packed: Buffer;
  sizes: Uint32Array;
  adlers: Uint32Array;
  /** Thread time spent on the block. */
  busyMs: number;
}

/** Stores the chunks of `block[0, length)`; the chunk indexes in `raw` stay raw whatever the mode (--fast-first writes them again in place). */
export async function storeChunks(
  block: Uint8Array,
  length: number,
  chunkSize: number,
  mode: EwfCompression,
  raw: readonly number[] = [],
): Promise<StoredBlock> {
  const count = Math.ceil(length / chunkSize);
  const rawFlags = new Uint8Array(count);
  for (const i of raw) if (i >= 0 && i < count) rawFlags[i] = 1;
  const sizes = new Uint32Array(count);
  const adlers = new Uint32Array(count);
  const r = await native().storeChunks(block, length, chunkSize, EWF_COMPRESSIONS.indexOf(mode), rawFlags, sizes, adlers);
  return { packed: r.packed, sizes, adlers, busyMs: r.busyMs };
}
