// Stage: written. Which files an image goes into (raw, split, E01 segments).
import path from 'node:path';
import { e01WorstCase } from '../ewf/ewf-plan.js';

export type ImageFormat = 'raw' | 'split' | 'e01';

import type { Segment } from './segment.js';

export type { Segment } from './segment.js';

/**
 * The files an image of `size` bytes is written to. Raw: NAME.raw. Split:
 * NAME.001, NAME.002, ... each `splitSize` bytes but the last; the suffix
 * width grows past 999 segments so the names still sort in order. E01: the
 * most segment files NAME.E01, ... it can take, each at most `splitSize`
 * (the segment size), if nothing compresses (for preflight; the writer
 * reports the files it actually wrote).
 */
export function imageSegments(name: string, size: number, format: ImageFormat, splitSize: number): Segment[] {
  if (format === 'e01') return e01WorstCase(name, size, splitSize);
  if (format === 'raw') return [{ file: `${name}.raw`, start: 0, size }];
  const count = Math.max(1, Math.ceil(size / splitSize));
  const width = Math.max(3, String(count).length);
  return Array.from({ length: count }, (_, i) => ({
    file: `${name}.${String(i + 1).padStart(width, '0')}`,
    start: i * splitSize,
    size: Math.min(splitSize, size - i * splitSize),
  }));
}

/** Image names become file names: keep them to a safe portable set. */
export function checkImageName(name: string): string | null {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(name)) return 'must be 1-100 characters of A-Z a-z 0-9 . _ - and start with a letter or digit';
  if (name !== path.basename(name)) return 'must not contain a path';
  return null;
}
