// After a --fast-first recovery pass wrote data where the first pass had
// filled, the stream's hashes describe the fill: the image is hashed again
// from the first destination, and the windows the pass did not touch must
// hash as they did from the source.
import path from 'node:path';
import type { EventSink } from '../../events.js';
import { event } from '../../events.js';
import { progressOptions, type ProgressSink } from '../pipeline/progress.js';
import type { HashAlgorithm } from '../hash/hash-algorithms.js';
import { hashFiles } from '../hash/file-hash.js';
import type { EwfWriter } from '../ewf/ewf-writer.js';
import type { ImageRecord, RecoveryRecord } from '../image-record.js';
import type { SectorReader } from '../read/sector-reader.js';
import { hashReader } from './verify-image.js';

export interface RehashOptions extends ProgressSink {
  hashes: HashAlgorithm[];
  pieceSize: number;
  blockSize: number;
  buffers: number;
  fileWindow: number;
}

export interface Rehashed {
  hashes: Partial<Record<HashAlgorithm, string>>;
  pieces: string[];
  files: string[];
}

/**
 * Hashes the first destination after the recovery pass. The windows that pass
 * did not touch must hash as they did from the source stream; if one does
 * not, the destination changed under us and the acquisition does not verify.
 */
export async function rehashFromDestination(
  reader: SectorReader,
  dir: string,
  o: RehashOptions,
  recovery: RecoveryRecord,
  streamPieces: string[],
  emit: EventSink,
): Promise<Rehashed> {
  try {
    const again = await hashReader({
      phase: 'rehash',
      reader,
      algorithms: o.hashes,
      pieceSize: o.pieceSize,
      blockSize: o.blockSize,
      bufferCount: o.buffers,
      onEvent: emit,
      fileWindow: o.fileWindow,
      ...progressOptions(o),
    });
    const touched = (i: number) => recovery.deferred.some((d) => d.offset < (i + 1) * o.pieceSize && d.offset + d.length > i * o.pieceSize);
    const untouched = streamPieces.map((_, i) => i).filter((i) => !touched(i));
    const mismatched = untouched.filter((i) => streamPieces[i] !== again.pieces[i]);
    recovery.hashesFrom = 'destination-reread';
    recovery.rereadDir = dir;
    recovery.untouchedPieces = o.pieceSize > 0 ? { compared: untouched.length, mismatched } : null;
    emit(
      event(
        'rehashed',
        `hashed ${dir} again after the recovery pass${o.pieceSize > 0 ? `; ${untouched.length} untouched window(s) ${mismatched.length === 0 ? 'match the source stream' : `DIFFER: ${mismatched.join(', ')}`}` : ''}`,
        {
          dir,
          hashes: again.hashes,
          untouchedCompared: untouched.length,
          mismatched,
        },
      ),
    );
    return { hashes: again.hashes, pieces: again.pieces, files: again.files };
  } finally {
    reader.close();
  }
}

/**
 * E01 after a recovery pass: the image's stored MD5 and SHA-1 were those of
 * the first pass; every copy gets the re-read ones, and the segment files
 * (changed in place) are hashed again for the record.
 */
export async function restoreEwfHashes(writers: EwfWriter[], hashes: Partial<Record<HashAlgorithm, string>>, record: ImageRecord): Promise<void> {
  const md5 = Buffer.from(hashes.md5 ?? '', 'hex');
  const sha1 = Buffer.from(hashes.sha1 ?? '', 'hex');
  await Promise.all(writers.map((w) => w.rewriteHashes(md5, sha1)));
  const first = writers[0] as EwfWriter;
  const sums = await hashFiles(first.files.map((f) => path.join(first.dir, f.file)));
  record.image.files = first.files.map((f, i) => ({ ...f, sha256: sums[i] ?? null }));
  if (record.image.ewf) record.image.ewf = { ...record.image.ewf, storedHashes: { md5: hashes.md5 ?? '', sha1: hashes.sha1 ?? '' } };
}
