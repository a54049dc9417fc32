// The native addon's interface (native/src), the only way to ioctls and
// O_DIRECT reads.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { existsSync } from 'node:fs';

/** What native/src exports; every call here maps to one syscall or ioctl, except adler32 and storeChunks (zlib's). */
export interface NativeAddon {
  openReadOnly(path: string, direct: boolean, exclusive: boolean): number;
  close(fd: number): void;
  dropCache(fd: number): void;
  getSize64(fd: number): number;
  getLogicalBlockSize(fd: number): number;
  getPhysicalBlockSize(fd: number): number;
  getReadOnly(fd: number): boolean;
  setReadOnly(fd: number, readOnly: boolean): void;
  allocAligned(size: number, alignment: number): Buffer;
  addressAlignment(view: Uint8Array, alignment: number): number;
  readAt(fd: number, buffer: Buffer, length: number, offset: number): Promise<number>;
  fdatasync(fd: number): Promise<number>;
  flushBuffers(fd: number): Promise<number>;
  /** zlib's Adler-32 of view[start, end), continuing from `seed` (1 for a new sum). */
  adler32(view: Uint8Array, start: number, end: number, seed: number): number;
  /** Stores the E01 chunks of block[0, length) on the thread pool (appliance/imaging/ewf/chunk-store.ts); mode 0 none, 1 empty, 2 fast, 3 best. */
  storeChunks(
    block: Uint8Array,
    length: number,
    chunkSize: number,
    mode: number,
    raw: Uint8Array,
    sizes: Uint32Array,
    adlers: Uint32Array,
  ): Promise<{ packed: Buffer; busyMs: number }>;
  /** SG_IO with data from the device (or none), only for CDBs on the read-only list (native/src/passthrough.cc); else rejects with code PASSTHROUGH_REFUSED. */
  scsiRead(fd: number, cdb: Uint8Array, dataIn: number, timeoutMs: number): Promise<ScsiAnswer>;
  /** NVME_IOCTL_ADMIN_CMD for the read-only admin opcodes only (Identify, Get Log Page, Get Features, Security Receive). */
  nvmeAdminRead(fd: number, opcode: number, nsid: number, cdw10to15: Uint32Array, dataIn: number, timeoutMs: number): Promise<NvmeAnswer>;
  /** The allowlist itself: null when the command would be sent, else why not. */
  passThroughAllowed(kind: 'scsi' | 'nvme-admin', command: Uint8Array, dataIn: number): string | null;
  /** flock(LOCK_EX), waiting; only on custos's own state files. */
  lockExclusive(fd: number): void;
  unlock(fd: number): void;
}

export interface ScsiAnswer {
  data: Buffer;
  sense: Buffer;
  /** SCSI status (2: CHECK CONDITION, the sense says why), host and driver status from sg_io_hdr. */
  status: number;
  hostStatus: number;
  driverStatus: number;
}

export interface NvmeAnswer {
  data: Buffer;
  /** The completion's status field; 0 is success. */
  status: number;
  result: number;
}

let loaded: NativeAddon | undefined;

/**
 * Loads the addon built by `npm run build:native`. CUSTOS_NATIVE overrides the
 * path (the single executable unpacks it next to itself).
 */
export function native(): NativeAddon {
  if (loaded) return loaded;
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [
    process.env['CUSTOS_NATIVE'],
    // from out/appliance/ and from appliance/ (the compiled tree mirrors the source tree)
    path.resolve(here, '../../native/build/Release/custos_native.node'),
    path.resolve(here, '../native/build/Release/custos_native.node'),
  ].filter((p): p is string => typeof p === 'string' && p.length > 0);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(`custos native addon not built (looked in ${candidates.join(', ')}); run npm run build`);
  }
  const require = createRequire(import.meta.url);
  loaded = require(found) as NativeAddon;
  return loaded;
}
