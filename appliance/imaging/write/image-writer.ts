// Stage: written. The raw and split writer, a pipeline consumer per destination.
import { open, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { DeviceIoError, errnoOf } from '../../errors.js';
import type { Segment } from './image-layout.js';
import { newStats, type Chunk, type Consumer, type StageStats } from '../pipeline/stage.js';

/**
 * Writes the image stream into one destination directory, in order, across
 * its segment files. Files are created exclusively: an existing image is
 * never overwritten. Write errors (ENOSPC, EIO) carry file, offset and errno.
 */
export class ImageWriter implements Consumer {
  readonly stats: StageStats;
  readonly dir: string;
  readonly segments: Segment[];
  private readonly handles: (FileHandle | null)[];
  private tail: Promise<void> = Promise.resolve();
  /** Bytes written so far in each segment. */
  readonly written: number[];
  /** Resuming: the image before this offset is on the medium already. */
  private readonly skipBelow: number;

  constructor(label: string, dir: string, segments: Segment[], resume?: { position: number; onDiscard: (file: string, bytes: number) => void }) {
    this.stats = newStats(label, 'write');
    this.dir = dir;
    this.segments = segments;
    this.handles = segments.map(() => null);
    this.written = segments.map(() => 0);
    this.skipBelow = resume?.position ?? 0;
    this.pendingResume = resume ?? null;
  }

  /** Resuming: files are cut back only once writing starts, after every check (a refused resume changes nothing). */
  private pendingResume: { position: number; onDiscard: (file: string, bytes: number) => void } | null;

  private startResume(): void {
    const r = this.pendingResume;
    if (!r) return;
    this.pendingResume = null;
    this.tail = this.tail.then(() => this.reopen(r.position, r.onDiscard));
    this.tail.catch(() => undefined);
  }

  /**
   * Resuming at `position`: the files before it must be whole, the one it
   * falls in is cut back to it and reopened, later ones (written after the
   * resume point) are removed and written again.
   */
  private async reopen(position: number, onDiscard: (file: string, bytes: number) => void): Promise<void> {
    for (const [i, seg] of this.segments.entries()) {
      const file = this.pathOf(seg);
      const keep = Math.max(0, Math.min(seg.size, position - seg.start));
      let size: number | null = null;
      try {
        size = (await stat(file)).size;
      } catch {
        size = null;
      }
      if (keep > 0 && (size === null || size < keep)) throw new DeviceIoError(file, 'open', size === null ? 2 : 61, keep);
      this.written[i] = keep;
      if (keep === seg.size || size === null) continue;
      if (keep === 0) {
        await unlink(file);
        onDiscard(file, size);
        continue;
      }
      try {
        const fh = await open(file, 'r+');
        this.handles[i] = fh;
        if (size > keep) onDiscard(file, size - keep);
        await fh.truncate(keep);
      } catch (e) {
        throw new DeviceIoError(file, 'open', errnoOf(e) ?? 5, keep);
      }
    }
  }

  pathOf(seg: Segment): string {
    return path.join(this.dir, seg.file);
  }

  consume(chunk: Chunk): Promise<void> {
    this.startResume();
    // Resuming: what lies before the resume point is on the medium already.
    if (chunk.offset + chunk.length <= this.skipBelow) return this.tail;
    const skip = Math.max(0, this.skipBelow - chunk.offset);
    this.stats.queued++;
    const run = this.tail.then(async () => {
      const t0 = performance.now();
      try {
        await this.writeAt(chunk.offset + skip, chunk.buffer.subarray(skip, chunk.length), true);
      } finally {
        this.stats.busyMs += performance.now() - t0;
        this.stats.queued--;
      }
      this.stats.bytes += chunk.length;
    });
    // A failed write fails this chunk and every later one.
    this.tail = run;
    return run;
  }

  /**
   * Writes over bytes already written (the recovery pass of --fast-first
   * replacing fill with what it could read), after every queued write.
   */
  async overwrite(offset: number, bytes: Buffer): Promise<void> {
    await this.tail;
    const run = this.writeAt(offset, bytes, false);
    this.tail = run;
    await run;
  }

  private async writeAt(offset: number, bytes: Buffer, fresh: boolean): Promise<void> {
    let done = 0;
    while (done < bytes.length) {
      const at = offset + done;
      const i = this.segments.findIndex((s) => at >= s.start && at < s.start + s.size);
      const seg = this.segments[i];
      if (!seg) throw new Error(`offset ${at} is beyond the image`);
      const n = Math.min(bytes.length - done, seg.start + seg.size - at);
      await this.writeAll(i, seg, bytes.subarray(done, done + n), at - seg.start, fresh);
      done += n;
    }
  }

  private async handle(i: number, seg: Segment): Promise<FileHandle> {
    const h = this.handles[i];
    if (h) return h;
    const file = this.pathOf(seg);
    try {
      const fh = await open(file, 'wx', 0o444);
      this.handles[i] = fh;
      return fh;
    } catch (e) {
      throw new DeviceIoError(file, 'open', errnoOf(e) ?? 5, 0);
    }
  }

  private async writeAll(i: number, seg: Segment, bytes: Buffer, position: number, fresh: boolean): Promise<void> {
    const fh = await this.handle(i, seg);
    let off = 0;
    while (off < bytes.length) {
      try {
        const { bytesWritten } = await fh.write(bytes, off, bytes.length - off, position + off);
        if (bytesWritten === 0) throw Object.assign(new Error('no progress'), { errno: -28 });
        off += bytesWritten;
        if (fresh) this.written[i] = (this.written[i] ?? 0) + bytesWritten;
      } catch (e) {
        throw new DeviceIoError(this.pathOf(seg), 'write', errnoOf(e) ?? 5, position + off);
      }
    }
  }

  /** Forces everything written so far to the medium (a resume point); resolves after the writes queued before it. */
  async resumePoint(_end?: number): Promise<void> {
    this.startResume();
    const run = this.tail.then(() => this.sync());
    this.tail = run;
    this.tail.catch(() => undefined);
    await run;
  }

  private async sync(): Promise<void> {
    for (const [i, h] of this.handles.entries()) {
      if (!h) continue;
      try {
        await h.datasync();
      } catch (e) {
        throw new DeviceIoError(this.pathOf(this.segments[i] as Segment), 'fdatasync', errnoOf(e) ?? 5, null);
      }
    }
  }

  /** Waits for queued writes, forces the data to the medium and closes every file. */
  async finish(): Promise<void> {
    this.startResume();
    await this.tail;
    await this.sync();
    await this.close();
  }

  /** Closes without syncing; used when the acquisition stopped. */
  async close(): Promise<void> {
    await this.tail.catch(() => undefined);
    for (const [i, h] of this.handles.entries()) {
      if (h) await h.close().catch(() => undefined);
      this.handles[i] = null;
    }
  }
}
