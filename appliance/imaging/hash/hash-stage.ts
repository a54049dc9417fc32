// Stage: hashed. Each hash (and the piecewise SHA-256) is a pipeline
// consumer running on its own worker thread over the shared buffers.
import { Worker } from 'node:worker_threads';
import type { BufferPool } from '../pipeline/buffer-pool.js';
import type { FromWorker, HashJob, HashWorkerData, ToWorker } from './hash-protocol.js';
import type { HashAlgorithm } from './hash-algorithms.js';
import { hashNice, mayRaisePriority, slowestHash } from './hash-priority.js';
import { newStats, type Chunk, type Consumer, type StageStats } from '../pipeline/stage.js';

const WORKER_URL = new URL('./hash-worker.js', import.meta.url);

interface Pending {
  resolve: () => void;
  reject: (e: Error) => void;
  length: number;
}

/**
 * One linear stage per algorithm, the slowest with the most CPU weight; the
 * piecewise stage unless pieceSize is 0; and, when fileWindow is not 0,
 * SHA-256 of each output file (a window per segment file).
 */
export function hashStages(
  algorithms: readonly HashAlgorithm[],
  pieceSize: number,
  pool: BufferPool,
  fileWindow = 0,
): { linear: HashStage[]; pieces: HashStage | null; files: HashStage | null } {
  const slowest = slowestHash(algorithms);
  const nice = hashNice(mayRaisePriority());
  return {
    linear: algorithms.map((algorithm) => new HashStage({ kind: 'linear', algorithm }, pool, algorithm === slowest ? nice.pacing : nice.others)),
    pieces: pieceSize > 0 ? new HashStage({ kind: 'pieces', pieceSize }, pool, nice.others) : null,
    files: fileWindow > 0 ? new HashStage({ kind: 'pieces', pieceSize: fileWindow }, pool, nice.others, 'sha256-files') : null,
  };
}

/**
 * The main-thread side of one hash worker. Chunks are posted by buffer index
 * (the memory is shared, nothing is copied); the worker answers each in order.
 */
export class HashStage implements Consumer {
  readonly stats: StageStats;
  readonly job: HashJob;
  private readonly worker: Worker;
  private readonly pending: Pending[] = [];
  private finishing: ((msg: FromWorker) => void) | null = null;
  private failure: Error | null = null;
  /** Piecewise jobs: the digests of the windows completed so far, in order (the journal keeps them). */
  readonly completed: string[] = [];

  constructor(job: HashJob, pool: BufferPool, nice = 0, label?: string) {
    this.job = job;
    this.stats = newStats(label ?? (job.kind === 'linear' ? job.algorithm : 'sha256-pieces'), 'hash');
    const workerData: HashWorkerData = {
      job,
      nice,
      buffers: pool.shared().map((s) => ({ ...s, size: pool.size })),
    };
    this.worker = new Worker(WORKER_URL, { workerData });
    this.worker.on('message', (msg: FromWorker) => this.onMessage(msg));
    this.worker.on('error', (e: Error) => this.fail(e));
    this.worker.on('exit', (code) => {
      if (code !== 0) this.fail(new Error(`${this.stats.name} worker exited with code ${code}`));
    });
  }

  private onMessage(msg: FromWorker): void {
    if (msg.type === 'done') {
      const p = this.pending.shift();
      if (!p) return;
      this.stats.busyMs += msg.busyMs;
      this.stats.bytes += p.length;
      this.stats.queued--;
      if (msg.pieces) this.completed.push(...msg.pieces);
      p.resolve();
      return;
    }
    this.finishing?.(msg);
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.splice(0)) p.reject(e);
  }

  consume(chunk: Chunk): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject, length: chunk.length });
      this.stats.queued++;
      const msg: ToWorker = { type: 'chunk', index: chunk.index, length: chunk.length };
      this.worker.postMessage(msg);
    });
  }

  /** Ends the stream and returns the worker's result; the worker then exits. */
  async finish(): Promise<FromWorker> {
    if (this.failure) throw this.failure;
    const result = await new Promise<FromWorker>((resolve, reject) => {
      this.finishing = resolve;
      this.worker.once('error', reject);
      const msg: ToWorker = { type: 'finish' };
      this.worker.postMessage(msg);
    });
    await this.worker.terminate();
    return result;
  }

  async digest(): Promise<string> {
    const r = await this.finish();
    if (r.type !== 'digest') throw new Error(`${this.stats.name}: expected a digest`);
    return r.hex;
  }

  async pieces(): Promise<string[]> {
    const r = await this.finish();
    if (r.type !== 'pieces') throw new Error(`${this.stats.name}: expected piecewise digests`);
    return r.hex;
  }

  /** Stops the worker without a result (aborted acquisition). */
  async terminate(): Promise<void> {
    await this.worker.terminate();
  }
}
