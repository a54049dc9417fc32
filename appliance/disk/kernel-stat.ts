// Stage 1: the kernel's I/O counters of a disk (/sys/block/X/stat), the
// evidence that nothing was written to it.
import type { Sysfs } from './sysfs.js';

/**
 * The kernel's own I/O counters for a block device (Documentation/block/stat.rst).
 * These are the evidence that nothing was written: a write, discard or flush
 * that reached the device's request queue is counted here whatever issued it.
 */
export interface IoCounters {
  readIos: number;
  readSectors: number;
  writeIos: number;
  writeSectors: number;
  discardIos: number;
  discardSectors: number;
  flushIos: number;
  inFlight: number;
}

/** Parses a `stat` file; fields beyond those a kernel provides read as 0. */
export function parseStat(text: string): IoCounters | null {
  const f = text
    .trim()
    .split(/\s+/)
    .map((x) => Number(x));
  if (f.length < 11 || f.some((n) => !Number.isFinite(n))) return null;
  const at = (i: number) => f[i] ?? 0;
  return {
    readIos: at(0),
    readSectors: at(2),
    writeIos: at(4),
    writeSectors: at(6),
    inFlight: at(8),
    discardIos: at(11),
    discardSectors: at(13),
    flushIos: at(15),
  };
}

/** Counters for a disk (`name`) or a partition (`disk/part`). */
export function readCounters(sysfs: Sysfs, name: string, partition?: string): IoCounters | null {
  const rel = partition ? `block/${name}/${partition}/stat` : `block/${name}/stat`;
  const text = sysfs.readText(rel);
  return text === null ? null : parseStat(text);
}

/** Writes, written sectors and discards between two snapshots (flushes carry no data and are reported apart). */
export function writesBetween(before: IoCounters, after: IoCounters) {
  return {
    writeIos: after.writeIos - before.writeIos,
    writeSectors: after.writeSectors - before.writeSectors,
    discardIos: after.discardIos - before.discardIos,
    discardSectors: after.discardSectors - before.discardSectors,
    flushIos: after.flushIos - before.flushIos,
  };
}
