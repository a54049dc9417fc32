// Stage: read. Times every source read and reports one that hangs.
import { event, type EventSink } from '../../events.js';
import type { SectorReader } from './sector-reader.js';

/** How long reads took: what a failing drive looks like in the record. */
export interface ReadTiming {
  reads: number;
  totalS: number;
  maxS: number;
  /** Reads per duration band (upper bounds in seconds; the last band is everything slower). */
  histogram: { underS: number | null; reads: number }[];
  /** Reads that took at least `slowS`. */
  slowReads: number;
  slowS: number;
  /** The slowest reads, slowest first. */
  slowest: { offset: number; length: number; seconds: number }[];
}

const BANDS = [0.001, 0.01, 0.1, 1, 10];
const KEEP_SLOWEST = 10;
export const DEFAULT_SLOW_READ_MS = 5000;

interface InFlight {
  offset: number;
  length: number;
  started: number;
  announced: boolean;
}

/**
 * Wraps the source reader: times every read, and when one has not returned
 * for `slowMs` says so in an event (once, and again when it returns), so a
 * stalling drive is visible live and in the log. The reads themselves are
 * untouched: a hung read keeps its thread, never the UI or the progress timer.
 */
export class TimedReader implements SectorReader {
  readonly name: string;
  readonly size: number;
  readonly sectorSize: number;
  private readonly inner: SectorReader;
  private readonly slowMs: number;
  private readonly emit: EventSink;
  private readonly inFlight = new Set<InFlight>();
  private readonly counts = new Array<number>(BANDS.length + 1).fill(0);
  private readonly slowest: ReadTiming['slowest'] = [];
  private reads = 0;
  private totalMs = 0;
  private maxMs = 0;
  private slowReads = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(inner: SectorReader, o: { slowMs?: number; onEvent: EventSink }) {
    this.inner = inner;
    this.name = inner.name;
    this.size = inner.size;
    this.sectorSize = inner.sectorSize;
    this.slowMs = o.slowMs ?? DEFAULT_SLOW_READ_MS;
    this.emit = o.onEvent;
    this.timer = setInterval(() => this.watch(), Math.min(1000, Math.max(50, this.slowMs / 4)));
    this.timer.unref();
  }

  async read(buffer: Buffer, length: number, offset: number): Promise<number> {
    const r: InFlight = { offset, length, started: performance.now(), announced: false };
    this.inFlight.add(r);
    try {
      return await this.inner.read(buffer, length, offset);
    } finally {
      this.inFlight.delete(r);
      this.done(r, performance.now() - r.started);
    }
  }

  /** Milliseconds the oldest outstanding read has been waiting, or 0. */
  oldestReadMs(): number {
    let oldest = 0;
    const now = performance.now();
    for (const r of this.inFlight) oldest = Math.max(oldest, now - r.started);
    return oldest;
  }

  private watch(): void {
    const now = performance.now();
    for (const r of this.inFlight) {
      if (r.announced || now - r.started < this.slowMs) continue;
      r.announced = true;
      const s = Math.round((now - r.started) / 100) / 10;
      this.emit(
        event('read-stall', `read of ${r.length} bytes at offset ${r.offset} (LBA ${r.offset / this.sectorSize}) has not returned for ${s} s`, {
          offset: r.offset,
          length: r.length,
          waitingS: s,
        }),
      );
    }
  }

  private done(r: InFlight, ms: number): void {
    this.reads++;
    this.totalMs += ms;
    this.maxMs = Math.max(this.maxMs, ms);
    const band = BANDS.findIndex((b) => ms / 1000 < b);
    const i = band < 0 ? BANDS.length : band;
    this.counts[i] = (this.counts[i] ?? 0) + 1;
    if (ms >= this.slowMs) this.slowReads++;
    const seconds = Math.round(ms) / 1000;
    if (this.slowest.length < KEEP_SLOWEST || seconds > (this.slowest[this.slowest.length - 1]?.seconds ?? 0)) {
      this.slowest.push({ offset: r.offset, length: r.length, seconds });
      this.slowest.sort((a, b) => b.seconds - a.seconds);
      this.slowest.length = Math.min(this.slowest.length, KEEP_SLOWEST);
    }
    if (r.announced)
      this.emit(event('read-stall', `read at offset ${r.offset} returned after ${seconds} s`, { offset: r.offset, length: r.length, seconds, returned: true }));
  }

  timing(): ReadTiming {
    return {
      reads: this.reads,
      totalS: Math.round(this.totalMs) / 1000,
      maxS: Math.round(this.maxMs) / 1000,
      histogram: this.counts.map((reads, i) => ({ underS: BANDS[i] ?? null, reads })),
      slowReads: this.slowReads,
      slowS: this.slowMs / 1000,
      slowest: [...this.slowest],
    };
  }

  /** Stops watching; the inner reader stays open (its owner closes it). */
  stop(): void {
    clearInterval(this.timer);
  }

  close(): void {
    this.stop();
    this.inner.close();
  }
}
