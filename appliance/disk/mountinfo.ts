// Stage 1: what is mounted where, from /proc/self/mountinfo, by device number.
import { readFileSync } from 'node:fs';
import path from 'node:path';

export interface MountEntry {
  majMin: string;
  mountPoint: string;
  fsType: string;
  source: string;
  /** Per-mount options (rw/ro, nosuid, ...). */
  options: string[];
  /** The file system's own options (noload, norecovery, ...): how it was mounted, not only where. */
  superOptions: string[];
  readOnly: boolean;
}

/** mountinfo escapes space, tab, newline and backslash as \NNN octal. */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses /proc/<pid>/mountinfo (see proc(5)); lines that do not fit are skipped. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    if (sep < 6 || fields.length < sep + 3) continue;
    const majMin = fields[2] ?? '';
    if (!/^\d+:\d+$/.test(majMin)) continue;
    const options = (fields[5] ?? '').split(',');
    out.push({
      majMin,
      mountPoint: unescapeOctal(fields[4] ?? ''),
      fsType: fields[sep + 1] ?? '',
      source: unescapeOctal(fields[sep + 2] ?? ''),
      options,
      superOptions: (fields[sep + 3] ?? '').split(',').filter((o) => o !== ''),
      readOnly: options.includes('ro'),
    });
  }
  return out;
}

export function readMountinfo(procRoot = '/proc'): MountEntry[] {
  try {
    return parseMountinfo(readFileSync(path.join(procRoot, 'self/mountinfo'), 'utf8'));
  } catch {
    return [];
  }
}

/** Active swap areas by device path, from /proc/swaps. */
export function readSwaps(procRoot = '/proc'): string[] {
  try {
    const lines = readFileSync(path.join(procRoot, 'swaps'), 'utf8').split('\n').slice(1);
    return lines.map((l) => unescapeOctal(l.split(/\s+/)[0] ?? '')).filter((p) => p.length > 0);
  } catch {
    return [];
  }
}
