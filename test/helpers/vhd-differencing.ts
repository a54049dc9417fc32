// A VHD differencing disk (disk type 4) over a dynamic parent made by
// qemu-img, laid out from Microsoft's VHD specification (Virtual Hard Disk
// Image Format Specification, October 2006): footer copy, dynamic header
// naming the parent by unique id, time stamp and UTF-16 name with W2ru and
// W2ku locators, BAT, then 2 MiB blocks each led by a sector bitmap whose set
// bits are the sectors this file holds; the rest read from the parent. No
// Debian or npm tool writes one, so tests build it here; QEMU (which reads
// the child without its parent) checks the child's own blocks.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const SECTOR = 512;
const BLOCK = 2 * 1024 * 1024;
const BITMAP_SECTORS = 1; // 4096 sectors per block: 512 bytes of bitmap
const FOOTER_AT_OFFSET = 0;
const DYNAMIC_HEADER_AT = 512;
const BAT_AT = 1536;

export interface DifferencingWrite {
  /** Byte offset in the virtual disk, sector-aligned. */
  offset: number;
  data: Buffer;
}

export interface DifferencingOptions {
  /** The parent name written in the child (UTF-16BE in the header, in both locators); the parent's file name by default. */
  parentName?: string;
  /** The parent unique id the child names; the parent's own by default (another one makes a broken link). */
  parentId?: Buffer;
}

function checksum(b: Buffer, field: number): void {
  b.writeUInt32BE(0, field);
  let s = 0;
  for (const x of b) s += x;
  b.writeUInt32BE(~s >>> 0, field);
}

function utf16be(s: string): Buffer {
  return Buffer.from(s, 'utf16le').swap16();
}

/** Writes `child` in the parent's folder: the parent's disk with `writes` on top. Returns the child's unique id. */
export function writeDifferencingVhd(parent: string, child: string, writes: DifferencingWrite[], o: DifferencingOptions = {}): Buffer {
  const p = readFileSync(parent);
  const pFooter = p.subarray(p.length - SECTOR);
  if (pFooter.subarray(0, 8).toString('latin1') !== 'conectix') throw new Error(`${parent}: no VHD footer`);
  const size = Number(pFooter.readBigUInt64BE(48));
  const blocks = Math.ceil(size / BLOCK);

  // The virtual sectors this file holds, block by block.
  const image = new Map<number, Buffer>();
  for (const w of writes) {
    if (w.offset % SECTOR !== 0 || w.data.length % SECTOR !== 0) throw new Error('writes are whole sectors');
    for (let at = 0; at < w.data.length; at += SECTOR) {
      const lba = (w.offset + at) / SECTOR;
      image.set(lba, w.data.subarray(at, at + SECTOR));
    }
  }
  const used = [...new Set([...image.keys()].map((lba) => Math.floor((lba * SECTOR) / BLOCK)))].sort((a, b) => a - b);

  const name = o.parentName ?? path.basename(parent);
  const locators = [
    { code: 'W2ru', data: Buffer.from(`.\\${name}`, 'utf16le') },
    { code: 'W2ku', data: Buffer.from(`C:\\VMs\\${name}`, 'utf16le') },
  ];
  const batBytes = Math.ceil((blocks * 4) / SECTOR) * SECTOR;
  let next = BAT_AT + batBytes;
  const locatorAt = locators.map((l) => {
    const at = next;
    next += Math.ceil(l.data.length / SECTOR) * SECTOR;
    return at;
  });
  const blockAt = new Map<number, number>();
  for (const b of used) {
    blockAt.set(b, next);
    next += BITMAP_SECTORS * SECTOR + BLOCK;
  }
  const out = Buffer.alloc(next + SECTOR);

  const footer = Buffer.alloc(SECTOR);
  footer.write('conectix', 0, 'latin1');
  footer.writeUInt32BE(2, 8);
  footer.writeUInt32BE(0x00010000, 12);
  footer.writeBigUInt64BE(BigInt(DYNAMIC_HEADER_AT), 16);
  footer.writeUInt32BE(pFooter.readUInt32BE(24) + 60, 24);
  footer.write('cust', 28, 'latin1');
  footer.writeUInt32BE(0x00010000, 32);
  footer.write('Wi2k', 36, 'latin1');
  footer.writeBigUInt64BE(BigInt(size), 40);
  footer.writeBigUInt64BE(BigInt(size), 48);
  pFooter.copy(footer, 56, 56, 60); // the parent's geometry
  footer.writeUInt32BE(4, 60); // differencing
  const id = Buffer.from(Array.from({ length: 16 }, (_, i) => (i * 37 + 11) & 0xff));
  id.copy(footer, 68);
  checksum(footer, 64);
  footer.copy(out, FOOTER_AT_OFFSET);
  footer.copy(out, out.length - SECTOR);

  const header = Buffer.alloc(1024);
  header.write('cxsparse', 0, 'latin1');
  header.writeBigUInt64BE(0xffffffffffffffffn, 8);
  header.writeBigUInt64BE(BigInt(BAT_AT), 16);
  header.writeUInt32BE(0x00010000, 24);
  header.writeUInt32BE(blocks, 28);
  header.writeUInt32BE(BLOCK, 32);
  (o.parentId ?? pFooter.subarray(68, 84)).copy(header, 40);
  header.writeUInt32BE(pFooter.readUInt32BE(24), 56);
  utf16be(name).subarray(0, 512).copy(header, 64);
  locators.forEach((l, i) => {
    const e = 576 + i * 24;
    header.write(l.code, e, 'latin1');
    header.writeUInt32BE(Math.ceil(l.data.length / SECTOR) * SECTOR, e + 4);
    header.writeUInt32BE(l.data.length, e + 8);
    header.writeBigUInt64BE(BigInt(locatorAt[i] ?? 0), e + 16);
    l.data.copy(out, locatorAt[i] ?? 0);
  });
  checksum(header, 36);
  header.copy(out, DYNAMIC_HEADER_AT);

  out.fill(0xff, BAT_AT, BAT_AT + batBytes);
  for (const [b, at] of blockAt) {
    out.writeUInt32BE(at / SECTOR, BAT_AT + b * 4);
    const bitmap = at;
    const data = at + BITMAP_SECTORS * SECTOR;
    for (const [lba, bytes] of image) {
      const inBlock = lba - (b * BLOCK) / SECTOR;
      if (inBlock < 0 || inBlock >= BLOCK / SECTOR) continue;
      out[bitmap + (inBlock >> 3)] = (out[bitmap + (inBlock >> 3)] ?? 0) | (0x80 >> (inBlock & 7));
      bytes.copy(out, data + inBlock * SECTOR);
    }
  }
  writeFileSync(child, out);
  return id;
}
