// Runs in a worker thread: stores the chunks of one pool buffer at a time.
// The block is read from shared memory; only the zlib streams come back.
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { ChunkStore } from './chunk-store.js';
import type { CompressJob, CompressResult, CompressWorkerData } from './compress-protocol.js';

const data = workerData as CompressWorkerData;
const port = parentPort;
if (!port) throw new Error('compress-worker must run as a worker thread');
const views = data.buffers.map((b) => Buffer.from(b.sab, b.offset, b.size));
const store = new ChunkStore(data.mode);
// Every zlib stream is a fresh Buffer outside the heap, garbage once copied below. V8 collects it only
// when some 64 MiB of it piles up, per worker; where memory is short, the plan asks for a collection
// sooner. gc exists when the runtime started with --expose-gc (scripts/node-flags).
const collect = (globalThis as { gc?: () => void }).gc;
function collectGarbage(): void {
  if (data.garbageBytes !== null && collect && getHeapStatistics().external_memory > data.garbageBytes) collect();
}

port.on('message', (job: CompressJob) => {
  const t0 = performance.now();
  const view = views[job.index];
  if (!view) throw new Error(`no buffer ${job.index}`);
  const count = Math.ceil(job.length / data.chunkSize);
  const sizes = new Uint32Array(count);
  const adlers = new Uint32Array(count);
  const streams: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const start = i * data.chunkSize;
    const chunk = view.subarray(start, Math.min(job.length, start + data.chunkSize));
    const stored = job.raw.includes(i) ? store.storeRaw(chunk) : store.store(chunk);
    if (stored.zlib) {
      sizes[i] = stored.zlib.length;
      streams.push(stored.zlib);
    } else {
      adlers[i] = stored.adler;
    }
  }
  // One fresh ArrayBuffer for all streams of the block, transferred (not copied) to the writer.
  const out = new ArrayBuffer(streams.reduce((n, z) => n + z.length, 0));
  const bytes = new Uint8Array(out);
  let at = 0;
  for (const z of streams) {
    bytes.set(z, at);
    at += z.length;
  }
  const msg: CompressResult = { seq: job.seq, packed: out, sizes, adlers, busyMs: performance.now() - t0 };
  port.postMessage(msg, [out, sizes.buffer, adlers.buffer]);
  streams.length = 0;
  collectGarbage();
});
