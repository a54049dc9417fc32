import { execa } from 'execa';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readCounters } from '../../appliance/disk/kernel-stat.js';
import { Sysfs } from '../../appliance/disk/sysfs.js';

export function tempDir(prefix = 'custos-test-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * An image whose every 512-byte sector starts with its own LBA and a seed,
 * so any shifted, dropped or duplicated sector shows up in a comparison.
 */
export function writePatternImage(file: string, bytes: number, seed = 1): void {
  const fd = openSync(file, 'w');
  try {
    const chunk = Buffer.alloc(1024 * 1024);
    for (let off = 0; off < bytes; off += chunk.length) {
      const n = Math.min(chunk.length, bytes - off);
      for (let s = 0; s < n; s += 512) {
        const lba = (off + s) / 512;
        chunk.writeUInt32LE(lba % 2 ** 32, s);
        chunk.writeUInt32LE(Math.floor(lba / 2 ** 32), s + 4);
        chunk.writeUInt32LE(seed, s + 8);
        chunk.fill((lba * 7 + seed) & 0xff, s + 12, s + 512);
      }
      writeSync(fd, chunk, 0, n, off);
    }
  } finally {
    closeSync(fd);
  }
}

export async function sha256File(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

export interface Loop {
  dev: string;
  name: string;
  file: string;
  partitions: string[];
  detach: () => Promise<void>;
}

export interface LoopOptions {
  sectorSize?: 512 | 4096;
  /** Write an MBR with these partition sizes in MiB (the last may be 0 = rest). */
  partitionsMiB?: number[];
  /** A GPT instead of the MBR, with these partition type GUIDs (one per partition; undefined = Linux data). */
  gptTypes?: (string | undefined)[];
  /**
   * Leave the read-only flag as found. For tests where a guardian is already
   * watching: making the new device writable would race with its protection.
   */
  keepReadOnlyFlag?: boolean;
  /**
   * Attach at a loop number that `losetup --find` in other tests will not reach. For
   * tests that detach while a TUI watches the kernel name: a shared number can be
   * taken by a parallel test's device before the TUI sees the first one go.
   */
  privateNumber?: boolean;
}

/** Reservations of private loop numbers, one file per number naming the test process that holds it. */
const RESERVED = '/run/custos-test-loops';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Takes number n for this process until it exits (a number held by a process that is gone is free again). */
function reserve(n: number): boolean {
  mkdirSync(RESERVED, { recursive: true });
  const f = path.join(RESERVED, `loop${n}`);
  for (let i = 0; i < 2; i++) {
    try {
      writeFileSync(f, String(process.pid), { flag: 'wx' });
      return true;
    } catch {
      const holder = Number(readFileSync(f, 'utf8').trim());
      if (holder > 0 && alive(holder)) return false;
      rmSync(f, { force: true });
    }
  }
  return false;
}

/**
 * An unbound loop number at or above 150 that no other test process has taken in this run (its
 * node made if missing), kept for this process: once a test detaches it, no parallel test's device
 * can come up under its name. `losetup --find` in other tests takes lower numbers.
 */
export async function privateLoopName(): Promise<string> {
  for (let i = 0; i < 320; i++) {
    const n = 150 + ((process.pid + i) % 320);
    if (existsSync(`/sys/block/loop${n}/loop/backing_file`) || !reserve(n)) continue;
    if (!existsSync(`/dev/loop${n}`)) await execa('mknod', [`/dev/loop${n}`, 'b', '7', String(n)], { reject: false });
    return `loop${n}`;
  }
  throw new Error('no private loop number is free');
}

async function attachPrivate(args: string[], file: string): Promise<string> {
  for (let i = 0; i < 16; i++) {
    const dev = `/dev/${await privateLoopName()}`;
    // Busy means another process bound it between our check and now: try the next one.
    const r = await execa('losetup', [...args, dev, file], { reject: false });
    if (r.exitCode === 0) return dev;
  }
  throw new Error('no private loop number could be bound');
}

/**
 * Attaches a loop device. Partition tables are written through the device and
 * partitions added with partx (BLKPG), which also works on kernels built
 * without partition-table parsers, like this project's CI host.
 */
export async function attachLoop(file: string, options: LoopOptions = {}): Promise<Loop> {
  const args = ['--partscan'];
  if (options.sectorSize) args.push('--sector-size', String(options.sectorSize));
  let dev = options.privateNumber ? await attachPrivate(args, file) : '';
  for (let attempt = 0; !dev; attempt++) {
    try {
      dev = (await execa('losetup', ['--find', '--show', ...args, file])).stdout.trim();
    } catch (e) {
      // Two test processes can race for the same free loop device.
      if (attempt >= 5) throw e;
      await new Promise((r) => setTimeout(r, 100 * (attempt + 1)));
    }
  }
  const name = path.basename(dev);
  let detached = false;
  const loop: Loop = {
    dev,
    name,
    file,
    partitions: [],
    detach: async () => {
      // Once only: a second call (a test that detaches, then its teardown) would hit a loop
      // number another test may have attached since, making that test's disk writable.
      if (detached) return;
      detached = true;
      await execa('blockdev', ['--setrw', dev], { reject: false });
      await execa('losetup', ['-d', dev], { reject: false });
      // A write attempt to a missing node creates a regular file in devtmpfs; never leave one.
      for (const p of loop.partitions) {
        const node = `/dev/${p}`;
        if (existsSync(node) && statSync(node).isFile()) rmSync(node);
      }
    },
  };
  try {
    // BLKROSET lives on the block device, which outlives a detach: a reused
    // loop node can come back read-only from an earlier test. Start writable.
    if (!options.keepReadOnlyFlag) await execa('blockdev', ['--setrw', dev]);
    if (options.partitionsMiB && options.partitionsMiB.length > 0) {
      const gpt = options.gptTypes;
      const entry = (m: number, i: number) => `,${m > 0 ? `${m}MiB` : ''}${gpt?.[i] ? `,${gpt[i]}` : ''}`;
      const script = [gpt ? 'label: gpt' : 'label: dos', ...options.partitionsMiB.map(entry)].join('\n') + '\n';
      await execa('sfdisk', ['-q', '--no-reread', dev], { input: script });
      await execa('partx', ['-a', dev], { reject: false });
      loop.partitions = await waitForPartitions(name, options.partitionsMiB.length);
    }
  } catch (e) {
    await loop.detach();
    throw e;
  }
  return loop;
}

async function waitForPartitions(name: string, count: number): Promise<string[]> {
  for (let i = 0; i < 50; i++) {
    const parts = readdirSync(`/sys/block/${name}`).filter((p) => p.startsWith(name) && existsSync(`/sys/block/${name}/${p}/partition`));
    if (parts.length >= count && parts.every((p) => existsSync(`/dev/${p}`))) return parts.sort();
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`partitions of ${name} did not appear`);
}

/** A fresh image file with a loop device over it, removed again after the test. */
export async function patternLoop(bytes: number, options: LoopOptions = {}, seed = 1): Promise<Loop & { dir: string }> {
  const dir = tempDir();
  const file = path.join(dir, 'source.img');
  writePatternImage(file, bytes, seed);
  const loop = await attachLoop(file, options);
  const detach = loop.detach;
  return {
    ...loop,
    dir,
    detach: async () => {
      await detach();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function blockdev(flag: string, dev: string): Promise<string> {
  return execa('blockdev', [flag, dev]).then((r) => r.stdout.trim());
}

/** Mounts a device or image file read-only (ext4 journal untouched) for the test's duration. */
export async function mountReadOnly(t: { teardown(fn: () => Promise<void>): void }, what: string): Promise<string> {
  const mnt = path.join(tempDir(), 'mnt');
  mkdirSync(mnt);
  await execa('mount', ['-o', 'ro,noload', what, mnt]);
  t.teardown(() => execa('umount', [mnt], { reject: false }).then(() => undefined));
  return mnt;
}

/** An empty ext4 evidence drive of `mib` MiB on its own loop device, detached and removed after the test. */
export async function ext4Loop(t: { teardown(fn: () => Promise<void>): void }, mib: number): Promise<Loop> {
  const dir = tempDir();
  const file = path.join(dir, 'evidence-drive.img');
  await execa('truncate', ['-s', `${mib}M`, file]);
  await execa('mkfs.ext4', ['-q', '-F', '-m', '0', file]);
  const loop = await attachLoop(file);
  t.teardown(async () => {
    await loop.detach();
    rmSync(dir, { recursive: true, force: true });
  });
  return loop;
}

/** An empty NTFS evidence drive (mkntfs, quick format) of `mib` MiB on its own loop device, detached and removed after the test. */
export async function ntfsLoop(t: { teardown(fn: () => Promise<void>): void }, mib: number): Promise<Loop> {
  const dir = tempDir();
  const file = path.join(dir, 'evidence-ntfs.img');
  await execa('truncate', ['-s', `${mib}M`, file]);
  await execa('mkntfs', ['-Q', '-F', '-q', '-L', 'EVIDENCE', file]);
  const loop = await attachLoop(file);
  t.teardown(async () => {
    await loop.detach();
    rmSync(dir, { recursive: true, force: true });
  });
  return loop;
}

/** Mounts an NTFS device read-only with ntfs-3g, for the test's duration. */
export async function mountNtfsReadOnly(t: { teardown(fn: () => Promise<void>): void }, dev: string): Promise<string> {
  const mnt = path.join(tempDir(), 'mnt');
  mkdirSync(mnt);
  await execa('ntfs-3g', ['-o', 'ro', dev, mnt]);
  t.teardown(() => execa('umount', [mnt], { reject: false }).then(() => undefined));
  return mnt;
}

/** What the kernel counted written to a block device (writes, written sectors, discards): equal before and after means nothing was written. */
export function writeCounters(name: string): [number, number, number] {
  const c = readCounters(new Sysfs(), name);
  if (!c) throw new Error(`no I/O counters for ${name}`);
  return [c.writeIos, c.writeSectors, c.discardIos];
}
