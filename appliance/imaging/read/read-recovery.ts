// Stage: read. What a failing read becomes: retries, then smaller reads down
// to the sector, then a filled and recorded bad range.
import { DeviceIoError, CustosError } from '../../errors.js';
import { errnoName } from '../../errno.js';
import { event, type EventSink } from '../../events.js';
import type { SectorReader } from './sector-reader.js';

/** How unreadable sectors are handled (NIST CFTT DI-RM-07/08). */
export interface ReadPolicy {
  /** Extra attempts per sector after its first failure. */
  retries: number;
  /** Byte written in place of each unreadable byte. */
  fill: number;
}

export const DEFAULT_READ_POLICY: ReadPolicy = { retries: 2, fill: 0 };

/** An unreadable run of sectors, in the source's logical sectors; `last` inclusive. */
export interface BadRange {
  firstLba: number;
  lastLba: number;
  sectors: number;
  sectorSize: number;
  errno: number;
  error: string;
  attempts: number;
}

// These mean the device is gone or the request was wrong, not that a sector
// is unreadable: filling would turn an unplugged disk into an image of zeros.
const FATAL_ERRNOS = new Set([
  6 /* ENXIO */, 9 /* EBADF */, 19 /* ENODEV */, 22 /* EINVAL */, 123 /* ENOMEDIUM */, 108 /* ESHUTDOWN */, 67 /* ENOLINK: transport lost */,
]);

export class SourceReadError extends CustosError {
  readonly device: string;
  readonly offset: number;
  readonly errno: number | null;
  constructor(device: string, offset: number, errno: number | null, message: string) {
    super(errno === null ? 'ESOURCE' : errnoName(errno), message);
    this.device = device;
    this.offset = offset;
    this.errno = errno;
  }
}

/**
 * Returns a read failure that means an unreadable medium; rethrows anything
 * else (a vanished device, a wrong request) as the error that stops the run.
 */
export function mediaErrorOrThrow(e: unknown, reader: SectorReader, at: number): DeviceIoError {
  if (e instanceof DeviceIoError && !FATAL_ERRNOS.has(e.errno)) return e;
  if (e instanceof DeviceIoError) throw new SourceReadError(reader.name, e.offset ?? at, e.errno, `source ${e.message}; acquisition stopped`);
  throw e;
}

/**
 * Fills `buffer[0..length)` with the source bytes at `offset`. A failed read
 * drops to one sector at a time for the rest of the block, retrying each;
 * sectors that stay unreadable are filled and reported, and every byte keeps
 * its place, so the image is as long as the source and nothing shifts.
 */
export async function readRecovering(
  reader: SectorReader,
  buffer: Buffer,
  length: number,
  offset: number,
  policy: ReadPolicy,
  onEvent: EventSink,
): Promise<BadRange[]> {
  const bad: BadRange[] = [];
  let pos = 0;
  while (pos < length) {
    try {
      const n = await reader.read(pos === 0 ? buffer : buffer.subarray(pos), length - pos, offset + pos);
      if (n === 0) throw truncated(reader, offset + pos);
      pos += n;
    } catch (caught) {
      const e = mediaErrorOrThrow(caught, reader, offset + pos);
      onEvent(
        event('read-error', `read of ${length - pos} B at offset ${offset + pos} failed: ${errnoName(e.errno)}; reading sector by sector`, {
          offset: offset + pos,
          length: length - pos,
          errno: e.errno,
          error: errnoName(e.errno),
        }),
      );
      await readSectors(reader, buffer, pos, length, offset, policy, onEvent, bad);
      pos = length;
    }
  }
  return bad;
}

export function truncated(reader: SectorReader, at: number): SourceReadError {
  return new SourceReadError(
    reader.name,
    at,
    null,
    `source ${reader.name} ended at offset ${at}, before its reported size ${reader.size}; was it removed or resized?`,
  );
}

async function readSectors(
  reader: SectorReader,
  buffer: Buffer,
  from: number,
  length: number,
  offset: number,
  policy: ReadPolicy,
  onEvent: EventSink,
  bad: BadRange[],
): Promise<void> {
  const ss = reader.sectorSize;
  for (let pos = from; pos < length; pos += ss) {
    const target = buffer.subarray(pos, pos + ss);
    const lba = (offset + pos) / ss;
    let lastErr: DeviceIoError | null = null;
    let attempt = 0;
    for (; attempt <= policy.retries; attempt++) {
      try {
        const n = await reader.read(target, ss, offset + pos);
        if (n === 0) throw truncated(reader, offset + pos);
        if (n !== ss) throw new SourceReadError(reader.name, offset + pos, null, `short read of ${n} B from one sector at LBA ${lba}`);
        lastErr = null;
        break;
      } catch (e) {
        lastErr = mediaErrorOrThrow(e, reader, offset + pos);
      }
    }
    if (!lastErr) {
      if (attempt > 0) onEvent(event('read-recovered', `LBA ${lba} read on attempt ${attempt + 1}`, { lba, attempts: attempt + 1 }));
      continue;
    }
    target.fill(policy.fill);
    const prev = bad[bad.length - 1];
    if (prev && prev.lastLba === lba - 1 && prev.errno === lastErr.errno) {
      prev.lastLba = lba;
      prev.sectors++;
    } else {
      bad.push({
        firstLba: lba,
        lastLba: lba,
        sectors: 1,
        sectorSize: ss,
        errno: lastErr.errno,
        error: errnoName(lastErr.errno),
        attempts: policy.retries + 1,
      });
    }
  }
}

/** Joins ranges that continue across block boundaries. */
export function mergeBadRanges(into: BadRange[], more: BadRange[]): void {
  for (const r of more) {
    const prev = into[into.length - 1];
    if (prev && prev.lastLba === r.firstLba - 1 && prev.errno === r.errno) {
      prev.lastLba = r.lastLba;
      prev.sectors += r.sectors;
    } else into.push({ ...r });
  }
}
