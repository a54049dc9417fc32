// SHA-256 of whole image files (E01 segments), so sha256sum can check each
// file, and the window per-file hashes use.
import { Worker } from 'node:worker_threads';
import { DeviceIoError } from '../../errors.js';
import type { ImageFormat } from '../write/image-layout.js';
import type { HashAlgorithm } from './hash-algorithms.js';

const WORKER_URL = new URL('./file-hash-worker.js', import.meta.url);

interface Answer {
  file: string;
  sha256: string | null;
  error: { message: string; errno: number } | null;
}

/**
 * SHA-256 of whole files on a worker thread, so `sha256sum` can check each
 * file of an image whose files are not the image stream itself (E01). Files
 * are added as they are finished; results come back in the order added.
 */
export class FileHasher {
  private readonly worker = new Worker(WORKER_URL);
  private readonly waiting: { resolve: (hex: string) => void; reject: (e: Error) => void }[] = [];
  private readonly results: Promise<string>[] = [];

  constructor() {
    this.worker.on('message', (a: Answer) => {
      const w = this.waiting.shift();
      if (!w) return;
      if (a.sha256) w.resolve(a.sha256);
      else w.reject(new DeviceIoError(a.file, 'read', a.error?.errno ?? 5, null));
    });
    this.worker.on('error', (e: Error) => {
      for (const w of this.waiting.splice(0)) w.reject(e);
    });
  }

  add(file: string): void {
    const p = new Promise<string>((resolve, reject) => this.waiting.push({ resolve, reject }));
    // Observed later through all(); not an unhandled rejection meanwhile.
    p.catch(() => undefined);
    this.results.push(p);
    this.worker.postMessage(file);
  }

  /** Every file's SHA-256, in the order added. */
  async all(): Promise<string[]> {
    try {
      return await Promise.all(this.results);
    } finally {
      await this.close();
    }
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/** SHA-256 of each of `paths`, in order. */
export async function hashFiles(paths: string[]): Promise<string[]> {
  const h = new FileHasher();
  for (const p of paths) h.add(p);
  return h.all();
}

/** Window for per-file SHA-256: one segment; 0 when a raw image's linear SHA-256 already is its file hash, or for E01. */
export function fileHashWindow(o: { format: ImageFormat; splitSize: number | null; hashes: readonly HashAlgorithm[]; size: number }): number {
  if (o.format === 'split') return o.splitSize ?? 0;
  // E01 segment files are not windows of the image stream; they are hashed as written.
  if (o.format === 'e01') return 0;
  return o.hashes.includes('sha256') ? 0 : o.size;
}
