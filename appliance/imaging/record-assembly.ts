// The image record of one acquisition, assembled in three steps: what is
// known before reading (base), what the stream gave (completed), and how the
// run ended (closed; also for an aborted run).
import type { MemoryPlan } from './memory-plan.js';
import type { CustosError } from '../errors.js';
import { custosVersion } from '../version.js';
import type { HashAlgorithm } from './hash/hash-algorithms.js';
import { merkleRoot } from './hash/merkle.js';
import { IMAGE_RECORD_SCHEMA, MERKLE_DESCRIPTION, type AcquisitionStatus, type ImageRecord, type SourceInfo } from './image-record.js';
import type { ImagingEvent } from '../events.js';
import type { PipelineResult } from './pipeline/pipeline.js';
import type { ReadTiming } from './read/read-timing.js';
import { ewfSettingsOf, type AcquireSettings } from './settings.js';
import type { DestinationFacts } from './write/preflight.js';
import type { Segment } from './write/segment.js';
import type { WriteBlockSummary } from '../writeblock/source-writeblock.js';

/** The record before anything is read: source, image layout, settings, destinations; status aborted until the end says otherwise. */
export function baseRecord(
  o: AcquireSettings & { source: SourceInfo; memory?: MemoryPlan },
  size: number,
  sectorSize: number,
  started: Date,
  segments: Segment[],
  facts: DestinationFacts[],
  events: ImagingEvent[],
): ImageRecord {
  return {
    schema: IMAGE_RECORD_SCHEMA,
    status: 'aborted',
    tool: { name: 'custos', version: custosVersion(), node: process.version },
    source: o.source,
    image: {
      name: o.name,
      format: o.format,
      splitSize: o.format === 'split' ? o.splitSize : null,
      sizeBytes: size,
      sectorSize,
      files: o.format === 'e01' ? [] : segments.map((s) => ({ file: s.file, size: s.size, sha256: null })),
      ewf: null,
    },
    settings: {
      hashes: o.hashes,
      pieceSize: o.pieceSize,
      blockSize: o.blockSize,
      buffers: o.buffers,
      retries: o.policy.retries,
      fill: o.policy.fill,
      fastFirst: o.fastFirst,
      verify: o.verify,
      verifySource: o.verifySource,
      ...(o.format === 'e01' ? { ewf: ewfSettingsOf(o) } : {}),
      ...(o.memory ? { memory: o.memory } : {}),
    },
    hashes: {},
    pieces: { size: o.pieceSize, count: 0, sha256: [], merkleRoot: '', merkle: MERKLE_DESCRIPTION },
    badSectors: 0,
    badRanges: [],
    destinations: facts.map((f) => ({ dir: f.dir, fsType: f.fsType, freeBytesAtStart: f.freeBytes, verification: null })),
    recovery: null,
    resume: null,
    journal: null,
    sourceVerification: null,
    writeBlock: null,
    timing: { started: started.toISOString(), finished: '', startupS: 0, acquireS: 0, totalS: 0, averageMiBs: 0, peakRssMiB: 0 },
    stages: [],
    readTiming: null,
    error: null,
    events,
  };
}

/** What the stream's hashing gave, once the image is written: its hashes, windows, bad ranges and timing. */
export interface StreamResult {
  hashes: Partial<Record<HashAlgorithm, string>>;
  pieces: string[];
  /** Per-file SHA-256 of a raw or split image (empty when the linear SHA-256 is the file's). */
  files: string[];
  /** The window of `files`: 0 when the linear SHA-256 serves (see fileHashWindow). */
  fileWindow: number;
  windowed: boolean;
  run: PipelineResult;
}

export function completeRecord(record: ImageRecord, r: StreamResult, requestedAtMs: number): void {
  record.hashes = r.hashes;
  if (record.image.format !== 'e01')
    record.image.files = record.image.files.map((f, i) => ({ ...f, sha256: r.fileWindow > 0 ? (r.files[i] ?? null) : (r.hashes.sha256 ?? null) }));
  record.pieces = {
    size: record.settings.pieceSize,
    count: r.pieces.length,
    sha256: r.pieces,
    merkleRoot: r.windowed ? merkleRoot(r.pieces.map((h) => Buffer.from(h, 'hex'))).toString('hex') : '',
    merkle: MERKLE_DESCRIPTION,
  };
  record.badRanges = r.run.badRanges;
  record.badSectors = r.run.badRanges.reduce((n, b) => n + b.sectors, 0);
  record.timing.startupS = Math.round(Math.max(0, r.run.startedMs - requestedAtMs)) / 1000;
  record.timing.acquireS = r.run.elapsedMs / 1000;
  record.timing.averageMiBs = Math.round((record.image.sizeBytes / 1024 / 1024 / (r.run.elapsedMs / 1000)) * 100) / 100;
  record.stages = r.run.stages.map((s) => ({ name: s.name, kind: s.kind, bytes: s.bytes, busyS: Math.round(s.busyMs) / 1000 }));
}

/** How the run ended, when, and what it measured on the way. */
export interface RunEnd {
  status: AcquisitionStatus;
  error: CustosError | null;
  started: Date;
  journal: { checkpoints: number; lastPosition: number } | null;
  readTiming: ReadTiming | null;
  writeBlock: WriteBlockSummary | null;
}

export function closeRecord(record: ImageRecord, end: RunEnd): void {
  if (end.journal) record.journal = end.journal;
  record.readTiming = end.readTiming;
  record.status = end.status;
  record.error = end.error ? { code: end.error.code, message: end.error.message } : null;
  record.writeBlock = end.writeBlock;
  const now = new Date();
  record.timing.finished = now.toISOString();
  record.timing.totalS = (now.getTime() - end.started.getTime()) / 1000;
  record.timing.peakRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
}
