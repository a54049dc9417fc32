import { createHash } from 'node:crypto';
import type { HashAlgorithm } from './hash-algorithms.js';

/** Nice value for hash workers that are not the slowest one. */
export const FASTER_HASH_NICE = 5;

/**
 * Which selected hash is slowest on this CPU (it sets the pace of the whole
 * pipeline), by timing each on a few MiB. Its worker keeps normal priority;
 * the others get a lower one, so on a machine with few cores the scheduler
 * gives the pacing hash a core of its own and the rest share what is left.
 */
export function slowestHash(algorithms: readonly HashAlgorithm[]): HashAlgorithm | null {
  if (algorithms.length === 0) return null;
  const sample = Buffer.alloc(2 * 1024 * 1024, 0x5a);
  let slowest: HashAlgorithm | null = null;
  let worst = -1;
  for (const a of algorithms) {
    createHash(a).update(sample.subarray(0, 65536)).digest();
    const t0 = process.hrtime.bigint();
    createHash(a).update(sample).digest();
    const dt = Number(process.hrtime.bigint() - t0);
    if (dt > worst) {
      worst = dt;
      slowest = a;
    }
  }
  return slowest;
}

export function niceFor(algorithm: HashAlgorithm | 'pieces', slowest: HashAlgorithm | null): number {
  return algorithm === slowest ? 0 : FASTER_HASH_NICE;
}
