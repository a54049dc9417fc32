// Segment file names as libewf gives them: .E01 ... .E99, then .EAA ... .EZZ,
// .FAA ... .ZZZ; 14971 segments in all.
import { PreflightError } from '../../errors.js';

export const MAX_SEGMENTS = 99 + 22 * 26 * 26;

export function segmentExtension(n: number): string {
  if (!Number.isInteger(n) || n < 1 || n > MAX_SEGMENTS)
    throw new PreflightError('ESEGMENTS', `an E01 image has at most ${MAX_SEGMENTS} segment files (asked for number ${n}); use a larger --segment-size`);
  if (n <= 99) return `E${String(n).padStart(2, '0')}`;
  const k = n - 100;
  const letter = (i: number) => String.fromCharCode(65 + i);
  return letter(4 + Math.floor(k / 676)) + letter(Math.floor(k / 26) % 26) + letter(k % 26);
}

export function segmentFileName(name: string, n: number): string {
  return `${name}.${segmentExtension(n)}`;
}
