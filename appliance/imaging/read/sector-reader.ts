// Stage: read. The reader interface every source implements, the O_DIRECT
// device reader, and the reader of an image's files.
import { BlockDevice } from '../../disk/block-device.js';
import { DeviceIoError, isNativeError } from '../../errors.js';
import { native } from '../../native.js';

/** What the acquisition knows of the content read so far (its piecewise hashes). */
export interface ContentWitness {
  pieceSize: number;
  /** SHA-256 of each window completed so far, in order. */
  completed(): readonly string[];
  /** Whether [start, end) holds filled or deferred sectors: re-reading it proves nothing. */
  unreliable(start: number, end: number): boolean;
}

/**
 * Where the pipeline reads from: a source device, a finished image being
 * verified, or (in tests) a reader that injects faults. read() follows
 * BlockDevice.read: it may return fewer bytes just before a failing sector,
 * and the call at that offset then rejects with a DeviceIoError.
 */
export interface SectorReader {
  readonly name: string;
  readonly size: number;
  readonly sectorSize: number;
  read(buffer: Buffer, length: number, offset: number): Promise<number>;
  close(): void;
  /** A reader that can lose its device and take back a returning one gets the acquisition's piece hashes to prove it by content. */
  useWitness?(w: ContentWitness): void;
}

/** A block device opened with O_DIRECT: every byte comes from the device, not the page cache. */
export class DeviceReader implements SectorReader {
  readonly name: string;
  readonly size: number;
  readonly sectorSize: number;
  readonly device: BlockDevice;

  constructor(path: string) {
    this.device = BlockDevice.open(path, { direct: true });
    this.name = path;
    try {
      this.size = this.device.size();
      this.sectorSize = this.device.logicalSectorSize();
    } catch (e) {
      this.device.close();
      throw e;
    }
  }

  read(buffer: Buffer, length: number, offset: number): Promise<number> {
    return this.device.read(buffer, length, offset);
  }

  close(): void {
    this.device.close();
  }
}

interface Part {
  path: string;
  start: number;
  size: number;
  fd: number;
  direct: boolean;
}

const DIRECT_ALIGN = 4096;

/**
 * The files of a finished image (one raw file or a split set) read as one
 * stream, bypassing the page cache: O_DIRECT where the file system allows it,
 * otherwise after dropping the file's cached pages.
 */
export class ImageSetReader implements SectorReader {
  readonly name: string;
  readonly size: number;
  readonly sectorSize = 512;
  private readonly parts: Part[] = [];

  constructor(files: { path: string; size: number }[]) {
    this.name = files[0]?.path ?? '(empty image)';
    let start = 0;
    try {
      for (const f of files) {
        this.parts.push({ ...openBypassingCache(f.path), path: f.path, start, size: f.size });
        start += f.size;
      }
    } catch (e) {
      this.close();
      throw e;
    }
    this.size = start;
  }

  async read(buffer: Buffer, length: number, offset: number): Promise<number> {
    const part = this.parts.find((p) => offset >= p.start && offset < p.start + p.size);
    if (!part) return 0;
    const want = Math.min(length, part.start + part.size - offset);
    const at = offset - part.start;
    // O_DIRECT needs aligned lengths; a file's unaligned tail comes back short at EOF.
    const ask = part.direct && at % DIRECT_ALIGN === 0 ? Math.min(buffer.length, Math.ceil(want / DIRECT_ALIGN) * DIRECT_ALIGN) : want;
    try {
      const n = await native().readAt(part.fd, buffer, ask, at);
      return Math.min(n, want);
    } catch (e) {
      throw isNativeError(e) ? new DeviceIoError(part.path, e.syscall, e.errno, at) : e;
    }
  }

  close(): void {
    for (const p of this.parts.splice(0)) native().close(p.fd);
  }
}

function openBypassingCache(path: string): { fd: number; direct: boolean } {
  try {
    return { fd: native().openReadOnly(path, true, false), direct: true };
  } catch (e) {
    if (!isNativeError(e) || e.errno !== 22) throw isNativeError(e) ? new DeviceIoError(path, e.syscall, e.errno) : e;
  }
  // EINVAL: this file system has no O_DIRECT. Drop the cached pages instead.
  let fd: number;
  try {
    fd = native().openReadOnly(path, false, false);
    native().dropCache(fd);
  } catch (e) {
    throw isNativeError(e) ? new DeviceIoError(path, e.syscall, e.errno) : e;
  }
  return { fd, direct: false };
}
