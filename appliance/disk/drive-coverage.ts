// What an image of a disk covers against what its drive says it holds: the
// sentence the custody record and the report carry, so that an examiner can
// state that the image is the whole disk, or exactly what it is not (NIST CFTT
// DA-AM-07: hidden sectors acquired or at least reported).
import type { DriveReport } from './drive-probe.js';

export interface DriveCoverage {
  /** Bytes imaged: the size the kernel shows. */
  imagedBytes: number;
  /** Bytes the drive says it holds in all (native max, DCO maximum, every allocated namespace); null when it could not be asked. */
  driveBytes: number | null;
  /** Bytes the drive holds that the image does not (HPA, DCO, detached namespaces); null when unknown. */
  hiddenBytes: number | null;
  /** Why the drive's count is trusted, or why there is none. */
  from: string;
  /** The drive refuses reads until it is unlocked (ATA security, a locked TCG range, a shadow MBR): its unreadable ranges are "locked", not bad sectors. */
  locked: string | null;
  /** One sentence for the report. */
  statement: string;
}

function n(x: number): string {
  return x.toLocaleString('en-US');
}

/** Why the drive's native size is not known. */
function unknownWhy(r: DriveReport): string {
  if (r.unreachable) return r.unreachable;
  const notes = r.ata?.notes ?? [];
  return r.ata ? `the drive answered IDENTIFY but gave no native max${notes.length ? ` (${notes.join('; ')})` : ''}` : 'it was not asked';
}

/** Coverage of an image of the whole kernel-visible disk behind `r`. */
export function driveCoverage(r: DriveReport): DriveCoverage {
  const imaged = r.kernelBytes;
  const a = r.ata;
  const tcg = r.tcg?.locking;
  const locked = a?.identify.security.locked
    ? 'ATA security locked'
    : tcg?.locked
      ? `a locked self-encrypting drive (${r.tcg?.sscs.join(', ') || 'TCG'})`
      : tcg?.mbrEnabled && !tcg.mbrDone
        ? 'a self-encrypting drive showing its shadow MBR'
        : null;
  if (a && a.nativeSectors !== null) {
    const ss = a.identify.logicalSectorBytes;
    const user = imaged / ss;
    const top = Math.max(a.nativeSectors, a.dcoSectors ?? 0);
    const hidden = Math.max(0, top - user) * ss;
    const parts: string[] = [];
    if (a.hpaSectors) parts.push(`an HPA of ${n(a.hpaSectors)} sectors (LBA ${n(user)}-${n(a.nativeSectors - 1)})`);
    if (a.dcoHiddenSectors) parts.push(`${n(a.dcoHiddenSectors)} sectors hidden by a DCO (LBA ${n(a.nativeSectors)}-${n((a.dcoSectors ?? 0) - 1)})`);
    const statement =
      hidden === 0
        ? `the image covers LBA 0-${n(user - 1)}, every sector up to the drive's native max (${a.nativeFrom}${a.dcoSectors !== null ? ', DCO maximum the same' : ''}): no hidden area`
        : `the image covers LBA 0-${n(user - 1)} of the drive's ${n(top)} sectors: ${parts.join(' and ') || `${n(hidden / ss)} sectors past the user size`} NOT imaged`;
    return { imagedBytes: imaged, driveBytes: top * ss, hiddenBytes: hidden, from: a.nativeFrom ?? 'IDENTIFY DEVICE', locked, statement };
  }
  const v = r.nvme;
  if (v) {
    const ns = v.namespaces.find((x) => x.nsid === v.nsid);
    const allocated = v.namespaces.reduce((s, x) => s + x.bytes, 0);
    const others = v.namespaces.filter((x) => x.nsid !== v.nsid && x.attached);
    const detached = v.namespaces.filter((x) => !x.attached);
    const rest = [
      others.length ? `namespace(s) ${others.map((x) => x.nsid).join(', ')} attached and listed as their own disks` : '',
      detached.length ? `namespace(s) ${detached.map((x) => x.nsid).join(', ')} NOT attached: ${n(v.detachedBytes)} bytes NOT imaged` : '',
    ].filter(Boolean);
    return {
      imagedBytes: imaged,
      driveBytes: allocated || null,
      hiddenBytes: v.detachedBytes,
      from: 'NVMe Identify (namespace lists)',
      locked,
      statement: `the image covers namespace ${v.nsid} (${n(ns?.bytes ?? imaged)} bytes) in full${rest.length ? `; ${rest.join('; ')}` : '; the controller has no other namespace'}`,
    };
  }
  const c = r.scsi?.capacity;
  if (c) {
    const bytes = c.sectors * c.blockBytes;
    return {
      imagedBytes: imaged,
      driveBytes: bytes,
      hiddenBytes: Math.max(0, bytes - imaged),
      from: 'READ CAPACITY(16)',
      locked,
      statement:
        bytes === imaged
          ? `the image covers all ${n(c.sectors)} sectors READ CAPACITY(16) reports; the drive's native max could not be asked (${unknownWhy(r)})`
          : `READ CAPACITY(16) reports ${n(bytes)} bytes, the kernel ${n(imaged)}: the image covers what the kernel shows`,
    };
  }
  return {
    imagedBytes: imaged,
    driveBytes: null,
    hiddenBytes: null,
    from: 'none',
    locked,
    statement: `the image covers the ${n(imaged)} bytes the kernel shows; the drive's own size is unknown: ${unknownWhy(r)}`,
  };
}
