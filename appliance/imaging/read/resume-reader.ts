// Stage: read, on resume: the copy read back up to the resume point, then the source.
import { DeviceIoError } from '../../errors.js';
import { ReadBackError } from '../verify/read-back.js';
import type { SectorReader } from './sector-reader.js';

/**
 * The stream a resumed acquisition hashes: the image as already written
 * (read back from the destination) before `position`, the source from
 * there on. So the linear hashes come out as if the run had never stopped,
 * and every window before `position` is checked against the journal.
 */
export class ResumeReader implements SectorReader {
  readonly name: string;
  readonly size: number;
  readonly sectorSize: number;

  constructor(
    private readonly written: SectorReader,
    private readonly source: SectorReader,
    readonly position: number,
  ) {
    this.name = source.name;
    this.size = source.size;
    this.sectorSize = source.sectorSize;
  }

  async read(buffer: Buffer, length: number, offset: number): Promise<number> {
    if (offset >= this.position) return this.source.read(buffer, length, offset);
    // A request that crosses the resume point returns short; the caller reads on from the source.
    const n = Math.min(length, this.position - offset);
    let done = 0;
    try {
      while (done < n) {
        const got = await this.written.read(buffer.subarray(done), n - done, offset + done);
        if (got === 0) throw new Error('the image ends early');
        done += got;
      }
    } catch (e) {
      // Not a source read error: nothing may be filled in for it.
      throw new ReadBackError(
        this.written.name,
        offset + done,
        e instanceof DeviceIoError ? e.errno : null,
        `reading back ${this.written.name} at offset ${offset + done} to resume: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    return n;
  }

  close(): void {
    this.written.close();
  }
}
