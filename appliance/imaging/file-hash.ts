import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { DeviceIoError, errnoOf } from '../errors.js';

/**
 * SHA-256 of each whole file, read in order, so `sha256sum` can check every
 * file of an image whose files are not the image stream itself (E01).
 */
export async function hashFiles(paths: string[], blockSize = 4 * 1024 * 1024): Promise<string[]> {
  const out: string[] = [];
  const buf = Buffer.allocUnsafe(blockSize);
  for (const p of paths) {
    const h = createHash('sha256');
    const fh = await open(p, 'r').catch((e: unknown) => {
      throw new DeviceIoError(p, 'open', errnoOf(e) ?? 5, 0);
    });
    try {
      let at = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, blockSize, at).catch((e: unknown) => {
          throw new DeviceIoError(p, 'read', errnoOf(e) ?? 5, at);
        });
        if (bytesRead === 0) break;
        h.update(buf.subarray(0, bytesRead));
        at += bytesRead;
      }
    } finally {
      await fh.close();
    }
    out.push(h.digest('hex'));
  }
  return out;
}
