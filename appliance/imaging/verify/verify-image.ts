// Stage: verified. Hashes a reader end to end and compares the result with
// the acquisition's hashes, windows and Merkle root.
import { BufferPool } from '../pipeline/buffer-pool.js';
import type { EventSink } from '../../events.js';
import type { HashAlgorithm } from '../hash/hash-algorithms.js';
import { hashStages, type HashStage } from '../hash/hash-stage.js';
import { merkleRoot } from '../hash/merkle.js';
import { runPipeline } from '../pipeline/pipeline.js';
import { progressOptions, type ProgressSink } from '../pipeline/progress.js';
import { readBackBlock } from './read-back.js';
import type { BadRange, ReadPolicy } from '../read/read-recovery.js';
import type { SectorReader } from '../read/sector-reader.js';

export interface HashSet {
  hashes: Partial<Record<HashAlgorithm, string>>;
  pieceSize: number;
  pieces: string[];
  merkleRoot: string;
}

export interface HashRun extends HashSet {
  /** SHA-256 per `fileWindow` window, when asked. */
  files: string[];
  bytes: number;
  badRanges: BadRange[];
  elapsedMs: number;
}

export interface PieceMismatch {
  index: number;
  offset: number;
  length: number;
  firstLba: number;
  lastLba: number;
  expected: string;
  actual: string | null;
}

export interface HashComparison {
  match: boolean;
  hashes: { algorithm: HashAlgorithm; expected: string; actual: string | null; match: boolean }[];
  pieces: { compared: number; mismatched: PieceMismatch[] };
  merkleRootMatch: boolean;
  /** Each image file against its recorded SHA-256 (empty where none was recorded). */
  files: { file: string; expected: string; actual: string | null; match: boolean }[];
  /** E01 only: what reading the container found wrong (chunk checksums, structure, stored hashes). */
  container?: { problems: string[] };
  /** The copy could not be read back to its end: where, and why. Nothing after that point was compared. */
  unreadable?: { file: string; offset: number; error: string };
}

export interface ReadBackOptions extends ProgressSink {
  phase: string;
  reader: SectorReader;
  algorithms: HashAlgorithm[];
  pieceSize: number;
  blockSize: number;
  bufferCount: number;
  onEvent: EventSink;
  /** Also SHA-256 per window of this size (one per image file); 0 or absent: none. */
  fileWindow?: number;
  /** Buffers to read into (an acquisition's, all free again): a verify after it then needs no memory of its own. */
  pool?: BufferPool;
  /** A source re-read: unreadable sectors retried and filled as when it was acquired. Absent for an image copy: its first read error stops the run (ReadBackError). */
  recover?: ReadPolicy;
}

const NO_RECOVERY: ReadPolicy = { retries: 0, fill: 0 };

/** Hashes a reader end to end (linear hashes and pieces), in parallel workers, writing nothing. */
export async function hashReader(o: ReadBackOptions): Promise<HashRun> {
  const pool = o.pool && o.pool.size === o.blockSize && o.pool.inUse === 0 ? o.pool : new BufferPool(o.bufferCount, o.blockSize);
  const { linear, pieces, files } = hashStages(o.algorithms, o.pieceSize, pool, o.fileWindow ?? 0);
  const hashers = [...linear, ...(pieces ? [pieces] : []), ...(files ? [files] : [])];
  try {
    const run = await runPipeline({
      phase: o.phase,
      reader: o.reader,
      pool,
      consumers: hashers,
      policy: o.recover ?? NO_RECOVERY,
      ...(o.recover ? {} : { readBlock: readBackBlock(o.reader) }),
      onEvent: o.onEvent,
      ...progressOptions(o),
    });
    const hashes: Partial<Record<HashAlgorithm, string>> = {};
    for (const [i, a] of o.algorithms.entries()) hashes[a] = await (linear[i] as HashStage).digest();
    const hex = pieces ? await pieces.pieces() : [];
    const fileHex = files ? await files.pieces() : [];
    return {
      files: fileHex,
      hashes,
      pieceSize: o.pieceSize,
      pieces: hex,
      merkleRoot: pieces ? merkleRoot(hex.map((h) => Buffer.from(h, 'hex'))).toString('hex') : '',
      bytes: run.bytes,
      badRanges: run.badRanges,
      elapsedMs: run.elapsedMs,
    };
  } finally {
    await Promise.all(hashers.map((s) => s.terminate()));
  }
}

/** Compares a re-read with what was recorded, and names every window that differs. */
export function compareHashes(expected: HashSet, actual: HashSet, size: number, sectorSize: number): HashComparison {
  const hashes = (Object.keys(expected.hashes) as HashAlgorithm[]).map((algorithm) => {
    const e = expected.hashes[algorithm] as string;
    const a = actual.hashes[algorithm] ?? null;
    return { algorithm, expected: e, actual: a, match: a === e };
  });
  const mismatched: PieceMismatch[] = [];
  const n = Math.max(expected.pieces.length, actual.pieces.length);
  for (let i = 0; i < n; i++) {
    const e = expected.pieces[i];
    const a = actual.pieces[i] ?? null;
    if (e !== undefined && a === e) continue;
    const offset = i * expected.pieceSize;
    const length = Math.max(0, Math.min(expected.pieceSize, size - offset));
    mismatched.push({
      index: i,
      offset,
      length,
      firstLba: Math.floor(offset / sectorSize),
      lastLba: Math.floor((offset + Math.max(length, 1) - 1) / sectorSize),
      expected: e ?? '(none)',
      actual: a,
    });
  }
  const merkleRootMatch = expected.merkleRoot === actual.merkleRoot;
  return {
    match: hashes.every((h) => h.match) && mismatched.length === 0 && merkleRootMatch && expected.pieceSize === actual.pieceSize,
    hashes,
    pieces: { compared: n, mismatched },
    merkleRootMatch,
    files: [],
  };
}

/** Adds the per-file SHA-256 comparison; `actual` holds one digest per file window (or none, see fileHashWindow). */
export function compareFiles(
  cmp: HashComparison,
  expected: { file: string; sha256: string | null }[],
  actual: string[],
  wholeSha256: string | null,
): HashComparison {
  const files = expected
    .filter((f): f is { file: string; sha256: string } => f.sha256 !== null)
    .map((f, i) => {
      const a = actual.length > 0 ? (actual[i] ?? null) : wholeSha256;
      return { file: f.file, expected: f.sha256, actual: a, match: a === f.sha256 };
    });
  return { ...cmp, files, match: cmp.match && files.every((f) => f.match) };
}
