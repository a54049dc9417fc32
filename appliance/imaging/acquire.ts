import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { CustosError } from '../errors.js';
import type { AcquireSettings } from './settings.js';
import { custosVersion } from '../version.js';
import { BufferPool } from './pipeline/buffer-pool.js';
import { recoverDeferred, SkippingReader, type DeferredRange } from './read/fast-first.js';
import { event, type EventSink, type ImagingEvent } from './pipeline/events.js';
import type { HashAlgorithm } from './hash/hash-algorithms.js';
import { hashStages, type HashStage } from './hash/hash-stage.js';
import { imageSegments, type ImageFormat } from './write/image-layout.js';
import { ImageWriter } from './write/image-writer.js';
import type { CaseData } from '../custody/case-data.js';
import { EwfWriter, type EwfSettings } from './ewf/ewf-writer.js';
import { CompressPool } from './ewf/compress-pool.js';
import { EwfImageReader } from './ewf/ewf-reader.js';
import { DEFAULT_EWF_SETTINGS, EWF_CHUNK_SIZE, ewfSettingsProblem } from './ewf/ewf-plan.js';
import { ewfCaseInfo, ewfErrorRuns, ewfRecord, writtenBytes } from './ewf/ewf-acquisition.js';
import { hashFiles } from './hash/file-hash.js';
import { TimedReader } from './read/read-timing.js';
import { journalKeeper } from './resume/journal-keeper.js';
import { journalSourceProblem } from './resume/journal.js';
import { ResumeReader } from './read/resume-reader.js';
import { checkCopy, checkSourceWindows, writtenImageReader, writtenWindowCheck, type ResumePlan } from './resume/resume-plan.js';
import { MERKLE_DESCRIPTION, IMAGE_RECORD_SCHEMA, type AcquisitionStatus, type ImageRecord, type RecoveryRecord, type SourceInfo } from './image-record.js';
import { merkleRoot } from './hash/merkle.js';
import { runPipeline, settledOrGiveUp, type PipelineResult } from './pipeline/pipeline.js';
import { Sysfs } from '../disk/sysfs.js';
import { preflightDestinations, PreflightError, type DestinationFacts } from './write/preflight.js';
import type { ProgressReport } from './pipeline/progress.js';
import { ImageSetReader, type SectorReader } from './read/sector-reader.js';
import type { SourceWriteBlock } from '../writeblock/source-writeblock.js';
import { compareFiles, compareHashes, hashReader, type HashComparison, type HashRun, type HashSet } from './verify/verify-image.js';
import { ReadBackError } from './verify/read-back.js';

export type { AcquireSettings } from './settings.js';

/**
 * Keeps the record of an acquisition (the custody session): told when
 * preflight has passed, sees every event, and writes the record at the end,
 * also for an aborted run.
 */
export interface AcquisitionRecorder {
  /** Files it creates in each destination; preflight refuses a destination holding any. */
  readonly fileNames: readonly string[];
  open(dirs: string[]): void;
  event(e: ImagingEvent): void;
  finish(record: ImageRecord): Promise<unknown>;
}

export interface AcquireOptions extends AcquireSettings {
  reader: SectorReader;
  source: SourceInfo;
  /** Kernel name of the source disk, to refuse destinations on it; null for a non-device reader. */
  sourceDisk: string | null;
  writeBlock: SourceWriteBlock | null;
  destinations: string[];
  onEvent?: EventSink;
  recorder?: AcquisitionRecorder;
  onProgress?: (p: ProgressReport) => void;
  progressIntervalMs?: number;
  /** Interrupts the acquisition (SIGINT, the UI's stop key); its reason should be a CustosError. */
  signal?: AbortSignal;
  /** A source read outstanding this long is reported (default 5 s). */
  slowReadMs?: number;
  /** --fast-first: a block read slower than this starts a jump past a slow area (default 2 s). */
  slowBlockMs?: number;
  /** Case data for the E01 headers, and how far the system clock was from the examiner's time. */
  caseData?: CaseData;
  examinerOffsetS?: number | null;
  /** How often the resume journal is brought up to date (default 10 s); 0 keeps none. */
  journalIntervalMs?: number;
  /** Go on with an interrupted acquisition from its journal (the settings must be the journal's). */
  resume?: ResumePlan;
}

/** The acquisition stopped before a complete image; `record` says how far it got. */
export class AcquisitionAborted extends CustosError {
  readonly record: ImageRecord;
  constructor(code: string, message: string, record: ImageRecord) {
    super(code, message);
    this.record = record;
  }
}

export { DEFAULT_BLOCK_SIZE, DEFAULT_BUFFERS, DEFAULT_PIECE_SIZE } from './settings.js';

function checkSettings(o: AcquireOptions): void {
  const ss = o.reader.sectorSize;
  const bad = (what: string) => new PreflightError('EUSAGE', what);
  if (o.reader.size <= 0) throw bad(`source ${o.reader.name} is empty`);
  if (o.reader.size % ss !== 0) throw bad(`source size ${o.reader.size} is not a multiple of its ${ss}-byte sector`);
  if (o.blockSize % 4096 !== 0 || o.blockSize % ss !== 0 || o.blockSize > 256 * 1024 * 1024) throw bad('--block-size must be a multiple of 4096 and of the sector size, at most 256M');
  if (o.pieceSize % ss !== 0) throw bad(`--piece-size must be a multiple of the ${ss}-byte sector`);
  if (o.format === 'split' && (o.splitSize % 4096 !== 0 || o.splitSize < 1024 * 1024)) throw bad('--split-size must be a multiple of 4096 and at least 1M');
  if (o.buffers < 2 || o.buffers > 256) throw bad('--buffers must be 2..256');
  if (o.hashes.length === 0) throw bad('at least one hash is needed');
  if (o.format === 'e01') {
    const problem = ewfSettingsProblem({ ...o, ewf: ewfSettingsOf(o) });
    if (problem) throw bad(problem);
    if (EWF_CHUNK_SIZE % ss !== 0) throw bad(`the ${ss}-byte sector does not divide the E01 chunk`);
  }
}

function ewfSettingsOf(o: AcquireSettings): EwfSettings {
  return o.ewf ?? DEFAULT_EWF_SETTINGS;
}

/**
 * Images `reader` into every destination at once, hashing on the way, then
 * (if asked) reads each copy back and the source again. Every step is an
 * event; the record is written into each destination at the end, also when
 * the acquisition was aborted.
 */
export async function acquire(o: AcquireOptions): Promise<ImageRecord> {
  const started = new Date();
  const events: ImagingEvent[] = [];
  const emit: EventSink = (e) => {
    events.push(e);
    o.recorder?.event(e);
    o.onEvent?.(e);
  };
  o.writeBlock?.attach(emit);
  checkSettings(o);
  const ewf = o.format === 'e01' ? ewfSettingsOf(o) : null;
  const segments = imageSegments(o.name, o.reader.size, o.format, ewf ? ewf.segmentSize : o.splitSize);
  const resume = o.resume ?? null;
  const journal = resume?.journal ?? null;
  const wrongSource = journal ? journalSourceProblem(journal, { path: o.reader.name, sizeBytes: o.reader.size, sectorSize: o.reader.sectorSize, serial: o.source.serial }) : null;
  if (wrongSource) throw new PreflightError('ERESUMESOURCE', wrongSource);
  const facts = preflightDestinations({
    dirs: resume ? resume.dirs : o.destinations,
    segments,
    extraFiles: [...(o.recorder?.fileNames ?? [])],
    sourceDisk: o.sourceDisk,
    ...(journal ? { resumingAt: journal.position } : {}),
  });
  emit(event('preflight', `preflight passed: ${facts.length} destination(s), ${segments.length} file(s) each, ${o.reader.size} bytes`, { destinations: facts }));
  o.recorder?.open(facts.map((f) => f.dir));

  const pool = new BufferPool(o.buffers, o.blockSize);
  // The caller's stop (SIGINT, the UI's abort key), and ours when a destination disappears.
  const stop = new AbortController();
  const sysfs = new Sysfs();
  if (o.signal?.aborted) stop.abort(o.signal.reason);
  o.signal?.addEventListener('abort', () => stop.abort(o.signal?.reason), { once: true });
  // Every source read is timed; one that does not return is reported while it hangs.
  const source = new TimedReader(o.reader, { onEvent: emit, ...(o.slowReadMs ? { slowMs: o.slowReadMs } : {}) });
  // SHA-256 of each output file, for sha256sum on every file; a raw image's is its linear SHA-256 when that is selected.
  const fileWindow = fileHashWindow({ ...o, size: o.reader.size });
  const { linear, pieces, files } = hashStages(o.hashes, o.pieceSize, pool, fileWindow);
  const hashers = [...linear, ...(pieces ? [pieces] : []), ...(files ? [files] : [])];
  const setIdentifier = journal?.ewf ? Buffer.from(journal.ewf.setIdentifier, 'hex') : randomBytes(16);
  // --fast-first into E01: chunks holding deferred (filled) bytes are stored raw, so the recovery pass can write them again in place.
  const deferredAt = (offset: number, length: number) => (skipping?.deferred ?? []).some((d) => d.offset < offset + length && d.offset + d.length > offset);
  const discarded = (file: string, bytes: number) =>
    emit(event('resume-discard', `${file}: ${bytes} bytes written after the last checkpoint are discarded and written again`, { file, bytes }));
  const writerResume = journal ? { position: journal.position, onDiscard: discarded } : undefined;
  const compressor = ewf ? new CompressPool(ewf.compression, EWF_CHUNK_SIZE, pool) : null;
  const writers: (ImageWriter | EwfWriter)[] = facts.map((f, i) =>
    ewf && compressor
      ? new EwfWriter({ ...ewf, label: `write${i + 1}`, dir: f.dir, name: o.name, imageSize: o.reader.size, sectorSize: o.reader.sectorSize, caseInfo: ewfCaseInfo(o, started), mediaFlags: o.sourceDisk ? 0x03 : 0x01, setIdentifier, compressor, writers: facts.length, showCompression: i === 0, hashFiles: i === 0, ...(journal?.ewf && writerResume ? { resume: { ...writerResume, state: journal.ewf } } : {}), ...(o.fastFirst ? { keepRaw: deferredAt } : {}) })
      : new ImageWriter(`write${i + 1}`, f.dir, segments, writerResume),
  );
  /** The destination whose disk has left sysfs (unplugged), if any. */
  const goneDestination = () => facts.find((f) => f.disks.length > 0 && f.disks.some((d) => !sysfs.exists(`block/${d}`)));
  const keeper = journalKeeper(o, facts.map((f) => f.dir), pieces, writers, started, emit);
  const record = baseRecord(o, started, segments, facts, events);
  const finishRecord = (status: AcquisitionStatus, error: CustosError | null) => {
    source.stop();
    if (keeper) record.journal = { checkpoints: keeper.count, lastPosition: keeper.position };
    record.readTiming = source.timing();
    record.status = status;
    record.error = error ? { code: error.code, message: error.message } : null;
    record.writeBlock = o.writeBlock?.summary() ?? null;
    const end = new Date();
    record.timing.finished = end.toISOString();
    record.timing.totalS = (end.getTime() - started.getTime()) / 1000;
    record.timing.peakRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
  };

  // The stream the pipeline reads: a resumed run's copy read back before the checkpoint, then the source.
  let written: SectorReader | null = null;
  let skipping: SkippingReader | null = null;
  // A source that is unplugged and comes back is compared with the windows hashed so far, except those holding filled or deferred sectors.
  if (pieces) {
    const ss = o.reader.sectorSize;
    const bad = () => [...(journal?.badRanges ?? []), ...events.filter((e) => e.type === 'bad-range').map((e) => e.data as { firstLba: number; lastLba: number })];
    const overlaps = (a: number, b: number, start: number, end: number) => a < end && b > start;
    o.reader.useWitness?.({
      pieceSize: o.pieceSize,
      completed: () => pieces.completed,
      unreliable: (start, end) => bad().some((r) => overlaps(r.firstLba * ss, (r.lastLba + 1) * ss, start, end)) || [...(journal?.deferred ?? []), ...(skipping?.deferred ?? [])].some((d) => overlaps(d.offset, d.offset + d.length, start, end)),
    });
  }
  keeper?.watchDeferred(() => skipping?.deferred ?? []);
  let recovered = 0;
  emit(event('started', `acquiring ${o.source.path} (${o.reader.size} bytes) as ${o.name} (${o.format}) with ${o.hashes.join(', ')}`, { settings: record.settings }));
  let run: PipelineResult;
  let hashes: Partial<Record<HashAlgorithm, string>> = {};
  let pieceHex: string[] = [];
  let fileHex: string[] = [];
  /** Stops the run on any error, in any phase: everything closed, the error named, an aborted record. */
  const abortRun = async (e: unknown): Promise<never> => {
    // A checkpoint waits for the writers, which may never return (an unplugged drive).
    if (keeper) await settledOrGiveUp([keeper.stop()]);
    written?.close();
    await settledOrGiveUp(writers.map((w) => w.close()));
    await compressor?.terminate();
    await Promise.all(hashers.map((s) => s.terminate()));
    let err = e instanceof CustosError ? e : new CustosError('EINTERNAL', e instanceof Error ? e.message : String(e));
    if (e instanceof CustosError && e.code === 'ENOSPC') emit(event('write-error', e.message, { code: e.code }));
    // An unplugged drive's writes fail before the kernel removes its disk: an I/O error then is named for what happened.
    const gone = UNPLUG_ERRNOS.has(err.code) ? await soonGone(goneDestination) : null;
    if (gone) {
      err = destinationGone(gone, err);
      emit(event('write-error', err.message, { code: err.code, dir: gone.dir, disks: gone.disks }));
    }
    emit(event('aborted', `acquisition aborted: ${err.message}`, { code: err.code, bytesWritten: writers.map((w) => (w instanceof EwfWriter ? writtenBytes(w.files) : w.written.reduce((a, b) => a + b, 0))) }));
    finishRecord('aborted', err);
    const w0 = writers[0];
    record.image.files = w0 instanceof EwfWriter ? w0.files.map((f) => ({ ...f, sha256: null })) : (w0?.segments.map((s, i) => ({ file: s.file, size: w0.written[i] ?? 0, sha256: null })) ?? []);
    try {
      await o.recorder?.finish(record);
    } catch {
      // The error that aborted the run is what the caller reports; the log so far is on the medium, with its last signed checkpoint.
    }
    throw new AcquisitionAborted(err.code, `acquisition aborted: ${err.message}`, record);
  };
  try {
    if (journal && resume) {
      emit(event('resume-started', `resuming at byte ${journal.position} of ${o.reader.size} (checkpoint ${journal.checkpoint} of ${journal.written}); the first ${journal.pieces.length} window(s) are read back from ${resume.dirs[0]} and checked against the journal`, { position: journal.position, checkpoint: journal.checkpoint, journalWritten: journal.written, dirs: resume.dirs }));
      await checkSourceWindows(source, journal, pool, o.policy, emit);
      for (const f of facts.slice(1)) await checkCopy(f.dir, journal, segments, { bufferCount: o.buffers, onEvent: emit });
      written = writtenImageReader((facts[0] as DestinationFacts).dir, journal, segments);
      record.resume = { position: journal.position, checkpoint: journal.checkpoint, journalWritten: journal.written, firstStarted: journal.started, resumes: journal.resumes + 1, windowsChecked: journal.pieces.length, readBackFrom: (facts[0] as DestinationFacts).dir };
    }
    const stream = written && journal ? new ResumeReader(written, source, journal.position) : source;
    const firstPass = o.fastFirst ? new SkippingReader(stream, o.blockSize, o.policy.fill, emit, o.slowBlockMs, journal ? { deferred: journal.deferred, from: journal.position } : null) : null;
    skipping = firstPass;
    const checkWritten = journal ? writtenWindowCheck(journal.pieces, pieces, (facts[0] as DestinationFacts).dir, stop) : null;
    run = await runPipeline({
      phase: 'acquire',
      reader: stream,
      ...(journal ? { knownBadRanges: journal.badRanges } : {}),
      onBlockDone: (end, bad) => {
        checkWritten?.(end);
        keeper?.blockDone(end, bad);
      },
      pool,
      consumers: [...hashers, ...writers],
      policy: o.policy,
      onEvent: emit,
      ...(o.onProgress ? { onProgress: (p: ProgressReport) => o.onProgress?.({ ...p, journal: keeper ? { checkpoints: keeper.count, position: keeper.position, written: keeper.written } : null }) } : {}),
      progressIntervalMs: o.progressIntervalMs ?? 1000,
      signal: stop.signal,
      writeBlockTick: () => {
        // Each tick also looks for a destination whose disk has gone: its writes may never return.
        const gone = goneDestination();
        if (gone && !stop.signal.aborted) {
          const err = destinationGone(gone, null);
          emit(event('write-error', err.message, { code: err.code, dir: gone.dir, disks: gone.disks }));
          stop.abort(err);
        }
        return o.writeBlock ? o.writeBlock.tick() : null;
      },
      ...(firstPass ? { readBlock: (b: Buffer, n: number, at: number) => firstPass.read(b, n, at) } : {}),
    });
    if (skipping && skipping.deferred.length > 0) {
      const recovery = await recoverDeferred({
        reader: source,
        ranges: skipping.deferred,
        buffer: pool.buffers[0] as Buffer,
        policy: o.policy,
        onEvent: emit,
        write: async (at, bytes) => {
          await Promise.all(writers.map((w) => w.overwrite(at, bytes)));
        },
        signal: stop.signal,
      });
      run.badRanges = recovery.badRanges;
      recovered = recovery.recoveredSectors;
    }
    await keeper?.stop();
    written?.close();
    for (const [i, a] of o.hashes.entries()) hashes[a] = await (linear[i] as HashStage).digest();
    pieceHex = pieces ? await pieces.pieces() : [];
    fileHex = files ? await files.pieces() : [];
    if (ewf) {
      const runs = ewfErrorRuns(run.badRanges, emit);
      const closing = { md5: Buffer.from(hashes.md5 ?? '', 'hex'), sha1: Buffer.from(hashes.sha1 ?? '', 'hex'), badRuns: runs };
      // The segment files are not the image stream: the first copy's are hashed as they are finished, for sha256sum and to compare the copies.
      await compressor?.terminate();
      const [sums] = await Promise.all(writers.map((w) => (w as EwfWriter).finish(closing)));
      record.image.ewf = ewfRecord(ewf, EWF_CHUNK_SIZE, setIdentifier, hashes.md5 ?? '', hashes.sha1 ?? '', runs.length);
      const first = writers[0] as EwfWriter;
      record.image.files = first.files.map((f, i) => ({ ...f, sha256: sums?.[i] ?? null }));
    } else {
      await Promise.all(writers.map((w) => (w as ImageWriter).finish()));
    }
  } catch (e) {
    return abortRun(e);
  }

  let verified = true;
  try {
    if (skipping) {
      record.recovery = { deferred: skipping.deferred, recoveredSectors: recovered, hashesFrom: 'source-stream', rereadDir: null, untouchedPieces: null };
      if (recovered > 0) {
        // The stream hashes saw fill where the recovery pass later wrote data.
        const first = writers[0] as ImageWriter | EwfWriter;
        const reader = first instanceof EwfWriter ? new EwfImageReader(first.files.map((f) => path.join(first.dir, f.file))) : new ImageSetReader(first.segments.map((s) => ({ path: first.pathOf(s), size: s.size })));
        const again = await rehashFromDestination(reader, first.dir, o, fileWindow, record.recovery, pieceHex, emit);
        hashes = again.hashes;
        pieceHex = again.pieces;
        fileHex = again.files;
        if (ewf) await restoreEwfHashes(writers as EwfWriter[], hashes, record);
      }
    }
    record.hashes = hashes;
    if (!ewf) record.image.files = record.image.files.map((f, i) => ({ ...f, sha256: fileWindow > 0 ? (fileHex[i] ?? null) : (hashes.sha256 ?? null) }));
    record.pieces = { size: o.pieceSize, count: pieceHex.length, sha256: pieceHex, merkleRoot: pieces ? merkleRoot(pieceHex.map((h) => Buffer.from(h, 'hex'))).toString('hex') : '', merkle: MERKLE_DESCRIPTION };
    record.badRanges = run.badRanges;
    record.badSectors = run.badRanges.reduce((n, r) => n + r.sectors, 0);
    record.timing.acquireS = run.elapsedMs / 1000;
    record.timing.averageMiBs = Math.round((o.reader.size / 1024 / 1024 / (run.elapsedMs / 1000)) * 100) / 100;
    record.stages = run.stages.map((s) => ({ name: s.name, kind: s.kind, bytes: s.bytes, busyS: Math.round(s.busyMs) / 1000 }));
    emit(event('acquired', `acquired ${o.reader.size} bytes in ${record.timing.acquireS.toFixed(1)} s (${record.timing.averageMiBs} MiB/s), ${record.badSectors} unreadable sector(s)`, { hashes, merkleRoot: record.pieces.merkleRoot }));

    const expected: HashSet = { hashes, pieceSize: o.pieceSize, pieces: pieceHex, merkleRoot: record.pieces.merkleRoot };
    if (o.verify) {
      for (const [i, w] of writers.entries()) {
        const list = w instanceof EwfWriter ? record.image.files.map((f) => ({ path: path.join(w.dir, f.file), size: f.size, sha256: f.sha256 })) : w.segments.map((s, j) => ({ path: w.pathOf(s), size: s.size, sha256: record.image.files[j]?.sha256 ?? null }));
        const cmp = await verifyFiles(list, expected, { ...o, fileWindow, ewf: ewf !== null, pool }, `verify ${w.dir}`, emit);
        (record.destinations[i] as ImageRecord['destinations'][number]).verification = cmp;
        // Unreadable because its drive was pulled after the image was flushed: stopped like an unplug while writing, so it can be resumed and verified.
        if (cmp.unreadable && (await soonGone(goneDestination))) throw new CustosError('EDESTREAD', cmp.unreadable.error);
        verified &&= cmp.match;
      }
    }
    if (o.verifySource) {
      emit(event('verify-started', `re-reading source ${o.source.path}`));
      const again = await hashReader({ phase: 'verify-source', reader: o.reader, algorithms: o.hashes, pieceSize: o.pieceSize, blockSize: o.blockSize, bufferCount: o.buffers, onEvent: emit, recover: o.policy, ...progressOpts(o) });
      const cmp = compareHashes(expected, again, o.reader.size, o.reader.sectorSize);
      record.sourceVerification = cmp;
      verified &&= cmp.match;
      emit(event('verify-result', `source re-read ${cmp.match ? 'matches' : 'DIFFERS'}`, { target: 'source', match: cmp.match, mismatchedPieces: cmp.pieces.mismatched.map((m) => m.index) }));
    }
    if (record.recovery?.untouchedPieces?.mismatched.length) verified = false;
  } catch (e) {
    return abortRun(e);
  }
  const status: AcquisitionStatus = !verified ? 'verify-failed' : record.badSectors > 0 ? 'complete-with-bad-sectors' : 'complete';
  emit(event('completed', `acquisition ${status}`, { status }));
  finishRecord(status, null);
  await o.recorder?.finish(record);
  // Recorded: nothing is left to resume.
  keeper?.remove();
  return record;
}

/**
 * Hashes the first destination after the recovery pass. The windows that pass
 * did not touch must hash as they did from the source stream; if one does
 * not, the destination changed under us and the acquisition does not verify.
 */
async function rehashFromDestination(
  reader: SectorReader,
  dir: string,
  o: AcquireOptions,
  fileWindow: number,
  recovery: RecoveryRecord,
  streamPieces: string[],
  emit: EventSink,
): Promise<{ hashes: Partial<Record<HashAlgorithm, string>>; pieces: string[]; files: string[] }> {
  try {
    const again = await hashReader({ phase: 'rehash', reader, algorithms: o.hashes, pieceSize: o.pieceSize, blockSize: o.blockSize, bufferCount: o.buffers, onEvent: emit, fileWindow, ...progressOpts(o) });
    const touched = (i: number) => recovery.deferred.some((d: DeferredRange) => d.offset < (i + 1) * o.pieceSize && d.offset + d.length > i * o.pieceSize);
    const untouched = streamPieces.map((_, i) => i).filter((i) => !touched(i));
    const mismatched = untouched.filter((i) => streamPieces[i] !== again.pieces[i]);
    recovery.hashesFrom = 'destination-reread';
    recovery.rereadDir = dir;
    recovery.untouchedPieces = o.pieceSize > 0 ? { compared: untouched.length, mismatched } : null;
    emit(
      event('rehashed', `hashed ${dir} again after the recovery pass${o.pieceSize > 0 ? `; ${untouched.length} untouched window(s) ${mismatched.length === 0 ? 'match the source stream' : `DIFFER: ${mismatched.join(', ')}`}` : ''}`, {
        dir,
        hashes: again.hashes,
        untouchedCompared: untouched.length,
        mismatched,
      }),
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
async function restoreEwfHashes(writers: EwfWriter[], hashes: Partial<Record<HashAlgorithm, string>>, record: ImageRecord): Promise<void> {
  const md5 = Buffer.from(hashes.md5 ?? '', 'hex');
  const sha1 = Buffer.from(hashes.sha1 ?? '', 'hex');
  await Promise.all(writers.map((w) => w.rewriteHashes(md5, sha1)));
  const first = writers[0] as EwfWriter;
  const sums = await hashFiles(first.files.map((f) => path.join(first.dir, f.file)));
  record.image.files = first.files.map((f, i) => ({ ...f, sha256: sums[i] ?? null }));
  if (record.image.ewf) record.image.ewf = { ...record.image.ewf, storedHashes: { md5: hashes.md5 ?? '', sha1: hashes.sha1 ?? '' } };
}

/** Window for per-file SHA-256: one segment; 0 when a raw image's linear SHA-256 already is its file hash, or for E01. */
export function fileHashWindow(o: { format: ImageFormat; splitSize: number | null; hashes: readonly HashAlgorithm[]; size: number }): number {
  if (o.format === 'split') return o.splitSize ?? 0;
  // E01 segment files are not windows of the image stream; they are hashed as written.
  if (o.format === 'e01') return 0;
  return o.hashes.includes('sha256') ? 0 : o.size;
}

function progressOpts(o: AcquireOptions): { onProgress?: (p: ProgressReport) => void; progressIntervalMs: number } {
  return { ...(o.onProgress ? { onProgress: o.onProgress } : {}), progressIntervalMs: o.progressIntervalMs ?? 1000 };
}

/** Errors a write or read-back gives when the drive under it goes away. */
const UNPLUG_ERRNOS = new Set(['EIO', 'ENODEV', 'ENXIO', 'EROFS', 'ESHUTDOWN', 'EDESTREAD']);

/** The error for a destination whose disk was unplugged; `cause` is the I/O error that came first, if one did. */
function destinationGone(d: DestinationFacts, cause: CustosError | null): CustosError {
  return new CustosError('EDESTGONE', `destination ${d.dir}: its disk ${d.disks.join(', ')} was unplugged${cause ? ` (${cause.message})` : ''}; acquisition stopped (the source is untouched)`);
}

/** `find()`'s answer, looked for up to 2 s: the kernel removes a disk a moment after failing its I/O. */
async function soonGone<T>(find: () => T | undefined): Promise<T | null> {
  for (let i = 0; i < 20; i++) {
    const found = find();
    if (found !== undefined) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
  return null;
}

/** Reads one copy of the image back, bypassing the cache, and compares it with `expected` and each file with its SHA-256. */
export async function verifyFiles(
  files: { path: string; size: number; sha256: string | null }[],
  expected: HashSet,
  o: Pick<AcquireOptions, 'blockSize' | 'buffers' | 'onProgress' | 'progressIntervalMs'> & { sectorSize?: number; fileWindow: number; ewf?: boolean; pool?: BufferPool },
  phase: string,
  emit: EventSink,
): Promise<HashComparison> {
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
        ...(o.onProgress ? { onProgress: o.onProgress } : {}),
        progressIntervalMs: o.progressIntervalMs ?? 1000,
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
    const where = [
      ...(cmp.container?.problems ?? []),
      ...cmp.pieces.mismatched.map((m) => `window ${m.index} (bytes ${m.offset}-${m.offset + m.length - 1})`),
      ...cmp.files.filter((f) => !f.match).map((f) => `file ${f.file}`),
    ].join(', ');
    emit(event('verify-result', `${dir}: ${cmp.match ? 'image matches' : `image DIFFERS${where ? ` in ${where}` : ''}`}`, { target: dir, match: cmp.match, mismatchedPieces: cmp.pieces.mismatched.map((m) => m.index), mismatchedFiles: cmp.files.filter((f) => !f.match).map((f) => f.file) }));
    return cmp;
  } finally {
    reader.close();
  }
}

/** The E01's own checks: every chunk's checksum, and the MD5 and SHA-1 it stores against those of the acquisition. */
function withContainerChecks(cmp: HashComparison, reader: EwfImageReader, expected: HashSet): HashComparison {
  const problems = [...reader.problems];
  for (const [name, stored] of [['md5', reader.md5], ['sha1', reader.sha1]] as const) {
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

function baseRecord(o: AcquireOptions, started: Date, segments: ReturnType<typeof imageSegments>, facts: DestinationFacts[], events: ImagingEvent[]): ImageRecord {
  return {
    schema: IMAGE_RECORD_SCHEMA,
    status: 'aborted',
    tool: { name: 'custos', version: custosVersion(), node: process.version },
    source: o.source,
    image: { name: o.name, format: o.format, splitSize: o.format === 'split' ? o.splitSize : null, sizeBytes: o.reader.size, sectorSize: o.reader.sectorSize, files: o.format === 'e01' ? [] : segments.map((s) => ({ file: s.file, size: s.size, sha256: null })), ewf: null },
    settings: { hashes: o.hashes, pieceSize: o.pieceSize, blockSize: o.blockSize, buffers: o.buffers, retries: o.policy.retries, fill: o.policy.fill, fastFirst: o.fastFirst, verify: o.verify, verifySource: o.verifySource, ...(o.format === 'e01' ? { ewf: ewfSettingsOf(o) } : {}) },
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
    timing: { started: started.toISOString(), finished: '', acquireS: 0, totalS: 0, averageMiBs: 0, peakRssMiB: 0 },
    stages: [],
    readTiming: null,
    error: null,
    events,
  };
}
