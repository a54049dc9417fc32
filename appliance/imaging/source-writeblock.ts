import { WriteBlockGuardian, type GuardianEvent } from '../guardian.js';
import { readCounters, writesBetween, type IoCounters } from '../kernel-stat.js';
import type { Disk } from '../inventory.js';
import { PreflightError } from './preflight.js';
import { event, type EventSink, type ImagingEvent } from './events.js';

export interface WriteBlockSummary {
  disk: string;
  stableId: string;
  checks: number;
  resets: number;
  intactAtStart: boolean;
  intactAtEnd: boolean;
  countersAtStart: IoCounters | null;
  countersAtEnd: IoCounters | null;
  writesDuring: ReturnType<typeof writesBetween> | null;
}

/**
 * Keeps the source under write-block for the whole acquisition: refuses to
 * start unless the disk and every partition are already read-only, marks it
 * as the source (so it can never be released), and on every progress tick
 * re-checks the flags through the guardian, which puts back any that were
 * reset. The kernel's write counters are taken at start and end.
 */
export class SourceWriteBlock {
  private readonly guardian: WriteBlockGuardian;
  private readonly disk: Disk;
  private sink: EventSink | null = null;
  private readonly early: ImagingEvent[] = [];
  private checks = 0;
  private resets = 0;
  private intact = false;
  private readonly atStart: IoCounters | null;
  private readonly listener = (e: GuardianEvent) => this.forward(e);

  constructor(guardian: WriteBlockGuardian, disk: Disk) {
    this.guardian = guardian;
    this.disk = disk;
    const st = guardian.status([disk.devicePath])[0];
    const allRo = Boolean(st && st.readOnly && st.ioctlReadOnly === true && st.partitions.every((p) => p.readOnly));
    if (!allRo) {
      throw new PreflightError(
        'ENOTWRITEBLOCKED',
        `source ${disk.devicePath} is not write-blocked (disk and every partition must be read-only); run: custos writeblock protect ${disk.devicePath}`,
      );
    }
    // The guardian's scope is the caller's: the CLI's covers the source only, the TUI's every disk (and new ones).
    guardian.on('event', this.listener);
    guardian.holdAsSource(disk.devicePath);
    this.intact = true;
    this.atStart = readCounters(guardian.sysfs, disk.name);
    this.onEvent(event('writeblock', `${disk.name}: write-block confirmed (BLKROGET and sysfs ro on disk and partitions)`, { disk: disk.name, counters: this.atStart }));
  }

  /** Stops forwarding the guardian's events (the acquisition is over; the source stays held). */
  detach(): void {
    this.guardian.off('event', this.listener);
    this.sink = null;
  }

  /** Events go to `sink` from now on; those from before (the start check) are handed over first. */
  attach(sink: EventSink): void {
    this.sink = sink;
    for (const e of this.early.splice(0)) sink(e);
  }

  private onEvent(e: ImagingEvent): void {
    if (this.sink) this.sink(e);
    else this.early.push(e);
  }

  private forward(e: GuardianEvent): void {
    if (e.type === 'reset-detected') this.resets++;
    this.onEvent(event('writeblock', `${e.device}: ${e.type}: ${e.detail}`, { guardian: e }));
  }

  /** One re-check; the guardian re-applies a reset flag and reports it. */
  tick(): { intact: boolean; checks: number; resets: number } {
    this.guardian.check();
    this.checks++;
    const st = this.guardian.status([this.disk.devicePath])[0];
    this.intact = Boolean(st && st.intact);
    return { intact: this.intact, checks: this.checks, resets: this.resets };
  }

  summary(): WriteBlockSummary {
    const end = readCounters(this.guardian.sysfs, this.disk.name);
    return {
      disk: this.disk.name,
      stableId: this.disk.stableId,
      checks: this.checks,
      resets: this.resets,
      intactAtStart: true,
      intactAtEnd: this.intact,
      countersAtStart: this.atStart,
      countersAtEnd: end,
      writesDuring: this.atStart && end ? writesBetween(this.atStart, end) : null,
    };
  }
}
