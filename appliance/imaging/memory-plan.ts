// How much memory an acquisition may take, and what it takes it for: the
// buffers and compression workers are sized from what the machine (and the
// cgroup custos runs in) has left, not fixed counts, so the same defaults run
// on a 512 MiB appliance and a 64 GiB workstation. The figures of the model
// were measured on the pinned runtime (docs/memory.md).
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import type { EwfCompression } from './ewf/chunk-store.js';

const MiB = 1024 * 1024;

/** What the kernel says is left: MemAvailable, and the cgroup's limit less its usage where one is set. */
export interface MemoryFacts {
  availableBytes: number;
  meminfoAvailableBytes: number | null;
  cgroup: { version: 1 | 2; limitBytes: number; usageBytes: number } | null;
}

function readNumber(file: string): number | null {
  try {
    const v = readFileSync(file, 'utf8').trim();
    return /^\d+$/.test(v) ? Number(v) : null;
  } catch {
    return null;
  }
}

/** A cgroup's usage counts the page cache it wrote; the inactive part is given back on demand, as MemAvailable counts it. */
function workingSet(usage: number, dir: string, key: string): number {
  try {
    const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(readFileSync(path.join(dir, 'memory.stat'), 'utf8'));
    return m ? Math.max(0, usage - Number(m[1])) : usage;
  } catch {
    return usage;
  }
}

/** cgroup v2 (memory.max, memory.current) or v1 (memory.limit_in_bytes, memory.usage_in_bytes) of this process; null without a limit. */
function cgroupMemory(root: string): MemoryFacts['cgroup'] {
  let lines: string[];
  try {
    lines = readFileSync(path.join(root, 'proc/self/cgroup'), 'utf8').split('\n');
  } catch {
    return null;
  }
  for (const line of lines) {
    const [, controllers = '', rel = ''] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    // A path from the kernel, but never allowed to climb out of the cgroup mount.
    const safe = path.posix.normalize('/' + rel).replace(/^(\/\.\.)+/, '');
    if (controllers === '') {
      for (const mount of ['sys/fs/cgroup', 'sys/fs/cgroup/unified']) {
        const dir = path.join(root, mount, safe);
        const limit = readNumber(path.join(dir, 'memory.max'));
        const usage = readNumber(path.join(dir, 'memory.current'));
        if (limit !== null && usage !== null) return { version: 2, limitBytes: limit, usageBytes: workingSet(usage, dir, 'inactive_file') };
      }
    } else if (controllers.split(',').includes('memory')) {
      const dir = path.join(root, 'sys/fs/cgroup/memory', safe);
      const limit = readNumber(path.join(dir, 'memory.limit_in_bytes'));
      const usage = readNumber(path.join(dir, 'memory.usage_in_bytes'));
      // v1 writes "no limit" as a number near 2^63.
      if (limit !== null && usage !== null && limit < 2 ** 60)
        return { version: 1, limitBytes: limit, usageBytes: workingSet(usage, dir, 'total_inactive_file') };
    }
  }
  return null;
}

export function readMemoryFacts(root = '/'): MemoryFacts {
  let meminfo: number | null = null;
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync(path.join(root, 'proc/meminfo'), 'utf8'));
    meminfo = m ? Number(m[1]) * 1024 : null;
  } catch {
    meminfo = null;
  }
  const cgroup = cgroupMemory(root);
  const left = cgroup ? Math.max(0, cgroup.limitBytes - cgroup.usageBytes) : Infinity;
  const availableBytes = Math.min(meminfo ?? Infinity, left);
  return { availableBytes: Number.isFinite(availableBytes) ? availableBytes : 1024 * MiB, meminfoAvailableBytes: meminfo, cgroup };
}

/** What the plan is made for. `buffers` 0: sized here; any other number is the examiner's and kept. */
export interface MemoryDemand {
  format: 'raw' | 'split' | 'e01';
  compression: EwfCompression | null;
  blockSize: number;
  buffers: number;
  /** Hash workers the run starts: one per linear hash, one for the pieces, one for per-file windows. */
  hashWorkers: number;
  cores?: number;
}

export interface MemoryPlan {
  availableBytes: number;
  /** The part of it the plan allows itself: the rest stays for the page cache, the UI and the kernel. */
  budgetBytes: number;
  buffers: number;
  /** Blocks stored (compressed) at once on the thread pool. */
  compressWorkers: number;
  /** Memory the run takes beyond what is already in use: anonymous memory, the executable's pages aside. */
  estimatedNeedBytes: number;
  /** The peak RSS to expect: the need plus the executable's pages (a page cache the kernel already holds). */
  estimatedPeakRssBytes: number;
  /** Even the smallest plan is over the budget: the run may be killed for memory. */
  short: boolean;
}

/** The model: measured peak RSS of each part (docs/memory.md). */
export const MEMORY_MODEL = {
  /** The runtime's own heap and state, anonymous memory. */
  runtime: 25 * MiB,
  /** The executable's pages in RSS: file pages, already in memory (the appliance's initramfs, a workstation's page cache). */
  executable: 70 * MiB,
  isolate: 10 * MiB,
  /** Segment-file hasher (an isolate and two 4 MiB buffers), pending writes, tables. */
  ewfWriter: 30 * MiB,
  /** A thread storing a block: its deflate states. */
  compressThread: 1 * MiB,
  /** With fast and best, each thread's scratch, its result and the result's copy on its way to the writers, in blocks. */
  deflateBlocks: 2.5,
  budgetShare: 0.8,
} as const;

const DEFAULT_BUFFERS = 12;
const MIN_BUFFERS = 4;

function estimate(d: MemoryDemand, buffers: number, workers: number): number {
  const m = MEMORY_MODEL;
  let bytes = m.runtime + d.hashWorkers * m.isolate + buffers * d.blockSize;
  if (d.format === 'e01') {
    const deflating = d.compression === 'fast' || d.compression === 'best';
    bytes += m.ewfWriter + workers * (m.compressThread + (deflating ? m.deflateBlocks * d.blockSize : 0));
  }
  return bytes;
}

/** The fastest plan within the budget: fewer buffers first, then fewer compression threads. */
export function planMemory(facts: MemoryFacts, d: MemoryDemand): MemoryPlan {
  const budgetBytes = Math.floor(facts.availableBytes * MEMORY_MODEL.budgetShare);
  const cores = Math.max(1, d.cores ?? availableParallelism());
  const fixedBuffers = d.buffers > 0;
  const e01 = d.format === 'e01';
  type Candidate = { buffers: number; workers: number };
  const candidates: Candidate[] = [];
  const bufferSteps = fixedBuffers ? [d.buffers] : [DEFAULT_BUFFERS, 8, 6, MIN_BUFFERS];
  const workerSteps = e01 ? [...new Set([cores, Math.max(1, Math.floor(cores / 2)), 1])] : [0];
  // The fastest first: fewer compression threads cost far more than fewer buffers.
  for (const workers of workerSteps) for (const buffers of bufferSteps) candidates.push({ buffers, workers });
  const fits = candidates.find((c) => estimate(d, c.buffers, c.workers) <= budgetBytes);
  const smallest: Candidate = { buffers: bufferSteps[bufferSteps.length - 1] ?? MIN_BUFFERS, workers: e01 ? 1 : 0 };
  const chosen = fits ?? smallest;
  return {
    availableBytes: facts.availableBytes,
    budgetBytes,
    buffers: chosen.buffers,
    compressWorkers: chosen.workers,
    estimatedNeedBytes: estimate(d, chosen.buffers, chosen.workers),
    estimatedPeakRssBytes: estimate(d, chosen.buffers, chosen.workers) + MEMORY_MODEL.executable,
    short: !fits,
  };
}

/** One line for the log and the screen. */
export function describePlan(p: MemoryPlan, blockSize: number): string {
  const mib = (b: number) => `${Math.round(b / MiB)} MiB`;
  return (
    `memory: ${mib(p.availableBytes)} available; ${p.buffers} buffers of ${mib(blockSize)}` +
    (p.compressWorkers > 0 ? `, ${p.compressWorkers} compression thread(s)` : '') +
    `; needs about ${mib(p.estimatedNeedBytes)} (peak RSS about ${mib(p.estimatedPeakRssBytes)})` +
    (p.short ? ': MORE THAN THE MACHINE HAS LEFT, the run may be stopped for lack of memory' : '')
  );
}
