// What libblkid finds on each partition of a disk (or on the disk itself when
// it has none): one read-only probe per volume, shared by the destination
// chooser (file systems) and the encrypted-volume finder, so a disk is probed
// once, by the well-kept implementation, never by a parser of ours.
import { loadExeca } from '../load-execa.js';
import type { Disk } from './inventory.js';

export interface VolumeSignature {
  /** The partition or disk probed, e.g. /dev/sda2. */
  device: string;
  sizeBytes: number;
  /** blkid's fields (TYPE, USAGE, VERSION, UUID, LABEL, PART_ENTRY_TYPE, ...): empty when it found nothing, null when it could not read. Not sanitized. */
  fields: Record<string, string> | null;
}

/** blkid -p on one device: read the device itself (no cache, no udev, as the live system has neither). */
export async function blkidFields(device: string): Promise<Record<string, string> | null> {
  const execa = await loadExeca();
  const r = await execa('blkid', ['-p', '-o', 'export', device], { reject: false, timeout: 30_000 });
  // Exit 2: no signature found.
  if (r.exitCode === 2) return {};
  if (r.exitCode !== 0) return null;
  return Object.fromEntries(
    String(r.stdout)
      .split('\n')
      .map((l) => /^([A-Z_]+)=(.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m): [string, string] => [m[1] ?? '', m[2] ?? '']),
  );
}

/** The volumes of a disk: its partitions, or the whole disk if it has none. */
export function volumesOf(disk: Disk): { device: string; sizeBytes: number }[] {
  return disk.partitions.length > 0
    ? disk.partitions.map((p) => ({ device: p.devicePath, sizeBytes: p.sizeBytes }))
    : [{ device: disk.devicePath, sizeBytes: disk.sizeBytes }];
}

/** One blkid probe per volume of a disk. */
export async function probeSignatures(disk: Disk): Promise<VolumeSignature[]> {
  if (disk.sizeBytes === 0) return [];
  return Promise.all(volumesOf(disk).map(async (v) => ({ ...v, fields: await blkidFields(v.device).catch(() => null) })));
}
