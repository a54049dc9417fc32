// --fast-first, ddrescue style: on a failing drive every retry costs seconds
// and may be the drive's last, so the first pass copies everything that reads
// at once and leaves the hard parts for a second, sector-by-sector pass.
import { errnoName } from '../../errno.js';
import { event, type EventSink } from '../../events.js';
import { mediaErrorOrThrow, mergeBadRanges, readRecovering, truncated, type BadRange, type ReadPolicy } from './read-recovery.js';
import type { SectorReader } from './sector-reader.js';

/** Part of the source the first pass filled and left for the recovery pass. */
export interface DeferredRange {
  offset: number;
  length: number;
  /** errno of the read that failed there; null where the range was skipped unread. */
  errno: number | null;
}

/** Largest jump past a bad area: 1% of the source, at least one block, at most 1 GiB (as ddrescue). */
export function maxSkip(size: number, blockSize: number): number {
  const onePercent = Math.floor(size / 100 / blockSize) * blockSize;
  return Math.max(blockSize, Math.min(onePercent, 1024 ** 3));
}

/** A first-pass block read slower than this marks a slow area (on a 4 MiB block: under 2 MiB/s). */
export const SLOW_BLOCK_MS = 2000;

/**
 * First-pass reads. A failed read keeps the bytes before the failure, fills
 * the rest of the block and defers it; the reader then jumps ahead without
 * reading, one block after the first failure and twice as far after each
 * further one, so a bad area costs a few failed reads instead of one per
 * sector. A block that reads whole, but slower than `slowMs`, is kept and
 * also starts a jump: a slow area on a failing drive is where reads start
 * to hang. A block that reads whole in time resets the jump.
 */
export class SkippingReader {
  readonly deferred: DeferredRange[] = [];
  private skip = 0;
  private skipLeft = 0;

  constructor(
    private readonly reader: SectorReader,
    private readonly blockSize: number,
    private readonly fill: number,
    private readonly onEvent: EventSink,
    private readonly slowMs = SLOW_BLOCK_MS,
    /** Resuming: what the interrupted run deferred, and where the source starts (before it, the copy read back). */
    resumed: { deferred: DeferredRange[]; from: number } | null = null,
  ) {
    if (resumed) this.deferred.push(...resumed.deferred.map((d) => ({ ...d })));
    this.from = resumed?.from ?? 0;
  }

  private readonly from: number;

  /**
   * Fills buffer[0..length) from `offset`; anything unread is filled and
   * deferred. Returns no bad ranges: only the recovery pass decides those.
   */
  async read(buffer: Buffer, length: number, offset: number): Promise<BadRange[]> {
    // The read-back copy of a resumed run: nothing there is skipped or deferred (a failure stops the run).
    if (offset < this.from) {
      for (let pos = 0; pos < length;) {
        const n = await this.reader.read(buffer.subarray(pos), length - pos, offset + pos);
        if (n === 0) throw truncated(this.reader, offset + pos);
        pos += n;
      }
      return [];
    }
    if (this.skipLeft > 0) {
      buffer.fill(this.fill, 0, length);
      this.defer(offset, length, null);
      this.skipLeft = Math.max(0, this.skipLeft - length);
      return [];
    }
    let pos = 0;
    const t0 = performance.now();
    while (pos < length) {
      try {
        const n = await this.reader.read(pos === 0 ? buffer : buffer.subarray(pos), length - pos, offset + pos);
        if (n === 0) throw truncated(this.reader, offset + pos);
        pos += n;
      } catch (caught) {
        const e = mediaErrorOrThrow(caught, this.reader, offset + pos);
        buffer.fill(this.fill, pos, length);
        this.defer(offset + pos, length - pos, e.errno);
        this.jump(offset, length);
        this.onEvent(
          event(
            'read-error',
            `read of ${length - pos} B at offset ${offset + pos} failed: ${errnoName(e.errno)}; deferred to the recovery pass, skipping the next ${this.skipLeft} B`,
            {
              offset: offset + pos,
              length: length - pos,
              errno: e.errno,
              error: errnoName(e.errno),
              deferred: true,
              skipBytes: this.skipLeft,
            },
          ),
        );
        return [];
      }
    }
    const ms = performance.now() - t0;
    if (ms < this.slowMs) {
      this.skip = 0;
      return [];
    }
    this.jump(offset, length);
    this.onEvent(
      event(
        'slow-area',
        `read of ${length} B at offset ${offset} took ${(ms / 1000).toFixed(1)} s; kept, and the next ${this.skipLeft} B are left for the recovery pass`,
        {
          offset,
          length,
          seconds: Math.round(ms) / 1000,
          skipBytes: this.skipLeft,
        },
      ),
    );
    return [];
  }

  /** Doubles the jump (from one block, up to maxSkip) and starts it after this block. */
  private jump(offset: number, length: number): void {
    this.skip = this.skip === 0 ? this.blockSize : Math.min(this.skip * 2, maxSkip(this.reader.size, this.blockSize));
    this.skipLeft = Math.min(this.skip, this.reader.size - offset - length);
  }

  private defer(offset: number, length: number, errno: number | null): void {
    const last = this.deferred[this.deferred.length - 1];
    if (last && last.offset + last.length === offset) last.length += length;
    else this.deferred.push({ offset, length, errno });
  }
}

export interface RecoveryResult {
  badRanges: BadRange[];
  /** Sectors of the deferred ranges that read in the recovery pass (their image bytes changed from fill). */
  recoveredSectors: number;
}

/**
 * The second pass: every deferred range is read again with the normal
 * recovery (block, then sector by sector with retries), and what it gets is
 * written over the fill in every destination at the same offset.
 */
export async function recoverDeferred(o: {
  reader: SectorReader;
  ranges: DeferredRange[];
  buffer: Buffer;
  policy: ReadPolicy;
  onEvent: EventSink;
  write: (offset: number, bytes: Buffer) => Promise<void>;
  signal?: AbortSignal;
}): Promise<RecoveryResult> {
  const ss = o.reader.sectorSize;
  const total = o.ranges.reduce((n, r) => n + r.length, 0);
  o.onEvent(
    event('recovery-started', `recovery pass over ${o.ranges.length} deferred range(s), ${total} B`, { ranges: o.ranges.map((r) => ({ ...r })), bytes: total }),
  );
  const badRanges: BadRange[] = [];
  for (const r of o.ranges) {
    for (let at = r.offset; at < r.offset + r.length;) {
      if (o.signal?.aborted) throw o.signal.reason;
      const n = Math.min(o.buffer.length, r.offset + r.length - at);
      const bad = await readRecovering(o.reader, o.buffer, n, at, o.policy, o.onEvent);
      for (const b of bad) {
        o.onEvent(
          event('bad-range', `LBA ${b.firstLba}-${b.lastLba} (${b.sectors} sectors) unreadable after ${b.attempts} attempts: ${b.error}; filled`, { ...b }),
        );
      }
      mergeBadRanges(badRanges, bad);
      await o.write(at, o.buffer.subarray(0, n));
      at += n;
    }
  }
  const unreadable = badRanges.reduce((n, b) => n + b.sectors, 0);
  const recoveredSectors = total / ss - unreadable;
  o.onEvent(
    event('recovery-finished', `recovery pass: ${recoveredSectors} sector(s) read, ${unreadable} unreadable`, {
      recoveredSectors,
      unreadableSectors: unreadable,
    }),
  );
  return { badRanges, recoveredSectors };
}
