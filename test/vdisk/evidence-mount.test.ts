// VM files on a write-blocked drive: `custos evidence mount` opens its file
// system read-only with options that replay nothing, `custos acquire --source
// FILE` images the VM disk from there, and the drive's kernel write counters
// are the same at the end as before the mount. The ext4 drive is a
// crash-consistent copy of a mounted file system, so its journal needs
// recovery: a plain read-only mount is refused by the kernel (recovery would
// write), custos's `noload` mount is not.
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { custos } from '../helpers/cli.js';
import { attachLoop, sha256File, tempDir, writeCounters, type Loop } from '../helpers/loop.js';
import { snapshotChain } from '../helpers/vm-chain.js';
import { custodyProblems } from '../helpers/schema.js';
import type { CustodyRecord } from '../../appliance/custody/custody-record.js';

function scratch(t: ExecutionContext): string {
  const d = tempDir();
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A VMDK base + one snapshot delta in `dir/vm`; returns qemu-img's SHA-256 of the guest disk. */
async function vmdkChain(dir: string): Promise<string> {
  const vm = path.join(dir, 'vm');
  mkdirSync(vm);
  return snapshotChain(vm, {
    format: 'vmdk',
    base: 'disk.vmdk',
    top: 'disk-000001.vmdk',
    guestBytes: 12 * 1024 * 1024,
    seed: 41,
    write: { pattern: 0x6d, offset: '2M', length: '512k' },
  });
}

/** Protects the drive, mounts it with custos, images the VM disk on it, and checks the record and the counters. */
async function acquireFromDrive(t: ExecutionContext, loop: Loop, expected: string, asked: string[], shown: string[]): Promise<void> {
  const state = scratch(t);
  t.is((await custos(['writeblock', 'protect', loop.dev], state)).exitCode, 0);
  const before = writeCounters(loop.name);
  const m = await custos(['evidence', 'mount', loop.dev, '--json'], state);
  t.is(m.exitCode, 0, String(m.stderr));
  const mounted = JSON.parse(String(m.stdout)) as { dir: string; options: string[] };
  t.teardown(() => execa('umount', [mounted.dir], { reject: false }).then(() => undefined));
  for (const o of asked) t.true(mounted.options.includes(o), `${o} in ${mounted.options.join(',')}`);

  const out = scratch(t);
  const r = await custos(['acquire', '--source', path.join(mounted.dir, 'vm', 'disk-000001.vmdk'), '--out', out, '--hash', 'sha256'], state);
  t.is(r.exitCode, 0, String(r.stderr));
  t.is(await sha256File(path.join(out, 'image.raw')), expected, 'the guest disk as qemu-img reads it');
  const rec = JSON.parse(readFileSync(path.join(out, 'custody.json'), 'utf8')) as CustodyRecord;
  t.deepEqual(custodyProblems(rec), []);
  const fs = rec.virtualDisk?.fileSystem;
  t.is(fs?.device, loop.dev);
  t.is(fs?.deviceReadOnly, true, 'the drive was write-blocked while read');
  t.is(fs?.readOnlyMount, true);
  // The kernel's own words for them (ext4 shows noload as norecovery).
  for (const o of shown) t.true(fs?.mountOptions.includes(o), `the record shows ${o}: ${fs?.mountOptions.join(',') ?? ''}`);
  t.deepEqual(fs?.writes && [fs.writes.writeIos, fs.writes.discardIos], [0, 0], 'no write counted on the drive during the acquisition');
  const log = readFileSync(path.join(out, 'events.jsonl'), 'utf8');
  t.regex(log, /"type":"container-filesystem"/);
  t.regex(log, new RegExp(`"message":"the container files are on \\S+ at ${mounted.dir.replace(/[/.]/g, '\\$&')} \\(read-only`));
  t.regex(log, new RegExp(`no write counted on ${loop.dev}, the drive holding them`));
  t.regex(
    readFileSync(path.join(out, 'report.txt'), 'utf8'),
    /Stored on .*read-only.*device write-blocked; 0 write\(s\), 0 discard\(s\) counted on the disk while read/,
  );

  const u = await custos(['evidence', 'unmount', loop.dev], state);
  t.is(u.exitCode, 0, String(u.stderr));
  t.false(existsSync(mounted.dir));
  t.deepEqual(writeCounters(loop.name), before, 'the kernel counted no write on the drive from mount to unmount');
}

test('ext4 whose journal needs recovery: refused by a plain read-only mount, opened with noload, the VMDK chain imaged, no write on the drive', async (t) => {
  const dir = scratch(t);
  const live = path.join(dir, 'live.img');
  await execa('truncate', ['-s', '96M', live]);
  await execa('mkfs.ext4', ['-q', '-F', live]);
  const mnt = path.join(dir, 'mnt');
  mkdirSync(mnt);
  const l = await attachLoop(live);
  let expected: string;
  try {
    await execa('mount', [l.dev, mnt]);
    try {
      expected = await vmdkChain(mnt);
      await execa('sync');
      // A copy taken while mounted: what a drive pulled from a running machine holds.
      copyFileSync(live, path.join(dir, 'dirty.img'));
    } finally {
      await execa('umount', [mnt]);
    }
  } finally {
    await l.detach();
  }
  t.regex((await execa('dumpe2fs', ['-h', path.join(dir, 'dirty.img')], { stderr: 'ignore' })).stdout, /features:.*needs_recovery/);
  const drive = await attachLoop(path.join(dir, 'dirty.img'));
  t.teardown(drive.detach);
  await execa('blockdev', ['--setro', drive.dev]);
  const plain = await execa('mount', ['-o', 'ro', drive.dev, mnt], { reject: false });
  t.not(plain.exitCode, 0, 'the kernel would have to replay the journal to mount it read-only');
  await execa('blockdev', ['--setrw', drive.dev]);
  const image = await sha256File(path.join(dir, 'dirty.img'));
  await acquireFromDrive(t, drive, expected, ['ro', 'noload', 'nosuid', 'nodev', 'noexec'], ['ro', 'norecovery', 'nosuid', 'nodev', 'noexec']);
  await execa('blockdev', ['--setrw', drive.dev]);
  t.is(await sha256File(path.join(dir, 'dirty.img')), image, 'the drive image is byte for byte the same');
});

test('NTFS through ntfs-3g read-only: the VMDK chain imaged, no write on the drive', async (t) => {
  const dir = scratch(t);
  const file = path.join(dir, 'ntfs.img');
  await execa('truncate', ['-s', '96M', file]);
  await execa('mkntfs', ['-Q', '-F', '-q', '-L', 'VMSTORE', file]);
  const mnt = path.join(dir, 'mnt');
  mkdirSync(mnt);
  await execa('ntfs-3g', [file, mnt]);
  let expected: string;
  try {
    expected = await vmdkChain(mnt);
  } finally {
    await execa('umount', [mnt]);
  }
  const drive = await attachLoop(file);
  t.teardown(drive.detach);
  const image = await sha256File(file);
  await acquireFromDrive(t, drive, expected, ['ro', 'nosuid', 'nodev', 'noexec'], ['ro', 'nosuid', 'nodev', 'noexec']);
  t.is(await sha256File(file), image, 'the drive image is byte for byte the same');
});

test('evidence mount refuses a drive that is not write-blocked, and one without a file system; nothing is mounted', async (t) => {
  const dir = scratch(t);
  const file = path.join(dir, 'fs.img');
  await execa('truncate', ['-s', '32M', file]);
  await execa('mkfs.ext4', ['-q', '-F', file]);
  const drive = await attachLoop(file);
  t.teardown(drive.detach);
  const state = scratch(t);
  const r = await custos(['evidence', 'mount', drive.dev], state);
  t.is(r.exitCode, 1);
  t.regex(String(r.stderr), new RegExp(`${drive.dev} is not write-blocked \\(its read-only flag is off\\): protect it first; nothing mounted`));
  t.false(readFileSync('/proc/self/mountinfo', 'utf8').includes(`${drive.dev} `), 'not mounted');

  const blankFile = path.join(dir, 'blank.img');
  await execa('truncate', ['-s', '8M', blankFile]);
  const blank = await attachLoop(blankFile);
  t.teardown(blank.detach);
  await custos(['writeblock', 'protect', blank.dev], state);
  const none = await custos(['evidence', 'mount', blank.dev], state);
  t.is(none.exitCode, 1);
  t.regex(String(none.stderr), /no file system found/);
});
