// Whether a disk that came back after an unplug is the source, by content.
// Serial, size and sector size are only a first filter: two disks in identical
// USB docks share all three. Before reading on, the returning disk's first
// window and the last window before the point where reading stopped are read
// again and hashed against the piece hashes already computed, and the bytes
// kept from the first and the latest read are compared too; any difference
// refuses the disk.
import { createHash } from 'node:crypto';
import { allocAligned } from '../../disk/block-device.js';
import type { ContentWitness, SectorReader } from './sector-reader.js';

export type { ContentWitness } from './sector-reader.js';

/** Bytes exactly as the source gave them at `offset`. */
export interface ContentSample {
  offset: number;
  bytes: Buffer;
}

/** One comparison made: a window against its piece hash, or a kept sample byte for byte. */
export interface ContentComparison {
  what: 'window' | 'sample';
  offset: number;
  length: number;
  index?: number;
  expected: string;
  found: string;
}

export interface ContentVerdict {
  compared: ContentComparison[];
  /** The first comparison that differed, or null when all matched. */
  mismatch: ContentComparison | null;
}

const CHUNK = 4 * 1024 * 1024;

/** The windows to compare: the first clean completed one and the last clean one that ends at or before `before`. */
export function windowsToCompare(w: ContentWitness, before: number): number[] {
  const ps = w.pieceSize;
  if (ps <= 0) return [];
  const done = w.completed().length;
  const clean: number[] = [];
  for (let i = 0; i < done && (i + 1) * ps <= before; i++) if (!w.unreliable(i * ps, (i + 1) * ps)) clean.push(i);
  return [...new Set([clean[0], clean[clean.length - 1]])].filter((i): i is number => i !== undefined);
}

async function readExactly(reader: SectorReader, buffer: Buffer, length: number, offset: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const n = await reader.read(done === 0 ? buffer : buffer.subarray(done), length - done, offset + done);
    if (n === 0) throw new Error(`${reader.name} ended at ${offset + done}`);
    done += n;
  }
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Compares `reader` (the returning disk, already write-blocked) with what the
 * acquisition read before. A read error here throws: the disk is then not
 * proven, and the caller refuses it.
 */
export async function compareContent(
  reader: SectorReader,
  o: { before: number; samples: ContentSample[]; witness: ContentWitness | null },
): Promise<ContentVerdict> {
  const compared: ContentComparison[] = [];
  const ss = reader.sectorSize;
  for (const s of o.samples) {
    // O_DIRECT wants whole sectors into an aligned buffer; the comparison is over the sample's own bytes.
    const length = Math.ceil(s.bytes.length / ss) * ss;
    const buffer = allocAligned(Math.max(length, ss));
    await readExactly(reader, buffer, length, s.offset);
    const found = buffer.subarray(0, s.bytes.length);
    const c: ContentComparison = { what: 'sample', offset: s.offset, length: s.bytes.length, expected: sha(s.bytes), found: sha(found) };
    compared.push(c);
    if (c.expected !== c.found) return { compared, mismatch: c };
  }
  if (o.witness) {
    const ps = o.witness.pieceSize;
    const pieces = o.witness.completed();
    const buffer = allocAligned(CHUNK);
    for (const i of windowsToCompare(o.witness, o.before)) {
      const hash = createHash('sha256');
      for (let at = i * ps; at < (i + 1) * ps;) {
        const n = Math.min(CHUNK, (i + 1) * ps - at);
        await readExactly(reader, buffer, n, at);
        hash.update(buffer.subarray(0, n));
        at += n;
      }
      const c: ContentComparison = { what: 'window', index: i, offset: i * ps, length: ps, expected: pieces[i] as string, found: hash.digest('hex') };
      compared.push(c);
      if (c.expected !== c.found) return { compared, mismatch: c };
    }
  }
  return { compared, mismatch: null };
}
