// The acquisition's flow, and only that: check, preflight, read the source
// once through every hash and writer, recover what --fast-first deferred,
// close the image, verify the copies, and record. Each step's work lives in
// its stage's folder (read/, pipeline/, hash/, write/, ewf/, verify/, resume/).
import { randomBytes } from 'node:crypto';
import { CustosError } from '../errors.js';
import { checkSettings, ewfSettingsOf } from './settings.js';
import type { SectorReader } from './read/sector-reader.js';
import type { ProgressReport } from './pipeline/progress.js';
import { AcquisitionAborted, type AcquireOptions } from './acquire-options.js';
import { BufferPool } from './pipeline/buffer-pool.js';
import { recoverDeferred, SkippingReader } from './read/fast-first.js';
import { event, type EventSink, type ImagingEvent } from '../events.js';
import type { HashAlgorithm } from './hash/hash-algorithms.js';
import { hashStages, type HashStage } from './hash/hash-stage.js';
import { fileHashWindow } from './hash/file-hash.js';
import { imageSegments } from './write/image-layout.js';
import type { ImageWriter } from './write/image-writer.js';
import { EwfWriter } from './ewf/ewf-writer.js';
import type { EwfSettings } from './ewf/ewf-plan.js';
import { CompressPool } from './ewf/compress-pool.js';
import { EWF_CHUNK_SIZE } from './ewf/ewf-plan.js';
import { ewfCaseInfo, ewfErrorRuns, ewfRecord } from './ewf/ewf-acquisition.js';
import { TimedReader } from './read/read-timing.js';
import { journalKeeperFor, type JournalKeeper } from './resume/journal-keeper.js';
import { journalSourceProblem, type AcquisitionJournal } from './resume/journal.js';
import { ResumeReader } from './read/resume-reader.js';
import { checkCopy, checkSourceWindows, writtenImageReader, writtenWindowCheck } from './resume/resume-plan.js';
import type { AcquisitionStatus, ImageRecord } from './image-record.js';
import { runPipeline, settledOrGiveUp, type PipelineResult } from './pipeline/pipeline.js';
import { preflightDestinations, PreflightError, type DestinationFacts } from './write/preflight.js';
import { verifyCopies } from './verify/verify-copies.js';
import { rehashFromDestination, restoreEwfHashes } from './verify/rehash-after-recovery.js';
import { DestinationWatch, destinationGone, UNPLUG_ERRNOS } from './write/destination-gone.js';
import { bytesWritten, copyReader, destinationWriters, filesSoFar, type DestinationWriter } from './write/destination-writers.js';
import { baseRecord, closeRecord, completeRecord } from './record-assembly.js';
import { describePlan, planMemory, readMemoryFacts, type MemoryPlan } from './memory-plan.js';

/**
 * Images `reader` into every destination at once, hashing on the way, then
 * (if asked) reads each copy back and the source again. Every step is an
 * event; the record is written into each destination at the end, also when
 * the acquisition was aborted.
 */
export async function acquire(o: AcquireOptions): Promise<ImageRecord> {
  return new Acquisition(withMemoryPlan(o)).run();
}

/** The settings with the pool and the compression workers sized for the memory left (the examiner's --buffers kept). */
function withMemoryPlan(o: AcquireOptions): AcquireOptions & { memory: MemoryPlan } {
  const fileWindow = fileHashWindow({ ...o, size: o.reader.size });
  const memory =
    o.memory ??
    planMemory(readMemoryFacts(), {
      format: o.format,
      compression: o.format === 'e01' ? ewfSettingsOf(o).compression : null,
      blockSize: o.blockSize,
      buffers: o.buffers,
      hashWorkers: o.hashes.length + (o.pieceSize > 0 ? 1 : 0) + (fileWindow > 0 ? 1 : 0),
    });
  return { ...o, buffers: memory.buffers, memory };
}

type Hashes = Partial<Record<HashAlgorithm, string>>;

/** One run of `acquire`: the parts built at preflight and the state its phases share. */
class Acquisition {
  private readonly started = new Date();
  private readonly events: ImagingEvent[] = [];
  private readonly emit: EventSink;
  private readonly ewf: EwfSettings | null;
  private readonly journal: AcquisitionJournal | null;
  private readonly facts: DestinationFacts[];
  private readonly pool: BufferPool;
  /** The caller's stop (SIGINT, the UI's abort key), and ours when a destination disappears. */
  private readonly stop = new AbortController();
  private readonly destinations: DestinationWatch;
  private readonly source: TimedReader;
  private readonly fileWindow: number;
  private readonly linear: HashStage[];
  private readonly pieces: HashStage | null;
  private readonly files: HashStage | null;
  private readonly setIdentifier: Buffer;
  private readonly compressor: CompressPool | null;
  private readonly writers: DestinationWriter[];
  private readonly keeper: JournalKeeper | null;
  private readonly record: ImageRecord;
  private readonly segments: ReturnType<typeof imageSegments>;
  /** A resumed run's copy, read back up to the journal's position. */
  private written: SectorReader | null = null;
  /** --fast-first's first pass, with the ranges it deferred. */
  private skipping: SkippingReader | null = null;
  private recovered = 0;

  constructor(private readonly o: AcquireOptions & { memory: MemoryPlan }) {
    this.emit = (e) => {
      this.events.push(e);
      o.recorder?.event(e);
      o.onEvent?.(e);
    };
    o.writeBlock?.attach(this.emit);
    checkSettings(o, o.reader);
    this.ewf = o.format === 'e01' ? ewfSettingsOf(o) : null;
    this.segments = imageSegments(o.name, o.reader.size, o.format, this.ewf ? this.ewf.segmentSize : o.splitSize);
    this.journal = o.resume?.journal ?? null;
    const wrongSource = this.journal
      ? journalSourceProblem(this.journal, { path: o.reader.name, sizeBytes: o.reader.size, sectorSize: o.reader.sectorSize, serial: o.source.serial })
      : null;
    if (wrongSource) throw new PreflightError('ERESUMESOURCE', wrongSource);
    this.facts = preflightDestinations({
      dirs: o.resume ? o.resume.dirs : o.destinations,
      segments: this.segments,
      extraFiles: [...(o.recorder?.fileNames ?? [])],
      sourceDisk: o.sourceDisk,
      ...(this.journal ? { resumingAt: this.journal.position } : {}),
    });
    this.emit(
      event('preflight', `preflight passed: ${this.facts.length} destination(s), ${this.segments.length} file(s) each, ${o.reader.size} bytes`, {
        destinations: this.facts,
      }),
    );
    o.recorder?.open(this.facts.map((f) => f.dir));
    this.emit(event('memory-plan', describePlan(o.memory, o.blockSize), { ...o.memory }));

    this.pool = new BufferPool(o.buffers, o.blockSize);
    this.destinations = new DestinationWatch(this.facts);
    if (o.signal?.aborted) this.stop.abort(o.signal.reason);
    o.signal?.addEventListener('abort', () => this.stop.abort(o.signal?.reason), { once: true });
    // Every source read is timed; one that does not return is reported while it hangs.
    this.source = new TimedReader(o.reader, { onEvent: this.emit, ...(o.slowReadMs ? { slowMs: o.slowReadMs } : {}) });
    // SHA-256 of each output file, for sha256sum on every file; a raw image's is its linear SHA-256 when that is selected.
    this.fileWindow = fileHashWindow({ ...o, size: o.reader.size });
    ({ linear: this.linear, pieces: this.pieces, files: this.files } = hashStages(o.hashes, o.pieceSize, this.pool, this.fileWindow));
    this.setIdentifier = this.journal?.ewf ? Buffer.from(this.journal.ewf.setIdentifier, 'hex') : randomBytes(16);
    this.compressor = this.ewf ? new CompressPool(this.ewf.compression, EWF_CHUNK_SIZE, this.pool, o.memory.compressWorkers) : null;
    this.writers = this.makeWriters();
    this.keeper = journalKeeperFor(
      o,
      this.facts.map((f) => f.dir),
      this.pieces,
      this.writers,
      this.started,
      this.emit,
    );
    this.record = baseRecord(o, o.reader.size, o.reader.sectorSize, this.started, this.segments, this.facts, this.events);
    this.watchSourceContent();
    this.keeper?.watchDeferred(() => this.skipping?.deferred ?? []);
  }

  private get hashers(): HashStage[] {
    return [...this.linear, ...(this.pieces ? [this.pieces] : []), ...(this.files ? [this.files] : [])];
  }

  private makeWriters(): DestinationWriter[] {
    const o = this.o;
    const j = this.journal;
    const discarded = (file: string, bytes: number) =>
      this.emit(event('resume-discard', `${file}: ${bytes} bytes written after the last resume point are discarded and written again`, { file, bytes }));
    // --fast-first into E01: chunks holding deferred (filled) bytes are stored raw, so the recovery pass can write them again in place.
    const deferredAt = (offset: number, length: number) =>
      (this.skipping?.deferred ?? []).some((d) => d.offset < offset + length && d.offset + d.length > offset);
    return destinationWriters({
      facts: this.facts,
      name: o.name,
      imageSize: o.reader.size,
      sectorSize: o.reader.sectorSize,
      segments: this.segments,
      ewf:
        this.ewf && this.compressor
          ? {
              settings: this.ewf,
              compressor: this.compressor,
              setIdentifier: this.setIdentifier,
              caseInfo: ewfCaseInfo(o, this.started),
              physical: Boolean(o.sourceDisk),
            }
          : null,
      resume: j ? { position: j.position, ewfState: j.ewf ?? null, onDiscard: discarded } : null,
      ...(o.fastFirst && this.ewf ? { keepRaw: deferredAt } : {}),
    });
  }

  /** A source that is unplugged and comes back is compared with the windows hashed so far, except those holding filled or deferred sectors. */
  private watchSourceContent(): void {
    const pieces = this.pieces;
    if (!pieces) return;
    const ss = this.o.reader.sectorSize;
    const bad = () => [
      ...(this.journal?.badRanges ?? []),
      ...this.events.filter((e) => e.type === 'bad-range').map((e) => e.data as { firstLba: number; lastLba: number }),
    ];
    const overlaps = (a: number, b: number, start: number, end: number) => a < end && b > start;
    this.o.reader.useWitness?.({
      pieceSize: this.o.pieceSize,
      completed: () => pieces.completed,
      unreliable: (start, end) =>
        bad().some((r) => overlaps(r.firstLba * ss, (r.lastLba + 1) * ss, start, end)) ||
        [...(this.journal?.deferred ?? []), ...(this.skipping?.deferred ?? [])].some((d) => overlaps(d.offset, d.offset + d.length, start, end)),
    });
  }

  async run(): Promise<ImageRecord> {
    const o = this.o;
    this.emit(
      event('started', `acquiring ${o.source.path} (${o.reader.size} bytes) as ${o.name} (${o.format}) with ${o.hashes.join(', ')}`, {
        settings: this.record.settings,
      }),
    );
    let stream: { run: PipelineResult; hashes: Hashes; pieces: string[]; files: string[] };
    try {
      await this.checkResume();
      const run = await this.readSource();
      stream = await this.closeImage(run);
    } catch (e) {
      return this.abort(e);
    }
    let verified: boolean;
    try {
      await this.rehashIfRecovered(stream);
      completeRecord(this.record, { ...stream, fileWindow: this.fileWindow, windowed: this.pieces !== null }, o.requestedAtMs ?? 0);
      const r = this.record;
      this.emit(
        event(
          'acquired',
          `acquired ${o.reader.size} bytes in ${r.timing.acquireS.toFixed(1)} s (${r.timing.averageMiBs} MiB/s), ${r.badSectors} unreadable sector(s)`,
          { hashes: r.hashes, merkleRoot: r.pieces.merkleRoot },
        ),
      );
      verified = await verifyCopies({
        expected: { hashes: r.hashes, pieceSize: o.pieceSize, pieces: r.pieces.sha256, merkleRoot: r.pieces.merkleRoot },
        record: r,
        writers: this.writers,
        settings: { ...o, writeBlockTick: this.sourceWriteBlockTick },
        fileWindow: this.fileWindow,
        pool: this.pool,
        destinations: this.destinations,
        emit: this.emit,
      });
    } catch (e) {
      return this.abort(e);
    }
    const status: AcquisitionStatus = !verified ? 'verify-failed' : this.record.badSectors > 0 ? 'complete-with-bad-sectors' : 'complete';
    this.emit(event('completed', `acquisition ${status}`, { status }));
    this.close(status, null);
    await o.recorder?.finish(this.record);
    // Recorded: nothing is left to resume.
    this.keeper?.remove();
    return this.record;
  }

  /** A resumed run first checks the source and every copy against the journal, then reads the first copy back up to its position. */
  private async checkResume(): Promise<void> {
    const { journal, o } = this;
    const resume = o.resume;
    if (!journal || !resume) return;
    const first = (this.facts[0] as DestinationFacts).dir;
    this.emit(
      event(
        'resume-started',
        `resuming at byte ${journal.position} of ${o.reader.size} (resume point ${journal.checkpoint} of ${journal.written}); the first ${journal.pieces.length} window(s) are read back from ${resume.dirs[0]} and checked against the journal`,
        {
          position: journal.position,
          checkpoint: journal.checkpoint,
          journalWritten: journal.written,
          dirs: resume.dirs,
        },
      ),
    );
    await checkSourceWindows(this.source, journal, this.pool, o.policy, this.emit);
    for (const f of this.facts.slice(1)) await checkCopy(f.dir, journal, this.segments, { bufferCount: o.buffers, onEvent: this.emit });
    this.written = writtenImageReader(first, journal, this.segments);
    this.record.resume = {
      position: journal.position,
      checkpoint: journal.checkpoint,
      journalWritten: journal.written,
      firstStarted: journal.started,
      resumes: journal.resumes + 1,
      windowsChecked: journal.pieces.length,
      readBackFrom: first,
    };
  }

  /** The one pass over the source (after a resume: the copy read back, then the source), and --fast-first's recovery pass. */
  private async readSource(): Promise<PipelineResult> {
    const { journal, o, keeper, stop } = this;
    const stream = this.written && journal ? new ResumeReader(this.written, this.source, journal.position) : this.source;
    const firstPass = o.fastFirst
      ? new SkippingReader(
          stream,
          o.blockSize,
          o.policy.fill,
          this.emit,
          o.slowBlockMs,
          journal ? { deferred: journal.deferred, from: journal.position } : null,
        )
      : null;
    this.skipping = firstPass;
    const checkWritten = journal ? writtenWindowCheck(journal.pieces, this.pieces, (this.facts[0] as DestinationFacts).dir, stop) : null;
    const run = await runPipeline({
      phase: 'acquire',
      reader: stream,
      ...(journal ? { knownBadRanges: journal.badRanges } : {}),
      onBlockDone: (end, bad) => {
        checkWritten?.(end);
        keeper?.blockDone(end, bad);
      },
      pool: this.pool,
      consumers: [...this.hashers, ...this.writers],
      policy: o.policy,
      onEvent: this.emit,
      ...(o.onProgress
        ? {
            onProgress: (p: ProgressReport) =>
              o.onProgress?.({ ...p, journal: keeper ? { checkpoints: keeper.count, position: keeper.position, written: keeper.written } : null }),
          }
        : {}),
      progressIntervalMs: o.progressIntervalMs ?? 1000,
      signal: stop.signal,
      writeBlockTick: () => {
        // Each tick also looks for a destination whose disk has gone: its writes may never return.
        const gone = this.destinations.gone();
        if (gone && !stop.signal.aborted) {
          const err = destinationGone(gone, null);
          this.emit(event('write-error', err.message, { code: err.code, dir: gone.dir, disks: gone.disks }));
          stop.abort(err);
        }
        return this.sourceWriteBlockTick();
      },
      ...(firstPass ? { readBlock: (b: Buffer, n: number, at: number) => firstPass.read(b, n, at) } : {}),
    });
    if (firstPass && firstPass.deferred.length > 0) {
      const recovery = await recoverDeferred({
        reader: this.source,
        ranges: firstPass.deferred,
        buffer: this.pool.buffers[0] as Buffer,
        policy: o.policy,
        onEvent: this.emit,
        write: async (at, bytes) => {
          await Promise.all(this.writers.map((w) => w.overwrite(at, bytes)));
        },
        signal: stop.signal,
      });
      run.badRanges = recovery.badRanges;
      this.recovered = recovery.recoveredSectors;
    }
    return run;
  }

  /** The stream's digests, and the image closed: an E01's closing sections hold its MD5, SHA-1 and error runs. */
  private async closeImage(run: PipelineResult): Promise<{ run: PipelineResult; hashes: Hashes; pieces: string[]; files: string[] }> {
    await this.keeper?.stop();
    this.written?.close();
    const hashes: Hashes = {};
    for (const [i, a] of this.o.hashes.entries()) hashes[a] = await (this.linear[i] as HashStage).digest();
    const pieces = this.pieces ? await this.pieces.pieces() : [];
    const files = this.files ? await this.files.pieces() : [];
    if (this.ewf) {
      const runs = ewfErrorRuns(run.badRanges, this.emit);
      const closing = { md5: Buffer.from(hashes.md5 ?? '', 'hex'), sha1: Buffer.from(hashes.sha1 ?? '', 'hex'), badRuns: runs };
      // The segment files are not the image stream: the first copy's are hashed as they are finished, for sha256sum and to compare the copies.
      const [sums] = await Promise.all(this.writers.map((w) => (w as EwfWriter).finish(closing)));
      this.record.image.ewf = ewfRecord(this.ewf, EWF_CHUNK_SIZE, this.setIdentifier, hashes.md5 ?? '', hashes.sha1 ?? '', runs.length);
      const first = this.writers[0] as EwfWriter;
      this.record.image.files = first.files.map((f, i) => ({ ...f, sha256: sums?.[i] ?? null }));
    } else {
      await Promise.all(this.writers.map((w) => (w as ImageWriter).finish()));
    }
    return { run, hashes, pieces, files };
  }

  /** The source's write-block, checked on every progress tick of every phase. */
  private readonly sourceWriteBlockTick = () => (this.o.writeBlock ? this.o.writeBlock.tick() : null);

  /** --fast-first: when the recovery pass replaced fill with data, the stream's hashes are replaced by a re-read of the first copy. */
  private async rehashIfRecovered(stream: { hashes: Hashes; pieces: string[]; files: string[] }): Promise<void> {
    const skipping = this.skipping;
    if (!skipping) return;
    const recovery = {
      deferred: skipping.deferred,
      recoveredSectors: this.recovered,
      hashesFrom: 'source-stream' as const,
      rereadDir: null,
      untouchedPieces: null,
    };
    this.record.recovery = recovery;
    if (this.recovered === 0) return;
    const first = this.writers[0] as DestinationWriter;
    const again = await rehashFromDestination(
      copyReader(first),
      first.dir,
      { ...this.o, fileWindow: this.fileWindow, writeBlockTick: this.sourceWriteBlockTick },
      this.record.recovery,
      stream.pieces,
      this.emit,
    );
    stream.hashes = again.hashes;
    stream.pieces = again.pieces;
    stream.files = again.files;
    if (this.ewf) await restoreEwfHashes(this.writers as EwfWriter[], again.hashes, this.record);
  }

  /** Stops the run on any error, in any phase: everything closed, the error named, an aborted record. */
  private async abort(e: unknown): Promise<never> {
    // A resume point waits for the writers, which may never return (an unplugged drive).
    if (this.keeper) await settledOrGiveUp([this.keeper.stop()]);
    this.written?.close();
    await settledOrGiveUp(this.writers.map((w) => w.close()));
    await Promise.all(this.hashers.map((s) => s.terminate()));
    let err = e instanceof CustosError ? e : new CustosError('EINTERNAL', e instanceof Error ? e.message : String(e));
    if (e instanceof CustosError && e.code === 'ENOSPC') this.emit(event('write-error', e.message, { code: e.code }));
    // An unplugged drive's writes fail before the kernel removes its disk: an I/O error then is named for what happened.
    const gone = UNPLUG_ERRNOS.has(err.code) ? await this.destinations.soonGone() : null;
    if (gone) {
      err = destinationGone(gone, err);
      this.emit(event('write-error', err.message, { code: err.code, dir: gone.dir, disks: gone.disks }));
    }
    this.emit(event('aborted', `acquisition aborted: ${err.message}`, { code: err.code, bytesWritten: this.writers.map(bytesWritten) }));
    this.close('aborted', err);
    this.record.image.files = filesSoFar(this.writers[0]);
    try {
      await this.o.recorder?.finish(this.record);
    } catch {
      // The error that aborted the run is what the caller reports; the log so far is on the medium, with its last signed checkpoint.
    }
    throw new AcquisitionAborted(err.code, `acquisition aborted: ${err.message}`, this.record);
  }

  private close(status: AcquisitionStatus, error: CustosError | null): void {
    this.source.stop();
    const k = this.keeper;
    closeRecord(this.record, {
      status,
      error,
      started: this.started,
      journal: k ? { checkpoints: k.count, lastPosition: k.position } : null,
      readTiming: this.source.timing(),
      writeBlock: this.o.writeBlock?.summary() ?? null,
    });
  }
}
