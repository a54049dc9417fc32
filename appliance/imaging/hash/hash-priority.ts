// Which selected hash sets the pace, so its worker gets the CPU first.
import { createHash } from 'node:crypto';
import type { HashAlgorithm } from './hash-algorithms.js';

/**
 * Which selected hash is slowest on this CPU (it sets the pace of the whole
 * pipeline), by timing each on a few MiB.
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

/** Nice values of the hash workers: the one that sets the pace, and the rest. */
export interface HashNice {
  pacing: number;
  others: number;
}

/**
 * On a machine with fewer cores than busy threads the scheduler time-slices
 * the pacing hash with the faster hashes, the reader and the writers, and the
 * whole pipeline waits for it. Giving it more weight than everything else
 * lets it run whenever it has data, while the others still use every cycle it
 * leaves. Only root may raise a priority, so elsewhere the others are lowered
 * instead (which cannot outweigh the reader and writers, but helps).
 * Measured on 2 cores, SHA-256 plus piecewise SHA-256: 1.65 s instead of 2.7 s for 2 GiB.
 */
export function hashNice(mayRaise: boolean): HashNice {
  return mayRaise ? { pacing: -10, others: 0 } : { pacing: 0, others: 5 };
}

export function mayRaisePriority(): boolean {
  return process.geteuid?.() === 0;
}
