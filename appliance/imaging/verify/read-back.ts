// Stage: verified. Reading a copy back is strict: its first error stops it.
import { CustosError, DeviceIoError } from '../../errors.js';
import type { BadRange } from '../read/read-recovery.js';
import type { SectorReader } from '../read/sector-reader.js';

/**
 * A copy of the image could not be read back (verify, a re-hash, a resume
 * check). Not a source error: nothing is retried or filled for it, since a
 * filled copy would only prove the fill; an unplugged evidence drive shows up
 * here first, as EIO from its file system.
 */
export class ReadBackError extends CustosError {
  readonly file: string;
  readonly offset: number;
  readonly errno: number | null;
  constructor(file: string, offset: number, errno: number | null, message: string) {
    super('EDESTREAD', message);
    this.file = file;
    this.offset = offset;
    this.errno = errno;
  }
}

/** A pipeline block reader for image copies: reads `length` bytes at `offset`, and stops at the first error. */
export function readBackBlock(reader: SectorReader): (buffer: Buffer, length: number, offset: number) => Promise<BadRange[]> {
  return async (buffer, length, offset) => {
    let pos = 0;
    while (pos < length) {
      let n: number;
      try {
        n = await reader.read(pos === 0 ? buffer : buffer.subarray(pos), length - pos, offset + pos);
      } catch (e) {
        if (e instanceof DeviceIoError) throw new ReadBackError(e.device, e.offset ?? offset + pos, e.errno, `reading back ${e.message}`);
        throw e;
      }
      if (n === 0)
        throw new ReadBackError(
          reader.name,
          offset + pos,
          null,
          `reading back ${reader.name}: the image ends at byte ${offset + pos}, before its recorded size ${reader.size}`,
        );
      pos += n;
    }
    return [];
  };
}
