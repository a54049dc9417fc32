// Verifying a finished copy: its files are read back (bypassing the cache)
// and their stream compared with the acquisition's hashes, each file with its
// SHA-256, and an E01 also with its own checksums and stored hashes. Used at
// the end of an acquisition and by `custos verify`.
import path from 'node:path';
import { CustosError } from '../../errors.js';
import type { BufferPool } from '../pipeline/buffer-pool.js';
import { event, type EventSink } from '../../events.js';
import { progressOptions, type ProgressSink } from '../pipeline/progress.js';
import type { HashAlgorithm } from '../hash/hash-algorithms.js';
import { hashFiles } from '../hash/file-hash.js';
import { EwfImageReader } from '../ewf/ewf-reader.js';
import { ImageSetReader } from '../read/sector-reader.js';
import { ReadBackError } from './read-back.js';
import { compareFiles, compareHashes, hashReader, type HashComparison, type HashRun, type HashSet } from './verify-image.js';

/** A file of the copy, with the SHA-256 recorded for it (null: none recorded). */
export interface CopyFile {
  path: string;
  size: number;
  sha256: string | null;
}

export interface VerifyFilesOptions extends ProgressSink {
  blockSize: number;
  buffers: number;
  sectorSize?: number;
  /** Per-file SHA-256 window of a raw or split image (see fileHashWindow). */
  fileWindow: number;
  ewf?: boolean;
  pool?: BufferPool;
}

/** Reads one copy of the image back, bypassing the cache, and compares it with `expected` and each file with its SHA-256. */
export async function verifyFiles(files: CopyFile[], expected: HashSet, o: VerifyFilesOptions, phase: string, emit: EventSink): Promise<HashComparison> {
  const dir = path.dirname(files[0]?.path ?? '.');
  emit(event('verify-started', `re-reading ${files.length} file(s) from ${dir}`));
  let reader: ImageSetReader | EwfImageReader;
  try {
    reader = o.ewf ? new EwfImageReader(files.map((f) => f.path)) : new ImageSetReader(files);
  } catch (e) {
    if (!(e instanceof CustosError) || !o.ewf) throw e;
    // An E01 whose structure is broken (a segment missing, a damaged descriptor) has no stream to hash.
    const cmp = unreadableImage(expected, e.message);
    emit(event('verify-result', `${dir}: image DIFFERS: ${e.message}`, { target: dir, match: false, problems: cmp.container?.problems ?? [] }));
    return cmp;
  }
  try {
    const algorithms = Object.keys(expected.hashes) as HashAlgorithm[];
    // An E01's segment files are hashed whole on a worker while its chunks are read, not in a second pass after.
    const fileSums = reader instanceof EwfImageReader ? hashFiles(files.map((f) => f.path)) : null;
    fileSums?.catch(() => undefined);
    let again: HashRun;
    try {
      again = await hashReader({
        phase,
        reader,
        algorithms,
        pieceSize: expected.pieceSize,
        blockSize: o.blockSize,
        bufferCount: o.buffers,
        onEvent: emit,
        fileWindow: o.fileWindow,
        ...progressOptions(o),
        ...(o.pool ? { pool: o.pool } : {}),
      });
    } catch (e) {
      if (!(e instanceof ReadBackError)) throw e;
      const cmp: HashComparison = { ...unreadableImage(expected, null), unreadable: { file: e.file, offset: e.offset, error: e.message } };
      emit(event('verify-result', `${dir}: image UNREADABLE: ${e.message}`, { target: dir, match: false, unreadable: cmp.unreadable }));
      return cmp;
    }
    let cmp = compareFiles(
      compareHashes(expected, again, reader.size, o.sectorSize ?? 512),
      files.map((f) => ({ file: path.basename(f.path), sha256: f.sha256 })),
      fileSums ? await fileSums : again.files,
      again.hashes.sha256 ?? null,
    );
    if (reader instanceof EwfImageReader) cmp = withContainerChecks(cmp, reader, expected);
    emit(verifyResult(dir, cmp));
    return cmp;
  } finally {
    reader.close();
  }
}

/** The event that says where a copy differs: container problems, windows, files. */
function verifyResult(dir: string, cmp: HashComparison) {
  const where = [
    ...(cmp.container?.problems ?? []),
    ...cmp.pieces.mismatched.map((m) => `window ${m.index} (bytes ${m.offset}-${m.offset + m.length - 1})`),
    ...cmp.files.filter((f) => !f.match).map((f) => `file ${f.file}`),
  ].join(', ');
  return event('verify-result', `${dir}: ${cmp.match ? 'image matches' : `image DIFFERS${where ? ` in ${where}` : ''}`}`, {
    target: dir,
    match: cmp.match,
    mismatchedPieces: cmp.pieces.mismatched.map((m) => m.index),
    mismatchedFiles: cmp.files.filter((f) => !f.match).map((f) => f.file),
  });
}

/** The E01's own checks: every chunk's checksum, and the MD5 and SHA-1 it stores against those of the acquisition. */
function withContainerChecks(cmp: HashComparison, reader: EwfImageReader, expected: HashSet): HashComparison {
  const problems = [...reader.problems];
  for (const [name, stored] of [
    ['md5', reader.md5],
    ['sha1', reader.sha1],
  ] as const) {
    const want = expected.hashes[name];
    if (want && stored !== want) problems.push(`the image stores ${name.toUpperCase()} ${stored ?? 'none'}, the acquisition hashed ${want}`);
  }
  return { ...cmp, container: { problems }, match: cmp.match && problems.length === 0 };
}

/** A copy with no stream to compare; `containerProblem` for an E01 whose structure is broken. */
function unreadableImage(expected: HashSet, containerProblem: string | null): HashComparison {
  return {
    match: false,
    hashes: Object.entries(expected.hashes).map(([algorithm, hex]) => ({ algorithm: algorithm as HashAlgorithm, expected: hex, actual: null, match: false })),
    pieces: { compared: 0, mismatched: [] },
    merkleRootMatch: false,
    files: [],
    ...(containerProblem !== null ? { container: { problems: [containerProblem] } } : {}),
  };
}
