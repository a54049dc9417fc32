// Stage 2 for one acquisition: the source held as the source, its write-block
// re-checked on every tick and summarised for the record.
import { WriteBlockGuardian, type GuardianEvent } from './guardian.js';
import { readCounters, writesBetween, type IoCounters } from '../disk/kernel-stat.js';
import type { Disk } from '../disk/inventory.js';
import { PreflightError } from '../errors.js';
import { DeviceError } from '../errors.js';
import { event, type EventSink, type ImagingEvent } from '../events.js';

/** One stretch of the acquisition on one kernel device (more than one when the source was unplugged and came back). */
export interface SourceAttachment {
  disk: string;
  /** Kernel name and diskseq: which attachment of the device was read. */
  attachment: string;
  countersAtStart: IoCounters | null;
  countersAtEnd: IoCounters | null;
  /** 'end': read at the end; 'last-check': the last re-check before the disk went away (later writes could not be counted, the disk being read-only and gone). */
  endFrom: 'end' | 'last-check';
}

export interface WriteBlockSummary {
  disk: string;
  attachment: string;
  stableId: string;
  /** Other disks attached with the same serial or stable id when the acquisition started (the source was held by attachment, not by serial). */
  twinsAtStart: string[];
  checks: number;
  resets: number;
  intactAtStart: boolean;
  intactAtEnd: boolean;
  countersAtStart: IoCounters | null;
  countersAtEnd: IoCounters | null;
  writesDuring: ReturnType<typeof writesBetween> | null;
  attachments: SourceAttachment[];
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
  private disk: Disk;
  /** Set while the source is unplugged: there is nothing to re-check. */
  private lost = false;
  private readonly earlier: SourceAttachment[] = [];
  private lastCounters: IoCounters | null = null;
  private sink: EventSink | null = null;
  private readonly early: ImagingEvent[] = [];
  private checks = 0;
  private resets = 0;
  private intact = false;
  private atStart: IoCounters | null;
  private readonly twinsAtStart: string[];
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
    guardian.holdAsSource(disk.devicePath, disk.attachment);
    this.intact = true;
    this.atStart = readCounters(guardian.sysfs, disk.name);
    this.twinsAtStart = [...disk.twins];
    this.onEvent(
      event('writeblock', `${disk.name}: write-block confirmed (BLKROGET and sysfs ro on disk and partitions); held as attachment ${disk.attachment}`, {
        disk: disk.name,
        attachment: disk.attachment,
        counters: this.atStart,
      }),
    );
    if (disk.twins.length > 0) {
      this.onEvent(
        event(
          'source-twin',
          `${disk.name} shares its serial with ${disk.twins.join(', ')}: the source is held by kernel name and attachment (${disk.attachment}), a returning disk is proven by content`,
          { disk: disk.name, attachment: disk.attachment, twins: disk.twins },
        ),
      );
    }
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

  /** An event about the source (it went away, came back) into the acquisition's log. */
  report(e: ImagingEvent): void {
    this.onEvent(e);
  }

  /** The source disappeared: its stretch ends at the last re-check; re-checks pause until rebind(). */
  sourceLost(): void {
    if (this.lost) return;
    this.lost = true;
    this.earlier.push({
      disk: this.disk.name,
      attachment: this.disk.attachment,
      countersAtStart: this.atStart,
      countersAtEnd: this.lastCounters ?? this.atStart,
      endFrom: 'last-check',
    });
  }

  /** The source is back as `disk` (already held and confirmed read-only). */
  rebind(disk: Disk): void {
    this.disk = disk;
    this.lost = false;
    this.atStart = readCounters(this.guardian.sysfs, disk.name);
    this.lastCounters = this.atStart;
    this.intact = true;
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
    if (this.lost) return { intact: this.intact, checks: this.checks, resets: this.resets };
    this.guardian.check();
    let st: ReturnType<WriteBlockGuardian['status']>[number] | undefined;
    try {
      st = this.guardian.status([this.disk.devicePath])[0];
    } catch (e) {
      // Its node went away before the reader noticed (an unplug between two reads): the reader's error starts the source-lost handling.
      if (e instanceof DeviceError && e.code === 'ENOENT') return { intact: this.intact, checks: this.checks, resets: this.resets };
      throw e;
    }
    this.lastCounters = readCounters(this.guardian.sysfs, this.disk.name) ?? this.lastCounters;
    this.checks++;
    this.intact = Boolean(st && st.intact);
    return { intact: this.intact, checks: this.checks, resets: this.resets };
  }

  summary(): WriteBlockSummary {
    const current: SourceAttachment[] = this.lost
      ? []
      : [
          {
            disk: this.disk.name,
            attachment: this.disk.attachment,
            countersAtStart: this.atStart,
            countersAtEnd: readCounters(this.guardian.sysfs, this.disk.name),
            endFrom: 'end',
          },
        ];
    const attachments = [...this.earlier, ...current];
    const first = attachments[0];
    const last = attachments[attachments.length - 1];
    // Writes over every stretch, each counted on its own device.
    let writes: ReturnType<typeof writesBetween> | null = null;
    for (const a of attachments) {
      if (!a.countersAtStart || !a.countersAtEnd) {
        writes = null;
        break;
      }
      const w = writesBetween(a.countersAtStart, a.countersAtEnd);
      writes = writes
        ? {
            writeIos: writes.writeIos + w.writeIos,
            writeSectors: writes.writeSectors + w.writeSectors,
            discardIos: writes.discardIos + w.discardIos,
            discardSectors: writes.discardSectors + w.discardSectors,
            flushIos: writes.flushIos + w.flushIos,
          }
        : w;
    }
    return {
      disk: this.disk.name,
      attachment: this.disk.attachment,
      stableId: this.disk.stableId,
      twinsAtStart: this.twinsAtStart,
      checks: this.checks,
      resets: this.resets,
      intactAtStart: true,
      intactAtEnd: this.intact,
      countersAtStart: first?.countersAtStart ?? null,
      countersAtEnd: last?.countersAtEnd ?? null,
      writesDuring: writes,
      attachments,
    };
  }
}
