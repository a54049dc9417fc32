// Runs in a worker thread: SHA-256 of whole files, one at a time, in the
// order they are posted, so hashing finished segment files overlaps with
// writing the next one (they are still in the page cache). The next block
// is read while the current one is hashed.
import { parentPort } from 'node:worker_threads';
import { open } from 'node:fs/promises';
import { createHash } from 'node:crypto';

const port = parentPort;
if (!port) throw new Error('file-hash-worker must run as a worker thread');
const BLOCK = 4 * 1024 * 1024;
const bufs = [Buffer.allocUnsafe(BLOCK), Buffer.allocUnsafe(BLOCK)];
let queue: Promise<void> = Promise.resolve();

async function hashFile(file: string): Promise<string> {
  const fh = await open(file, 'r');
  try {
    const h = createHash('sha256');
    const readAt = (i: number, at: number) => fh.read(bufs[i % 2] as Buffer, 0, BLOCK, at).then((r) => r.bytesRead);
    let at = 0;
    let i = 0;
    let pending = readAt(0, 0);
    for (;;) {
      const n = await pending;
      if (n === 0) break;
      at += n;
      pending = readAt(i + 1, at);
      h.update((bufs[i % 2] as Buffer).subarray(0, n));
      i++;
    }
    return h.digest('hex');
  } finally {
    await fh.close();
  }
}

port.on('message', (file: string) => {
  queue = queue.then(async () => {
    try {
      port.postMessage({ file, sha256: await hashFile(file), error: null });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      port.postMessage({ file, sha256: null, error: { message: err.message, errno: typeof err.errno === 'number' ? Math.abs(err.errno) : 5 } });
    }
  });
});
