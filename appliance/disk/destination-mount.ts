// Evidence drives as destinations: find the file system on a released disk,
// mount it read-write where custos keeps its state, and take it down again
// cleanly. Only ever used on a disk the examiner released by typed
// confirmation; a source is never mounted (the guardian refuses to release it).
import { loadExeca } from '../load-execa.js';
import { mkdirSync, rmdirSync, statfsSync } from 'node:fs';
import path from 'node:path';
import { CustosError } from '../errors.js';
import { stateDir } from '../state-dir.js';
import type { Disk } from './inventory.js';
import { probeSignatures, type VolumeSignature } from './volume-signatures.js';

export interface FileSystemProbe {
  device: string;
  fsType: string;
  label: string | null;
}

/** File systems the appliance writes images onto (blkid's names; NTFS is written through ntfs-3g). */
const WRITABLE = new Set(['ext4', 'ext3', 'ext2', 'xfs', 'btrfs', 'exfat', 'vfat', 'ntfs']);

function fileSystemOf(sig: VolumeSignature): FileSystemProbe | null {
  const fsType = sig.fields?.['TYPE'];
  if (!fsType || sig.fields?.['USAGE'] !== 'filesystem' || !WRITABLE.has(fsType)) return null;
  return { device: sig.device, fsType, label: sig.fields?.['LABEL'] ?? null };
}

/** The writable file systems among a disk's probed volumes (see volume-signatures.ts). */
export function fileSystemsIn(signatures: readonly VolumeSignature[]): FileSystemProbe[] {
  return signatures.map(fileSystemOf).filter((f): f is FileSystemProbe => f !== null);
}

/** The writable file systems on a disk: its partitions, or the whole disk if it has none. */
export async function findFileSystems(disk: Disk): Promise<FileSystemProbe[]> {
  return fileSystemsIn(await probeSignatures(disk));
}

export interface MountedDestination {
  device: string;
  fsType: string;
  dir: string;
  freeBytes: number;
}

export function mountRoot(): string {
  return path.join(stateDir(), 'mnt');
}

/** Mounts a released destination's file system read-write (no devices, no setuid, no exec). */
export async function mountDestination(fs: FileSystemProbe): Promise<MountedDestination> {
  const dir = path.join(mountRoot(), path.basename(fs.device));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const r = await mountReadWrite(fs, dir);
  if (r.exitCode !== 0) {
    rmdirSync(dir);
    throw new CustosError('EMOUNT', `cannot mount ${fs.device} (${fs.fsType}) read-write: ${String(r.stderr).split('\n')[0] ?? ''}`);
  }
  const st = statfsSync(dir);
  return { device: fs.device, fsType: fs.fsType, dir, freeBytes: Number(st.bavail) * Number(st.bsize) };
}

/**
 * NTFS goes through ntfs-3g (FUSE), the driver Windows labs' drives are written with on Linux:
 * it refuses a volume Windows left unclean or hibernated (fast startup) instead of replaying
 * it, and says so. It needs /dev/fuse, which appears once the fuse module is in.
 */
async function mountReadWrite(fs: FileSystemProbe, dir: string) {
  const execa = await loadExeca();
  const options = 'rw,nosuid,nodev,noexec';
  if (fs.fsType !== 'ntfs') return execa('mount', ['-t', fs.fsType, '-o', options, fs.device, dir], { reject: false });
  await execa('modprobe', ['-q', 'fuse'], { reject: false });
  return execa('ntfs-3g', ['-o', options, fs.device, dir], { reject: false });
}

/** Flushes and unmounts; the evidence drive can then be unplugged. */
export async function unmountDestination(m: MountedDestination): Promise<void> {
  const execa = await loadExeca();
  await execa('sync', ['-f', m.dir], { reject: false });
  const r = await execa('umount', [m.dir], { reject: false });
  if (r.exitCode !== 0) throw new CustosError('EUMOUNT', `cannot unmount ${m.dir}: ${String(r.stderr).split('\n')[0] ?? ''}`);
  rmdirSync(m.dir);
}
