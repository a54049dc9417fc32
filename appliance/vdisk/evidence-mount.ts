// Stage: found (virtual disks). A write-blocked drive that holds exported VM
// files is mounted to read them, read-only and with options that replay
// nothing: a file system left dirty (a journal needing recovery, an NTFS
// volume Windows did not close) would otherwise be "repaired" by the kernel,
// which is a write. The drive stays under BLKROSET throughout (custos refuses
// a device whose read-only flag is off), so even a driver that tried to write
// would get EPERM; the kernel's write counters, recorded with the
// acquisition (container-filesystem.ts), prove it.
import { loadExeca } from '../load-execa.js';
import { mkdirSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { CustosError } from '../errors.js';
import { native } from '../native.js';
import { stateDir } from '../state-dir.js';
import { readMountinfo } from '../disk/mountinfo.js';
import type { FileSystemProbe } from '../disk/destination-mount.js';

/** blkid's TYPE to how it is mounted: the driver, and options under which it replays no journal or log. */
export const REPLAY_NOTHING: Record<string, { driver: 'mount' | 'ntfs-3g'; type: string; options: string[] }> = {
  ext4: { driver: 'mount', type: 'ext4', options: ['ro', 'noload'] },
  ext3: { driver: 'mount', type: 'ext4', options: ['ro', 'noload'] },
  ext2: { driver: 'mount', type: 'ext4', options: ['ro', 'noload'] },
  xfs: { driver: 'mount', type: 'xfs', options: ['ro', 'norecovery'] },
  btrfs: { driver: 'mount', type: 'btrfs', options: ['ro', 'rescue=nologreplay'] },
  vfat: { driver: 'mount', type: 'vfat', options: ['ro'] },
  exfat: { driver: 'mount', type: 'exfat', options: ['ro'] },
  // ntfs-3g opens the device O_RDONLY with ro and never touches $LogFile; a hibernated volume is read as it is.
  ntfs: { driver: 'ntfs-3g', type: 'ntfs', options: ['ro'] },
};

/** Neither set-uid programs, device nodes nor executables on a suspect's file system mean anything here. */
const ALWAYS = ['nosuid', 'nodev', 'noexec'];

export interface EvidenceMount {
  device: string;
  fsType: string;
  dir: string;
  /** The options custos asked for, e.g. ro,noload,nosuid,nodev,noexec. */
  options: string[];
  driver: 'mount' | 'ntfs-3g';
}

export function evidenceMountRoot(): string {
  return path.join(stateDir(), 'evidence');
}

function isWriteBlocked(device: string): boolean {
  const n = native();
  const fd = n.openReadOnly(device, false, false);
  try {
    return n.getReadOnly(fd);
  } finally {
    n.close(fd);
  }
}

/** Mounts a write-blocked drive's file system read-only, replaying nothing, to read the VM files on it. */
export async function mountEvidenceReadOnly(fs: FileSystemProbe): Promise<EvidenceMount> {
  const execa = await loadExeca();
  const how = REPLAY_NOTHING[fs.fsType];
  if (!how)
    throw new CustosError(
      'EMOUNT',
      `${fs.device}: custos does not open ${fs.fsType} file systems for VM files (it opens ${Object.keys(REPLAY_NOTHING).join(', ')})`,
    );
  let blocked: boolean;
  try {
    blocked = isWriteBlocked(fs.device);
  } catch (e) {
    throw new CustosError('EMOUNT', `${fs.device}: cannot open it to check its read-only flag: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!blocked) throw new CustosError('ENOTBLOCKED', `${fs.device} is not write-blocked (its read-only flag is off): protect it first; nothing mounted`);
  const dir = path.join(evidenceMountRoot(), path.basename(fs.device));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const options = [...how.options, ...ALWAYS];
  if (how.driver === 'ntfs-3g') await execa('modprobe', ['-q', 'fuse'], { reject: false });
  const r =
    how.driver === 'ntfs-3g'
      ? await execa('ntfs-3g', ['-o', options.join(','), fs.device, dir], { reject: false, timeout: 60_000 })
      : await execa('mount', ['-t', how.type, '-o', options.join(','), fs.device, dir], { reject: false, timeout: 60_000 });
  if (r.exitCode !== 0) {
    rmdirSync(dir);
    throw new CustosError('EMOUNT', `cannot mount ${fs.device} (${fs.fsType}) read-only with ${options.join(',')}: ${String(r.stderr).split('\n')[0] ?? ''}`);
  }
  // The kernel's word, not ours: the mount must show as read-only.
  const entry = readMountinfo().find((m) => m.mountPoint === dir);
  if (!entry?.readOnly) {
    await execa('umount', [dir], { reject: false });
    throw new CustosError('EMOUNT', `${fs.device} mounted at ${dir} but not read-only; unmounted`);
  }
  return { device: fs.device, fsType: fs.fsType, dir, options, driver: how.driver };
}

export async function unmountEvidence(m: { dir: string }): Promise<void> {
  const execa = await loadExeca();
  const r = await execa('umount', [m.dir], { reject: false });
  if (r.exitCode !== 0) throw new CustosError('EUMOUNT', `cannot unmount ${m.dir}: ${String(r.stderr).split('\n')[0] ?? ''}`);
  rmdirSync(m.dir);
}
