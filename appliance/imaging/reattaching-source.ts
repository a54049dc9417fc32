import { CustosError, DeviceIoError } from '../errors.js';
import type { WriteBlockGuardian } from '../guardian.js';
import { listDisks, type Disk } from '../inventory.js';
import { event } from './events.js';
import { DeviceReader, type SectorReader } from './sector-reader.js';
import type { SourceWriteBlock } from './source-writeblock.js';

/**
 * Errnos with which the kernel fails I/O to a disk that has gone (unplugged
 * cable, removed USB bridge), rather than to a sector it cannot read:
 * ENXIO, ENODEV, ENOMEDIUM, ESHUTDOWN, ENOLINK (BLK_STS_TRANSPORT).
 */
const GONE_ERRNOS = new Set([6, 19, 123, 108, 67]);

export interface ReattachOptions {
  disk: Disk;
  guardian: WriteBlockGuardian;
  writeBlock: SourceWriteBlock;
  signal?: AbortSignal;
  pollMs?: number;
}

/**
 * The source disk as a reader that survives being unplugged. A read that
 * fails because the disk went away (it left sysfs, its SCSI device is no
 * longer running, or the errno says so) does not fail: the acquisition
 * pauses and says so, and waits for a disk with the same serial number,
 * size and sector size, under whatever kernel name it comes back. That disk
 * is put under write-block and held as the source before it is opened, and
 * the read is done again at the same offset. Any other disk that appears
 * meanwhile is refused, with an event. A disk without a serial number
 * cannot be recognised: its loss stops the acquisition as before.
 */
export class ReattachingSource implements SectorReader {
  readonly name: string;
  readonly size: number;
  readonly sectorSize: number;
  private disk: Disk;
  private inner: DeviceReader;
  private readonly o: ReattachOptions;

  constructor(o: ReattachOptions) {
    this.o = o;
    this.disk = o.disk;
    this.inner = new DeviceReader(o.disk.devicePath);
    this.name = this.inner.name;
    this.size = this.inner.size;
    this.sectorSize = this.inner.sectorSize;
  }

  /** The disk being read now (another kernel name after a return). */
  get current(): Disk {
    return this.disk;
  }

  async read(buffer: Buffer, length: number, offset: number): Promise<number> {
    for (;;) {
      let n: number;
      try {
        n = await this.inner.read(buffer, length, offset);
      } catch (e) {
        if (!(e instanceof DeviceIoError) || (!GONE_ERRNOS.has(e.errno) && this.present())) throw e;
        await this.waitForReturn(e.code, offset);
        continue;
      }
      // A removed disk's capacity drops to 0: reads then end early instead of failing.
      if (n === 0 && length > 0 && offset < this.size && !this.present()) {
        await this.waitForReturn('end of device', offset);
        continue;
      }
      return n;
    }
  }

  /** Still the same device node, and (for SCSI disks) still running. */
  private present(): boolean {
    const sysfs = this.o.guardian.sysfs;
    if (sysfs.readText(`block/${this.disk.name}/dev`) !== this.disk.majMin) return false;
    const state = sysfs.readText(`block/${this.disk.name}/device/state`);
    return state === null || state === 'running' || state === 'live';
  }

  private async waitForReturn(cause: string, offset: number): Promise<void> {
    const serial = this.disk.serial?.raw ?? '';
    const wb = this.o.writeBlock;
    if (serial === '') {
      throw new CustosError('ESOURCELOST', `source ${this.disk.name} went away (${cause} at offset ${offset}); it has no serial number, so a disk that comes back could not be told from another: acquisition stopped`);
    }
    wb.sourceLost();
    wb.report(
      event('source-lost', `source ${this.disk.name} (serial ${this.disk.serial?.text}) went away at offset ${offset} (${cause}); paused: plug the same disk back in, or stop the acquisition`, {
        disk: this.disk.name,
        serial,
        offset,
        cause,
      }),
    );
    try {
      this.inner.close();
    } catch {
      // The device is gone; its descriptor may already be unusable.
    }
    const seen = new Set<string>(disksNow().map((d) => `${d.name} ${d.majMin}`));
    for (;;) {
      if (this.o.signal?.aborted) throw this.o.signal.reason instanceof Error ? this.o.signal.reason : new CustosError('EINTR', 'interrupted while waiting for the source');
      await new Promise((r) => setTimeout(r, this.o.pollMs ?? 500));
      for (const d of disksNow()) {
        const key = `${d.name} ${d.majMin}`;
        const same = d.serial?.raw === serial && d.sizeBytes === this.size && d.logicalSectorSize === this.sectorSize;
        if (same) {
          this.reattach(d, offset);
          return;
        }
        if (!seen.has(key)) {
          seen.add(key);
          wb.report(
            event('source-refused', `${d.name} appeared (serial ${d.serial?.text ?? '-'}, ${d.sizeBytes} bytes): not the source, not used`, {
              disk: d.name,
              serial: d.serial?.raw ?? null,
              sizeBytes: d.sizeBytes,
            }),
          );
        }
      }
    }
  }

  private reattach(d: Disk, offset: number): void {
    // Write-block first: held as the source (protected if the guardian has not yet), then confirmed.
    const held = this.o.guardian.holdAsSource(d.devicePath);
    const st = this.o.guardian.status([held.devicePath])[0];
    if (!st || !st.readOnly || st.ioctlReadOnly !== true || !st.partitions.every((p) => p.readOnly)) {
      throw new CustosError('ENOTWRITEBLOCKED', `the source came back as ${d.name} but could not be confirmed read-only: acquisition stopped`);
    }
    this.inner = new DeviceReader(held.devicePath);
    this.disk = held;
    this.o.writeBlock.rebind(held);
    this.o.writeBlock.report(
      event('source-returned', `source is back as ${held.name} (same serial, size and sector size), write-blocked; continuing at offset ${offset}`, {
        disk: held.name,
        stableId: held.stableId,
        offset,
      }),
    );
  }

  close(): void {
    this.inner.close();
  }
}

/** The disks now; a device vanishing or appearing mid-scan makes sysfs reads fail: that scan counts as empty, the next one reads again. */
function disksNow(): Disk[] {
  try {
    return listDisks();
  } catch {
    return [];
  }
}
