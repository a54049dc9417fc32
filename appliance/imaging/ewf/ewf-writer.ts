// The E01 writer, a consumer of the pipeline like the raw writer: chunks in
// image order into segment files, closed with the image's hashes.
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { DeviceIoError, errnoOf } from '../../errors.js';
import { FileHasher } from '../hash/file-hash.js';
import { adler32 } from './adler32.js';
import { newStats, type Chunk, type Consumer, type StageStats } from '../pipeline/stage.js';
import { compressionLevelByte } from './chunk-store.js';
import type { CompressPool } from './compress-pool.js';
import type { StoredBlock } from './chunk-store.js';
import { header2Body, headerBody } from './ewf-header.js';
import { segmentFileName } from './ewf-names.js';
import { patchFile, syncFile, writeAllAt, writeAt } from './segment-io.js';
import { discardLaterSegments, packEntries, reopenAt, unpackEntries, type EwfWriterState, type Snapshot, type WrittenFile } from './ewf-writer-state.js';
import { EWF_CHUNK_SIZE, segmentReserve } from './ewf-plan.js';
import {
  COMPRESSED_FLAG,
  DESCRIPTOR_SIZE,
  descriptor,
  digestBody,
  error2Body,
  fileHeader,
  GROUP_MAX_BYTES,
  hashBody,
  section,
  TABLE_MAX_ENTRIES,
  tableBody,
  volumeBody,
  type VolumeInfo,
} from './ewf-sections.js';

export type { EwfSettings } from './ewf-plan.js';
export type { EwfWriterState, WrittenFile } from './ewf-writer-state.js';
export type { EwfClosing, EwfWriterOptions } from './ewf-writer-options.js';
import type { EwfClosing, EwfWriterOptions } from './ewf-writer-options.js';

/** Blocks whose writer state is kept for a resume point (more than the pool can have in flight). */
const SNAPSHOTS_KEPT = 300;

/**
 * Writes the image stream as EWF-E01 segment files in the section layout of
 * `ewfacquire -f encase6`. Chunks are compressed on a worker pool, in
 * parallel, and written in image order: per segment a sectors section (its
 * descriptor written last, once its size is known), then table and table2.
 * A new sectors/table group starts at 65534 chunks or 2 GiB, a new segment
 * file before the segment size would be passed.
 */
export class EwfWriter implements Consumer {
  readonly stats: StageStats;
  /** The compression workers, as a stage of their own in progress reports (shown with the first writer). */
  readonly innerStats: StageStats[];
  readonly dir: string;
  readonly files: WrittenFile[] = [];
  private readonly o: EwfWriterOptions;
  private readonly compressor: CompressPool;
  /** Hashes each segment file once it is closed, while the next is written. */
  private readonly hasher: FileHasher | null;
  private readonly volume: VolumeInfo;
  private tail: Promise<void> = Promise.resolve();
  private fh: FileHandle | null = null;
  private segment = 0;
  private pos = 0;
  private pending: Buffer[] = [];
  private pendingAt = 0;
  private groupBase = 0;
  /** The open group's table: one array per group (kept by the snapshots of its blocks), filled up to entryCount. */
  private entries = new Uint32Array(0);
  private entryCount = 0;
  private segmentChunks = 0;
  /** Writer state after each recent block, by the block's end offset in the image. */
  private readonly snapshots = new Map<number, Snapshot>();
  /** --fast-first: chunk index → where its raw bytes are (segment number, offset of the data). */
  private readonly rawChunks = new Map<number, { segment: number; at: number }>();
  /** Where the last segment's digest and hash sections start, for new hashes after a recovery pass. */
  private closingAt: { digest: number; hash: number } | null = null;
  /** Resuming: blocks below this are on the medium already. */
  private readonly skipBelow: number;
  private resumeStarted = false;

  constructor(o: EwfWriterOptions) {
    this.o = o;
    this.dir = o.dir;
    this.stats = newStats(o.label, 'write');
    this.compressor = o.compressor;
    this.innerStats = o.showCompression ? [o.compressor.stats] : [];
    this.hasher = o.hashFiles ? new FileHasher() : null;
    this.volume = {
      chunkCount: Math.ceil(o.imageSize / EWF_CHUNK_SIZE),
      sectorsPerChunk: EWF_CHUNK_SIZE / o.sectorSize,
      bytesPerSector: o.sectorSize,
      sectorCount: o.imageSize / o.sectorSize,
      mediaType: 1,
      mediaFlags: o.mediaFlags,
      compressionLevel: compressionLevelByte(o.compression),
      setIdentifier: o.setIdentifier,
    };
    this.skipBelow = o.resume?.position ?? 0;
  }

  /** Resuming: files are cut back only once writing starts, after every check (a refused resume changes nothing). */
  private startResume(): void {
    const resume = this.o.resume;
    if (!resume || this.resumeStarted) return;
    this.resumeStarted = true;
    this.tail = this.tail.then(() => this.reopen(resume.state, resume.onDiscard));
    this.tail.catch(() => undefined);
  }

  /**
   * Reopens the segment the resume point stood in, cut back to where it stood,
   * and removes later segment files (written after the resume point, never
   * recorded); earlier ones go to the file hasher as finished files.
   */
  private async reopen(state: EwfWriterState, onDiscard: (file: string, bytes: number) => void): Promise<void> {
    await discardLaterSegments(this.dir, this.o.name, state.segment, onDiscard);
    this.files.push(...state.files.map((f) => ({ ...f })));
    this.segment = state.segment;
    for (const f of this.files.slice(0, -1)) this.hasher?.add(path.join(this.dir, f.file));
    this.fh = await reopenAt(this.file, state.pos, onDiscard);
    this.pos = state.pos;
    this.pendingAt = state.pos;
    this.groupBase = state.groupBase;
    const kept = unpackEntries(state.entries);
    this.entries = new Uint32Array(TABLE_MAX_ENTRIES);
    this.entries.set(kept);
    this.entryCount = kept.length;
    this.segmentChunks = state.segmentChunks;
    (this.files[this.files.length - 1] as WrittenFile).size = state.pos;
    for (const [c, segment, at] of state.rawChunks) this.rawChunks.set(c, { segment, at });
  }

  consume(chunk: Chunk): Promise<void> {
    this.startResume();
    // Resuming: what lies before the resume point is already in the segment files.
    if (chunk.offset + chunk.length <= this.skipBelow) return this.tail;
    this.stats.queued++;
    const raw: number[] = [];
    if (this.o.keepRaw) {
      for (let i = 0, at = 0; at < chunk.length; i++, at += EWF_CHUNK_SIZE)
        if (this.o.keepRaw(chunk.offset + at, Math.min(EWF_CHUNK_SIZE, chunk.length - at))) raw.push(i);
    }
    const stored = this.compressor.storedBlock(chunk.offset, chunk.index, chunk.length, this.o.writers, raw);
    // Awaited in turn below; a failure before then is not an unhandled rejection.
    stored.catch(() => undefined);
    const run = this.tail.then(async () => {
      const r = await stored;
      const w0 = performance.now();
      try {
        await this.appendBlock(chunk, r, raw);
      } finally {
        this.stats.busyMs += performance.now() - w0;
        this.stats.queued--;
      }
      this.stats.bytes += chunk.length;
      this.snapshot(chunk.offset + chunk.length);
    });
    // A failed write fails this block and every later one.
    this.tail = run;
    return run;
  }

  private snapshot(end: number): void {
    this.snapshots.set(end, {
      segment: this.segment,
      pos: this.pos,
      groupBase: this.groupBase,
      entries: this.entries,
      count: this.entryCount,
      segmentChunks: this.segmentChunks,
      rawCount: this.rawChunks.size,
    });
    if (this.snapshots.size > SNAPSHOTS_KEPT) this.snapshots.delete(this.snapshots.keys().next().value as number);
  }

  /**
   * Forces what is written to the medium and returns the writer's state
   * after the block that ended at `end` (a resume point). Segment files before
   * the open one were synced when they were closed.
   */
  async resumePoint(end: number): Promise<EwfWriterState> {
    this.startResume();
    const run = this.tail.then(async () => {
      const snap = this.snapshots.get(end);
      if (!snap) throw new Error(`no writer state kept for offset ${end}`);
      if (this.fh) await syncFile(this.fh, this.file);
      const files = this.files.slice(0, snap.segment).map((f) => ({ ...f }));
      (files[files.length - 1] as WrittenFile).size = snap.pos;
      const rawChunks = [...this.rawChunks.entries()].slice(0, snap.rawCount).map(([c, r]): [number, number, number] => [c, r.segment, r.at]);
      return {
        setIdentifier: this.o.setIdentifier.toString('hex'),
        segment: snap.segment,
        pos: snap.pos,
        groupBase: snap.groupBase,
        entries: packEntries(snap.entries, snap.count),
        segmentChunks: snap.segmentChunks,
        files,
        rawChunks,
      };
    });
    // A failed fdatasync fails the writes after it too, like a failed write.
    this.tail = run.then(() => undefined);
    this.tail.catch(() => undefined);
    return run;
  }

  private async appendBlock(chunk: Chunk, r: StoredBlock, keptRaw: number[]): Promise<void> {
    const packed = r.packed;
    let adlers: Buffer | null = null;
    // Compressed streams lie back to back in `packed`: a run of them goes out as one piece (one
    // view and one promise per block, not one per chunk: their garbage set the main heap's rise).
    let z = 0;
    let runFrom = -1;
    const endRun = () => {
      if (runFrom >= 0 && z > runFrom) this.pending.push(packed.subarray(runFrom, z));
      runFrom = -1;
    };
    for (let i = 0; i < r.sizes.length; i++) {
      const start = i * EWF_CHUNK_SIZE;
      const length = Math.min(EWF_CHUNK_SIZE, chunk.length - start);
      const zlen = r.sizes[i] as number;
      const storedLength = zlen > 0 ? zlen : length + 4;
      if (this.needsRoom(storedLength)) {
        endRun();
        await this.makeRoom(storedLength);
      }
      this.entries[this.entryCount++] = ((this.pos - this.groupBase) | (zlen > 0 ? COMPRESSED_FLAG : 0)) >>> 0;
      if (zlen > 0) {
        if (runFrom < 0) runFrom = z;
        z += zlen;
        // Counted now, queued with its run.
        this.pos += zlen;
      } else {
        endRun();
        // Raw chunks go out straight from the pool buffer; it is released only after this write.
        adlers ??= Buffer.alloc(r.adlers.length * 4);
        adlers.writeUInt32LE(r.adlers[i] as number, i * 4);
        if (keptRaw.includes(i)) this.rawChunks.set((chunk.offset + start) / EWF_CHUNK_SIZE, { segment: this.segment, at: this.pos });
        this.push(chunk.buffer.subarray(start, start + length));
        this.push(adlers.subarray(i * 4, i * 4 + 4));
      }
      this.segmentChunks++;
    }
    endRun();
    await this.flush();
  }

  /** Whether `stored` more bytes need a segment opened, or a group or segment closed first (makeRoom). */
  private needsRoom(stored: number): boolean {
    return !this.fh || this.groupFull(stored) || this.segmentFull(stored);
  }

  private groupFull(stored: number): boolean {
    return this.entryCount >= TABLE_MAX_ENTRIES || this.pos + stored - this.groupBase > GROUP_MAX_BYTES;
  }

  private segmentFull(stored: number): boolean {
    return this.segmentChunks > 0 && this.pos + stored + segmentReserve(this.entryCount + 1) > this.o.segmentSize;
  }

  /** Opens a segment, group or new segment as needed so that `stored` more bytes fit. */
  private async makeRoom(stored: number): Promise<void> {
    if (!this.fh) {
      await this.openSegment();
      return;
    }
    if (this.groupFull(stored)) {
      await this.closeGroup();
      this.startGroup();
    }
    if (this.segmentFull(stored)) {
      await this.closeGroup();
      await this.closeSegment(false);
      await this.openSegment();
    }
  }

  private push(b: Buffer): void {
    this.pending.push(b);
    this.pos += b.length;
  }

  private get file(): string {
    return path.join(this.dir, segmentFileName(this.o.name, this.segment));
  }

  private async openSegment(): Promise<void> {
    this.segment++;
    const file = this.file;
    try {
      // Read-write: --fast-first's recovery pass reads a raw chunk back before writing it again.
      this.fh = await open(file, 'wx+', 0o444);
    } catch (e) {
      throw new DeviceIoError(file, 'open', errnoOf(e) ?? 5, 0);
    }
    this.files.push({ file: path.basename(file), size: 0 });
    this.pos = 0;
    this.pendingAt = 0;
    this.segmentChunks = 0;
    this.push(fileHeader(this.segment));
    if (this.segment === 1) {
      const h2 = header2Body(this.o.caseInfo);
      for (const [type, body] of [
        ['header2', h2],
        ['header2', h2],
        ['header', headerBody(this.o.caseInfo)],
        ['volume', volumeBody(this.volume)],
      ] as const) {
        this.push(section(type, this.pos, body));
      }
    } else {
      this.push(section('data', this.pos, volumeBody(this.volume)));
    }
    this.startGroup();
  }

  private startGroup(): void {
    this.groupBase = this.pos;
    this.entries = new Uint32Array(TABLE_MAX_ENTRIES);
    this.entryCount = 0;
    // Rewritten with the real size when the group closes.
    this.push(Buffer.alloc(DESCRIPTOR_SIZE));
  }

  private async closeGroup(): Promise<void> {
    await this.flush();
    await this.writeAt(descriptor('sectors', this.groupBase, this.pos - this.groupBase), this.groupBase);
    const body = tableBody(this.groupBase, this.entries.subarray(0, this.entryCount));
    this.push(section('table', this.pos, body));
    this.push(section('table2', this.pos, body));
  }

  /** Ends the current segment file with `next`, or the image with the closing sections and `done`. */
  private async closeSegment(last: false): Promise<void>;
  private async closeSegment(last: true, closing: EwfClosing): Promise<void>;
  private async closeSegment(last: boolean, closing?: EwfClosing): Promise<void> {
    if (!last || !closing) {
      this.push(descriptor('next', this.pos, 0));
    } else {
      if (this.segment === 1) this.push(section('data', this.pos, volumeBody(this.volume)));
      if (closing.badRuns.length > 0) this.push(section('error2', this.pos, error2Body(closing.badRuns)));
      const digest = this.pos;
      this.push(section('digest', this.pos, digestBody(closing.md5, closing.sha1)));
      this.closingAt = { digest, hash: this.pos };
      this.push(section('hash', this.pos, hashBody(closing.md5)));
      this.push(descriptor('done', this.pos, 0));
    }
    await this.flush();
    const fh = this.fh as FileHandle;
    await syncFile(fh, this.file);
    await fh.close();
    this.fh = null;
    this.hasher?.add(this.file);
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const bufs = this.pending;
    this.pending = [];
    const at = this.pendingAt;
    this.pendingAt = this.pos;
    const total = await writeAllAt(this.fh as FileHandle, this.file, bufs, at);
    const f = this.files[this.files.length - 1] as WrittenFile;
    f.size = Math.max(f.size, at + total);
  }

  private async writeAt(b: Buffer, at: number): Promise<void> {
    await writeAt(this.fh as FileHandle, this.file, b, at);
  }

  /**
   * Writes the closing sections after the last queued block; `closing`
   * carries the final hashes and bad sectors. Returns the SHA-256 of each
   * segment file when the writer was asked to hash them.
   */
  async finish(closing: EwfClosing): Promise<string[] | null> {
    this.startResume();
    await this.tail;
    try {
      if (!this.fh) throw new Error('no chunk was written');
      await this.closeGroup();
      await this.closeSegment(true, closing);
    } catch (e) {
      await this.hasher?.close();
      throw e;
    }
    return this.hasher ? this.hasher.all() : null;
  }

  /**
   * --fast-first's recovery pass: writes what it read over the fill, in the
   * chunks kept raw for it (same size, new checksum), after every queued
   * block. Segment files already closed are opened again for it.
   */
  async overwrite(offset: number, bytes: Buffer): Promise<void> {
    const run = this.tail.then(async () => {
      const end = offset + bytes.length;
      for (let c = Math.floor(offset / EWF_CHUNK_SIZE); c * EWF_CHUNK_SIZE < end; c++) {
        const ref = this.rawChunks.get(c);
        if (!ref) throw new Error(`chunk ${c} was not kept raw for the recovery pass`);
        const start = c * EWF_CHUNK_SIZE;
        const data = Buffer.alloc(Math.min(EWF_CHUNK_SIZE, this.o.imageSize - start) + 4);
        const from = Math.max(offset, start);
        const to = Math.min(end, start + data.length - 4);
        await this.patch(ref.segment, ref.at, data.length, (stored) => {
          stored.copy(data);
          bytes.copy(data, from - start, from - offset, to - offset);
          data.writeUInt32LE(adler32(data.subarray(0, data.length - 4)), data.length - 4);
          return data;
        });
      }
    });
    this.tail = run;
    await run;
  }

  /** Replaces the stored MD5 and SHA-1 (a recovery pass changed the image after they were written). */
  async rewriteHashes(md5: Buffer, sha1: Buffer): Promise<void> {
    await this.tail;
    const at = this.closingAt;
    if (!at) throw new Error('the image is not finished');
    await this.patch(this.segment, at.digest + DESCRIPTOR_SIZE, digestBody(md5, sha1).length, () => digestBody(md5, sha1));
    await this.patch(this.segment, at.hash + DESCRIPTOR_SIZE, hashBody(md5).length, () => hashBody(md5));
  }

  /** Reads `length` bytes at `at` of a segment file, and writes back what `change` makes of them, durably. */
  private async patch(segment: number, at: number, length: number, change: (stored: Buffer) => Buffer): Promise<void> {
    const own = segment === this.segment && this.fh !== null;
    await patchFile(path.join(this.dir, segmentFileName(this.o.name, segment)), own ? this.fh : null, at, length, change);
  }

  /** Closes without finishing the image; used when the acquisition stopped. */
  async close(): Promise<void> {
    await this.tail.catch(() => undefined);
    await this.hasher?.close();
    if (this.fh) await this.fh.close().catch(() => undefined);
    this.fh = null;
  }
}
