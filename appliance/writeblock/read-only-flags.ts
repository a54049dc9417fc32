// The kernel's read-only flag of a block device node: set with BLKROSET and
// proven by BLKROGET and sysfs `ro`, which must agree with what was asked.
import path from 'node:path';
import { BlockDevice } from '../disk/block-device.js';
import type { Disk } from '../disk/disk.js';
import type { Sysfs } from '../disk/sysfs.js';
import { WriteBlockError } from '../errors.js';

export class ReadOnlyFlags {
  constructor(
    private readonly devRoot: string,
    private readonly sysfs: Sysfs,
  ) {}

  private nodeOf(name: string): string {
    return path.join(this.devRoot, name);
  }

  /** BLKROSET on one node. */
  set(name: string, readOnly: boolean): void {
    const dev = BlockDevice.open(this.nodeOf(name));
    try {
      dev.setReadOnly(readOnly);
    } finally {
      dev.close();
    }
  }

  /** BLKROGET on one node; null when the node cannot be opened. */
  query(name: string): boolean | null {
    let dev: BlockDevice;
    try {
      dev = BlockDevice.open(this.nodeOf(name));
    } catch {
      return null;
    }
    try {
      return dev.isReadOnly();
    } catch {
      return null;
    } finally {
      dev.close();
    }
  }

  /** Confirms a node's state by BLKROGET and by sysfs `ro`; both must agree with what was asked. */
  verify(name: string, sysfsRo: string, readOnly: boolean): void {
    const dev = BlockDevice.open(this.nodeOf(name));
    let ioctlRo: boolean;
    try {
      ioctlRo = dev.isReadOnly();
    } finally {
      dev.close();
    }
    const sysRo = this.sysfs.readText(sysfsRo);
    if (ioctlRo !== readOnly || sysRo !== (readOnly ? '1' : '0')) {
      const why = !readOnly && sysRo === '1' ? ' (the device may report hardware write-protect)' : '';
      throw new WriteBlockError(
        'EROVERIFY',
        name,
        `${name}: asked for ${readOnly ? 'read-only' : 'read-write'} but BLKROGET says ${ioctlRo ? 'ro' : 'rw'} and sysfs says ${sysRo}${why}`,
      );
    }
  }

  setAndVerify(name: string, sysfsRo: string, readOnly: boolean): void {
    this.set(name, readOnly);
    this.verify(name, sysfsRo, readOnly);
  }

  /** The whole disk first: since Linux 5.12 its flag covers every partition at once. */
  holdDisk(disk: Disk): void {
    this.setAndVerify(disk.name, `block/${disk.name}/ro`, true);
    for (const p of disk.partitions) this.setAndVerify(p.name, `block/${disk.name}/${p.name}/ro`, true);
  }
}
