// What the machine allows a mode, from rates measured in the same run (issue 19): the least of the
// source's read rate, the destination's write rate, the slowest serial hash on one core, and the cores
// divided by the CPU seconds per MiB of everything the mode computes (hashes, pieces, compression and
// the copies through the kernel, which on a tmpfs-backed loop are CPU work too).
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import { deflateSync } from 'node:zlib';
import { MiB, seconds } from './bench-timing.js';

export interface MachineRates {
  cores: number;
  /** The source read with O_DIRECT, 4 MiB at a time. */
  readMiBs: number;
  /** A file written on the destination file system, 4 MiB at a time. */
  writeMiBs: number;
  /** Each hash on one core, data in memory. */
  hashMiBs: Record<string, number>;
  /** zlib deflate on one core on mixed data, per MiB of source: "fast" (level 1, random chunks skipped) and "best" (level 9). */
  deflateMiBs: Record<string, number>;
}

/** What a mode computes per byte. */
export interface ModeWork {
  /** Hashes of the whole stream, each necessarily on one core. */
  serialHashes: string[];
  /** Hashes that split into independent windows (the piecewise hashes): any core. */
  parallelHashes: string[];
  /** E01 compression of every chunk ("fast" or "best"), any core. */
  deflate?: 'fast' | 'best';
  /** How many times the bytes are written (one per destination), and read (1, or 0 for none). */
  writes: number;
  reads: number;
}

export interface ModeLimit {
  limitMiBs: number;
  /** What sets it: "read", "write", "md5 on one core" or "CPU (2 cores)". */
  boundBy: string;
  /** The CPU seconds per MiB of all the work, for the report. */
  cpuSecondsPerMiB: number;
}

export function modeLimit(r: MachineRates, w: ModeWork): ModeLimit {
  const inv = (rate: number | undefined, what: string) => {
    if (!rate || !Number.isFinite(rate) || rate <= 0) throw new Error(`bench: no measured rate for ${what}`);
    return 1 / rate;
  };
  const hashes = [...w.serialHashes, ...w.parallelHashes];
  const cpu =
    hashes.reduce((s, h) => s + inv(r.hashMiBs[h], h), 0) +
    (w.deflate === undefined ? 0 : inv(r.deflateMiBs[w.deflate], `deflate ${w.deflate}`)) +
    w.reads * inv(r.readMiBs, 'read') +
    w.writes * inv(r.writeMiBs, 'write');
  const bounds: [string, number][] = [[`CPU (${r.cores} cores)`, r.cores / cpu]];
  if (w.reads > 0) bounds.push(['read', r.readMiBs]);
  if (w.writes > 0) bounds.push(['write', r.writeMiBs / w.writes]);
  for (const h of w.serialHashes) bounds.push([`${h} on one core`, r.hashMiBs[h] ?? 0]);
  const [boundBy, limitMiBs] = bounds.reduce((a, b) => (b[1] < a[1] ? b : a));
  return { limitMiBs, boundBy, cpuSecondsPerMiB: cpu };
}

/** One core, one algorithm, data already in memory: the fastest that hash can go here. */
export function hashRate(alg: string, bytes: number): number {
  const buf = Buffer.alloc(64 * MiB);
  randomFillSync(buf);
  const rounds = Math.max(4, Math.round(Math.min(bytes, 1024 * MiB) / buf.length));
  const h = createHash(alg);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) h.update(buf);
  h.digest();
  return (rounds * buf.length) / MiB / seconds(t0);
}

/** Bits per byte of a chunk's byte histogram. */
function entropy(b: Buffer): number {
  const counts = new Uint32Array(256);
  for (const x of b) counts[x] = (counts[x] ?? 0) + 1;
  let h = 0;
  for (const c of counts) if (c > 0) h -= (c / b.length) * Math.log2(c / b.length);
  return h;
}

/**
 * deflate at `level` on one core over `sample` (a mixed source's first MiBs), in 32 KiB E01 chunks,
 * per MiB of the sample; with `skipRandom`, chunks above 7.95 bits per byte are kept raw untried, as
 * E01 fast does (appliance/imaging/ewf/chunk-store.ts).
 */
export function deflateRate(sample: Buffer, level: number, skipRandom: boolean): number {
  const chunk = 32 * 1024;
  const chunks: Buffer[] = [];
  for (let at = 0; at < sample.length; at += chunk) chunks.push(sample.subarray(at, at + chunk));
  // Sorted out before the clock starts: custos decides on a sample of each chunk, in native code.
  const deflated = skipRandom ? chunks.filter((c) => entropy(c) <= 7.95) : chunks;
  const t0 = process.hrtime.bigint();
  for (const c of deflated) deflateSync(c, { level });
  return sample.length / MiB / seconds(t0);
}

/** Writes `bytes` to `file` 4 MiB at a time and removes it: the destination's write rate. */
export function writeRate(file: string, bytes: number): number {
  const buf = Buffer.alloc(4 * MiB, 0x5a);
  const fd = openSync(file, 'w');
  const t0 = process.hrtime.bigint();
  try {
    for (let at = 0; at < bytes; at += buf.length) writeSync(fd, buf, 0, Math.min(buf.length, bytes - at));
  } finally {
    closeSync(fd);
  }
  const s = seconds(t0);
  rmSync(file);
  return bytes / MiB / s;
}

export function cores(): number {
  return os.availableParallelism();
}
