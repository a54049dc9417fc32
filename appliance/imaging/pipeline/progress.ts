// Progress of a running pipeline: rates, busy stages, the bottleneck, stalls.
import type { StageStats } from './stage.js';

export interface StageProgress {
  name: string;
  kind: StageStats['kind'];
  bytes: number;
  /** Over the last interval, MiB/s. */
  rateMiBs: number;
  /** Fraction of the last interval the stage spent working; ~1 marks the bottleneck. */
  busy: number;
  /** Chunks waiting in or being handled by the stage, as a fraction of the buffer pool. */
  queueFill: number;
}

export interface ProgressReport {
  phase: string;
  bytesDone: number;
  bytesTotal: number;
  percent: number;
  elapsedS: number;
  rateMiBs: number;
  averageMiBs: number;
  etaS: number | null;
  stages: StageProgress[];
  bottleneck: string | null;
  badSectors: number;
  /** Seconds without a byte getting through every stage (a stalled read or write), when 2 or more; else null. */
  stalledS: number | null;
  writeBlock: { intact: boolean; checks: number; resets: number } | null;
  /** The resume journal: how far an interrupted run could go on from, and when that was written; null when none is kept. */
  journal: { checkpoints: number; position: number; written: string | null } | null;
}

const MiB = 1024 * 1024;

/** Turns cumulative stage counters into rates over each interval. */
export class ProgressMeter {
  private readonly started = performance.now();
  private lastAt = this.started;
  private lastDone = 0;
  private lastAdvance = this.started;
  private lastStages = new Map<string, { bytes: number; busyMs: number }>();

  constructor(
    private readonly phase: string,
    private readonly total: number,
    private readonly poolSize: number,
  ) {}

  report(stages: StageStats[], badSectors: number, writeBlock: ProgressReport['writeBlock']): ProgressReport {
    const now = performance.now();
    const dt = Math.max(1, now - this.lastAt);
    // Done means through every stage: the slowest consumer sets it.
    const done = stages.length ? Math.min(...stages.map((s) => s.bytes)) : 0;
    const rows = stages.map((s) => {
      const prev = this.lastStages.get(s.name) ?? { bytes: 0, busyMs: 0 };
      return {
        name: s.name,
        kind: s.kind,
        bytes: s.bytes,
        rateMiBs: round((s.bytes - prev.bytes) / MiB / (dt / 1000)),
        busy: round(Math.min(1, (s.busyMs - prev.busyMs) / dt)),
        queueFill: round(s.queued / this.poolSize),
      };
    });
    const elapsedS = (now - this.started) / 1000;
    const average = elapsedS > 0 ? done / MiB / elapsedS : 0;
    const rate = (done - this.lastDone) / MiB / (dt / 1000);
    if (done > this.lastDone || done >= this.total) this.lastAdvance = now;
    const stalled = (now - this.lastAdvance) / 1000;
    const top = rows.reduce<StageProgress | null>((a, b) => (a === null || b.busy > a.busy ? b : a), null);
    this.lastAt = now;
    this.lastDone = done;
    this.lastStages = new Map(stages.map((s) => [s.name, { bytes: s.bytes, busyMs: s.busyMs }]));
    return {
      phase: this.phase,
      bytesDone: done,
      bytesTotal: this.total,
      percent: this.total > 0 ? round((100 * done) / this.total) : 100,
      elapsedS: round(elapsedS),
      rateMiBs: round(rate),
      averageMiBs: round(average),
      etaS: average > 0 ? round((this.total - done) / MiB / average) : null,
      stages: rows,
      bottleneck: top && top.busy >= 0.5 ? top.name : null,
      badSectors,
      stalledS: stalled >= 2 ? Math.floor(stalled) : null,
      writeBlock,
      journal: null,
    };
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

/** Where a phase's progress goes and how often (default every second). */
export interface ProgressSink {
  onProgress?: (p: ProgressReport) => void;
  progressIntervalMs?: number;
  /** The source's write-block check, run on each tick of every phase (a verify too: the guard does not pause while copies are read). */
  writeBlockTick?: () => ProgressReport['writeBlock'];
}

/** A sink's settings as a read-back takes them, with the default interval filled in. */
export function progressOptions(o: ProgressSink): ProgressSink & { progressIntervalMs: number } {
  return {
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    progressIntervalMs: o.progressIntervalMs ?? 1000,
    ...(o.writeBlockTick ? { writeBlockTick: o.writeBlockTick } : {}),
  };
}
