import { DeviceIoError } from '../../appliance/errors.js';
import type { SectorReader } from '../../appliance/imaging/read/sector-reader.js';

export interface FaultOptions {
  errno?: number;
  /**
   * 'short': like the native reader, a read returns the bytes before the first
   * bad sector and the next read at that sector fails. 'whole': the whole
   * request fails, as a failed bio does.
   */
  mode?: 'short' | 'whole';
  /** LBAs that fail this many times and then read fine (flaky sectors). */
  flaky?: Map<number, number>;
}

/**
 * Wraps a real reader and makes chosen LBAs unreadable. For read-error cases
 * the kernel here cannot produce (no device-mapper, no scsi_debug).
 */
export class FaultyReader implements SectorReader {
  readonly name: string;
  readonly size: number;
  readonly sectorSize: number;
  readonly attempts = new Map<number, number>();
  private readonly bad: Set<number>;
  private readonly errno: number;
  private readonly mode: 'short' | 'whole';
  private readonly flaky: Map<number, number>;

  constructor(
    private readonly inner: SectorReader,
    bad: Iterable<number>,
    o: FaultOptions = {},
  ) {
    this.name = inner.name;
    this.size = inner.size;
    this.sectorSize = inner.sectorSize;
    this.bad = new Set(bad);
    this.errno = o.errno ?? 5;
    this.mode = o.mode ?? 'short';
    this.flaky = new Map(o.flaky ?? []);
  }

  private failing(lba: number): boolean {
    if (this.bad.has(lba)) return true;
    const left = this.flaky.get(lba);
    if (left === undefined || left === 0) return false;
    return true;
  }

  async read(buffer: Buffer, length: number, offset: number): Promise<number> {
    const first = offset / this.sectorSize;
    const count = Math.ceil(length / this.sectorSize);
    for (let i = 0; i < count; i++) {
      const lba = first + i;
      if (!this.failing(lba)) continue;
      if (i === 0 || this.mode === 'whole') {
        this.attempts.set(lba, (this.attempts.get(lba) ?? 0) + 1);
        const left = this.flaky.get(lba);
        if (left !== undefined) this.flaky.set(lba, left - 1);
        throw new DeviceIoError(this.name, 'pread', this.errno, offset);
      }
      return this.inner.read(buffer, i * this.sectorSize, offset);
    }
    return this.inner.read(buffer, length, offset);
  }

  close(): void {
    this.inner.close();
  }
}
