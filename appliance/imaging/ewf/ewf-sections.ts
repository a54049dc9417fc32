// The byte layout of EWF-E01 (EnCase 6) sections, as ewfacquire -f encase6
// writes them; see docs/e01.md. All integers are little-endian; every
// checksum is Adler-32, stored little-endian.
import { adler32 } from './adler32.js';

export const FILE_HEADER_SIZE = 13;
export const DESCRIPTOR_SIZE = 76;
export const VOLUME_BODY_SIZE = 1052;
export const TABLE_HEADER_SIZE = 24;
/** EnCase 6 tables hold at most this many chunk entries; past it a new sectors/table group starts. */
export const TABLE_MAX_ENTRIES = 65534;
/** Table entries are 31-bit offsets from the sectors descriptor. */
export const GROUP_MAX_BYTES = 0x7fffffff;
export const COMPRESSED_FLAG = 0x80000000;
export const ERROR2_HEADER_SIZE = 520;
export const DIGEST_BODY_SIZE = 80;
export const HASH_BODY_SIZE = 36;

const SIGNATURE = Buffer.from([0x45, 0x56, 0x46, 0x09, 0x0d, 0x0a, 0xff, 0x00]);

export type SectionType = 'header2' | 'header' | 'volume' | 'data' | 'sectors' | 'table' | 'table2' | 'error2' | 'digest' | 'hash' | 'next' | 'done';

export function fileHeader(segment: number): Buffer {
  const b = Buffer.alloc(FILE_HEADER_SIZE);
  SIGNATURE.copy(b, 0);
  b[8] = 1;
  b.writeUInt16LE(segment, 9);
  return b;
}

/** The segment number of a file header, or null when it is not an EWF-E01 header. */
export function parseFileHeader(b: Buffer): number | null {
  if (b.length < FILE_HEADER_SIZE || !b.subarray(0, 8).equals(SIGNATURE) || b[8] !== 1) return null;
  return b.readUInt16LE(9);
}

/** A section descriptor; `next` and `done` point at themselves with size 0. */
export function descriptor(type: SectionType, at: number, size: number): Buffer {
  const b = Buffer.alloc(DESCRIPTOR_SIZE);
  b.write(type, 0, 16, 'latin1');
  const last = type === 'next' || type === 'done';
  b.writeBigUInt64LE(BigInt(last ? at : at + size), 16);
  b.writeBigUInt64LE(BigInt(last ? 0 : size), 24);
  b.writeUInt32LE(adler32(b, 0, 72), 72);
  return b;
}

export interface Descriptor {
  type: string;
  next: number;
  size: number;
  checksumOk: boolean;
}

export function parseDescriptor(b: Buffer): Descriptor {
  const nul = b.indexOf(0, 0);
  return {
    type: b.toString('latin1', 0, nul < 0 || nul > 16 ? 16 : nul),
    next: Number(b.readBigUInt64LE(16)),
    size: Number(b.readBigUInt64LE(24)),
    checksumOk: b.readUInt32LE(72) === adler32(b, 0, 72),
  };
}

/** A whole section: its descriptor followed by `body`. */
export function section(type: SectionType, at: number, body: Buffer): Buffer {
  return Buffer.concat([descriptor(type, at, DESCRIPTOR_SIZE + body.length), body]);
}

export interface VolumeInfo {
  chunkCount: number;
  sectorsPerChunk: number;
  bytesPerSector: number;
  sectorCount: number;
  /** 0 removable, 1 fixed, 3 optical. */
  mediaType: number;
  /** 0x01 image, 0x02 physical. */
  mediaFlags: number;
  /** 0 none (also empty-block), 1 fast, 2 best. */
  compressionLevel: number;
  setIdentifier: Buffer;
}

/** Body of the `volume` section (first segment) and of the `data` section (later segments). */
export function volumeBody(v: VolumeInfo): Buffer {
  const b = Buffer.alloc(VOLUME_BODY_SIZE);
  b[0] = v.mediaType;
  b.writeUInt32LE(v.chunkCount, 4);
  b.writeUInt32LE(v.sectorsPerChunk, 8);
  b.writeUInt32LE(v.bytesPerSector, 12);
  b.writeBigUInt64LE(BigInt(v.sectorCount), 16);
  b[36] = v.mediaFlags;
  b[52] = v.compressionLevel;
  // Error granularity: bad sectors are reported per chunk.
  b.writeUInt32LE(v.sectorsPerChunk, 56);
  v.setIdentifier.copy(b, 64, 0, 16);
  b.writeUInt32LE(adler32(b, 0, 1048), 1048);
  return b;
}

export function parseVolumeBody(b: Buffer): VolumeInfo & { checksumOk: boolean } {
  return {
    mediaType: b[0] as number,
    chunkCount: b.readUInt32LE(4),
    sectorsPerChunk: b.readUInt32LE(8),
    bytesPerSector: b.readUInt32LE(12),
    sectorCount: Number(b.readBigUInt64LE(16)),
    mediaFlags: b[36] as number,
    compressionLevel: b[52] as number,
    setIdentifier: Buffer.from(b.subarray(64, 80)),
    checksumOk: b.readUInt32LE(1048) === adler32(b, 0, 1048),
  };
}

/** Body of `table` and `table2`: entries are offsets from `base` (the sectors descriptor), bit 31 set for compressed chunks. */
export function tableBody(base: number, entries: Uint32Array): Buffer {
  const b = Buffer.alloc(TABLE_HEADER_SIZE + entries.length * 4 + 4);
  b.writeUInt32LE(entries.length, 0);
  b.writeBigUInt64LE(BigInt(base), 8);
  b.writeUInt32LE(adler32(b, 0, 20), 20);
  for (let i = 0; i < entries.length; i++) b.writeUInt32LE(entries[i] as number, TABLE_HEADER_SIZE + i * 4);
  const end = TABLE_HEADER_SIZE + entries.length * 4;
  b.writeUInt32LE(adler32(b, TABLE_HEADER_SIZE, end), end);
  return b;
}

export interface TableInfo {
  base: number;
  entries: Uint32Array;
  checksumOk: boolean;
}

export function parseTableBody(b: Buffer): TableInfo {
  const n = b.readUInt32LE(0);
  const end = TABLE_HEADER_SIZE + n * 4;
  if (end + 4 > b.length) return { base: 0, entries: new Uint32Array(0), checksumOk: false };
  const entries = new Uint32Array(n);
  for (let i = 0; i < n; i++) entries[i] = b.readUInt32LE(TABLE_HEADER_SIZE + i * 4);
  return {
    base: Number(b.readBigUInt64LE(8)),
    entries,
    checksumOk: b.readUInt32LE(20) === adler32(b, 0, 20) && b.readUInt32LE(end) === adler32(b, TABLE_HEADER_SIZE, end),
  };
}

export function tableSectionSize(entries: number): number {
  return DESCRIPTOR_SIZE + TABLE_HEADER_SIZE + entries * 4 + 4;
}

export interface SectorRun {
  first: number;
  count: number;
}

/** Body of `error2`: the unreadable sector runs, which ewfinfo lists as acquisition errors. */
export function error2Body(runs: readonly SectorRun[]): Buffer {
  const b = Buffer.alloc(ERROR2_HEADER_SIZE + runs.length * 8 + 4);
  b.writeUInt32LE(runs.length, 0);
  b.writeUInt32LE(adler32(b, 0, 516), 516);
  runs.forEach((r, i) => {
    b.writeUInt32LE(r.first, ERROR2_HEADER_SIZE + i * 8);
    b.writeUInt32LE(r.count, ERROR2_HEADER_SIZE + i * 8 + 4);
  });
  const end = ERROR2_HEADER_SIZE + runs.length * 8;
  b.writeUInt32LE(adler32(b, ERROR2_HEADER_SIZE, end), end);
  return b;
}

export function parseError2Body(b: Buffer): { runs: SectorRun[]; checksumOk: boolean } {
  const n = b.readUInt32LE(0);
  const end = ERROR2_HEADER_SIZE + n * 8;
  if (end + 4 > b.length) return { runs: [], checksumOk: false };
  const runs = Array.from({ length: n }, (_, i) => ({
    first: b.readUInt32LE(ERROR2_HEADER_SIZE + i * 8),
    count: b.readUInt32LE(ERROR2_HEADER_SIZE + i * 8 + 4),
  }));
  return { runs, checksumOk: b.readUInt32LE(516) === adler32(b, 0, 516) && b.readUInt32LE(end) === adler32(b, ERROR2_HEADER_SIZE, end) };
}

export function error2SectionSize(runs: number): number {
  return DESCRIPTOR_SIZE + ERROR2_HEADER_SIZE + runs * 8 + 4;
}

/** Body of `digest`: MD5 and SHA-1. */
export function digestBody(md5: Buffer, sha1: Buffer): Buffer {
  const b = Buffer.alloc(DIGEST_BODY_SIZE);
  md5.copy(b, 0, 0, 16);
  sha1.copy(b, 16, 0, 20);
  b.writeUInt32LE(adler32(b, 0, 76), 76);
  return b;
}

/** Body of `hash`: MD5. */
export function hashBody(md5: Buffer): Buffer {
  const b = Buffer.alloc(HASH_BODY_SIZE);
  md5.copy(b, 0, 0, 16);
  b.writeUInt32LE(adler32(b, 0, 32), 32);
  return b;
}

/** The sections after the last table: error2 (when there are bad sectors), digest, hash, done. */
export function closingSize(badRuns: number): number {
  return (badRuns > 0 ? error2SectionSize(badRuns) : 0) + DESCRIPTOR_SIZE * 3 + DIGEST_BODY_SIZE + HASH_BODY_SIZE + DESCRIPTOR_SIZE + VOLUME_BODY_SIZE;
}
