// Keeps the resume journal: at most once per interval, at a block end that
// is also a window boundary, it has every writer force its data to the
// medium and then replaces the journal in every destination. A crash after
// that loses at most one interval of work.
import { randomBytes } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { CASE_FIELDS } from '../../custody/case-data.js';
import type { AcquireSettings } from '../settings.js';
import type { CaseData } from '../../custody/case-data.js';
import type { DeviceString } from '../../sanitize.js';
import { DEFAULT_EWF_SETTINGS } from '../ewf/ewf-plan.js';
import { event, type EventSink } from '../../events.js';
import type { EwfWriter, EwfWriterState } from '../ewf/ewf-writer.js';
import type { HashStage } from '../hash/hash-stage.js';
import type { ImageWriter } from '../write/image-writer.js';
import { JOURNAL_SCHEMA, journalPath, writeJournal, type AcquisitionJournal } from './journal.js';
import type { BadRange } from '../read/read-recovery.js';
import type { DeferredRange } from '../read/fast-first.js';

export const DEFAULT_JOURNAL_INTERVAL_MS = 10_000;

/** What the keeper takes from the acquisition's options (structurally: it does not depend on the orchestration). */
export interface KeeperInput extends AcquireSettings {
  journalIntervalMs?: number;
  resume?: { journal: AcquisitionJournal };
  caseData?: CaseData;
  source: { path: string; stableId: string | null; serial: DeviceString | null };
  reader: { size: number; sectorSize: number };
}

/** What does not change between resume points. */
export type JournalBase = Omit<AcquisitionJournal, 'written' | 'checkpoint' | 'position' | 'pieces' | 'badRanges' | 'deferred' | 'ewf'>;

export interface JournalKeeperOptions {
  base: JournalBase;
  dirs: string[];
  pieces: HashStage;
  writers: (ImageWriter | EwfWriter)[];
  intervalMs: number;
  /** Resuming: resume points before this are the old run's. */
  startAt: number;
  resumePointsSoFar: number;
  onEvent: EventSink;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** The step at which a block end is also a window end; null when windows are off or the step is too coarse to be useful. */
export function resumePointStep(pieceSize: number, blockSize: number): number | null {
  if (pieceSize <= 0) return null;
  const step = (pieceSize / gcd(pieceSize, blockSize)) * blockSize;
  return step <= 1024 * 1024 * 1024 ? step : null;
}

export class JournalKeeper {
  private readonly o: JournalKeeperOptions;
  private readonly step: number;
  private last = Date.now();
  private running: Promise<void> | null = null;
  private stopped = false;
  count: number;
  position: number;
  /** When the journal was last written (null before the first resume point of this run). */
  written: string | null = null;
  /** Destinations whose journal could not be written (their medium failed). */
  private readonly failed = new Set<string>();

  constructor(o: JournalKeeperOptions, step: number) {
    this.o = o;
    this.step = step;
    this.count = o.resumePointsSoFar;
    this.position = o.startAt;
  }

  /** --fast-first: where the ranges deferred so far are (the skipping reader exists after the keeper). */
  watchDeferred(deferred: () => readonly DeferredRange[]): void {
    this.deferredNow = deferred;
  }

  private deferredNow: () => readonly DeferredRange[] = () => [];

  /** Every consumer has finished the block ending at `end`. */
  blockDone(end: number, badRanges: readonly BadRange[]): void {
    if (this.stopped || this.running || end <= this.position || end % this.step !== 0) return;
    if (Date.now() - this.last < this.o.intervalMs) return;
    const ss = this.o.base.source.sectorSize;
    // Ranges are clipped at the resume point; one that goes on past it is merged again on resume.
    const before = badRanges
      .filter((r) => r.firstLba * ss < end)
      .map((r) => {
        const lastLba = Math.min(r.lastLba, end / ss - 1);
        return { ...r, lastLba, sectors: lastLba - r.firstLba + 1 };
      });
    const pieces = this.o.pieces.completed.slice(0, end / this.o.base.settings.pieceSize);
    // A deferred range going on past the resume point is cut there; the resumed run reads on from it.
    const deferred = this.deferredNow()
      .filter((d) => d.offset < end)
      .map((d) => ({ ...d, length: Math.min(d.length, end - d.offset) }));
    this.running = this.take(end, pieces, before, deferred).finally(() => {
      this.running = null;
      this.last = Date.now();
    });
  }

  private async take(end: number, pieces: string[], badRanges: BadRange[], deferred: DeferredRange[]): Promise<void> {
    let ewf: EwfWriterState | null = null;
    try {
      const states = await Promise.all(this.o.writers.map((w) => w.resumePoint(end)));
      ewf = (states[0] as EwfWriterState | undefined) ?? null;
    } catch {
      // The writer's failure stops the acquisition itself; the last journal stands.
      return;
    }
    if (this.stopped) return;
    const journal: AcquisitionJournal = {
      ...this.o.base,
      written: new Date().toISOString(),
      checkpoint: this.count + 1,
      position: end,
      pieces,
      badRanges,
      deferred,
      ewf,
    };
    let wrote = 0;
    for (const dir of this.o.dirs) {
      if (this.failed.has(dir)) continue;
      try {
        writeJournal(dir, journal);
        wrote++;
      } catch (e) {
        this.failed.add(dir);
        this.o.onEvent(event('journal-error', `resume journal in ${dir} could not be written: ${e instanceof Error ? e.message : String(e)}`, { dir }));
      }
    }
    if (wrote > 0) {
      this.count++;
      this.position = end;
      this.written = journal.written;
    }
  }

  /** No more resume points; waits for one being taken. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  /** The acquisition is finished and recorded: the journals have served. */
  remove(): void {
    for (const dir of this.o.dirs) {
      try {
        unlinkSync(journalPath(dir, this.o.base.settings.name));
      } catch {
        // Already gone, or its medium is: nothing to resume from there either way.
      }
    }
  }
}

/**
 * The resume journal, when this acquisition can keep one: it needs windowed
 * hashes (they check what a later run reads back).
 */
export function journalKeeperFor(
  o: KeeperInput,
  dirs: string[],
  pieces: HashStage | null,
  writers: (ImageWriter | EwfWriter)[],
  started: Date,
  emit: EventSink,
): JournalKeeper | null {
  const interval = o.journalIntervalMs ?? DEFAULT_JOURNAL_INTERVAL_MS;
  if (interval === 0) return null;
  const step = resumePointStep(o.pieceSize, o.blockSize);
  if (!pieces || step === null) {
    emit(
      event(
        'journal-off',
        'no resume journal: without windowed hashes (--piece-size 0, or windows that rarely meet block ends) there is nothing to check a resumed copy against; an interrupted acquisition has to start again',
      ),
    );
    return null;
  }
  const j = o.resume?.journal;
  const caseValues: Record<string, string | null> = {};
  for (const f of CASE_FIELDS) caseValues[f] = o.caseData?.[f]?.value ?? null;
  const { policy, ...rest } = {
    name: o.name,
    format: o.format,
    splitSize: o.splitSize,
    hashes: o.hashes,
    pieceSize: o.pieceSize,
    blockSize: o.blockSize,
    buffers: o.buffers,
    policy: o.policy,
    fastFirst: o.fastFirst,
    verify: o.verify,
    verifySource: o.verifySource,
  };
  const c = new JournalKeeper(
    {
      base: {
        schema: JOURNAL_SCHEMA,
        acquisitionId: j?.acquisitionId ?? randomBytes(16).toString('hex'),
        started: j?.started ?? started.toISOString(),
        resumes: j ? j.resumes + 1 : 0,
        source: {
          path: o.source.path,
          stableId: o.source.stableId,
          serialRaw: o.source.serial?.raw ?? null,
          sizeBytes: o.reader.size,
          sectorSize: o.reader.sectorSize,
        },
        settings: { ...rest, policy: { retries: policy.retries, fill: policy.fill }, ...(o.format === 'e01' ? { ewf: o.ewf ?? DEFAULT_EWF_SETTINGS } : {}) },
        case: caseValues,
        destinations: dirs,
      },
      dirs,
      pieces,
      writers,
      intervalMs: interval,
      startAt: j?.position ?? 0,
      resumePointsSoFar: j?.checkpoint ?? 0,
      onEvent: emit,
    },
    step,
  );
  emit(
    event('journal', `resume journal ${o.name}.journal.json kept in ${dirs.length} destination(s), brought up to date every ${Math.round(interval / 1000)} s`, {
      intervalMs: interval,
      dirs,
    }),
  );
  return c;
}
