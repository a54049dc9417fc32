// Stage: read. The source reader that survives an unplug: pauses, and takes
// the disk back only when identity and content prove it is the same.
import { CustosError, DeviceIoError } from '../../errors.js';
import type { WriteBlockGuardian } from '../../writeblock/guardian.js';
import { listDisks, type Disk } from '../../disk/inventory.js';
import { event } from '../../events.js';
import { DeviceReader, type SectorReader } from './sector-reader.js';
import type { SourceWriteBlock } from '../../writeblock/source-writeblock.js';
import { compareContent, type ContentSample, type ContentWitness } from './source-content.js';

/** Bytes kept from the first read at offset 0 and from the latest read: compared with a returning disk. */
const FIRST_SAMPLE = 1024 * 1024;
const LATEST_SAMPLE = 64 * 1024;
/** How long an early end of the source is watched for its removal to show in sysfs. */
const REMOVAL_SETTLE_MS = 5000;

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
 * then proven to be the same disk by content (source-content.ts) before the
 * read is done again at the same offset: a twin in an identical dock is
 * refused, with an event naming what differed. Any other disk that appears
 * meanwhile is refused too. A disk without a serial number cannot be
 * recognised: its loss stops the acquisition as before.
 */
export class ReattachingSource implements SectorReader {
  readonly name: string;
  readonly size: number;
  readonly sectorSize: number;
  private disk: Disk;
  private inner: DeviceReader;
  private readonly o: ReattachOptions;
  private witness: ContentWitness | null = null;
  private firstSample: ContentSample | null = null;
  private latestSample: ContentSample | null = null;

  constructor(o: ReattachOptions) {
    this.o = o;
    this.disk = o.disk;
    this.inner = new DeviceReader(o.disk.devicePath);
    this.name = this.inner.name;
    this.size = this.inner.size;
    this.sectorSize = this.inner.sectorSize;
  }

  /** The acquisition's piece hashes, once its hash stages exist: a returning disk's windows are compared with them. */
  useWitness(w: ContentWitness): void {
    this.witness = w;
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
      if (n === 0 && length > 0 && offset < this.size && (await this.goneAfterEarlyEnd())) {
        await this.waitForReturn('end of device', offset);
        continue;
      }
      this.keepSample(buffer, n, offset);
      return n;
    }
  }

  /** Copies a little of what was read (a few KiB per 4 MiB block), for the content check of a returning disk. */
  private keepSample(buffer: Buffer, n: number, offset: number): void {
    if (n <= 0) return;
    if (offset === 0 && this.firstSample === null) this.firstSample = { offset, bytes: Buffer.from(buffer.subarray(0, Math.min(n, FIRST_SAMPLE))) };
    if (this.latestSample === null || offset >= this.latestSample.offset) {
      const len = Math.min(n, LATEST_SAMPLE);
      if (this.latestSample?.bytes.length === len) buffer.copy(this.latestSample.bytes, 0, 0, len);
      else this.latestSample = { offset, bytes: Buffer.from(buffer.subarray(0, len)) };
      this.latestSample.offset = offset;
    }
  }

  /** Still the same device node, and (for SCSI disks) still running. */
  private present(): boolean {
    const sysfs = this.o.guardian.sysfs;
    if (sysfs.readText(`block/${this.disk.name}/dev`) !== this.disk.majMin) return false;
    const state = sysfs.readText(`block/${this.disk.name}/device/state`);
    return state === null || state === 'running' || state === 'live';
  }

  /**
   * Whether a read that ended before the disk's size ended because the disk is
   * going. The kernel sets a removed disk's capacity to 0 before its sysfs
   * node and SCSI state change, so the early end can come first: the capacity
   * counts too, and the node is watched for a while before the end is taken as
   * a truncated source.
   */
  private async goneAfterEarlyEnd(): Promise<boolean> {
    const deadline = Date.now() + REMOVAL_SETTLE_MS;
    for (;;) {
      if (!this.present() || this.capacityGone()) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** sysfs reports no capacity (0, or no size at all): the kernel's mark of a disk being removed; a smaller size is a resize. */
  private capacityGone(): boolean {
    const text = this.o.guardian.sysfs.readText(`block/${this.disk.name}/size`);
    return text === null || text === '0';
  }

  private async waitForReturn(cause: string, offset: number): Promise<void> {
    const serial = this.disk.serial?.raw ?? '';
    const wb = this.o.writeBlock;
    if (serial === '') {
      throw new CustosError(
        'ESOURCELOST',
        `source ${this.disk.name} went away (${cause} at offset ${offset}); it has no serial number, so a disk that comes back could not be told from another: acquisition stopped`,
      );
    }
    wb.sourceLost();
    wb.report(
      event(
        'source-lost',
        `source ${this.disk.name} (serial ${this.disk.serial?.text}) went away at offset ${offset} (${cause}); paused: plug the same disk back in, or stop the acquisition`,
        {
          disk: this.disk.name,
          serial,
          offset,
          cause,
        },
      ),
    );
    try {
      this.inner.close();
    } catch {
      // The device is gone; its descriptor may already be unusable.
    }
    // Keyed by attachment: a disk refused once is not looked at again until it is plugged in anew.
    const sameIdentity = (d: Disk) => d.serial?.raw === serial && d.sizeBytes === this.size && d.logicalSectorSize === this.sectorSize;
    const seen = new Set<string>(
      disksNow()
        .filter((d) => !sameIdentity(d))
        .map((d) => d.attachment),
    );
    for (;;) {
      if (this.o.signal?.aborted)
        throw this.o.signal.reason instanceof Error ? this.o.signal.reason : new CustosError('EINTR', 'interrupted while waiting for the source');
      await new Promise((r) => setTimeout(r, this.o.pollMs ?? 500));
      for (const d of disksNow()) {
        if (seen.has(d.attachment)) continue;
        seen.add(d.attachment);
        const same = sameIdentity(d);
        if (same && (await this.reattach(d, offset))) return;
        if (!same) {
          wb.report(
            event('source-refused', `${d.name} appeared (serial ${d.serial?.text ?? '-'}, ${d.sizeBytes} bytes): not the source, not used`, {
              disk: d.name,
              attachment: d.attachment,
              serial: d.serial?.raw ?? null,
              sizeBytes: d.sizeBytes,
              reason: 'identity',
            }),
          );
        }
      }
    }
  }

  /** Write-block first, then the content check; true when `d` is the source and reading goes on from it. */
  private async reattach(d: Disk, offset: number): Promise<boolean> {
    // Held as the source (protected if the guardian has not yet), then confirmed, before a byte is read.
    const held = this.o.guardian.holdAsSource(d.devicePath, d.attachment);
    const st = this.o.guardian.status([held.devicePath])[0];
    if (!st || !st.readOnly || st.ioctlReadOnly !== true || !st.partitions.every((p) => p.readOnly)) {
      throw new CustosError('ENOTWRITEBLOCKED', `the source came back as ${d.name} but could not be confirmed read-only: acquisition stopped`);
    }
    const inner = new DeviceReader(held.devicePath);
    const samples = [this.firstSample, this.latestSample].filter((x): x is ContentSample => x !== null && x.offset + x.bytes.length <= this.size);
    let refusal: { why: string; data: Record<string, unknown> } | null = null;
    let compared: unknown[] = [];
    try {
      const verdict = await compareContent(inner, { before: offset, samples, witness: this.witness });
      compared = verdict.compared;
      const m = verdict.mismatch;
      if (m) {
        const what =
          m.what === 'window' ? `window ${m.index} (bytes ${m.offset}-${m.offset + m.length - 1})` : `the ${m.length} bytes read before at offset ${m.offset}`;
        refusal = { why: `${what} differ: SHA-256 ${m.found.slice(0, 16)}…, the acquisition read ${m.expected.slice(0, 16)}…`, data: { mismatch: m } };
      } else if (verdict.compared.length === 0 && offset > 0) {
        refusal = { why: 'nothing read before could be compared with it', data: {} };
      }
    } catch (e) {
      refusal = { why: `it could not be read back to compare (${e instanceof Error ? e.message : String(e)})`, data: {} };
    }
    if (refusal) {
      inner.close();
      // Not the source: it stays write-blocked like any disk, but is no longer held as one.
      this.o.guardian.dropSource(held);
      this.o.writeBlock.report(
        event(
          'source-refused',
          `${held.name} appeared with the source's serial, size and sector size, but is not the same disk: ${refusal.why}; not used, still waiting for the source`,
          {
            disk: held.name,
            attachment: held.attachment,
            serial: held.serial?.raw ?? null,
            sizeBytes: held.sizeBytes,
            reason: 'content',
            ...refusal.data,
          },
        ),
      );
      return false;
    }
    this.inner = inner;
    this.disk = held;
    this.o.writeBlock.rebind(held);
    this.o.writeBlock.report(
      event(
        'source-returned',
        `source is back as ${held.name} (same serial, size and sector size; ${compared.length} content comparison(s) match), write-blocked; continuing at offset ${offset}`,
        {
          disk: held.name,
          attachment: held.attachment,
          stableId: held.stableId,
          offset,
          compared,
        },
      ),
    );
    return true;
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
