// Stage 1, a disk is found: the only way custos opens a block device node,
// read-only, for its ioctls and reads (through the native addon).
import { fstatSync, readSync } from 'node:fs';
import { native } from '../native.js';
import { DeviceError, DeviceIoError, errnoOf, isNativeError } from '../errors.js';

export interface OpenOptions {
  /** O_DIRECT: bypass the page cache; buffers, lengths and offsets must be sector aligned. */
  direct?: boolean;
  /** O_EXCL: claim the device so nothing can mount it while we hold it. */
  exclusive?: boolean;
  /** Accept a regular file (an image being verified); default only block devices. */
  allowRegularFile?: boolean;
}

/** Page size alignment satisfies O_DIRECT on 512 and 4096-byte sector devices alike. */
export const PAGE_ALIGNMENT = 4096;

/** A zero-filled, page-aligned Buffer usable for O_DIRECT I/O. */
export function allocAligned(size: number, alignment = PAGE_ALIGNMENT): Buffer {
  return native().allocAligned(size, alignment);
}

/**
 * A page-aligned Buffer over a SharedArrayBuffer: native reads fill it, and
 * worker threads (one per hash) can read the same memory without a copy.
 * Memory from allocAligned() is external to V8 and cannot be shared that way.
 */
export function allocSharedAligned(size: number, alignment = PAGE_ALIGNMENT): Buffer {
  if (!Number.isInteger(size) || size <= 0) throw new RangeError('size must be a positive integer');
  const sab = new SharedArrayBuffer(size + alignment);
  const misalign = native().addressAlignment(new Uint8Array(sab, 0, 1), alignment);
  const offset = (alignment - misalign) % alignment;
  return Buffer.from(sab, offset, size);
}

function wrap(device: string, e: unknown, offset: number | null = null): unknown {
  return isNativeError(e) ? new DeviceIoError(device, e.syscall, e.errno, offset) : e;
}

/**
 * A device opened read-only through the native addon. There is no way to get
 * a writable descriptor from this class.
 */
export class BlockDevice {
  readonly path: string;
  readonly direct: boolean;
  readonly isBlockDevice: boolean;
  readonly rdev: number;
  private fd: number | null;

  private constructor(path: string, fd: number, direct: boolean, isBlock: boolean, rdev: number) {
    this.path = path;
    this.fd = fd;
    this.direct = direct;
    this.isBlockDevice = isBlock;
    this.rdev = rdev;
  }

  static open(path: string, options: OpenOptions = {}): BlockDevice {
    const addon = native();
    let fd: number;
    try {
      fd = addon.openReadOnly(path, options.direct ?? false, options.exclusive ?? false);
    } catch (e) {
      throw wrap(path, e);
    }
    const st = fstatSync(fd);
    if (!st.isBlockDevice() && !(options.allowRegularFile && st.isFile())) {
      addon.close(fd);
      throw new DeviceError('ENOTBLK', path, `${path} is not a block device`);
    }
    return new BlockDevice(path, fd, options.direct ?? false, st.isBlockDevice(), st.rdev);
  }

  private get handle(): number {
    if (this.fd === null) throw new DeviceError('EBADF', this.path, `${this.path} is closed`);
    return this.fd;
  }

  private call<T>(fn: (fd: number) => T): T {
    try {
      return fn(this.handle);
    } catch (e) {
      throw wrap(this.path, e);
    }
  }

  /** Size in bytes from BLKGETSIZE64 (regular files: their length). */
  size(): number {
    if (!this.isBlockDevice) return fstatSync(this.handle).size;
    return this.call((fd) => native().getSize64(fd));
  }

  logicalSectorSize(): number {
    return this.call((fd) => native().getLogicalBlockSize(fd));
  }

  physicalSectorSize(): number {
    return this.call((fd) => native().getPhysicalBlockSize(fd));
  }

  /** BLKROGET: the kernel's effective read-only state for this node. */
  isReadOnly(): boolean {
    return this.call((fd) => native().getReadOnly(fd));
  }

  /** BLKROSET. Needs CAP_SYS_ADMIN; only the write-block guardian calls it. */
  setReadOnly(readOnly: boolean): void {
    this.call((fd) => native().setReadOnly(fd, readOnly));
  }

  /**
   * Reads up to `length` bytes at `offset` into `buffer` on the thread pool.
   * Returns fewer bytes only at the end of the device or just before a failing
   * sector; the next call then rejects with DeviceIoError at that offset.
   */
  async read(buffer: Buffer, length: number, offset: number): Promise<number> {
    const fd = this.handle;
    try {
      return await native().readAt(fd, buffer, length, offset);
    } catch (e) {
      throw wrap(this.path, e, offset);
    }
  }

  /**
   * A small synchronous read through the page cache (the inventory's look at
   * a volume descriptor); returns the bytes read, fewer at the end of the device.
   */
  readSyncAt(buffer: Buffer, length: number, offset: number): number {
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        n = readSync(this.handle, buffer, done, length - done, offset + done);
      } catch (e) {
        throw new DeviceIoError(this.path, 'pread', errnoOf(e) ?? 5, offset + done);
      }
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  /** Reads until `length` bytes or end of device; errors keep their exact offset. */
  async readFully(buffer: Buffer, length: number, offset: number): Promise<number> {
    let done = 0;
    while (done < length) {
      const target = done === 0 ? buffer : buffer.subarray(done);
      const n = await this.read(target, length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  /** BLKFLSBUF: drop cached pages so the next reads come from the medium. */
  async flushBuffers(): Promise<void> {
    await this.callAsync((fd) => native().flushBuffers(fd));
  }

  /** posix_fadvise(DONTNEED): forget clean cached pages of a file being verified. */
  dropCache(): void {
    this.call((fd) => native().dropCache(fd));
  }

  async fdatasync(): Promise<void> {
    await this.callAsync((fd) => native().fdatasync(fd));
  }

  private async callAsync<T>(fn: (fd: number) => Promise<T>): Promise<T> {
    const fd = this.handle;
    try {
      return await fn(fd);
    } catch (e) {
      throw wrap(this.path, e);
    }
  }

  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      native().close(fd);
    } catch (e) {
      throw wrap(this.path, e);
    }
  }
}
