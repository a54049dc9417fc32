// E01 writing: stores each block's chunks once, for every destination's
// writer, at most `threads` blocks at a time on the thread pool.
import { availableParallelism } from 'node:os';
import type { BufferPool } from '../pipeline/buffer-pool.js';
import { newStats, type StageStats } from '../pipeline/stage.js';
import { storeChunks, type EwfCompression, type StoredBlock } from './chunk-store.js';

/**
 * Blocks go out in image order, `threads` at a time (one per core: the rest
 * of the thread pool stays free for reads and writes); each writer awaits the
 * result of its block. A block is stored once however many destinations
 * write it.
 */
export class CompressPool {
  readonly threads: number;
  /** The stage in progress reports (busy averaged over the threads). */
  readonly stats: StageStats = newStats('compress', 'compress');
  private readonly byOffset = new Map<number, { result: Promise<StoredBlock>; left: number }>();
  private readonly queue: (() => void)[] = [];
  private running = 0;

  constructor(
    private readonly mode: EwfCompression,
    private readonly chunkSize: number,
    private readonly pool: BufferPool,
    threads = availableParallelism(),
  ) {
    this.threads = Math.max(1, threads);
  }

  /** The stored chunks of the block at image `offset` (pool buffer `index`), made once for all `users` writers. */
  storedBlock(offset: number, index: number, length: number, users: number, raw: number[] = []): Promise<StoredBlock> {
    let entry = this.byOffset.get(offset);
    if (!entry) {
      this.stats.queued++;
      const result = this.store(index, length, raw).then((r) => {
        this.stats.busyMs += r.busyMs / this.threads;
        this.stats.bytes += length;
        this.stats.queued--;
        return r;
      });
      result.catch(() => undefined);
      entry = { result, left: users };
      this.byOffset.set(offset, entry);
    }
    if (--entry.left === 0) this.byOffset.delete(offset);
    return entry.result;
  }

  private async store(index: number, length: number, raw: number[]): Promise<StoredBlock> {
    if (this.running >= this.threads) await new Promise<void>((go) => this.queue.push(go));
    this.running++;
    try {
      return await storeChunks(this.pool.buffers[index] as Buffer, length, this.chunkSize, this.mode, raw);
    } finally {
      this.running--;
      this.queue.shift()?.();
    }
  }
}
