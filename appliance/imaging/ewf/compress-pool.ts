// E01 writing: compresses each block's chunks once on worker threads, for
// every destination's writer.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { BufferPool } from '../pipeline/buffer-pool.js';
import { newStats, type StageStats } from '../pipeline/stage.js';
import type { EwfCompression } from './chunk-store.js';
import type { CompressJob, CompressResult, CompressWorkerData } from './compress-protocol.js';

const WORKER_URL = new URL('./compress-worker.js', import.meta.url);

interface Waiting {
  resolve: (r: CompressResult) => void;
  reject: (e: Error) => void;
}

/**
 * Compression workers, one per core. Blocks go to the least loaded worker;
 * each result is matched to its block by sequence number, so a writer can
 * await them in image order whatever order they finish in. A block is
 * compressed once however many destinations write it.
 */
export class CompressPool {
  readonly threads: number;
  /** The workers as one stage in progress reports (busy averaged over them). */
  readonly stats: StageStats = newStats('compress', 'compress');
  private readonly byOffset = new Map<number, { result: Promise<CompressResult>; left: number }>();
  private readonly workers: Worker[] = [];
  private readonly load: number[] = [];
  private readonly waiting = new Map<number, Waiting>();
  private seq = 0;
  private failure: Error | null = null;

  /** `garbageBytes`: each worker collects its garbage once it holds this much (null: left to V8); see the memory plan. */
  constructor(mode: EwfCompression, chunkSize: number, pool: BufferPool, threads = availableParallelism(), garbageBytes: number | null = null) {
    this.threads = Math.max(1, threads);
    const workerData: CompressWorkerData = { mode, chunkSize, buffers: pool.shared().map((s) => ({ ...s, size: pool.size })), garbageBytes };
    for (let i = 0; i < this.threads; i++) {
      const w = new Worker(WORKER_URL, { workerData });
      w.on('message', (r: CompressResult) => this.onResult(i, r));
      w.on('error', (e: Error) => this.fail(e));
      w.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`compression worker exited with code ${code}`));
      });
      this.workers.push(w);
      this.load.push(0);
    }
  }

  /** The stored chunks of the block at image `offset` (pool buffer `index`), compressed once for all `users` writers. */
  storedBlock(offset: number, index: number, length: number, users: number, raw: number[] = []): Promise<CompressResult> {
    let entry = this.byOffset.get(offset);
    if (!entry) {
      this.stats.queued++;
      const result = this.compress(index, length, raw).then((r) => {
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

  /** Stores the chunks of pool buffer `index`; resolves when a worker has done so. */
  private compress(index: number, length: number, raw: number[]): Promise<CompressResult> {
    if (this.failure) return Promise.reject(this.failure);
    const seq = this.seq++;
    let pick = 0;
    for (let i = 1; i < this.load.length; i++) if ((this.load[i] as number) < (this.load[pick] as number)) pick = i;
    this.load[pick] = (this.load[pick] as number) + 1;
    const job: CompressJob = { seq, index, length, raw };
    return new Promise((resolve, reject) => {
      this.waiting.set(seq, { resolve, reject });
      (this.workers[pick] as Worker).postMessage(job);
    });
  }

  private onResult(worker: number, r: CompressResult): void {
    this.load[worker] = (this.load[worker] as number) - 1;
    const w = this.waiting.get(r.seq);
    this.waiting.delete(r.seq);
    w?.resolve(r);
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }

  async terminate(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
