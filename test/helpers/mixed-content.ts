// A source with about a third each of zero blocks, text-like data and
// random data, interleaved per MiB: what a used disk looks like to a
// compressor. Deterministic for a seed (xorshift), so runs compare.
import { closeSync, openSync, writeSync } from 'node:fs';

const MiB = 1024 * 1024;

/** xorshift32: the same sequence for the same seed. */
export function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

export function writeMixedImage(file: string, bytes: number, seed = 7): void {
  const next = xorshift(seed);
  const words = Array.from({ length: 4000 }, () => {
    const n = 2 + (next() % 8);
    return Array.from({ length: n }, () => String.fromCharCode(97 + (next() % 26))).join('');
  });
  const block = Buffer.alloc(MiB);
  const fd = openSync(file, 'w');
  try {
    for (let off = 0, i = 0; off < bytes; off += MiB, i++) {
      const kind = i % 3;
      if (kind === 0) block.fill(0);
      else if (kind === 1) {
        let at = 0;
        while (at < MiB) at += block.write(`${words[next() % words.length]}${next() % 10 === 0 ? '\n' : ' '}`, at, 'latin1');
      } else {
        for (let k = 0; k < MiB; k += 4) block.writeUInt32LE(next(), k);
      }
      writeSync(fd, block, 0, Math.min(MiB, bytes - off), off);
    }
  } finally {
    closeSync(fd);
  }
}
