// What an acquisition hands the E01 writer and keeps from it: the header
// case data, the bad sectors as error2 runs, and the record's `ewf` part.
import { platform, release } from 'node:os';
import type { CaseData } from '../../custody/case-data.js';
import { custosVersion } from '../../version.js';
import { event, type EventSink } from '../../events.js';
import type { EwfRecord, SourceInfo } from '../image-record.js';
import type { BadRange } from '../read/read-recovery.js';
import type { EwfCompression } from './chunk-store.js';
import type { EwfCaseInfo } from './ewf-header.js';
import type { SectorRun } from './ewf-sections.js';
import type { WrittenFile } from './ewf-writer.js';

/** The E01 header fields, from the case data (display forms: nothing invisible or controlling) and the source. */
export function ewfCaseInfo(o: { caseData?: CaseData; examinerOffsetS?: number | null; source: SourceInfo }, started: Date): EwfCaseInfo {
  const c = o.caseData;
  const text = (f: keyof CaseData) => c?.[f]?.text ?? '';
  const notes = [text('notes'), c?.organisation ? `Organisation: ${text('organisation')}` : '', c?.location ? `Location: ${text('location')}` : '']
    .filter((s) => s !== '')
    .join('; ');
  return {
    caseNumber: text('caseNumber'),
    evidenceNumber: text('evidenceNumber'),
    description: text('description'),
    examiner: text('examiner'),
    notes,
    model: o.source.model?.text ?? '',
    serial: o.source.serial?.text ?? '',
    // The examiner-confirmed time where there is one; the system clock's own reading goes in the system-date field.
    acquired: new Date(started.getTime() + (o.examinerOffsetS ?? 0) * 1000),
    systemTime: started,
    softwareVersion: custosVersion(),
    os: `${platform()} ${release()}`,
  };
}

/**
 * The bad sectors as error2 runs. EWF v1 stores sector numbers in 32 bits:
 * runs past sector 2^32 (2 TiB at 512 bytes) cannot be listed there, which
 * is said in an event; the custody record keeps every run.
 */
export function ewfErrorRuns(ranges: readonly BadRange[], emit: EventSink): SectorRun[] {
  const runs: SectorRun[] = [];
  const left: BadRange[] = [];
  for (const r of ranges) {
    if (r.firstLba + r.sectors <= 0xffffffff) runs.push({ first: r.firstLba, count: r.sectors });
    else left.push(r);
  }
  if (left.length > 0) {
    emit(
      event(
        'bad-range',
        `${left.length} unreadable range(s) lie past sector 2^32, which the E01 error2 section cannot express; they are listed in the custody record only`,
        { notInError2: left.map((r) => ({ firstLba: r.firstLba, sectors: r.sectors })) },
      ),
    );
  }
  return runs;
}

export function ewfRecord(
  s: { compression: EwfCompression; segmentSize: number },
  chunkSize: number,
  setIdentifier: Buffer,
  md5: string,
  sha1: string,
  runs: number,
): EwfRecord {
  return {
    compression: s.compression,
    segmentSize: s.segmentSize,
    chunkSize,
    setIdentifier: setIdentifier.toString('hex'),
    storedHashes: { md5, sha1 },
    error2Runs: runs,
  };
}

export function writtenBytes(files: readonly WrittenFile[]): number {
  return files.reduce((n, f) => n + f.size, 0);
}
