// Stage 1: an identifier that follows the physical device across replugs.
import { createHash } from 'node:crypto';
import type { DeviceString } from '../sanitize.js';

export type StableIdSource = 'wwn' | 'serial' | 'loop-backing' | 'path';

/** Keeps [A-Za-z0-9._-]; anything else becomes "_", and a short hash of the exact value keeps ids distinct. */
function token(value: string): string {
  const safe = value.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80);
  if (safe === value) return safe;
  return `${safe}~${createHash('sha256').update(value).digest('hex').slice(0, 8)}`;
}

/**
 * An identifier that follows the physical device, not the kernel name (sdb
 * today may be sdc after a replug). Preference: WWN, then model+serial, then
 * for loop devices the backing file, and only as a last resort the bus path.
 */
export function stableIdOf(input: {
  transport: string;
  wwn: DeviceString | null;
  model: DeviceString | null;
  serial: DeviceString | null;
  loopBacking: string | null;
  loopOffset: number;
  kernelPath: string;
}): { id: string; source: StableIdSource } {
  if (input.wwn) return { id: `wwn-${token(input.wwn.raw)}`, source: 'wwn' };
  if (input.serial) {
    const model = input.model ? token(input.model.raw.trim()) : 'unknown';
    return { id: `${input.transport}-${model}-${token(input.serial.raw.trim())}`, source: 'serial' };
  }
  if (input.loopBacking !== null) {
    // Readable file name plus a hash of the full path: two a.img in different folders differ.
    const base = input.loopBacking.split('/').pop() ?? '';
    const hash = createHash('sha256').update(input.loopBacking).digest('hex').slice(0, 8);
    return { id: `loop-${token(base).replace(/~.*$/, '')}-${hash}@${input.loopOffset}`, source: 'loop-backing' };
  }
  return { id: `path-${token(input.kernelPath)}`, source: 'path' };
}
