// Stage: pushed through the pipeline. Reads the source once, in order, and
// hands each block to every hash and writer at once.
import { BufferPool } from './buffer-pool.js';
import { collectHeapEvery } from './heap-collector.js';
import { event, type EventSink } from '../../events.js';
import { ProgressMeter, type ProgressReport } from './progress.js';
import { readRecovering, mergeBadRanges, type BadRange, type ReadPolicy } from '../read/read-recovery.js';
import type { SectorReader } from '../read/sector-reader.js';
import { newStats, type Consumer, type StageStats } from './stage.js';

export interface PipelineOptions {
  phase: string;
  reader: SectorReader;
  pool: BufferPool;
  /** Stages fed with every chunk, in order; hash stages must have been built on `pool`. */
  consumers: Consumer[];
  policy: ReadPolicy;
  onEvent: EventSink;
  onProgress?: (p: ProgressReport) => void;
  progressIntervalMs?: number;
  /** Called on every progress tick; returns the write-block state shown in progress. */
  writeBlockTick?: () => ProgressReport['writeBlock'];
  /** Stops reading at the next block; the run then fails with the signal's reason. */
  signal?: AbortSignal;
  /** Reads one block; by default with sector-granular recovery under `policy` (--fast-first defers instead). */
  readBlock?: (buffer: Buffer, length: number, offset: number) => Promise<BadRange[]>;
  /** Unreadable ranges already known (from a resumed acquisition's journal). */
  knownBadRanges?: readonly BadRange[];
  /** Called when every consumer has finished the block ending at `end`, with the unreadable ranges so far. */
  onBlockDone?: (end: number, badRanges: readonly BadRange[]) => void;
}

export interface PipelineResult {
  bytes: number;
  badRanges: BadRange[];
  /** When the first read was issued, on performance.now()'s clock (milliseconds since the process started). */
  startedMs: number;
  elapsedMs: number;
  stages: StageStats[];
}

/**
 * Reads the source once, in order, into pooled buffers and hands each buffer
 * to every consumer at once. Reading, each hash and each write run in
 * parallel; a full pool makes the reader wait, so memory stays bounded and
 * the slowest stage sets the pace. The first consumer failure stops reading.
 */
export async function runPipeline(o: PipelineOptions): Promise<PipelineResult> {
  const { reader, pool } = o;
  const readStats = newStats('read', 'read');
  const stages = [readStats, ...o.consumers.flatMap((c) => [c.stats, ...(c.innerStats ?? [])])];
  const badRanges: BadRange[] = (o.knownBadRanges ?? []).map((r) => ({ ...r }));
  const meter = new ProgressMeter(o.phase, reader.size, pool.buffers.length);
  const readBlock = o.readBlock ?? ((buffer: Buffer, length: number, offset: number) => readRecovering(reader, buffer, length, offset, o.policy, o.onEvent));
  const t0 = performance.now();
  let failure: unknown = null;
  const inflight = new Set<Promise<void>>();
  const tick = () => {
    // A timer's error would escape every handler (and take the UI down): it stops this run instead, as any stage failure does.
    try {
      const wb = o.writeBlockTick ? o.writeBlockTick() : null;
      o.onProgress?.(
        meter.report(
          stages,
          badRanges.reduce((n, r) => n + r.sectors, 0),
          wb,
        ),
      );
    } catch (e) {
      if (failure === null) failure = e;
    }
  };
  const timer = setInterval(tick, o.progressIntervalMs ?? 1000);
  const stopCollecting = collectHeapEvery();
  try {
    let offset = 0;
    while (offset < reader.size && failure === null) {
      if (o.signal?.aborted) {
        failure = o.signal.reason;
        break;
      }
      // A stop must not wait for a free buffer: a stage that never returns one (a write into an unplugged drive) would hold it forever.
      const index = await takeUnlessStopped(pool, o.signal);
      if (index === null) {
        failure = o.signal?.reason;
        break;
      }
      if (failure !== null) {
        pool.share(index, 0);
        break;
      }
      const buffer = pool.buffers[index] as Buffer;
      const length = Math.min(pool.size, reader.size - offset);
      const r0 = performance.now();
      readStats.queued = 1;
      const bad = await readBlock(buffer, length, offset);
      readStats.queued = 0;
      readStats.busyMs += performance.now() - r0;
      readStats.bytes += length;
      for (const b of bad) {
        o.onEvent(
          event('bad-range', `LBA ${b.firstLba}-${b.lastLba} (${b.sectors} sectors) unreadable after ${b.attempts} attempts: ${b.error}; filled`, { ...b }),
        );
      }
      mergeBadRanges(badRanges, bad);
      const chunk = { index, buffer, length, offset };
      pool.share(index, o.consumers.length);
      const done: Promise<void>[] = [];
      for (const c of o.consumers) {
        const p: Promise<void> = c.consume(chunk).then(
          () => pool.release(index),
          (e: unknown) => {
            failure ??= e;
            pool.release(index);
          },
        );
        inflight.add(p);
        done.push(p);
        void p.finally(() => inflight.delete(p));
      }
      const end = offset + length;
      if (o.onBlockDone) {
        const onDone = o.onBlockDone;
        void Promise.all(done).then(() => {
          if (failure === null) onDone(end, badRanges);
        });
      }
      offset += length;
    }
    if (failure === null) await Promise.all(inflight);
    else await settledOrGiveUp(inflight);
  } catch (e) {
    failure ??= e;
    await settledOrGiveUp(inflight);
  } finally {
    clearInterval(timer);
    stopCollecting();
  }
  if (failure !== null) throw failure instanceof Error ? failure : new Error(`pipeline failed: ${JSON.stringify(failure)}`);
  tick();
  return { bytes: reader.size, badRanges, startedMs: t0, elapsedMs: performance.now() - t0, stages };
}

/** How long a stopped run waits for stages still busy (a write into an unplugged drive can block in the kernel for good). */
export const STOP_GRACE_MS = 10_000;

/** Waits for `pending` to settle, but not past STOP_GRACE_MS: the run is stopping anyway. */
export async function settledOrGiveUp(pending: Iterable<Promise<unknown>>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.allSettled(pending), new Promise((r) => (timer = setTimeout(r, STOP_GRACE_MS)))]);
  clearTimeout(timer);
}

/** A free buffer's index, or null as soon as `signal` aborts; the listener goes once a buffer comes (one per block would pile up). */
function takeUnlessStopped(pool: BufferPool, signal: AbortSignal | undefined): Promise<number | null> {
  if (!signal) return pool.take();
  if (signal.aborted) return Promise.resolve(null);
  return new Promise((resolve) => {
    const onAbort = () => resolve(null);
    signal.addEventListener('abort', onAbort, { once: true });
    void pool.take().then((i) => {
      signal.removeEventListener('abort', onAbort);
      resolve(i);
    });
  });
}
