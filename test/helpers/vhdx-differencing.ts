// A VHDX differencing disk (Hyper-V's .avhdx) over a parent VHDX, laid out
// from Microsoft's [MS-VHDX] v1.0: file identifier, two headers and two region
// tables (CRC-32C), an empty log, a metadata region whose file parameters say
// HasParent and whose parent locator names the parent by its DataWriteGuid
// (parent_linkage) and paths, the BAT with a sector bitmap entry after every
// chunk of payload entries, then 1 MiB payload blocks and the sector bitmap
// block (bit n of the bitmap, least significant bit first, is sector n: 1 reads
// from this file, 0 from the parent). No Debian or npm tool writes one (QEMU
// cannot), so tests build it here and compute the disk it must read as.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { crc32c } from '../../appliance/vdisk/container-ids.js';
import type { DifferencingWrite } from './vhd-differencing.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const SECTOR = 512;
const BLOCK = MiB;
/** Payload blocks per sector bitmap block: 2^23 sectors of 512 bytes over 1 MiB blocks. */
const CHUNK_RATIO = (2 ** 23 * SECTOR) / BLOCK;
const LOG_AT = MiB;
const METADATA_AT = 2 * MiB;
const BAT_AT = 3 * MiB;
const FIRST_BLOCK_AT = 4 * MiB;

const STATE = { notPresent: 0, zero: 2, unmapped: 3, fullyPresent: 6, partiallyPresent: 7 } as const;
const GUIDS = {
  bat: '2dc27766-f623-4200-9d64-115e9bfd4a08',
  metadata: '8b7ca206-4790-4b9a-b8fe-575f050f886e',
  fileParameters: 'caa16737-fa36-4d43-b3b6-33f0aa44e76b',
  virtualDiskSize: '2fa54224-cd1b-4876-b211-5dbed83bf4b8',
  page83: 'beca12ab-b2e6-4523-93ef-c309e000c746',
  logicalSector: '8141bf1d-a96f-4709-ba47-f233a8faab5f',
  physicalSector: 'cda348c7-445d-4471-9cc9-e9885251c556',
  parentLocator: 'a8d35f2d-b30b-454d-abf7-d3d84834ab0c',
  vhdxLocatorType: 'b04aefb7-d19e-4a81-b789-25b8e9445913',
};

/** A GUID string as Windows stores it: the first three fields little-endian. */
export function guidBytes(g: string): Buffer {
  const b = Buffer.from(g.replace(/[{}-]/g, ''), 'hex');
  return Buffer.concat([
    Buffer.from(b.subarray(0, 4)).reverse(),
    Buffer.from(b.subarray(4, 6)).reverse(),
    Buffer.from(b.subarray(6, 8)).reverse(),
    b.subarray(8),
  ]);
}

function guidString(b: Buffer): string {
  const h = guidBytes(b.toString('hex')).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A structure whose CRC-32C sits at offset 4, computed with that field zero. */
function sealed(b: Buffer): Buffer {
  b.writeUInt32LE(0, 4);
  b.writeUInt32LE(crc32c(b), 4);
  return b;
}

/** What a VHDX says of itself: its size and its DataWriteGuid (the current header's, as a GUID string). */
export function vhdxIdentity(file: string): { size: number; dataWriteGuid: string } {
  const f = readFileSync(file);
  const headers = [64 * KiB, 128 * KiB].map((o) => f.subarray(o, o + 4 * KiB)).filter((h) => h.subarray(0, 4).toString('latin1') === 'head');
  const current = headers.sort((a, b) => Number(b.readBigUInt64LE(8) - a.readBigUInt64LE(8)))[0];
  if (!current) throw new Error(`${file}: no VHDX header`);
  const regions = f.subarray(192 * KiB, 256 * KiB);
  let size = -1;
  for (let i = 0; i < regions.readUInt32LE(8); i++) {
    const e = 16 + i * 32;
    if (guidString(regions.subarray(e, e + 16)) !== GUIDS.metadata) continue;
    const base = Number(regions.readBigUInt64LE(e + 16));
    for (let j = 0; j < f.readUInt16LE(base + 10); j++) {
      const m = base + 32 + j * 32;
      if (guidString(f.subarray(m, m + 16)) === GUIDS.virtualDiskSize) size = Number(f.readBigUInt64LE(base + f.readUInt32LE(m + 16)));
    }
  }
  if (size < 0) throw new Error(`${file}: no virtual disk size`);
  return { size, dataWriteGuid: guidString(current.subarray(32, 48)) };
}

export interface VhdxChildOptions {
  /** The parent's file name in the locator's paths; the parent's own by default. */
  parentName?: string;
  /** The DataWriteGuid the child names as parent_linkage; the parent's by default (another one makes a broken link). */
  parentLinkage?: string;
  /** Another file name in relative_path alone (the other paths keep parentName): a locator that disagrees with itself. */
  relativeName?: string;
  /** Payload blocks (by index) left in state PAYLOAD_BLOCK_ZERO: zeros, whatever the parent holds. */
  zeroBlocks?: number[];
  /** Payload blocks left in state PAYLOAD_BLOCK_UNMAPPED. */
  unmappedBlocks?: number[];
}

function metadataRegion(size: number, diskId: Buffer, locator: Buffer): Buffer {
  const u32 = (v: number) => Buffer.from(new Uint32Array([v]).buffer);
  const u64 = Buffer.alloc(8);
  u64.writeBigUInt64LE(BigInt(size));
  const params = Buffer.alloc(8);
  params.writeUInt32LE(BLOCK, 0);
  params.writeUInt32LE(2, 4); // HasParent
  // [item, data, flags]: IsVirtualDisk = 2, IsRequired = 4.
  const items: [string, Buffer, number][] = [
    [GUIDS.fileParameters, params, 4],
    [GUIDS.virtualDiskSize, u64, 6],
    [GUIDS.page83, diskId, 6],
    [GUIDS.logicalSector, u32(SECTOR), 6],
    [GUIDS.physicalSector, u32(4096), 6],
    [GUIDS.parentLocator, locator, 4],
  ];
  const region = Buffer.alloc(MiB);
  region.write('metadata', 0, 'latin1');
  region.writeUInt16LE(items.length, 10);
  let at = 64 * KiB;
  items.forEach(([guid, data, flags], i) => {
    const e = 32 + i * 32;
    guidBytes(guid).copy(region, e);
    region.writeUInt32LE(at, e + 16);
    region.writeUInt32LE(data.length, e + 20);
    region.writeUInt32LE(flags, e + 24);
    data.copy(region, at);
    at += Math.ceil(data.length / 8) * 8;
  });
  return region;
}

/** The parent locator item: type VHDX, then key/value pairs in UTF-16LE. */
function parentLocator(entries: [string, string][]): Buffer {
  const head = Buffer.alloc(20 + entries.length * 12);
  guidBytes(GUIDS.vhdxLocatorType).copy(head, 0);
  head.writeUInt16LE(entries.length, 18);
  const strings: Buffer[] = [];
  let at = head.length;
  entries.forEach(([k, v], i) => {
    const [key, value] = [Buffer.from(k, 'utf16le'), Buffer.from(v, 'utf16le')];
    const e = 20 + i * 12;
    head.writeUInt32LE(at, e);
    head.writeUInt32LE(at + key.length, e + 4);
    head.writeUInt16LE(key.length, e + 8);
    head.writeUInt16LE(value.length, e + 10);
    strings.push(key, value);
    at += key.length + value.length;
  });
  return Buffer.concat([head, ...strings]);
}

/** Writes `child` beside the parent: the parent's disk with `writes` on top. Returns the child's DataWriteGuid. */
export function writeDifferencingVhdx(parent: string, child: string, writes: DifferencingWrite[], o: VhdxChildOptions = {}): string {
  const { size, dataWriteGuid } = vhdxIdentity(parent);
  const blocks = Math.ceil(size / BLOCK);
  const sectors = new Map<number, Buffer>();
  for (const w of writes) {
    if (w.offset % SECTOR !== 0 || w.data.length % SECTOR !== 0) throw new Error('writes are whole sectors');
    for (let at = 0; at < w.data.length; at += SECTOR) sectors.set((w.offset + at) / SECTOR, w.data.subarray(at, at + SECTOR));
  }
  const perBlock = BLOCK / SECTOR;
  const state = new Array<number>(blocks).fill(STATE.notPresent);
  for (const lba of sectors.keys()) state[Math.floor(lba / perBlock)] = STATE.partiallyPresent;
  state.forEach((s, b) => {
    if (s !== STATE.partiallyPresent) return;
    let all = true;
    for (let l = b * perBlock; l < (b + 1) * perBlock && all; l++) all = sectors.has(l);
    if (all) state[b] = STATE.fullyPresent;
  });
  for (const b of o.zeroBlocks ?? []) state[b] = STATE.zero;
  for (const b of o.unmappedBlocks ?? []) state[b] = STATE.unmapped;

  const chunks = Math.ceil(blocks / CHUNK_RATIO);
  const batBytes = Math.ceil((chunks * (CHUNK_RATIO + 1) * 8) / MiB) * MiB;
  const blockAt = new Map<number, number>();
  let next = FIRST_BLOCK_AT;
  state.forEach((s, b) => {
    if (s !== STATE.fullyPresent && s !== STATE.partiallyPresent) return;
    blockAt.set(b, next);
    next += BLOCK;
  });
  const bitmapAt = [...Array(chunks).keys()].map(() => {
    const at = next;
    next += MiB;
    return at;
  });
  const out = Buffer.alloc(next);

  out.write('vhdxfile', 0, 'latin1');
  out.write('custos test fixture', 8, 'utf16le');
  const childGuid = randomBytes(16);
  for (const [i, at] of [64 * KiB, 128 * KiB].entries()) {
    const h = Buffer.alloc(4 * KiB);
    h.write('head', 0, 'latin1');
    h.writeBigUInt64LE(BigInt(i + 1), 8); // SequenceNumber: the second header is current
    randomBytes(16).copy(h, 16); // FileWriteGuid
    childGuid.copy(h, 32); // DataWriteGuid
    h.writeUInt16LE(1, 66); // Version; LogGuid zero: nothing to replay
    h.writeUInt32LE(MiB, 68); // LogLength
    h.writeBigUInt64LE(BigInt(LOG_AT), 72);
    sealed(h).copy(out, at);
  }
  const rt = Buffer.alloc(64 * KiB);
  rt.write('regi', 0, 'latin1');
  rt.writeUInt32LE(2, 8);
  for (const [i, [guid, at, len]] of (
    [
      [GUIDS.bat, BAT_AT, batBytes],
      [GUIDS.metadata, METADATA_AT, MiB],
    ] as const
  ).entries()) {
    const e = 16 + i * 32;
    guidBytes(guid).copy(rt, e);
    rt.writeBigUInt64LE(BigInt(at), e + 16);
    rt.writeUInt32LE(len, e + 24);
    rt.writeUInt32LE(1, e + 28); // Required
  }
  sealed(rt);
  rt.copy(out, 192 * KiB);
  rt.copy(out, 256 * KiB);
  if (BAT_AT + batBytes > FIRST_BLOCK_AT) throw new Error('the BAT would overlap the blocks: make the disk smaller');

  const name = o.parentName ?? path.basename(parent);
  const locator = parentLocator([
    ['parent_linkage', `{${o.parentLinkage ?? dataWriteGuid}}`],
    ['relative_path', `.\\${o.relativeName ?? name}`],
    ['volume_path', `\\\\?\\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}\\VMs\\${name}`],
    ['absolute_win32_path', `C:\\VMs\\${name}`],
  ]);
  metadataRegion(size, randomBytes(16), locator).copy(out, METADATA_AT);

  const bat = out.subarray(BAT_AT, BAT_AT + batBytes);
  const entry = (index: number, s: number, at: number) => bat.writeBigUInt64LE(BigInt(s) | (BigInt(at / MiB) << 20n), index * 8);
  state.forEach((s, b) => entry(b + Math.floor(b / CHUNK_RATIO), s, blockAt.get(b) ?? 0));
  bitmapAt.forEach((at, c) => entry((c + 1) * (CHUNK_RATIO + 1) - 1, 6, at));
  for (const [lba, data] of sectors) {
    const b = Math.floor(lba / perBlock);
    const at = blockAt.get(b);
    if (at === undefined) continue; // a zero or unmapped block: its writes are dropped
    data.copy(out, at + (lba % perBlock) * SECTOR);
    const bit = lba % (CHUNK_RATIO * perBlock);
    const byte = (bitmapAt[Math.floor(lba / (CHUNK_RATIO * perBlock))] as number) + Math.floor(bit / 8);
    out[byte] = (out[byte] as number) | (1 << (bit % 8));
  }
  writeFileSync(child, out);
  return guidString(childGuid);
}

/** The disk the child must read as: the parent's bytes (a raw file) with the writes on top and zero blocks zeroed. */
export function expectedDisk(parentRaw: Buffer, writes: DifferencingWrite[], zeroBlocks: number[] = []): Buffer {
  const d = Buffer.from(parentRaw);
  for (const w of writes) w.data.copy(d, w.offset);
  for (const b of zeroBlocks) d.fill(0, b * BLOCK, (b + 1) * BLOCK);
  return d;
}
