// E01 writing: the messages between the compress pool and its workers.
import type { EwfCompression } from './chunk-store.js';

export interface CompressWorkerData {
  mode: EwfCompression;
  chunkSize: number;
  buffers: { sab: SharedArrayBuffer; offset: number; size: number }[];
  /** Collect garbage once the worker holds this many bytes outside its heap (null: when V8 decides, some 64 MiB). */
  garbageBytes: number | null;
}

/** Store the chunks of pool buffer `index` (its first `length` bytes). */
export interface CompressJob {
  seq: number;
  index: number;
  length: number;
  /** Chunks (by index in the block) to store raw whatever the mode: --fast-first writes them again in place. */
  raw: number[];
}

/**
 * The stored form of each chunk of a block: `sizes[i]` > 0 is the length of
 * chunk i's zlib stream in `packed` (streams back to back); 0 means chunk i
 * is stored raw, from the pool buffer, with checksum `adlers[i]`.
 */
export interface CompressResult {
  seq: number;
  packed: ArrayBuffer;
  sizes: Uint32Array;
  adlers: Uint32Array;
  busyMs: number;
}
