// Stage: pushed through the pipeline. A fixed set of page-aligned buffers:
// memory stays block size x buffers whatever the disk.
import { allocSharedAligned } from '../../disk/block-device.js';

/**
 * A fixed set of page-aligned buffers over SharedArrayBuffers. A buffer goes
 * out to the reader, then to every consumer (hash workers, writers) at once;
 * it comes back when the last consumer releases it. Memory is count x size
 * whatever the size of the source.
 */
export class BufferPool {
  readonly buffers: Buffer[];
  readonly size: number;
  private readonly free: number[] = [];
  private readonly refs: number[];
  private readonly waiters: ((index: number) => void)[] = [];

  constructor(count: number, size: number) {
    this.size = size;
    this.buffers = Array.from({ length: count }, () => allocSharedAligned(size));
    this.refs = this.buffers.map(() => 0);
    for (let i = 0; i < count; i++) this.free.push(i);
  }

  /** The shared memory behind each buffer, with the view's offset, for handing to workers once. */
  shared(): { sab: SharedArrayBuffer; offset: number }[] {
    return this.buffers.map((b) => ({ sab: b.buffer as SharedArrayBuffer, offset: b.byteOffset }));
  }

  get inUse(): number {
    return this.buffers.length - this.free.length;
  }

  /** Resolves with a free buffer's index, waiting while all are out. */
  take(): Promise<number> {
    const i = this.free.shift();
    if (i !== undefined) return Promise.resolve(i);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Hands a buffer to `consumers` holders; it is free again after as many release() calls. */
  share(index: number, consumers: number): void {
    this.refs[index] = consumers;
    if (consumers === 0) this.giveBack(index);
  }

  release(index: number): void {
    const left = (this.refs[index] ?? 0) - 1;
    this.refs[index] = left;
    if (left === 0) this.giveBack(index);
  }

  private giveBack(index: number): void {
    const next = this.waiters.shift();
    if (next) next(index);
    else this.free.push(index);
  }
}
