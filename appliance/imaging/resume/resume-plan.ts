// What a resumed acquisition checks before it writes a byte: that the
// destination copies still hold what the journal says they hold, and that
// the source is the same disk with the same content.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { CUSTODY_FILE } from '../../custody/custody-record.js';
import { recordStatus } from '../../custody/log-resume.js';
import { CustosError } from '../../errors.js';
import type { BufferPool } from '../pipeline/buffer-pool.js';
import type { HashStage } from '../hash/hash-stage.js';
import { event, type EventSink } from '../../events.js';
import { EwfImageReader } from '../ewf/ewf-reader.js';
import type { Segment } from '../write/image-layout.js';
import { JOURNAL_SUFFIX, journalsIn, readJournal, type AcquisitionJournal } from './journal.js';
import { readRecovering, type ReadPolicy } from '../read/read-recovery.js';
import { ImageSetReader, type SectorReader } from '../read/sector-reader.js';
import { hashReader } from '../verify/verify-image.js';

/** What the resumed run continues from: the journal (the oldest, if copies differ) and where it stands. */
export interface ResumePlan {
  journal: AcquisitionJournal;
  /** The destinations going on; each holds this acquisition's files up to the journal's position. */
  dirs: string[];
}

/** The image as written in `dir`, up to the journal's position. */
export function writtenImageReader(dir: string, j: AcquisitionJournal, segments: Segment[]): SectorReader {
  const p = j.position;
  if (j.ewf) {
    const raw = Buffer.from(j.ewf.entries, 'base64');
    const entries = new Uint32Array(raw.length / 4);
    for (let i = 0; i < entries.length; i++) entries[i] = raw.readUInt32LE(i * 4);
    return new EwfImageReader(
      j.ewf.files.map((f) => path.join(dir, f.file)),
      { groupBase: j.ewf.groupBase, entries, end: j.ewf.pos, size: p },
    );
  }
  const files = segments.filter((s) => s.start < p).map((s) => ({ path: path.join(dir, s.file), size: Math.min(s.size, p - s.start) }));
  return new ImageSetReader(files);
}

/**
 * Hashes the windows of one copy before the resume point and compares them
 * with the journal's; throws saying which differ. (The first copy is checked
 * on the way instead, as the resumed run reads it.)
 */
export async function checkCopy(
  dir: string,
  j: AcquisitionJournal,
  segments: Segment[],
  o: { bufferCount: number; onEvent: EventSink; signal?: AbortSignal },
): Promise<void> {
  const reader = writtenImageReader(dir, j, segments);
  try {
    const run = await hashReader({
      phase: `resume-check ${dir}`,
      reader,
      algorithms: [],
      pieceSize: j.settings.pieceSize,
      blockSize: j.settings.blockSize,
      bufferCount: o.bufferCount,
      onEvent: o.onEvent,
    });
    const bad = j.pieces.map((h, i) => (run.pieces[i] === h ? -1 : i)).filter((i) => i >= 0);
    const problems = reader instanceof EwfImageReader ? reader.problems : [];
    if (bad.length > 0 || problems.length > 0)
      throw new CustosError(
        'ERESUMEMISMATCH',
        `${dir}: the image written before the resume point no longer matches the journal (${[...problems, ...bad.slice(0, 8).map((i) => `window ${i}`)].join(', ')}${bad.length > 8 ? ', …' : ''}); it cannot be resumed`,
      );
    o.onEvent(event('resume-checked', `${dir}: ${j.pieces.length} window(s) before the resume point match the journal`, { dir, windows: j.pieces.length }));
  } finally {
    reader.close();
  }
}

/**
 * The source must be the disk the journal was made from, unchanged: its
 * first and last windows before the resume point that hold no unreadable or
 * deferred sector are read again and hashed; they must match the journal (so
 * a disk without a serial number is told apart too). A window that turns out
 * unreadable now proves nothing and is passed over.
 */
export async function checkSourceWindows(source: SectorReader, j: AcquisitionJournal, pool: BufferPool, policy: ReadPolicy, onEvent: EventSink): Promise<void> {
  const ps = j.settings.pieceSize;
  const ss = j.source.sectorSize;
  const clean = j.pieces
    .map((_, i) => i)
    .filter((i) => {
      const [a, b] = [i * ps, Math.min((i + 1) * ps, j.position)];
      return !j.deferred.some((d) => d.offset < b && d.offset + d.length > a) && !j.badRanges.some((r) => r.firstLba * ss < b && (r.lastLba + 1) * ss > a);
    });
  const candidates = [...new Set([clean[0], clean[clean.length - 1]])].filter((i): i is number => i !== undefined);
  const buffer = pool.buffers[0] as Buffer;
  const compared: number[] = [];
  for (const w of candidates) {
    const start = w * ps;
    const end = Math.min(start + ps, j.position);
    const hash = createHash('sha256');
    let unreadable = false;
    for (let at = start; at < end;) {
      const n = Math.min(pool.size, end - at);
      unreadable ||= (await readRecovering(source, buffer, n, at, policy, onEvent)).length > 0;
      hash.update(buffer.subarray(0, n));
      at += n;
    }
    if (unreadable) continue;
    const hex = hash.digest('hex');
    if (hex !== j.pieces[w]) {
      throw new CustosError(
        'ERESUMESOURCE',
        `source ${source.name}: bytes ${start}-${end - 1} hash ${hex.slice(0, 16)}…, the journal has ${j.pieces[w]?.slice(0, 16)}…: not the disk (or not the content) this acquisition started from`,
      );
    }
    compared.push(w);
  }
  if (compared.length === 0 && j.source.serialRaw === null) {
    throw new CustosError(
      'ERESUMESOURCE',
      `source ${source.name}: no window before the resume point reads cleanly to compare, and the disk has no serial number: it cannot be told to be the same disk`,
    );
  }
  onEvent(
    event(
      'resume-source-checked',
      compared.length > 0
        ? `source ${source.name}: window(s) ${compared.join(', ')} read again and match the journal`
        : `source ${source.name}: no clean window to compare; recognised by serial number and size only`,
      { windows: compared },
    ),
  );
}

/**
 * Finds the interrupted acquisition in `dirs` (each must hold one journal of
 * the same acquisition and no finished record). Copies whose journals stand
 * at different resume points (a crash between writing them) go on from the
 * earlier one: every copy holds the image at least that far.
 */
export function planResume(dirs: string[]): ResumePlan {
  if (dirs.length === 0) throw new CustosError('EUSAGE', 'resume needs a destination directory holding an unfinished acquisition');
  const found = dirs.map((dir) => {
    const journals = journalsIn(dir);
    if (journals.length === 0) throw new CustosError('ERESUME', `${dir} holds no ${JOURNAL_SUFFIX} file: there is no unfinished acquisition there to resume`);
    if (journals.length > 1) throw new CustosError('ERESUME', `${dir} holds ${journals.length} journals; move all but the one to resume elsewhere`);
    const journal = readJournal(journals[0] as string);
    const status = recordStatus(dir);
    if (status !== null && status !== 'aborted')
      throw new CustosError('ERESUME', `${dir} holds a ${CUSTODY_FILE} with status ${status}: that acquisition finished; it is not resumed`);
    return journal;
  });
  const first = found[0] as AcquisitionJournal;
  for (const [i, j] of found.entries()) {
    if (j.acquisitionId !== first.acquisitionId) throw new CustosError('ERESUME', `${dirs[i]} and ${dirs[0]} hold different acquisitions`);
  }
  const journal = found.reduce((a, b) => (b.position < a.position ? b : a));
  return { journal, dirs };
}

/**
 * A resumed run reads the first copy back before the resume point: each of
 * those windows must hash as the journal says, or the run stops there.
 */
export function writtenWindowCheck(expected: string[], pieces: HashStage | null, dir: string, stop: AbortController): (end: number) => void {
  let checked = 0;
  return () => {
    if (!pieces) return;
    while (checked < expected.length && checked < pieces.completed.length) {
      if (pieces.completed[checked] !== expected[checked]) {
        stop.abort(
          new CustosError(
            'ERESUMEMISMATCH',
            `${dir}: window ${checked} of the image written before the resume point no longer matches the journal; it cannot be resumed`,
          ),
        );
        return;
      }
      checked++;
    }
  };
}
