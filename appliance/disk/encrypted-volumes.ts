// Encrypted volumes on the visible data (issue 17): an image of a BitLocker,
// LUKS or FileVault volume is useless without its key, and the examiner must
// know that while the machine (and perhaps its owner) is still there. Found by
// libblkid's own probing (blkid -p, read-only, no cache), per partition, never
// by a parser of ours; a partition without any signature whose data looks
// random throughout is reported as possibly encrypted (VeraCrypt and others
// have no signature by design).
import { closeSync, openSync, readSync } from 'node:fs';
import { safeText } from '../sanitize.js';
import type { Disk } from './inventory.js';
import type { DiskWarning } from './disk.js';
import { probeSignatures, type VolumeSignature } from './volume-signatures.js';

export type VolumeKind = 'bitlocker' | 'luks1' | 'luks2' | 'filevault-corestorage' | 'apfs' | 'high-entropy' | 'other-crypto';

export interface EncryptedVolume {
  /** The partition or disk it is on, e.g. /dev/sda2. */
  device: string;
  kind: VolumeKind;
  /** blkid's TYPE and VERSION, and the volume's UUID where it has one (display-safe). */
  type: string | null;
  version: string | null;
  uuid: string | null;
  /** What the examiner should do about it. */
  advice: string;
}

// GPT partition type of Apple Core Storage (FileVault 2 before APFS).
const CORE_STORAGE = '53746f72-6167-11aa-aa11-00306543ecac';
const SAMPLES = 16;
const SAMPLE_BYTES = 64 * 1024;
/** Bits per byte above which a sample looks random: text, code and file systems stay well below; compressed data comes close, so every sample must. */
const RANDOM_BITS = 7.98;

const ADVICE: Record<VolumeKind, string> = {
  bitlocker:
    'BitLocker: without the recovery key this image cannot be read; record the key if it can be obtained (the owner, Active Directory, a Microsoft account)',
  luks1: 'LUKS1: without a passphrase or key file this image cannot be read; record them if they can be obtained',
  luks2: 'LUKS2: without a passphrase, key file or token this image cannot be read; record them if they can be obtained',
  'filevault-corestorage': 'FileVault 2 (Core Storage): without the password or recovery key this image cannot be read; record them if they can be obtained',
  apfs: 'APFS: its volumes may be encrypted (FileVault), which blkid cannot tell; on a running Mac, check before powering off, and record the recovery key if it can be obtained',
  'high-entropy':
    'no known file system and random-looking data throughout: possibly an encrypted container (VeraCrypt or similar); record any password that can be obtained',
  'other-crypto': 'an encrypted volume: without its key this image cannot be read; record the key if it can be obtained',
};

function bitsPerByte(b: Buffer): number {
  const counts = new Array<number>(256).fill(0);
  for (const x of b) counts[x] = (counts[x] as number) + 1;
  let h = 0;
  for (const c of counts) if (c > 0) h -= (c / b.length) * Math.log2(c / b.length);
  return h;
}

/** True when every one of SAMPLES reads spread over the device looks random. */
export function looksRandom(device: string, sizeBytes: number): boolean {
  if (sizeBytes < SAMPLES * SAMPLE_BYTES * 2) return false;
  const fd = openSync(device, 'r');
  try {
    const buf = Buffer.alloc(SAMPLE_BYTES);
    const step = Math.floor((sizeBytes - SAMPLE_BYTES) / (SAMPLES - 1) / 4096) * 4096;
    for (let i = 0; i < SAMPLES; i++) {
      if (readSync(fd, buf, 0, SAMPLE_BYTES, i * step) !== SAMPLE_BYTES) return false;
      if (bitsPerByte(buf) < RANDOM_BITS) return false;
    }
    return true;
  } finally {
    closeSync(fd);
  }
}

function kindOf(f: Record<string, string>): VolumeKind | null {
  const type = f['TYPE'];
  if (type === 'BitLocker') return 'bitlocker';
  if (type === 'crypto_LUKS') return f['VERSION'] === '1' ? 'luks1' : 'luks2';
  if (type === 'apfs') return 'apfs';
  if ((f['PART_ENTRY_TYPE'] ?? '').toLowerCase() === CORE_STORAGE) return 'filevault-corestorage';
  if (f['USAGE'] === 'crypto') return 'other-crypto';
  return null;
}

function volumeFrom(sig: VolumeSignature): EncryptedVolume | null {
  const f = sig.fields;
  if (f === null) return null;
  let kind = kindOf(f);
  // A partition (or a disk without partitions) where blkid finds nothing at all may be a container with no signature.
  if (!kind && !f['TYPE'] && !f['PTTYPE'] && looksRandomSafe(sig.device, sig.sizeBytes)) kind = 'high-entropy';
  if (!kind) return null;
  const text = (k: string) => (f[k] !== undefined ? safeText(f[k], 80) : null);
  return { device: sig.device, kind, type: text('TYPE'), version: text('VERSION'), uuid: text('UUID'), advice: ADVICE[kind] };
}

function looksRandomSafe(device: string, sizeBytes: number): boolean {
  try {
    return looksRandom(device, sizeBytes);
  } catch {
    return false;
  }
}

/** The encrypted volumes among a disk's probed volumes (see volume-signatures.ts). */
export function encryptedVolumesIn(disk: Disk, signatures: readonly VolumeSignature[]): EncryptedVolume[] {
  if (disk.kind !== 'disk') return [];
  return signatures.map(volumeFrom).filter((v): v is EncryptedVolume => v !== null);
}

/** The encrypted volumes on a disk: on each partition, or on the whole disk if it has none. Read-only. */
export async function findEncryptedVolumes(disk: Disk): Promise<EncryptedVolume[]> {
  if (disk.kind !== 'disk') return [];
  return encryptedVolumesIn(disk, await probeSignatures(disk));
}

/** One warning per encrypted volume, for the disk list and the record. */
export function volumeWarnings(volumes: readonly EncryptedVolume[]): DiskWarning[] {
  return volumes.map((v) => ({ code: 'encrypted-volume', message: `${v.device.replace('/dev/', '')}: ${v.advice}` }));
}
