// The last phase of an acquisition: --verify reads each finished copy back
// and compares it, --verify-source reads the source again. Either result goes
// into the record; a copy whose drive was pulled meanwhile stops the run.
import { CustosError } from '../../errors.js';
import type { ImageRecord } from '../image-record.js';
import type { BufferPool } from '../pipeline/buffer-pool.js';
import { event, type EventSink } from '../../events.js';
import { progressOptions, type ProgressSink } from '../pipeline/progress.js';
import type { SectorReader } from '../read/sector-reader.js';
import type { AcquireSettings } from '../settings.js';
import type { DestinationWatch } from '../write/destination-gone.js';
import { copyFiles, type DestinationWriter } from '../write/destination-writers.js';
import { verifyFiles } from './verify-files.js';
import { compareHashes, hashReader, type HashSet } from './verify-image.js';

export interface CopiesToVerify {
  expected: HashSet;
  record: ImageRecord;
  writers: DestinationWriter[];
  settings: AcquireSettings & ProgressSink & { reader: SectorReader; source: { path: string } };
  fileWindow: number;
  pool: BufferPool;
  destinations: DestinationWatch;
  emit: EventSink;
}

/** False when a copy, the source re-read, or a window the recovery pass left untouched differs. */
export async function verifyCopies(c: CopiesToVerify): Promise<boolean> {
  const o = c.settings;
  const progress = progressOptions(o);
  let verified = true;
  if (o.verify) {
    for (const [i, w] of c.writers.entries()) {
      const cmp = await verifyFiles(
        copyFiles(w, c.record.image.files),
        c.expected,
        { ...o, ...progress, fileWindow: c.fileWindow, ewf: o.format === 'e01', pool: c.pool },
        `verify ${w.dir}`,
        c.emit,
      );
      (c.record.destinations[i] as ImageRecord['destinations'][number]).verification = cmp;
      // Unreadable because its drive was pulled after the image was flushed: stopped like an unplug while writing, so it can be resumed and verified.
      if (cmp.unreadable && (await c.destinations.soonGone())) throw new CustosError('EDESTREAD', cmp.unreadable.error);
      verified &&= cmp.match;
    }
  }
  if (o.verifySource) {
    c.emit(event('verify-started', `re-reading source ${o.source.path}`));
    const again = await hashReader({
      phase: 'verify-source',
      reader: o.reader,
      algorithms: o.hashes,
      pieceSize: o.pieceSize,
      blockSize: o.blockSize,
      bufferCount: o.buffers,
      onEvent: c.emit,
      recover: o.policy,
      ...progress,
    });
    const cmp = compareHashes(c.expected, again, o.reader.size, o.reader.sectorSize);
    c.record.sourceVerification = cmp;
    verified &&= cmp.match;
    c.emit(
      event('verify-result', `source re-read ${cmp.match ? 'matches' : 'DIFFERS'}`, {
        target: 'source',
        match: cmp.match,
        mismatchedPieces: cmp.pieces.mismatched.map((m) => m.index),
      }),
    );
  }
  if (c.record.recovery?.untouchedPieces?.mismatched.length) verified = false;
  return verified;
}
