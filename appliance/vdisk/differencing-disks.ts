// Stage: found (virtual disks). What a differencing disk (a Hyper-V .avhdx,
// a VHD child) says of its parent and of its own blocks, read with bounded
// reads from its metadata, headers, BAT and sector bitmaps ([MS-VHDX] v1.0,
// Microsoft's VHD specification; docs/virtual-disks.md). QEMU 7.2 cannot read
// a VHDX child and reads a VHD child without its parent; libvhdi's vhdimount
// reads both over their parents, and custos checks here what that reader relies
// on: which file it opens as the parent (the last part of the child's parent
// path, beside the child, as vhdimount takes it), which parent the child was
// made on (VHDX parent_linkage, VHD parent unique id), and that no block is one
// libvhdi 20210425 reads differently from the specification: a VHDX payload
// block in state ZERO, UNMAPPED or UNDEFINED (libvhdi takes it from the
// parent; ZERO means zeros), a VHD sector bitmap byte that is neither all set
// nor all clear (libvhdi's unmasked shift misreads its clear bits).
import { closeSync, openSync } from 'node:fs';
import { CustosError } from '../errors.js';
import { safeText } from '../sanitize.js';
import { Bounded, guidBe, guidLe, isZero, vhdFooter, vhdxDataWriteGuid, vhdxMetadataItem, vhdxRegion } from './container-ids.js';

const ITEMS = {
  fileParameters: 'caa16737-fa36-4d43-b3b6-33f0aa44e76b',
  virtualDiskSize: '2fa54224-cd1b-4876-b211-5dbed83bf4b8',
  logicalSector: '8141bf1d-a96f-4709-ba47-f233a8faab5f',
  parentLocator: 'a8d35f2d-b30b-454d-abf7-d3d84834ab0c',
};
const BAT_REGION = '2dc27766-f623-4200-9d64-115e9bfd4a08';
const VHDX_LOCATOR_TYPE = 'b04aefb7-d19e-4a81-b789-25b8e9445913';
const HAS_PARENT = 2;
/** The keys vhdimount takes the parent's name from, first found first. */
const PATH_KEYS = ['absolute_win32_path', 'volume_path', 'relative_path'] as const;
const MiB = 1024 * 1024;
/** Payload block states libvhdi reads from the parent although the specification says otherwise or leaves them undefined. */
const MISREAD_STATES: Record<number, string> = { 1: 'UNDEFINED', 2: 'ZERO', 3: 'UNMAPPED' };

export interface Differencing {
  format: 'vhdx' | 'vpc';
  virtualSize: number;
  /** The parent's identity as the child names it, lower case: a VHDX's DataWriteGuid (parent_linkage), a VHD's unique id. */
  linkage: string;
  /** What the linkage is called in the record. */
  linkageName: 'VHDX parent data write GUID' | 'VHD parent unique id';
  /** The parent's file name as the reader takes it (unsanitized). */
  parentName: string;
  /** This file's blocks: held whole, held in part (the rest from the parent), not held. */
  blocks: { present: number; partial: number; notPresent: number };
}

function refuse(shown: string, why: string, format = 'VHDX'): never {
  throw new CustosError(
    'EVDISKFORMAT',
    `${shown} is a ${format} differencing disk ${why}: refused, nothing read; merge the chain in its hypervisor (Hyper-V's Merge-VHD) onto a copy, or image the parent alone, and give custos the result`,
  );
}

/** The parent locator's key/value pairs (UTF-16LE), bounded by the item. */
function locatorEntries(f: Bounded, shown: string): Map<string, string> {
  const item = vhdxMetadataItem(f, ITEMS.parentLocator);
  const b = item && item.length >= 20 && item.length <= 64 * 1024 ? f.at(item.offset, item.length) : null;
  if (!b) return refuse(shown, 'without a readable parent locator');
  if (guidLe(b.subarray(0, 16)) !== VHDX_LOCATOR_TYPE) return refuse(shown, 'whose parent locator is not of the VHDX type');
  const count = b.readUInt16LE(18);
  const out = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const e = 20 + i * 12;
    if (e + 12 > b.length) return refuse(shown, 'whose parent locator runs past its item');
    const [ko, vo, kl, vl] = [b.readUInt32LE(e), b.readUInt32LE(e + 4), b.readUInt16LE(e + 8), b.readUInt16LE(e + 10)];
    if (ko + kl > b.length || vo + vl > b.length) return refuse(shown, 'whose parent locator points past its item');
    out.set(b.toString('utf16le', ko, ko + kl), b.toString('utf16le', vo, vo + vl));
  }
  return out;
}

/** The name vhdimount opens beside the child: what follows the last backslash of the path it takes. */
function fileName(p: string, shown: string, format: string): string {
  const name = p.split('\\').pop() ?? '';
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0'))
    return refuse(shown, `whose parent is named "${safeText(name, 200)}", not a file name`, format);
  return name;
}

/** The VHDX parent's name: from the first path vhdimount looks for; every path the locator gives must name the same file. */
function parentName(paths: Map<string, string>, shown: string): string {
  const key = PATH_KEYS.find((k) => paths.has(k));
  if (!key) return refuse(shown, 'whose parent locator gives no path to its parent');
  const names = new Set(PATH_KEYS.filter((k) => paths.has(k)).map((k) => (paths.get(k) ?? '').split('\\').pop() ?? ''));
  if (names.size > 1)
    return refuse(
      shown,
      `whose parent locator names different files (${[...names].map((n) => `"${safeText(n, 100)}"`).join(', ')}): which one is its parent is not certain`,
    );
  return fileName(paths.get(key) ?? '', shown, 'VHDX');
}

function u32Item(f: Bounded, id: string): number | null {
  const item = vhdxMetadataItem(f, id);
  return item && item.length >= 4 ? (f.at(item.offset, 4)?.readUInt32LE(0) ?? null) : null;
}

/** Counts the payload blocks by state, refusing states libvhdi would misread. */
function census(f: Bounded, shown: string, size: number, blockSize: number, sector: number): Differencing['blocks'] {
  const bat = vhdxRegion(f, BAT_REGION);
  if (!bat) return refuse(shown, 'without a BAT region');
  const chunkRatio = (2 ** 23 * sector) / blockSize;
  const payload = Math.ceil(size / blockSize);
  const entries = payload + Math.floor((payload - 1) / chunkRatio);
  if (entries * 8 > bat.length) return refuse(shown, 'whose BAT is smaller than its disk needs');
  const counts = { present: 0, partial: 0, notPresent: 0 };
  const misread = new Map<string, number>();
  const piece = 8192;
  for (let first = 0; first < entries; first += piece) {
    const n = Math.min(piece, entries - first);
    const b = f.at(bat.offset + first * 8, n * 8);
    if (!b) return refuse(shown, 'whose BAT runs past the end of the file');
    for (let i = 0; i < n; i++) {
      const index = first + i;
      if ((index + 1) % (chunkRatio + 1) === 0) continue; // a sector bitmap entry
      const entry = b.readBigUInt64LE(i * 8);
      const state = Number(entry & 7n);
      if (state === 6) counts.present++;
      else if (state === 7) counts.partial++;
      else if (state === 0) counts.notPresent++;
      else {
        const name = MISREAD_STATES[state] ?? `reserved state ${state}`;
        misread.set(name, (misread.get(name) ?? 0) + 1);
        continue;
      }
      if (state >= 6 && Number(entry >> 20n) * MiB + blockSize > f.size) return refuse(shown, `whose block ${index} lies past the end of the file`);
    }
  }
  if (misread.size > 0) {
    const list = [...misread].map(([s, n]) => `${n} in state ${s}`).join(', ');
    return refuse(shown, `with payload blocks (${list}) that libvhdi, its only reader here, would read from the parent rather than as [MS-VHDX] defines them`);
  }
  return counts;
}

/** A VHDX child: null unless its file parameters say HasParent. */
function vhdxChild(f: Bounded, shown: string): Differencing | null {
  const params = vhdxMetadataItem(f, ITEMS.fileParameters);
  const p = params && params.length >= 8 ? f.at(params.offset, 8) : null;
  if (!p || !(p.readUInt32LE(4) & HAS_PARENT)) return null;
  const blockSize = p.readUInt32LE(0);
  const sector = u32Item(f, ITEMS.logicalSector);
  const sizeItem = vhdxMetadataItem(f, ITEMS.virtualDiskSize);
  const size = sizeItem && sizeItem.length >= 8 ? Number(f.at(sizeItem.offset, 8)?.readBigUInt64LE(0) ?? 0n) : 0;
  if (blockSize < MiB || blockSize > 256 * MiB || (blockSize & (blockSize - 1)) !== 0) return refuse(shown, `with a block size of ${blockSize} bytes`);
  if (sector !== 512 && sector !== 4096) return refuse(shown, `with a logical sector size of ${sector ?? 'none'}`);
  if (!Number.isSafeInteger(size) || size <= 0 || size % sector !== 0) return refuse(shown, `with a virtual size of ${size} bytes`);
  const paths = locatorEntries(f, shown);
  const linkage = (paths.get('parent_linkage') ?? '').toLowerCase().replace(/^\{(.*)\}$/, '$1');
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(linkage)) return refuse(shown, 'whose parent locator has no parent_linkage GUID');
  const name = parentName(paths, shown);
  const blocks = census(f, shown, size, blockSize, sector);
  return { format: 'vhdx', virtualSize: size, linkage, linkageName: 'VHDX parent data write GUID', parentName: name, blocks };
}

const VHD_DIFFERENCING = 4;

/** A VHD child (footer disk type 4): its dynamic header names the parent; every sector bitmap byte must be all set or all clear. */
function vhdChild(f: Bounded, shown: string): Differencing | null {
  const footer = vhdFooter(f);
  if (footer?.readUInt32BE(60) !== VHD_DIFFERENCING) return null;
  const header = f.at(Number(footer.readBigUInt64BE(16)), 1024);
  if (header?.subarray(0, 8).toString('latin1') !== 'cxsparse') return refuse(shown, 'without a dynamic header', 'VHD');
  const size = Number(footer.readBigUInt64BE(48));
  const [batAt, entries, blockSize] = [Number(header.readBigUInt64BE(16)), header.readUInt32BE(28), header.readUInt32BE(32)];
  if (blockSize < 4096 || (blockSize & (blockSize - 1)) !== 0) return refuse(shown, `with a block size of ${blockSize} bytes`, 'VHD');
  if (!Number.isSafeInteger(size) || size <= 0 || size % 512 !== 0 || entries < Math.ceil(size / blockSize))
    return refuse(shown, `with a size of ${size} bytes its BAT does not cover`, 'VHD');
  const id = header.subarray(40, 56);
  if (isZero(id)) return refuse(shown, 'without its parent unique id', 'VHD');
  const name = fileName(Buffer.from(header.subarray(64, 576)).swap16().toString('utf16le').replace(/\0.*$/s, ''), shown, 'VHD');
  const bitmapBytes = Math.ceil(blockSize / 512 / 8 / 512) * 512;
  const blocks = { present: 0, partial: 0, notPresent: 0 };
  let mixed = 0;
  const used = Math.ceil(size / blockSize);
  for (let first = 0; first < used; first += 16384) {
    const n = Math.min(16384, used - first);
    const bat = f.at(batAt + first * 4, n * 4);
    if (!bat) return refuse(shown, 'whose BAT runs past the end of the file', 'VHD');
    for (let i = 0; i < n; i++) {
      const sector = bat.readUInt32BE(i * 4);
      if (sector === 0xffffffff) {
        blocks.notPresent++;
        continue;
      }
      const bitmap = readBitmap(f, sector * 512, bitmapBytes, blockSize / 512 / 8);
      if (!bitmap || sector * 512 + bitmapBytes + blockSize > f.size) return refuse(shown, `whose block ${first + i} lies past the end of the file`, 'VHD');
      if (bitmap.every((b) => b === 0xff)) blocks.present++;
      else blocks.partial++;
      mixed += bitmap.filter((b) => b !== 0 && b !== 0xff).length;
    }
  }
  if (mixed > 0)
    return refuse(
      shown,
      `whose sector bitmaps hold ${mixed} byte(s) with set and clear bits together (writes of less than 4 KiB), which libvhdi, its only reader here, misreads`,
      'VHD',
    );
  return { format: 'vpc', virtualSize: size, linkage: guidBe(id), linkageName: 'VHD parent unique id', parentName: name, blocks };
}

/** A block's sector bitmap (one bit per sector, the first sector in the high bit), in bounded pieces. */
function readBitmap(f: Bounded, at: number, bytes: number, used: number): Buffer | null {
  const parts: Buffer[] = [];
  for (let o = 0; o < bytes; o += 64 * 1024) {
    const b = f.at(at + o, Math.min(64 * 1024, bytes - o));
    if (!b) return null;
    parts.push(b);
  }
  return Buffer.concat(parts).subarray(0, used);
}

/** A differencing disk's parent link and blocks; null for any other file. Refuses one whose link or blocks cannot be relied on. */
export function differencing(file: string, shown: string): Differencing | null {
  const fd = openSync(file, 'r');
  try {
    const f = new Bounded(fd);
    return f.at(0, 8)?.toString('latin1') === 'vhdxfile' ? vhdxChild(f, shown) : vhdChild(f, shown);
  } finally {
    closeSync(fd);
  }
}

/** The identity a child names its parent by: a VHDX's DataWriteGuid, a VHD's unique id; null if the file is not of that format or has none. */
export function parentIdentity(file: string, format: Differencing['format']): string | null {
  const fd = openSync(file, 'r');
  try {
    const f = new Bounded(fd);
    const isVhdx = f.at(0, 8)?.toString('latin1') === 'vhdxfile';
    if (format === 'vhdx') return isVhdx ? vhdxDataWriteGuid(f) : null;
    const id = isVhdx ? null : vhdFooter(f)?.subarray(68, 84);
    return id && !isZero(id) ? guidBe(id) : null;
  } finally {
    closeSync(fd);
  }
}
