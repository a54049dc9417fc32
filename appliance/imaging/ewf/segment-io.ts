// Writes into one E01 segment file at given offsets, to the end or to an
// error: every failure is a DeviceIoError naming the file, the offset and
// the errno, as the pipeline reports a failed write.
import { open, type FileHandle } from 'node:fs/promises';
import { DeviceIoError, errnoOf } from '../../errors.js';

/** writev takes at most IOV_MAX (1024) buffers at once. */
const IOV_MAX = 1024;

/** Writes `bufs` one after another from `at`, through short writes; returns how many bytes. */
export async function writeAllAt(fh: FileHandle, file: string, bufs: Buffer[], at: number): Promise<number> {
  let done = 0;
  for (let i = 0; i < bufs.length; i += IOV_MAX) {
    const part = bufs.length <= IOV_MAX ? bufs : bufs.slice(i, i + IOV_MAX);
    const len = part.reduce((n, b) => n + b.length, 0);
    let written = 0;
    while (written < len) {
      try {
        const rest = written === 0 ? part : remaining(part, written);
        const { bytesWritten } = await fh.writev(rest, at + done + written);
        if (bytesWritten === 0) throw Object.assign(new Error('no progress'), { errno: -28 });
        written += bytesWritten;
      } catch (e) {
        throw new DeviceIoError(file, 'write', errnoOf(e) ?? 5, at + done + written);
      }
    }
    done += len;
  }
  return done;
}

export async function writeAt(fh: FileHandle, file: string, b: Buffer, at: number): Promise<void> {
  try {
    const { bytesWritten } = await fh.write(b, 0, b.length, at);
    if (bytesWritten !== b.length) throw Object.assign(new Error('short write'), { errno: -28 });
  } catch (e) {
    throw new DeviceIoError(file, 'write', errnoOf(e) ?? 5, at);
  }
}

export async function syncFile(fh: FileHandle, file: string): Promise<void> {
  try {
    await fh.datasync();
  } catch (e) {
    throw new DeviceIoError(file, 'fdatasync', errnoOf(e) ?? 5, null);
  }
}

/**
 * Reads `length` bytes at `at` of a segment file and writes back what
 * `change` makes of them. `open` is the writer's handle when the file is the
 * one it has open; another file is opened for this, synced and closed.
 */
export async function patchFile(file: string, openHandle: FileHandle | null, at: number, length: number, change: (stored: Buffer) => Buffer): Promise<void> {
  let fh = openHandle;
  try {
    fh ??= await open(file, 'r+');
    const stored = Buffer.alloc(length);
    const { bytesRead } = await fh.read(stored, 0, length, at);
    if (bytesRead !== length) throw Object.assign(new Error('short read'), { errno: -5 });
    const next = change(stored);
    const { bytesWritten } = await fh.write(next, 0, next.length, at);
    if (bytesWritten !== next.length) throw Object.assign(new Error('short write'), { errno: -28 });
    if (!openHandle) await fh.datasync();
  } catch (e) {
    throw new DeviceIoError(file, 'write', errnoOf(e) ?? 5, at);
  } finally {
    if (!openHandle) await fh?.close().catch(() => undefined);
  }
}

/** The buffers after the first `skip` bytes (a writev that wrote part of them). */
function remaining(bufs: Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = [];
  for (const b of bufs) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}
