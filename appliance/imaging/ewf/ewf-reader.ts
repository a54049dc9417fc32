// Reads an E01 back as the image stream (verify, resume checks), checking
// every chunk's checksum and the container's structure on the way.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import { CustosError } from '../../errors.js';
import type { SectorReader } from '../read/sector-reader.js';
import { adler32 } from './adler32.js';
import {
  DESCRIPTOR_SIZE,
  FILE_HEADER_SIZE,
  COMPRESSED_FLAG,
  parseDescriptor,
  parseError2Body,
  parseFileHeader,
  parseTableBody,
  parseVolumeBody,
  TABLE_HEADER_SIZE,
  type SectorRun,
  type VolumeInfo,
} from './ewf-sections.js';

/** The E01 image is malformed: which file, where, and what. */
export class EwfFormatError extends CustosError {
  readonly file: string;
  readonly offset: number | null;
  constructor(file: string, offset: number | null, message: string) {
    super('EEWF', `${file}${offset === null ? '' : ` at byte ${offset}`}: ${message}`);
    this.file = file;
    this.offset = offset;
  }
}

interface TableRef {
  /** Where the table body starts, and its mirror's (or -1). */
  at: number;
  mirrorAt: number;
  count: number;
  /** End of the sectors section the table indexes. */
  sectorsEnd: number;
  /** The open group of an unfinished image: its table is not on disk yet but in the resume journal. */
  inline: { base: number; entries: Uint32Array } | null;
}

/**
 * An unfinished image (a resumed acquisition): the last segment file stops
 * inside a sectors section whose table only the journal holds. The reader
 * then covers the image stream up to `size`.
 */
export interface OpenTail {
  groupBase: number;
  entries: Uint32Array;
  /** Where the last chunk stored ends in the last segment file. */
  end: number;
  /** Bytes of the image stream the segment files hold. */
  size: number;
}

interface SegmentFile {
  path: string;
  fd: number;
  size: number;
  firstChunk: number;
  chunks: number;
  tables: TableRef[];
  sections: string[];
}

interface ChunkRef {
  offset: number;
  stored: number;
  compressed: boolean;
}

/**
 * Reads an EWF-E01 image back as a plain sector stream: every chunk is
 * decompressed and checked (zlib's own Adler-32, or the raw chunk's stored
 * one). A chunk that fails reads as zeros and is listed in `problems`, so
 * the hashes then differ and the reason is known. Tables are loaded one
 * segment at a time: memory does not grow with the image.
 */
export class EwfImageReader implements SectorReader {
  readonly name: string;
  readonly size: number;
  readonly sectorSize: number;
  readonly chunkSize: number;
  readonly volume: VolumeInfo;
  private readonly stored: { md5: string | null; sha1: string | null } = { md5: null, sha1: null };
  readonly errors: SectorRun[] = [];
  /** Every structural or checksum failure found so far. */
  readonly problems: string[] = [];
  private readonly segments: SegmentFile[] = [];
  private loaded: { segment: number; refs: ChunkRef[] } | null = null;

  constructor(paths: string[], open: OpenTail | null = null) {
    if (paths.length === 0) throw new CustosError('EEWF', 'no E01 segment files');
    this.name = paths[0] as string;
    let volume: VolumeInfo | null = null;
    let firstChunk = 0;
    try {
      for (const [i, p] of paths.entries()) {
        const fd = openSync(p, 'r');
        const seg: SegmentFile = { path: p, fd, size: fstatSync(fd).size, firstChunk, chunks: 0, tables: [], sections: [] };
        this.segments.push(seg);
        const head = this.readAt(seg, 0, FILE_HEADER_SIZE);
        const number = parseFileHeader(head);
        if (number === null) throw new EwfFormatError(p, 0, 'not an EWF-E01 segment file (bad signature)');
        if (number !== i + 1) throw new EwfFormatError(p, 9, `segment number ${number}, expected ${i + 1} (a segment file is missing or out of order)`);
        const last = i === paths.length - 1;
        const end = this.walk(seg, last ? open : null, (type, at, size) => {
          if ((type === 'volume' || type === 'data') && volume === null) volume = this.readVolume(seg, at, size);
          if (type === 'hash') this.stored.md5 = this.readAt(seg, at + DESCRIPTOR_SIZE, 16).toString('hex');
          if (type === 'digest') {
            const d = this.readAt(seg, at + DESCRIPTOR_SIZE, 36);
            this.stored.md5 ??= d.subarray(0, 16).toString('hex');
            this.stored.sha1 = d.subarray(16, 36).toString('hex');
          }
          if (type === 'error2') {
            const e = parseError2Body(this.readAt(seg, at + DESCRIPTOR_SIZE, size - DESCRIPTOR_SIZE));
            if (!e.checksumOk) this.problems.push(`${p}: error2 section checksum mismatch`);
            this.errors.push(...e.runs);
          }
        });
        if (end === 'next' && last && !open) throw new EwfFormatError(p, null, 'ends with a "next" section: later segment files are missing');
        if (end === 'done' && !last) throw new EwfFormatError(p, null, 'ends with "done" but more segment files follow');
        seg.chunks = seg.tables.reduce((n, t) => n + t.count, 0);
        firstChunk += seg.chunks;
      }
      if (volume === null) throw new EwfFormatError(this.name, null, 'no volume section');
      this.volume = volume;
      this.sectorSize = (volume as VolumeInfo).bytesPerSector;
      this.chunkSize = (volume as VolumeInfo).sectorsPerChunk * this.sectorSize;
      this.size = open ? open.size : (volume as VolumeInfo).sectorCount * this.sectorSize;
      if (open && firstChunk !== Math.ceil(open.size / this.chunkSize)) {
        throw new EwfFormatError(
          this.name,
          null,
          `the segment files and the journal index ${firstChunk} chunks, ${Math.ceil(open.size / this.chunkSize)} expected at the resume point`,
        );
      }
      if (!open && firstChunk !== (volume as VolumeInfo).chunkCount) {
        throw new EwfFormatError(this.name, null, `tables index ${firstChunk} chunks, the volume section says ${(volume as VolumeInfo).chunkCount}`);
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** The MD5 the hash (or digest) section stores, null where there is none. */
  get md5(): string | null {
    return this.stored.md5;
  }

  /** The SHA-1 the digest section stores, null where there is none. */
  get sha1(): string | null {
    return this.stored.sha1;
  }

  /** The section types of each segment file, in order. */
  get layout(): string[][] {
    return this.segments.map((s) => s.sections);
  }

  private readAt(seg: SegmentFile, at: number, length: number): Buffer {
    const b = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = readSync(seg.fd, b, done, length - done, at + done);
      if (n === 0) throw new EwfFormatError(seg.path, at + done, `file ends inside a structure (${length} bytes wanted at ${at})`);
      done += n;
    }
    return b;
  }

  private readVolume(seg: SegmentFile, at: number, size: number): VolumeInfo {
    if (size < DESCRIPTOR_SIZE + 1052) throw new EwfFormatError(seg.path, at, 'volume section too small');
    const v = parseVolumeBody(this.readAt(seg, at + DESCRIPTOR_SIZE, 1052));
    if (!v.checksumOk) throw new EwfFormatError(seg.path, at, 'volume section checksum mismatch');
    if (v.bytesPerSector < 512 || v.sectorsPerChunk < 1 || v.sectorsPerChunk * v.bytesPerSector > 64 * 1024 * 1024)
      throw new EwfFormatError(seg.path, at, `implausible geometry: ${v.sectorsPerChunk} sectors of ${v.bytesPerSector} bytes per chunk`);
    return v;
  }

  /** Follows the section chain of one file; returns how it ends. */
  private walk(seg: SegmentFile, open: OpenTail | null, visit: (type: string, at: number, size: number) => void): 'next' | 'done' | 'open' {
    let at = FILE_HEADER_SIZE;
    let sectorsEnd = -1;
    for (let guard = 0; guard < 1_000_000; guard++) {
      if (open && at === open.groupBase) {
        // The open group: its descriptor and table are written when it closes; the journal has its entries.
        if (open.end > seg.size) throw new EwfFormatError(seg.path, at, `ends before the resume point's ${open.end} bytes`);
        seg.tables.push({ at: -1, mirrorAt: -1, count: open.entries.length, sectorsEnd: open.end, inline: { base: open.groupBase, entries: open.entries } });
        return 'open';
      }
      if (at + DESCRIPTOR_SIZE > seg.size) throw new EwfFormatError(seg.path, at, 'section chain runs past the end of the file (truncated?)');
      const d = parseDescriptor(this.readAt(seg, at, DESCRIPTOR_SIZE));
      if (!d.checksumOk) throw new EwfFormatError(seg.path, at, `section descriptor checksum mismatch (type "${d.type.replace(/[^\x20-\x7e]/g, '?')}")`);
      seg.sections.push(d.type);
      if (d.type === 'next' || d.type === 'done') return d.type;
      if (d.size < DESCRIPTOR_SIZE || d.next !== at + d.size || d.next > seg.size)
        throw new EwfFormatError(seg.path, at, `${d.type} section: size ${d.size} and next ${d.next} do not fit the file`);
      if (d.type === 'sectors') sectorsEnd = d.next;
      if (d.type === 'table' || d.type === 'table2') {
        const head = this.readAt(seg, at + DESCRIPTOR_SIZE, TABLE_HEADER_SIZE);
        const count = head.readUInt32LE(0);
        if (TABLE_HEADER_SIZE + count * 4 + 4 > d.size - DESCRIPTOR_SIZE)
          throw new EwfFormatError(seg.path, at, `${d.type} claims ${count} entries, more than its section holds`);
        if (d.type === 'table') seg.tables.push({ at: at + DESCRIPTOR_SIZE, mirrorAt: -1, count, sectorsEnd, inline: null });
        else {
          const t = seg.tables[seg.tables.length - 1];
          if (t && t.mirrorAt < 0 && t.count === count) t.mirrorAt = at + DESCRIPTOR_SIZE;
        }
      }
      visit(d.type, at, d.size);
      at = d.next;
    }
    throw new EwfFormatError(seg.path, at, 'too many sections');
  }

  /** The chunk references of one segment: its tables (or their mirrors where a table is damaged). */
  private refs(index: number): ChunkRef[] {
    if (this.loaded?.segment === index) return this.loaded.refs;
    const seg = this.segments[index] as SegmentFile;
    const refs: ChunkRef[] = [];
    for (const t of seg.tables) {
      const bytes = TABLE_HEADER_SIZE + t.count * 4 + 4;
      let table = t.inline ? { base: t.inline.base, entries: t.inline.entries, checksumOk: true } : parseTableBody(this.readAt(seg, t.at, bytes));
      if (!table.checksumOk) {
        this.problems.push(`${seg.path}: table at byte ${t.at} has a checksum mismatch${t.mirrorAt >= 0 ? '; using table2' : ''}`);
        if (t.mirrorAt >= 0) table = parseTableBody(this.readAt(seg, t.mirrorAt, bytes));
      }
      for (let i = 0; i < table.entries.length; i++) {
        const e = table.entries[i] as number;
        const offset = table.base + (e & 0x7fffffff);
        const next = i + 1 < table.entries.length ? table.base + ((table.entries[i + 1] as number) & 0x7fffffff) : t.sectorsEnd;
        refs.push({ offset, stored: next - offset, compressed: (e & COMPRESSED_FLAG) !== 0 });
      }
    }
    this.loaded = { segment: index, refs };
    return refs;
  }

  private segmentOf(chunk: number): number {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.segments[mid] as SegmentFile).firstChunk <= chunk) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  read(buffer: Buffer, length: number, offset: number): Promise<number> {
    const n = Math.min(length, this.size - offset);
    let done = 0;
    while (done < n) {
      const at = offset + done;
      const chunk = Math.floor(at / this.chunkSize);
      const segIndex = this.segmentOf(chunk);
      const seg = this.segments[segIndex] as SegmentFile;
      const refs = this.refs(segIndex);
      // Read the run of this segment's chunks the request covers with one read.
      const lastChunk = Math.min(Math.floor((offset + n - 1) / this.chunkSize), seg.firstChunk + refs.length - 1);
      const first = refs[chunk - seg.firstChunk] as ChunkRef;
      const lastRef = refs[lastChunk - seg.firstChunk] as ChunkRef;
      const spanStart = first.offset;
      const spanEnd = lastRef.offset + lastRef.stored;
      const contiguous = spanEnd > spanStart && spanEnd - spanStart <= 64 * 1024 * 1024;
      const span = contiguous ? this.readAt(seg, spanStart, spanEnd - spanStart) : null;
      for (let c = chunk; c <= lastChunk; c++) {
        const ref = refs[c - seg.firstChunk] as ChunkRef;
        const stored =
          span && ref.offset >= spanStart && ref.offset + ref.stored <= spanEnd
            ? span.subarray(ref.offset - spanStart, ref.offset - spanStart + ref.stored)
            : this.readAt(seg, ref.offset, ref.stored);
        const data = this.decode(seg, c, ref, stored);
        const chunkStart = c * this.chunkSize;
        const from = Math.max(chunkStart, offset + done) - chunkStart;
        const to = Math.min(chunkStart + data.length, offset + n) - chunkStart;
        data.copy(buffer, done, from, to);
        done += to - from;
      }
    }
    return Promise.resolve(n);
  }

  private decode(seg: SegmentFile, c: number, ref: ChunkRef, stored: Buffer): Buffer {
    const expected = Math.min(this.chunkSize, this.size - c * this.chunkSize);
    const bad = (why: string) => {
      this.problems.push(
        `chunk ${c} (sectors ${(c * this.chunkSize) / this.sectorSize}-${(c * this.chunkSize + expected) / this.sectorSize - 1}) in ${seg.path} at byte ${ref.offset}: ${why}`,
      );
      return Buffer.alloc(expected);
    };
    if (ref.compressed) {
      let data: Buffer;
      try {
        data = inflateSync(stored);
      } catch (e) {
        return bad(`does not decompress (${(e as Error).message})`);
      }
      return data.length === expected ? data : bad(`decompresses to ${data.length} bytes, expected ${expected}`);
    }
    if (stored.length < expected + 4) return bad(`stored raw in ${stored.length} bytes, expected ${expected + 4}`);
    const data = stored.subarray(0, expected);
    return stored.readUInt32LE(expected) === adler32(data) ? data : bad('Adler-32 mismatch');
  }

  close(): void {
    for (const s of this.segments) {
      try {
        closeSync(s.fd);
      } catch {
        // already closed
      }
    }
    this.segments.length = 0;
  }
}
