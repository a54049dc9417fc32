// The one acquisition path, used by the CLI (`custos acquire`) and the TUI:
// hold the source under write-block, open it, start the custody record, and
// run the imaging engine into the chosen directories.
import { CustosError } from './errors.js';
import type { WriteBlockGuardian } from './writeblock/guardian.js';
import type { Disk } from './disk/inventory.js';
import type { CaseData } from './custody/case-data.js';
import { readClock } from './custody/clock.js';
import { CustodySession, DEFAULT_CHECKPOINT_MS } from './custody/custody-session.js';
import type { SigningKey } from './custody/keys.js';
import { toolIdentity } from './custody/tool-identity.js';
import { stateDir } from './writeblock/guardian-state.js';
import type { HostIdentity } from './host-identity.js';
import { acquire } from './imaging/acquire.js';
import type { AcquireSettings } from './imaging/settings.js';
import { event, type EventSink } from './events.js';
import type { ImageRecord, SourceInfo } from './imaging/image-record.js';
import type { ProgressReport } from './imaging/pipeline/progress.js';
import { ReattachingSource } from './imaging/read/reattaching-source.js';
import { SourceWriteBlock } from './writeblock/source-writeblock.js';
import { journalCase, journalSourceProblem } from './imaging/resume/journal.js';
import type { ResumePlan } from './imaging/resume/resume-plan.js';
import { continuedLog } from './custody/log-resume.js';
import { driveWarnings, probeDrive, type DriveReport } from './disk/drive-probe.js';
import { driveCoverage } from './disk/drive-coverage.js';

export interface AcquisitionRequest {
  disk: Disk;
  guardian: WriteBlockGuardian;
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
  /** Called once the source is held, e.g. to save the guardian's state. */
  onSourceHeld?: () => void;
  /** How often the resume journal is brought up to date (default 10 s). */
  journalIntervalMs?: number;
  /** The examiner confirmed imaging a drive that refuses reads (ATA security locked); without it such a drive is refused. */
  confirmLocked?: boolean;
  /** Asks the drive for its own view (drive-probe.ts); replaced in tests by a canned answer. */
  probe?: (disk: Disk) => Promise<DriveReport>;
  /** Go on with an interrupted acquisition: its settings and case details are the journal's, not `settings` and `case`. */
  resume?: ResumePlan;
}

export interface AcquisitionOutcome {
  record: ImageRecord;
  custody: ReturnType<CustodySession['summary']>;
}

/** Runs one acquisition; throws AcquisitionAborted (with its record) if it stops early. */
export async function runAcquisition(r: AcquisitionRequest): Promise<AcquisitionOutcome> {
  const plan = r.resume ?? null;
  // Content is checked too, in acquire, before a byte is written.
  const problem = plan
    ? journalSourceProblem(plan.journal, { path: r.disk.devicePath, sizeBytes: r.disk.sizeBytes, sectorSize: r.disk.logicalSectorSize, serial: r.disk.serial })
    : null;
  if (problem) throw new CustosError('ERESUMESOURCE', `${problem}: not resumed, nothing changed`);
  const caseData = plan ? journalCase(plan.journal) : r.case;
  // Read before anything is opened: a log that does not check stops the resume here.
  const log = plan ? continuedLog(r.custodyCopy ? [...plan.dirs, r.custodyCopy] : plan.dirs) : null;
  const writeBlock = new SourceWriteBlock(r.guardian, r.disk);
  r.onSourceHeld?.();
  // The drive's own view, asked once the source is held and before a byte is read: the record states what the image covers.
  let drive: DriveReport;
  try {
    drive = await (r.probe ?? probeDrive)(r.disk);
  } catch (e) {
    writeBlock.detach();
    throw e;
  }
  const coverage = driveCoverage(drive);
  if (coverage.locked && !r.confirmLocked) {
    writeBlock.detach();
    throw new CustosError(
      'ELOCKED',
      `${r.disk.name} is ${coverage.locked}: it refuses reads until unlocked, so an image would hold fill, not data; confirm to image it anyway (--image-locked-drive), nothing changed`,
    );
  }
  const known = new Set(r.disk.warnings.map((w) => w.message));
  const disk: Disk = { ...r.disk, warnings: [...r.disk.warnings, ...driveWarnings(drive).filter((w) => !known.has(w.message))] };
  // Survives the source being unplugged and plugged back in (same serial, size and sector size).
  const reader = new ReattachingSource({ disk: r.disk, guardian: r.guardian, writeBlock, ...(r.signal ? { signal: r.signal } : {}) });
  try {
    const source: SourceInfo = {
      path: r.disk.devicePath,
      name: r.disk.name,
      stableId: r.disk.stableId,
      vendor: r.disk.vendor,
      model: r.disk.model,
      serial: r.disk.serial,
      sizeBytes: reader.size,
      logicalSectorSize: reader.sectorSize,
      physicalSectorSize: r.disk.physicalSectorSize,
      sectors: reader.size / reader.sectorSize,
    };
    const clock = readClock(r.examinerTime);
    const session = new CustodySession({
      case: caseData,
      clock,
      signer: r.signer,
      tool: toolIdentity(stateDir()),
      host: r.host,
      sourceDisk: disk,
      sourceDrive: { report: drive, coverage, lockedConfirmed: coverage.locked !== null },
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
    r.onEvent(notice);
    session.event(notice);
    const probed = event('drive-probe', coverage.statement, {
      from: coverage.from,
      driveBytes: coverage.driveBytes,
      hiddenBytes: coverage.hiddenBytes,
      locked: coverage.locked,
    });
    r.onEvent(probed);
    session.event(probed);
    if (coverage.locked) {
      const confirmed = event(
        'drive-locked-confirmed',
        `the examiner confirmed imaging ${r.disk.name} although it is ${coverage.locked}: its unreadable ranges are locked, not bad sectors`,
        {
          locked: coverage.locked,
        },
      );
      r.onEvent(confirmed);
      session.event(confirmed);
    }
    try {
      const record = await acquire({
        ...(plan ? plan.journal.settings : r.settings),
        ...(plan ? { resume: plan } : {}),
        ...(r.journalIntervalMs !== undefined ? { journalIntervalMs: r.journalIntervalMs } : {}),
        reader,
        source,
        sourceDisk: r.disk.name,
        writeBlock,
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
  } finally {
    writeBlock.detach();
    reader.close();
  }
}
