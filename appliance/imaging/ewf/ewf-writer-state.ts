// What an E01 writer keeps for a resume, and how it goes on: the state the
// journal stores at each resume point, and the segment files cut back to it.
import { open, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { DeviceIoError, errnoOf } from '../../errors.js';
import { segmentFileName } from './ewf-names.js';

/** One segment file as written so far. */
export interface WrittenFile {
  file: string;
  size: number;
}

/**
 * Where the writer stood after a block: enough to reopen the last segment
 * file and go on appending (the journal keeps it at each resume point).
 * `entries` is the open group's table so far, base64 of 32-bit LE values.
 */
export interface EwfWriterState {
  setIdentifier: string;
  segment: number;
  pos: number;
  groupBase: number;
  entries: string;
  segmentChunks: number;
  files: WrittenFile[];
  /** --fast-first: where each chunk kept raw for the recovery pass is, as [chunk, segment, offset]. */
  rawChunks: [number, number, number][];
}

/** The writer after one block, kept until a resume point asks for it. */
export interface Snapshot {
  segment: number;
  pos: number;
  groupBase: number;
  entries: Uint32Array;
  count: number;
  segmentChunks: number;
  rawCount: number;
}

/** The highest segment number an E01 can have (its file extensions run out). */
const LAST_SEGMENT = 14971;

/** Removes segment files after `segment`: written after the resume point, never recorded. */
export async function discardLaterSegments(dir: string, name: string, segment: number, onDiscard: (file: string, bytes: number) => void): Promise<void> {
  for (let n = segment + 1; n <= LAST_SEGMENT; n++) {
    const later = path.join(dir, segmentFileName(name, n));
    let size: number;
    try {
      size = (await stat(later)).size;
    } catch {
      break;
    }
    await unlink(later);
    onDiscard(later, size);
  }
}

/** Opens the segment the resume point stood in, cut back to where it stood; shorter than that is an error. */
export async function reopenAt(file: string, pos: number, onDiscard: (file: string, bytes: number) => void): Promise<FileHandle> {
  try {
    const fh = await open(file, 'r+');
    const size = (await fh.stat()).size;
    if (size < pos) throw Object.assign(new Error('shorter than the journal says'), { errno: -61 });
    if (size > pos) onDiscard(file, size - pos);
    await fh.truncate(pos);
    return fh;
  } catch (e) {
    throw new DeviceIoError(file, 'open', errnoOf(e) ?? 5, pos);
  }
}

/** The open group's table entries as the journal keeps them: base64 of 32-bit LE values. */
export function packEntries(entries: ArrayLike<number>, count: number): string {
  const b = Buffer.alloc(count * 4);
  for (let i = 0; i < count; i++) b.writeUInt32LE(entries[i] as number, i * 4);
  return b.toString('base64');
}

export function unpackEntries(b64: string): number[] {
  const raw = Buffer.from(b64, 'base64');
  return Array.from({ length: raw.length / 4 }, (_, i) => raw.readUInt32LE(i * 4));
}
