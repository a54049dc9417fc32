// Stage 1: a cheap summary of what the full disk list depends on, so the
// guardian's 250 ms watch and the screen's 1 s refresh read every disk's
// identity again only when something changed. Under TCG a full list of ten
// disks costs a few hundred milliseconds of CPU; this costs a few reads per
// disk and partition.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Sysfs } from './sysfs.js';

export interface BlockFingerprint {
  /**
   * Every block device's name, device number, diskseq, size, holders and
   * partitions (name, device number, size), with the mount table and swaps:
   * equal strings mean the same devices in the same places, mounted the same.
   */
  structure: string;
  /** sysfs `ro` of every disk and partition, by kernel name. */
  readOnly: Map<string, boolean>;
}

function readProc(file: string): string {
  try {
    return readFileSync(file, 'latin1');
  } catch {
    return '';
  }
}

/** Read before a full list is taken: a change made after it then differs from it the next time. */
export function blockFingerprint(o: { sysfsRoot?: string; procRoot?: string } = {}): BlockFingerprint {
  const sysfs = new Sysfs(o.sysfsRoot ?? '/sys');
  const procRoot = o.procRoot ?? '/proc';
  const parts: string[] = [];
  const readOnly = new Map<string, boolean>();
  for (const name of sysfs.list('block')) {
    const base = `block/${name}`;
    readOnly.set(name, sysfs.readText(`${base}/ro`) === '1');
    const line = [
      name,
      sysfs.readText(`${base}/dev`),
      sysfs.readText(`${base}/diskseq`),
      sysfs.readText(`${base}/size`),
      sysfs.list(`${base}/holders`).join(','),
    ];
    for (const child of sysfs.list(base)) {
      // Partitions are named after their disk (sda1, nvme0n1p1); the rest are attributes and links.
      if (!child.startsWith(name)) continue;
      const dev = sysfs.readText(`${base}/${child}/dev`);
      if (dev === null || !sysfs.exists(`${base}/${child}/partition`)) continue;
      readOnly.set(child, sysfs.readText(`${base}/${child}/ro`) === '1');
      line.push(`${child}=${dev}/${sysfs.readText(`${base}/${child}/size`)}/${sysfs.list(`${base}/${child}/holders`).join(',')}`);
    }
    parts.push(line.join(' '));
  }
  parts.push(readProc(path.join(procRoot, 'self/mountinfo')), readProc(path.join(procRoot, 'swaps')));
  return { structure: parts.join('\n'), readOnly };
}
