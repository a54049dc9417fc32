// Which disk is the medium this running system booted from, proven by
// content. A volume label proves nothing (any disk can carry a copy of the
// custos ISO, a suspect's old stick too): the initramfs carries the SHA-256 and
// size of the kernel it was built with, and only a disk whose ISO 9660
// /boot/vmlinuz hashes to exactly that is the boot medium. Nothing is mounted;
// the volume's directory records are walked read-only and within fixed bounds,
// and a parse that goes wrong can only fail to prove, never prove.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BlockDevice } from './block-device.js';

/** 'boot-medium': holds this build's kernel; 'custos-image': says custos but is not proven; null: neither. */
export type CustosMedium = 'boot-medium' | 'custos-image' | null;

/** What the initramfs says of the kernel it was built with (`SHA256 SIZE`, written by build-iso.sh). */
export interface BootKernel {
  sha256: string;
  size: number;
}

/** The running system's own record of its kernel, in the initramfs; absent on a workstation, where no disk is looked at for it. */
export const BOOT_KERNEL_FILE = '/etc/custos/boot-kernel';

export function bootKernel(file = BOOT_KERNEL_FILE): BootKernel | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const m = /^([0-9a-f]{64}) (\d{1,10})\s*$/.exec(text);
  return m ? { sha256: m[1] as string, size: Number(m[2]) } : null;
}

const ISO_BLOCK = 2048;
const PVD_OFFSET = 16 * ISO_BLOCK;
/** A directory custos walks is at most this long; ours are a few KiB. */
const MAX_DIRECTORY = 1024 * 1024;
/** The kernel file hashed is at most this long (Debian's is about 8 MiB). */
const MAX_KERNEL = 64 * 1024 * 1024;

/** Reads `length` bytes at `offset`; null (or fewer bytes) where the medium ends or fails. */
export type ReadAt = (offset: number, length: number) => Buffer | null;

/** The primary volume descriptor at 32 KiB: type 1, "CD001", version 1, volume id CUSTOS. */
export function isCustosVolume(pvd: Buffer): boolean {
  if (pvd.length < ISO_BLOCK || pvd[0] !== 1 || pvd.toString('latin1', 1, 6) !== 'CD001' || pvd[6] !== 1) return false;
  return pvd.toString('latin1', 40, 72).trimEnd() === 'CUSTOS';
}

/** ISO 9660 names carry a ";1" version and a "." when there is no extension; Rock Ridge names are not needed here. */
function plainName(raw: Buffer): string {
  return raw.toString('latin1').replace(/;\d+$/, '').replace(/\.$/, '').toUpperCase();
}

interface Extent {
  offset: number;
  size: number;
  directory: boolean;
}

function extentOf(rec: Buffer, blockSize: number): Extent {
  return { offset: rec.readUInt32LE(2) * blockSize, size: rec.readUInt32LE(10), directory: ((rec[25] ?? 0) & 0x02) !== 0 };
}

/** The record named `name` in a directory's data; records never cross a logical block, a zero length skips to the next. */
function findInDirectory(data: Buffer, name: string, blockSize: number): Extent | null {
  let at = 0;
  while (at + 34 <= data.length) {
    const len = data[at] ?? 0;
    if (len === 0) {
      at = (Math.floor(at / blockSize) + 1) * blockSize;
      continue;
    }
    if (len < 34 || at + len > data.length) return null;
    const nameLen = data[at + 32] ?? 0;
    if (33 + nameLen > len) return null;
    if (plainName(data.subarray(at + 33, at + 33 + nameLen)) === name) return extentOf(data.subarray(at, at + len), blockSize);
    at += len;
  }
  return null;
}

/** Where the file at `names` (e.g. BOOT, VMLINUZ) lies in the volume, or null. Pure, so the fuzz test can feed it anything. */
export function isoFileExtent(read: ReadAt, names: string[]): { offset: number; size: number } | null {
  const pvd = read(PVD_OFFSET, ISO_BLOCK);
  if (!pvd || !isCustosVolume(pvd)) return null;
  const blockSize = pvd.readUInt16LE(128);
  if (blockSize !== 512 && blockSize !== 1024 && blockSize !== 2048) return null;
  let dir: Extent = extentOf(pvd.subarray(156, 190), blockSize);
  for (const [i, name] of names.entries()) {
    if (!dir.directory || dir.size > MAX_DIRECTORY) return null;
    const data = read(dir.offset, dir.size);
    if (!data || data.length !== dir.size) return null;
    const next = findInDirectory(data, name, blockSize);
    if (!next || next.directory !== i < names.length - 1) return null;
    dir = next;
  }
  return { offset: dir.offset, size: dir.size };
}

/** Reads the volume through `read` and says what it is against the running system's `kernel`. */
export function mediumVerdict(read: ReadAt, kernel: BootKernel): CustosMedium {
  const pvd = read(PVD_OFFSET, ISO_BLOCK);
  if (!pvd || !isCustosVolume(pvd)) return null;
  if (kernel.size > MAX_KERNEL) return 'custos-image';
  const file = isoFileExtent(read, ['BOOT', 'VMLINUZ']);
  if (!file || file.size !== kernel.size) return 'custos-image';
  const hash = createHash('sha256');
  for (let at = 0; at < file.size;) {
    const n = Math.min(4 * 1024 * 1024, file.size - at);
    const chunk = read(file.offset + at, n);
    if (!chunk || chunk.length !== n) return 'custos-image';
    hash.update(chunk);
    at += n;
  }
  return hash.digest('hex') === kernel.sha256 ? 'boot-medium' : 'custos-image';
}

/** Verdicts per attachment: a device is read once while it stays attached (diskseq is never reused within a boot). */
const verdicts = new Map<string, CustosMedium>();

/**
 * Looks at a whole disk once per attachment, through a read-only descriptor
 * (2 KiB at 32 KiB; the kernel file only on a custos volume); a disk that
 * cannot be read is neither. Only the appliance asks: there every disk is
 * already read-only when custos starts.
 */
export function custosMediumOf(disk: { devicePath: string; attachment: string }, kernel: BootKernel): CustosMedium {
  const key = `${disk.attachment} ${kernel.sha256}`;
  const known = verdicts.get(key);
  if (known !== undefined) return known;
  let verdict: CustosMedium = null;
  let dev: BlockDevice | null = null;
  try {
    dev = BlockDevice.open(disk.devicePath);
    const device = dev;
    verdict = mediumVerdict((offset, length) => {
      const b = Buffer.alloc(length);
      return b.subarray(0, device.readSyncAt(b, length, offset));
    }, kernel);
  } catch {
    verdict = null;
  } finally {
    dev?.close();
  }
  // An empty CD drive or a disk that failed to open is looked at again next time.
  if (dev !== null) verdicts.set(key, verdict);
  return verdict;
}
