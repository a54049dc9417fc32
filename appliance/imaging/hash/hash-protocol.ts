// Hashing: the messages between a hash stage and its worker thread.
import type { HashAlgorithm } from './hash-algorithms.js';

/** What a hash worker computes: one linear hash, or SHA-256 per fixed window. */
export type HashJob = { kind: 'linear'; algorithm: HashAlgorithm } | { kind: 'pieces'; pieceSize: number };

export interface HashWorkerData {
  job: HashJob;
  /** Scheduling priority of the worker thread (Linux nice applies per thread). */
  nice: number;
  /** The pool's buffers, shared once at start; chunks then name a buffer by index. */
  buffers: { sab: SharedArrayBuffer; offset: number; size: number }[];
}

export type ToWorker = { type: 'chunk'; index: number; length: number } | { type: 'finish' };

export type FromWorker =
  /** A chunk is hashed; `pieces` are the windows it completed (piecewise jobs), so a journal can record them as they come. */
  { type: 'done'; busyMs: number; pieces?: string[] } | { type: 'digest'; hex: string } | { type: 'pieces'; hex: string[] };
