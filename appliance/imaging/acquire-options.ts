// What acquire() is given and what it throws when it stops early: the
// settings, the source and its write-block, the destinations, and the hooks
// the CLI and the UI watch it through.
import type { MemoryPlan } from './memory-plan.js';
import { CustosError } from '../errors.js';
import type { CaseData } from '../custody/case-data.js';
import type { SourceWriteBlock } from '../writeblock/source-writeblock.js';
import type { ImageRecord, SourceInfo } from './image-record.js';
import type { EventSink, ImagingEvent } from '../events.js';
import type { ProgressReport } from './pipeline/progress.js';
import type { SectorReader } from './read/sector-reader.js';
import type { ResumePlan } from './resume/resume-plan.js';
import type { AcquireSettings } from './settings.js';

/**
 * Keeps the record of an acquisition (the custody session): told when
 * preflight has passed, sees every event, and writes the record at the end,
 * also for an aborted run.
 */
export interface AcquisitionRecorder {
  /** Files it creates in each destination; preflight refuses a destination holding any. */
  readonly fileNames: readonly string[];
  open(dirs: string[]): void;
  event(e: ImagingEvent): void;
  finish(record: ImageRecord): Promise<unknown>;
}

export interface AcquireOptions extends AcquireSettings {
  reader: SectorReader;
  source: SourceInfo;
  /** Kernel name of the source disk, to refuse destinations on it; null for a non-device reader. */
  sourceDisk: string | null;
  writeBlock: SourceWriteBlock | null;
  destinations: string[];
  onEvent?: EventSink;
  recorder?: AcquisitionRecorder;
  onProgress?: (p: ProgressReport) => void;
  progressIntervalMs?: number;
  /** Interrupts the acquisition (SIGINT, the UI's stop key); its reason should be a CustosError. */
  signal?: AbortSignal;
  /** A source read outstanding this long is reported (default 5 s). */
  slowReadMs?: number;
  /** --fast-first: a block read slower than this starts a jump past a slow area (default 2 s). */
  slowBlockMs?: number;
  /** Case data for the E01 headers, and how far the system clock was from the examiner's time. */
  caseData?: CaseData;
  examinerOffsetS?: number | null;
  /** How often the resume journal is brought up to date (default 10 s); 0 keeps none. */
  journalIntervalMs?: number;
  /** Go on with an interrupted acquisition from its journal (the settings must be the journal's). */
  resume?: ResumePlan;
  /** Buffers and compression workers for the memory there is; planned from /proc and the cgroup when absent. */
  memory?: MemoryPlan;
  /** When the acquisition was asked for, on performance.now()'s clock: the record's timing.startupS runs from here to the first read (default 0, the process start). */
  requestedAtMs?: number;
}

/** The acquisition stopped before a complete image; `record` says how far it got. */
export class AcquisitionAborted extends CustosError {
  readonly record: ImageRecord;
  constructor(code: string, message: string, record: ImageRecord) {
    super(code, message);
    this.record = record;
  }
}
