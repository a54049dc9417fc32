// Runs in a worker thread: one per linear hash and one for the piecewise
// hashes, so each linear (inherently serial) hash gets a core of its own.
import { parentPort, workerData } from 'node:worker_threads';
import { createHash, type Hash } from 'node:crypto';
import { setPriority } from 'node:os';
import type { FromWorker, HashWorkerData, ToWorker } from './hash-protocol.js';

const data = workerData as HashWorkerData;
const port = parentPort;
if (!port) throw new Error('hash-worker must run as a worker thread');
const views = data.buffers.map((b) => Buffer.from(b.sab, b.offset, b.size));
const job = data.job;
if (data.nice !== 0) {
  try {
    // pid 0 is the calling thread on Linux: only this worker changes priority.
    setPriority(data.nice);
  } catch {
    // Priority is an optimisation; hashing is the same without it.
  }
}

let linear: Hash | null = job.kind === 'linear' ? createHash(job.algorithm) : null;
const pieces: string[] = [];
let piece: Hash | null = null;
let pieceFill = 0;

/** Hashes `bytes` into the windows; returns the digests of the windows it completed. */
function updatePieces(bytes: Buffer, pieceSize: number): string[] {
  const completed: string[] = [];
  let at = 0;
  while (at < bytes.length) {
    piece ??= createHash('sha256');
    const n = Math.min(pieceSize - pieceFill, bytes.length - at);
    piece.update(bytes.subarray(at, at + n));
    pieceFill += n;
    at += n;
    if (pieceFill === pieceSize) {
      const hex = piece.digest('hex');
      pieces.push(hex);
      completed.push(hex);
      piece = null;
      pieceFill = 0;
    }
  }
  return completed;
}

function post(msg: FromWorker): void {
  port?.postMessage(msg);
}

port.on('message', (msg: ToWorker) => {
  if (msg.type === 'chunk') {
    const t0 = performance.now();
    const view = views[msg.index];
    if (!view) throw new Error(`no buffer ${msg.index}`);
    const bytes = view.subarray(0, msg.length);
    if (linear) {
      linear.update(bytes);
      post({ type: 'done', busyMs: performance.now() - t0 });
    } else if (job.kind === 'pieces') {
      const completed = updatePieces(bytes, job.pieceSize);
      post({ type: 'done', busyMs: performance.now() - t0, ...(completed.length > 0 ? { pieces: completed } : {}) });
    }
    return;
  }
  if (linear) {
    post({ type: 'digest', hex: linear.digest('hex') });
    linear = null;
  } else {
    if (piece) pieces.push(piece.digest('hex'));
    piece = null;
    post({ type: 'pieces', hex: pieces });
  }
});
