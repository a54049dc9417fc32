// The part of every acquisition that does not depend on what the source is:
// the custody session around the imaging engine, with the events known before
// the first byte. run-acquisition.ts (a disk) and run-virtual-acquisition.ts
// (a virtual disk) prepare the reader and the source's record, then call this.
import { CustosError } from './errors.js';
import type { CaseData } from './custody/case-data.js';
import { readClock } from './custody/clock.js';
import { CustodySession, DEFAULT_CHECKPOINT_MS, type CustodyContext } from './custody/custody-session.js';
import type { SigningKey } from './custody/keys.js';
import { toolIdentity } from './custody/tool-identity.js';
import { stateDir } from './writeblock/guardian-state.js';
import type { HostIdentity } from './host-identity.js';
import { acquire } from './imaging/acquire.js';
import type { AcquireSettings } from './imaging/settings.js';
import { event, type EventSink, type ImagingEvent } from './events.js';
import type { ImageRecord, SourceInfo } from './imaging/image-record.js';
import type { ProgressReport } from './imaging/pipeline/progress.js';
import type { SectorReader } from './imaging/read/sector-reader.js';
import type { SourceWriteBlock } from './writeblock/source-writeblock.js';
import type { ResumePlan } from './imaging/resume/resume-plan.js';
import type { ContinuedLog } from './custody/log-resume.js';

/** What the caller of an acquisition asks, whatever the source. */
export interface AcquisitionCommon {
  destinations: string[];
  settings: AcquireSettings;
  case: CaseData;
  examinerTime: Date | null;
  signer: SigningKey;
  /** Started early by the caller: reading it runs subprocesses. */
  host: Promise<HostIdentity | null>;
  custodyCopy: string | null;
  checkpointMs?: number;
  onEvent: EventSink;
  onProgress?: (p: ProgressReport) => void;
  signal?: AbortSignal;
  /** How often the resume journal is brought up to date (default 10 s). */
  journalIntervalMs?: number;
  /** When the examiner asked for this acquisition, on performance.now()'s clock; the process start (0) if not given, as for the CLI. */
  requestedAtMs?: number;
  /** Go on with an interrupted acquisition: its settings and case details are the journal's, not `settings` and `case`. */
  resume?: ResumePlan;
}

export interface AcquisitionOutcome {
  record: ImageRecord;
  custody: ReturnType<CustodySession['summary']>;
}

/** The source as the engine reads it, and what the record says of it. */
export interface PreparedSource {
  reader: SectorReader;
  source: SourceInfo;
  /** Kernel name of the source disk (destinations on it are refused); null for a virtual disk. */
  sourceDiskName: string | null;
  writeBlock: SourceWriteBlock | null;
  /** The source's part of the custody record (sourceDisk, sourceDrive, virtualDisk and what completes them at the end). */
  custody: Pick<CustodyContext, 'sourceDisk'> & Partial<Pick<CustodyContext, 'sourceDrive' | 'healthAfter' | 'virtualDisk' | 'virtualDiskAfter'>>;
  /** Logged before the first byte, after the signer. */
  events: ImagingEvent[];
}

/** Runs the imaging engine on a prepared source inside a custody session; throws AcquisitionAborted (with its record) if it stops early. */
export async function acquireWithCustody(r: AcquisitionCommon, p: PreparedSource, caseData: CaseData, log: ContinuedLog | null): Promise<AcquisitionOutcome> {
  const plan = r.resume ?? null;
  const clock = readClock(r.examinerTime);
  const session = new CustodySession({
    case: caseData,
    clock,
    signer: r.signer,
    tool: toolIdentity(stateDir()),
    host: r.host,
    ...p.custody,
    copyDir: r.custodyCopy,
    checkpointMs: r.checkpointMs ?? DEFAULT_CHECKPOINT_MS,
    ...(plan && log ? { resume: { log, position: plan.journal.position, checkpoint: plan.journal.checkpoint, journalWritten: plan.journal.written } } : {}),
  });
  const notice = event(
    'custody',
    r.signer.kind === 'one-time'
      ? `signing with a one-time key made for this acquisition, ${r.signer.fingerprint}: copy it onto the custody form`
      : `signing as ${r.signer.principal} with ${r.signer.fingerprint}`,
    { kind: r.signer.kind, principal: r.signer.principal, fingerprint: r.signer.fingerprint },
  );
  for (const e of [notice, ...p.events]) {
    r.onEvent(e);
    session.event(e);
  }
  try {
    const record = await acquire({
      ...(plan ? plan.journal.settings : r.settings),
      ...(plan ? { resume: plan } : {}),
      ...(r.journalIntervalMs !== undefined ? { journalIntervalMs: r.journalIntervalMs } : {}),
      ...(r.requestedAtMs !== undefined ? { requestedAtMs: r.requestedAtMs } : {}),
      reader: p.reader,
      source: p.source,
      sourceDisk: p.sourceDiskName,
      writeBlock: p.writeBlock,
      destinations: r.destinations,
      onEvent: r.onEvent,
      recorder: session,
      caseData,
      examinerOffsetS: clock.examinerOffsetS,
      ...(r.onProgress ? { onProgress: r.onProgress } : {}),
      ...(r.signal ? { signal: r.signal } : {}),
    });
    return { record, custody: session.summary() };
  } catch (e) {
    if (e instanceof CustosError) Object.assign(e, { custody: session.summary() });
    throw e;
  } finally {
    session.close();
  }
}
