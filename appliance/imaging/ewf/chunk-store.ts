// How one chunk is stored: as a zlib stream when that is smaller than the
// chunk, otherwise as the raw bytes followed by their Adler-32. Runs in the
// compression workers.
import { deflateSync } from 'node:zlib';
import { adler32 } from './adler32.js';

export const EWF_COMPRESSIONS = ['none', 'empty', 'fast', 'best'] as const;
export type EwfCompression = (typeof EWF_COMPRESSIONS)[number];

/** The volume section's compression level byte: empty-block mode counts as none, as in libewf. */
export function compressionLevelByte(c: EwfCompression): number {
  return c === 'fast' ? 1 : c === 'best' ? 2 : 0;
}

/** A stored chunk: `zlib` holds the stream, or is null and `adler` is the raw bytes' checksum. */
export interface StoredChunk {
  zlib: Buffer | null;
  adler: number;
}

/**
 * Stores chunks for one compression mode. A chunk of one repeated byte (a
 * zeroed or wiped area) compresses to the same stream every time, so that
 * stream is made once per byte value and length and reused.
 */
export class ChunkStore {
  private readonly mode: EwfCompression;
  private readonly fills = new Map<number, Buffer>();
  private readonly repeated = new Map<number, Buffer>();

  constructor(mode: EwfCompression) {
    this.mode = mode;
  }

  store(chunk: Buffer): StoredChunk {
    if (this.mode !== 'none') {
      const fill = this.repeatedStream(chunk);
      if (fill) return { zlib: fill, adler: 0 };
    }
    if (this.mode === 'best' || (this.mode === 'fast' && !looksIncompressible(chunk))) {
      const z = deflateSync(chunk, { level: this.mode === 'fast' ? 1 : 9 });
      if (z.length < chunk.length) return { zlib: z, adler: 0 };
    }
    return { zlib: null, adler: adler32(chunk) };
  }

  /** Raw, with its checksum: a chunk that must keep its size to be written again in place. */
  storeRaw(chunk: Buffer): StoredChunk {
    return { zlib: null, adler: adler32(chunk) };
  }

  /** The stream for a chunk that is one byte repeated, or null. */
  private repeatedStream(chunk: Buffer): Buffer | null {
    const n = chunk.length;
    const b = chunk[0] as number;
    if (chunk[n - 1] !== b || chunk[n >> 1] !== b) return null;
    const key = b * 0x1000000 + n;
    let fill = this.fills.get(key);
    if (!fill) {
      fill = Buffer.alloc(n, b);
      this.fills.set(key, fill);
    }
    if (!chunk.equals(fill)) return null;
    let z = this.repeated.get(key);
    if (!z) {
      z = deflateSync(fill, { level: this.mode === 'best' ? 9 : 1 });
      this.repeated.set(key, z);
    }
    return z;
  }
}

/** Sampled bytes whose order-0 entropy is above this many bits are taken as already compressed or encrypted. */
export const INCOMPRESSIBLE_BITS = 7.95;
const SAMPLE_STRIDE = 4;

/**
 * Fast mode's pre-test: the byte entropy of every 4th byte. Random,
 * encrypted and already-compressed data score close to 8 bits, where deflate
 * cannot make a chunk smaller (or gains a percent at most), and deflating it
 * anyway is the slowest thing an acquisition would do (about 75 MB/s per
 * core). Such chunks are stored raw without trying; best mode always tries.
 */
export function looksIncompressible(chunk: Uint8Array): boolean {
  const counts = new Uint32Array(256);
  let n = 0;
  for (let i = 0; i < chunk.length; i += SAMPLE_STRIDE) {
    const k = chunk[i] as number;
    counts[k] = (counts[k] as number) + 1;
    n++;
  }
  if (n < 1024) return false;
  let bits = 0;
  for (let k = 0; k < 256; k++) {
    const c = counts[k] as number;
    if (c > 0) bits -= c * Math.log2(c / n);
  }
  return bits / n > INCOMPRESSIBLE_BITS;
}
