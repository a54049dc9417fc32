// One writer per destination, raw/split (ImageWriter) or E01 (EwfWriter), and
// what the rest of the run asks of a copy whatever its format: bytes written,
// its files for the record, the files to verify, a reader of it.
import path from 'node:path';
import { EwfImageReader } from '../ewf/ewf-reader.js';
import { EwfWriter, type EwfWriterState } from '../ewf/ewf-writer.js';
import type { CompressPool } from '../ewf/compress-pool.js';
import type { EwfSettings } from '../ewf/ewf-plan.js';
import { writtenBytes } from '../ewf/ewf-acquisition.js';
import type { EwfCaseInfo } from '../ewf/ewf-header.js';
import type { ImageFile } from '../image-record.js';
import { ImageSetReader, type SectorReader } from '../read/sector-reader.js';
import type { CopyFile } from '../verify/verify-files.js';
import { ImageWriter } from './image-writer.js';
import type { DestinationFacts } from './preflight.js';
import type { Segment } from './segment.js';

export type DestinationWriter = ImageWriter | EwfWriter;

export interface WritersInput {
  facts: readonly DestinationFacts[];
  name: string;
  imageSize: number;
  sectorSize: number;
  segments: Segment[];
  /** E01 settings and the pool that compresses each block once for every copy; null for raw and split. */
  ewf: { settings: EwfSettings; compressor: CompressPool; setIdentifier: Buffer; caseInfo: EwfCaseInfo; physical: boolean } | null;
  /** Going on from a journal: where, and what each E01 writer had (null for raw and split). */
  resume: { position: number; ewfState: EwfWriterState | null; onDiscard: (file: string, bytes: number) => void } | null;
  /** --fast-first into E01: whether a chunk holds deferred bytes (stored raw, to be written again in place). */
  keepRaw?: (offset: number, length: number) => boolean;
}

/** A writer for each destination, labelled write1, write2, ... */
export function destinationWriters(o: WritersInput): DestinationWriter[] {
  const writerResume = o.resume ? { position: o.resume.position, onDiscard: o.resume.onDiscard } : undefined;
  return o.facts.map((f, i) => {
    const label = `write${i + 1}`;
    if (!o.ewf) return new ImageWriter(label, f.dir, o.segments, writerResume);
    const e = o.ewf;
    return new EwfWriter({
      ...e.settings,
      label,
      dir: f.dir,
      name: o.name,
      imageSize: o.imageSize,
      sectorSize: o.sectorSize,
      caseInfo: e.caseInfo,
      mediaFlags: e.physical ? 0x03 : 0x01,
      setIdentifier: e.setIdentifier,
      compressor: e.compressor,
      writers: o.facts.length,
      showCompression: i === 0,
      hashFiles: i === 0,
      ...(o.resume?.ewfState && writerResume ? { resume: { ...writerResume, state: o.resume.ewfState } } : {}),
      ...(o.keepRaw ? { keepRaw: o.keepRaw } : {}),
    });
  });
}

/** Bytes a writer has put on its destination so far. */
export function bytesWritten(w: DestinationWriter): number {
  return w instanceof EwfWriter ? writtenBytes(w.files) : w.written.reduce((a, b) => a + b, 0);
}

/** The files a copy holds so far, for the record of an aborted run (no SHA-256: nothing was finished). */
export function filesSoFar(w: DestinationWriter | undefined): ImageFile[] {
  if (!w) return [];
  return w instanceof EwfWriter
    ? w.files.map((f) => ({ ...f, sha256: null }))
    : w.segments.map((s, i) => ({ file: s.file, size: w.written[i] ?? 0, sha256: null }));
}

/** A finished copy's files with the SHA-256 the record holds for each, to be read back. */
export function copyFiles(w: DestinationWriter, recorded: readonly ImageFile[]): CopyFile[] {
  return w instanceof EwfWriter
    ? recorded.map((f) => ({ path: path.join(w.dir, f.file), size: f.size, sha256: f.sha256 }))
    : w.segments.map((s, j) => ({ path: w.pathOf(s), size: s.size, sha256: recorded[j]?.sha256 ?? null }));
}

/** Reads a finished copy as the image stream. */
export function copyReader(w: DestinationWriter): SectorReader {
  return w instanceof EwfWriter
    ? new EwfImageReader(w.files.map((f) => path.join(w.dir, f.file)))
    : new ImageSetReader(w.segments.map((s) => ({ path: w.pathOf(s), size: s.size })));
}
