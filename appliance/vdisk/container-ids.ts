// Stage: recorded (virtual disks). The identifiers a VHD, VHDX or VDI
// container carries in its own header, for the record and the E01 serial:
// QEMU's `qemu-img info` gives none of them. These are a few fixed-offset
// fields, read with bounded reads of a file already held to the folder; guest
// data is never read this way. A field that is absent, zero or fails its
// checksum is left out, not guessed.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { CustosError } from '../errors.js';
import type { VirtualFormat } from './qemu-info.js';

export interface ContainerId {
  /** What the identifier is, as the format's specification names it. */
  name: string;
  /** Lower-case hex in the 8-4-4-4-12 form the format's own tools print. */
  value: string;
}

/** Layouts: docs/virtual-disks.md, "Identifiers". */
const VHD_COOKIE = 'conectix';
const VHD_UNIQUE_ID = 68;
const VHDX_HEADERS = [64 * 1024, 128 * 1024];
const VHDX_REGION_TABLE = 192 * 1024;
const VHDX_METADATA_REGION = '8b7ca206-4790-4b9a-b8fe-575f050f886e';
const VHDX_PAGE83 = 'beca12ab-b2e6-4523-93ef-c309e000c746';
const VDI_SIGNATURE = 0xbeda107f;
/** VirtualBox's creation UUID and, for a differencing image, its parent's (the linkage UUID); the modification UUIDs beside them change with every write. */
const VDI_IDS: [string, number][] = [
  ['VDI UUID', 0x188],
  ['VDI parent UUID', 0x1a8],
];

/** A file read only in bounded pieces (at most 64 KiB at a time), never past its end. */
export class Bounded {
  readonly size: number;
  constructor(private readonly fd: number) {
    this.size = fstatSync(fd).size;
  }
  /** `length` bytes at `offset`, or null if the file is shorter. */
  at(offset: number, length: number): Buffer | null {
    if (offset < 0 || length > 64 * 1024 || offset + length > this.size) return null;
    const b = Buffer.alloc(length);
    return readSync(this.fd, b, 0, length, offset) === length ? b : null;
  }
}

export function isZero(b: Buffer): boolean {
  return b.every((x) => x === 0);
}

/** A GUID as stored big-endian (VHD): the bytes in order. */
export function guidBe(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** A GUID as Windows stores it (VHDX, VDI): the first three fields little-endian. */
export function guidLe(b: Buffer): string {
  const swapped = Buffer.concat([
    Buffer.from(b.subarray(0, 4)).reverse(),
    Buffer.from(b.subarray(4, 6)).reverse(),
    Buffer.from(b.subarray(6, 8)).reverse(),
    b.subarray(8, 16),
  ]);
  return guidBe(swapped);
}

const CRC32C_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  return c >>> 0;
});

/** CRC-32C (Castagnoli), the checksum of VHDX headers and region tables. */
export function crc32c(b: Buffer): number {
  let c = 0xffffffff;
  for (const x of b) c = (CRC32C_TABLE[(c ^ x) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A 4 KiB VHDX structure whose checksum (at offset 4, computed with that field zero) holds. */
export function checksummed(b: Buffer | null): Buffer | null {
  if (!b) return null;
  const copy = Buffer.from(b);
  const want = copy.readUInt32LE(4);
  copy.writeUInt32LE(0, 4);
  return crc32c(copy) === want ? b : null;
}

/** The footer is the last 512 bytes; a dynamic disk has a copy at offset 0. */
export function vhdFooter(f: Bounded): Buffer | undefined {
  return [f.at(f.size - 512, 512), f.at(0, 512)].find((b): b is Buffer => b?.subarray(0, 8).toString('latin1') === VHD_COOKIE);
}

function vhd(f: Bounded): ContainerId[] {
  const id = vhdFooter(f)?.subarray(VHD_UNIQUE_ID, VHD_UNIQUE_ID + 16);
  return id && !isZero(id) ? [{ name: 'VHD unique id', value: guidBe(id) }] : [];
}

/** Where a region of a VHDX lies in the file, by its GUID in the region table. */
export function vhdxRegion(f: Bounded, guid: string): { offset: number; length: number } | null {
  const regions = checksummed(f.at(VHDX_REGION_TABLE, 64 * 1024));
  if (!regions || regions.subarray(0, 4).toString('latin1') !== 'regi') return null;
  const count = Math.min(regions.readUInt32LE(8), 2047);
  for (let i = 0; i < count; i++) {
    const e = 16 + i * 32;
    if (guidLe(regions.subarray(e, e + 16)) === guid) return { offset: Number(regions.readBigUInt64LE(e + 16)), length: regions.readUInt32LE(e + 24) };
  }
  return null;
}

/** Where one metadata item of a VHDX lies in the file: the region table names the metadata region, its table the item. */
export function vhdxMetadataItem(f: Bounded, item: string): { offset: number; length: number } | null {
  const base = vhdxRegion(f, VHDX_METADATA_REGION)?.offset;
  const table = base === undefined ? null : f.at(base, 64 * 1024);
  if (base === undefined || !table || table.subarray(0, 8).toString('latin1') !== 'metadata') return null;
  const items = Math.min(table.readUInt16LE(10), 2047);
  for (let j = 0; j < items; j++) {
    const m = 32 + j * 32;
    if (guidLe(table.subarray(m, m + 16)) === item) return { offset: base + table.readUInt32LE(m + 16), length: table.readUInt32LE(m + 20) };
  }
  return null;
}

function vhdxPage83(f: Bounded): string | null {
  const item = vhdxMetadataItem(f, VHDX_PAGE83);
  const id = item && item.length >= 16 ? f.at(item.offset, 16) : null;
  return id && !isZero(id) ? guidLe(id) : null;
}

/** The current header's DataWriteGuid: of the two headers, the valid one with the higher sequence number. */
export function vhdxDataWriteGuid(f: Bounded): string | null {
  const headers = VHDX_HEADERS.map((o) => checksummed(f.at(o, 4096))).filter((h): h is Buffer => h?.subarray(0, 4).toString('latin1') === 'head');
  const data = headers.sort((a, b) => (b.readBigUInt64LE(8) > a.readBigUInt64LE(8) ? 1 : -1))[0]?.subarray(32, 48);
  return data && !isZero(data) ? guidLe(data) : null;
}

function vhdx(f: Bounded): ContainerId[] {
  const ids: ContainerId[] = [];
  // DataWriteGuid is what libvhdi calls the identifier (and a child's parent_linkage names); the Page 83 id is Hyper-V's DiskIdentifier.
  const data = vhdxDataWriteGuid(f);
  if (data) ids.push({ name: 'VHDX data write GUID', value: data });
  const disk = vhdxPage83(f);
  if (disk) ids.push({ name: 'VHDX virtual disk id', value: disk });
  return ids;
}

function vdi(f: Bounded): ContainerId[] {
  const h = f.at(0, 0x200);
  if (!h || h.readUInt32LE(0x40) !== VDI_SIGNATURE) return [];
  return VDI_IDS.map(([name, at]) => ({ name, g: h.subarray(at, at + 16) }))
    .filter((x) => !isZero(x.g))
    .map((x) => ({ name: x.name, value: guidLe(x.g) }));
}

const READERS: Partial<Record<VirtualFormat, (f: Bounded) => ContainerId[]>> = { vpc: vhd, vhdx, vdi };

/** The identifiers in a container's header; none for formats whose ids QEMU reports (VMDK) or that have none. */
export function containerIds(file: string, format: VirtualFormat, shown: string): ContainerId[] {
  const read = READERS[format];
  if (!read) return [];
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new CustosError('EVDISKREAD', `${shown}: cannot read its header: ${(e as Error).message}`);
  }
  try {
    return read(new Bounded(fd));
  } finally {
    closeSync(fd);
  }
}
