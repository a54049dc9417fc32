// Destination-gone detection: an evidence drive pulled while custos writes to
// it or reads it back. Its writes may never return and its reads fail before
// the kernel removes the disk, so the run asks sysfs, and names the unplug
// rather than the I/O error it caused.
import { CustosError } from '../../errors.js';
import { Sysfs } from '../../disk/sysfs.js';
import type { DestinationFacts } from './preflight.js';

/** Errors a write or read-back gives when the drive under it goes away. */
export const UNPLUG_ERRNOS: ReadonlySet<string> = new Set(['EIO', 'ENODEV', 'ENXIO', 'EROFS', 'ESHUTDOWN', 'EDESTREAD']);

/** The error for a destination whose disk was unplugged; `cause` is the I/O error that came first, if one did. */
export function destinationGone(d: DestinationFacts, cause: CustosError | null): CustosError {
  return new CustosError(
    'EDESTGONE',
    `destination ${d.dir}: its disk ${d.disks.join(', ')} was unplugged${cause ? ` (${cause.message})` : ''}; acquisition stopped (the source is untouched)`,
  );
}

/** Watches the destinations' disks in sysfs. */
export class DestinationWatch {
  constructor(
    private readonly facts: readonly DestinationFacts[],
    private readonly sysfs = new Sysfs(),
  ) {}

  /** The destination whose disk has left sysfs (unplugged), if any. */
  gone(): DestinationFacts | undefined {
    return this.facts.find((f) => f.disks.length > 0 && f.disks.some((d) => !this.sysfs.exists(`block/${d}`)));
  }

  /** `gone()`'s answer, looked for up to 2 s: the kernel removes a disk a moment after failing its I/O. */
  async soonGone(): Promise<DestinationFacts | null> {
    for (let i = 0; i < 20; i++) {
      const found = this.gone();
      if (found !== undefined) return found;
      await new Promise((r) => setTimeout(r, 100));
    }
    return null;
  }
}
