// The one acquisition path, used by the CLI (`custos acquire`) and the TUI:
// hold the source under write-block, open it, start the custody record, and
// run the imaging engine into the chosen directories.
import { CustosError } from './errors.js';
import type { WriteBlockGuardian } from './writeblock/guardian.js';
import type { Disk } from './disk/inventory.js';
import { event, type ImagingEvent } from './events.js';
import type { SourceInfo } from './imaging/image-record.js';
import { ReattachingSource } from './imaging/read/reattaching-source.js';
import { SourceWriteBlock } from './writeblock/source-writeblock.js';
import { journalCase, journalSourceProblem } from './imaging/resume/journal.js';
import { continuedLog } from './custody/log-resume.js';
import { driveWarnings, probeDrive, type DriveReport } from './disk/drive-probe.js';
import { driveCoverage, type DriveCoverage } from './disk/drive-coverage.js';
import { findEncryptedVolumes, volumeWarnings, type EncryptedVolume } from './disk/encrypted-volumes.js';
import { acquireWithCustody, type AcquisitionCommon, type AcquisitionOutcome } from './acquisition-session.js';

export interface AcquisitionRequest extends AcquisitionCommon {
  disk: Disk;
  guardian: WriteBlockGuardian;
  /** Called once the source is held, e.g. to save the guardian's state. */
  onSourceHeld?: () => void;
  /** The examiner confirmed imaging a drive that refuses reads (ATA security locked); without it such a drive is refused. */
  confirmLocked?: boolean;
  /** Asks the drive for its own view (drive-probe.ts); replaced in tests by a canned answer. */
  probe?: (disk: Disk) => Promise<DriveReport>;
}

export type { AcquisitionOutcome } from './acquisition-session.js';

interface DriveFindings {
  drive: DriveReport;
  coverage: DriveCoverage;
  volumes: EncryptedVolume[];
  /** The source with the warnings the drive's answers and its volumes raise. */
  disk: Disk;
}

/**
 * The drive's own view, asked once the source is held and before a byte is
 * read, so that the record states what the image covers; a locked drive stops
 * here unless the examiner confirmed it.
 */
async function askDrive(r: AcquisitionRequest): Promise<DriveFindings> {
  const drive = await (r.probe ?? probeDrive)(r.disk);
  const coverage = driveCoverage(drive);
  if (coverage.locked && !r.confirmLocked) {
    throw new CustosError(
      'ELOCKED',
      `${r.disk.name} is ${coverage.locked}: it refuses reads until unlocked, so an image would hold fill, not data; confirm to image it anyway (--image-locked-drive), nothing changed`,
    );
  }
  // Read-only signatures (libblkid): an encrypted volume is said in the record with what to do about it.
  const volumes = await findEncryptedVolumes(r.disk).catch(() => []);
  const known = new Set(r.disk.warnings.map((w) => w.message));
  const raised = [...driveWarnings(drive), ...volumeWarnings(volumes)].filter((w) => !known.has(w.message));
  return { drive, coverage, volumes, disk: { ...r.disk, warnings: [...r.disk.warnings, ...raised] } };
}

/** The log's account of what the drive said, before the first byte. */
function driveEvents(source: Disk, f: DriveFindings): ImagingEvent[] {
  const c = f.coverage;
  const h = f.drive.health;
  return [
    event('drive-probe', c.statement, { from: c.from, driveBytes: c.driveBytes, hiddenBytes: c.hiddenBytes, locked: c.locked }),
    ...(h
      ? [
          event(
            'drive-health',
            `drive health before the acquisition (${h.from}): ${h.flags.length ? `${h.flags.join(', ')}; --fast-first reads the good areas first` : 'nothing flagged'}`,
            {
              when: 'before',
              passed: h.passed,
              flags: h.flags,
            },
          ),
        ]
      : []),
    ...f.volumes.map((v) =>
      event('encrypted-volume', `${v.device}: ${v.advice}`, { device: v.device, kind: v.kind, type: v.type, version: v.version, uuid: v.uuid }),
    ),
    ...(c.locked
      ? [
          event(
            'drive-locked-confirmed',
            `the examiner confirmed imaging ${source.name} although it is ${c.locked}: its unreadable ranges are locked, not bad sectors`,
            {
              locked: c.locked,
            },
          ),
        ]
      : []),
  ];
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
  let asked: DriveFindings;
  try {
    asked = await askDrive(r);
  } catch (e) {
    writeBlock.detach();
    throw e;
  }
  const { drive, coverage, volumes, disk } = asked;
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
    return await acquireWithCustody(
      r,
      {
        reader,
        source,
        sourceDiskName: r.disk.name,
        writeBlock,
        custody: {
          sourceDisk: disk,
          sourceDrive: { report: drive, coverage, lockedConfirmed: coverage.locked !== null, encryptedVolumes: volumes },
          healthAfter: async () => (await (r.probe ?? probeDrive)(r.disk)).health,
        },
        events: driveEvents(r.disk, asked),
      },
      caseData,
      log,
    );
  } finally {
    writeBlock.detach();
    reader.close();
  }
}
