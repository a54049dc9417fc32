// Differencing disks, which QEMU 7.2 cannot read with their parents: a
// Hyper-V VHDX child (.avhdx) and a VHD child, read through libvhdi's
// vhdimount under qemu-nbd in the sandbox. No Debian tool writes either, so
// the children are built to the specifications (test/helpers/) over parents
// qemu-img makes from random data, and the disk they must read as is computed
// from the same writes: that, not libvhdi, is what the images are held to.
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { custos } from '../helpers/cli.js';
import { sha256File, tempDir } from '../helpers/loop.js';
import { writeDifferencingVhd, type DifferencingWrite } from '../helpers/vhd-differencing.js';
import { expectedDisk, vhdxIdentity, writeDifferencingVhdx } from '../helpers/vhdx-differencing.js';
import { createHash } from 'node:crypto';
import type { CustodyRecord } from '../../appliance/custody/custody-record.js';

const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function dirOf(t: ExecutionContext): (name: string) => string {
  const d = tempDir();
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return (name) => path.join(d, name);
}

/** A parent of random data made by qemu-img; returns its bytes. */
async function parentOf(file: string, format: 'vhdx' | 'vpc', size = 8 * MiB): Promise<Buffer> {
  const raw = randomBytes(size);
  writeFileSync(`${file}.raw`, raw);
  await execa('qemu-img', ['convert', '-q', '-f', 'raw', '-O', format, '-o', 'subformat=dynamic', `${file}.raw`, file]);
  rmSync(`${file}.raw`);
  return raw;
}

/** Sector writes of every shape a bitmap has: a whole block, runs that cross and split bitmap bytes, the last sector. */
function vhdxWrites(): DifferencingWrite[] {
  return [
    { offset: 1 * MiB, data: randomBytes(MiB) },
    { offset: 2 * MiB + 3 * 512, data: randomBytes(8 * 512) },
    { offset: 2 * MiB + 100 * 512, data: randomBytes(512) },
    { offset: 6 * MiB + 4096, data: randomBytes(64 * 1024) },
    { offset: 8 * MiB - 512, data: randomBytes(512) },
  ];
}

async function acquire(f: (n: string) => string, file: string): Promise<{ code: number | undefined; stderr: string; out: string }> {
  const out = f(`out-${path.basename(file)}`);
  mkdirSync(out);
  const r = await custos(['acquire', '--source', f(file), '--out', out, '--hash', 'md5,sha256'], f(`state-${path.basename(file)}`));
  return { code: r.exitCode, stderr: String(r.stderr), out };
}

/** The sandbox's bwrap names the folder it binds; once it is gone, so is its PID namespace with vhdimount and qemu-nbd in it. */
async function noReaderLeft(t: ExecutionContext, folder: string): Promise<void> {
  await new Promise((r) => setTimeout(r, 200));
  const ps = await execa('pgrep', ['-f', `--ro-bind ${folder} `], { reject: false });
  t.is(ps.stdout.trim(), '', 'no sandbox (vhdimount, qemu-nbd) left behind');
}

test.serial(
  'a VHDX differencing chain (Hyper-V .avhdx over .avhdx over a dynamic VHDX) is imaged through libvhdi to the disk its writes make; the record names each parent by the identity it was made on; no container file changes',
  async (t) => {
    const f = dirOf(t);
    const base = await parentOf(f('base.vhdx'), 'vhdx');
    const w1 = vhdxWrites();
    writeDifferencingVhdx(f('base.vhdx'), f('snap1.avhdx'), w1);
    const w2: DifferencingWrite[] = [
      { offset: 2 * MiB + 5 * 512, data: randomBytes(512) }, // inside snap1's partial block
      { offset: 4 * MiB, data: randomBytes(3 * 512) },
    ];
    writeDifferencingVhdx(f('snap1.avhdx'), f('snap2.avhdx'), w2);
    const want = expectedDisk(expectedDisk(base, w1), w2);
    const files = ['snap2.avhdx', 'snap1.avhdx', 'base.vhdx'];
    const before = await Promise.all(files.map((n) => sha256File(f(n))));

    const r = await acquire(f, 'snap2.avhdx');
    t.is(r.code, 0, r.stderr);
    t.is(await sha256File(path.join(r.out, 'image.raw')), sha256(want), 'the image is the base with both snapshots on top');
    const rec = JSON.parse(readFileSync(path.join(r.out, 'custody.json'), 'utf8')) as CustodyRecord;
    t.is(rec.acquisition.hashes.sha256, sha256(want));
    const v = rec.virtualDisk;
    t.truthy(v);
    t.deepEqual(
      v?.layers.map((l) => [l.file, l.format, l.backingName]),
      [
        ['snap2.avhdx', 'vhdx', 'snap1.avhdx'],
        ['snap1.avhdx', 'vhdx', 'base.vhdx'],
        ['base.vhdx', 'vhdx', null],
      ],
    );
    // Each child names its parent by the DataWriteGuid the parent has.
    const linkage = (i: number) => v?.layers[i]?.ids.find((x) => x.name === 'VHDX parent data write GUID')?.value;
    t.is(linkage(0), vhdxIdentity(f('snap1.avhdx')).dataWriteGuid);
    t.is(linkage(1), vhdxIdentity(f('base.vhdx')).dataWriteGuid);
    t.is(v?.reader.via, 'libvhdi');
    t.regex(v?.reader.program ?? '', /^vhdimount \d+ \(libvhdi\) reading the child over its parents, under qemu-nbd \d/);
    t.deepEqual(
      v?.files.map((x) => x.sha256),
      before,
      'each container file hashed in the same run, as sha256sum has it',
    );
    t.true(v?.files.every((x) => x.unchanged));
    t.deepEqual(await Promise.all(files.map((n) => sha256File(f(n)))), before, 'no container file changed');
    const ver = await custos(['verify', r.out], f('state-verify'));
    t.is(ver.exitCode, 0, String(ver.stderr));
    await noReaderLeft(t, path.dirname(f('x')));
  },
);

test.serial(
  'VHDX differencing disks custos cannot rely on are refused, naming why, nothing written: a ZERO or UNMAPPED block (libvhdi reads the parent there), a parent written since (another data write GUID), a missing parent, locator paths that disagree or leave the folder',
  async (t) => {
    const f = dirOf(t);
    await parentOf(f('p.vhdx'), 'vhdx');
    const cases: [string, (child: string) => void, RegExp][] = [
      [
        'zero.avhdx',
        (c) => writeDifferencingVhdx(f('p.vhdx'), c, vhdxWrites(), { zeroBlocks: [5] }),
        /payload blocks \(1 in state ZERO\) that libvhdi.*would read from the parent/,
      ],
      ['unmapped.avhdx', (c) => writeDifferencingVhdx(f('p.vhdx'), c, vhdxWrites(), { unmappedBlocks: [3, 4] }), /payload blocks \(2 in state UNMAPPED\)/],
      [
        'stale.avhdx',
        (c) => writeDifferencingVhdx(f('p.vhdx'), c, vhdxWrites(), { parentLinkage: '01234567-89ab-cdef-0123-456789abcdef' }),
        /stale\.avhdx was made on a parent whose data write GUID is 01234567-89ab-cdef-0123-456789abcdef; p\.vhdx's is [0-9a-f-]{36} .*not its parent/,
      ],
      [
        'orphan.avhdx',
        (c) => writeDifferencingVhdx(f('p.vhdx'), c, vhdxWrites(), { parentName: 'gone.vhdx' }),
        /orphan\.avhdx names its parent "gone\.vhdx", which does not exist/,
      ],
      [
        'split.avhdx',
        (c) => writeDifferencingVhdx(f('p.vhdx'), c, vhdxWrites(), { relativeName: 'other.vhdx' }),
        /whose parent locator names different files \("p\.vhdx", "other\.vhdx"\): which one is its parent is not certain/,
      ],
      [
        'escape.avhdx',
        (c) => writeDifferencingVhdx(f('p.vhdx'), c, vhdxWrites(), { parentName: '../../etc/passwd' }),
        /whose parent is named "\.\.\/\.\.\/etc\/passwd", not a file name/,
      ],
    ];
    for (const [name, make, why] of cases) {
      make(f(name));
      const before = await sha256File(f(name));
      const r = await acquire(f, name);
      t.is(r.code, 1, name);
      t.regex(r.stderr, why, name);
      t.regex(r.stderr, /refused, nothing read/, name);
      t.deepEqual(readdirSync(r.out), [], `${name}: nothing written`);
      t.is(await sha256File(f(name)), before, `${name}: unchanged`);
    }
    await noReaderLeft(t, path.dirname(f('x')));
  },
);

test.serial(
  'a VHD differencing disk is imaged through libvhdi over its parent when its sector bitmaps are whole bytes (writes in 4 KiB units, as Windows makes them), and refused when a byte mixes set and clear bits (libvhdi misreads those)',
  async (t) => {
    const f = dirOf(t);
    const base = await parentOf(f('parent.vhd'), 'vpc');
    const aligned: DifferencingWrite[] = [
      { offset: 1 * MiB, data: randomBytes(8192) },
      { offset: 2 * MiB, data: randomBytes(2 * MiB) },
      { offset: 5 * MiB + 4096, data: randomBytes(4096) },
    ];
    writeDifferencingVhd(f('parent.vhd'), f('child.vhd'), aligned);
    const r = await acquire(f, 'child.vhd');
    t.is(r.code, 0, r.stderr);
    // qemu-img rounds a VHD up to its CHS geometry: the footer's Current Size, zeros past the data.
    const size = Number(readFileSync(f('parent.vhd')).subarray(-512).readBigUInt64BE(48));
    const want = expectedDisk(Buffer.concat([base, Buffer.alloc(size - base.length)]), aligned);
    t.is(await sha256File(path.join(r.out, 'image.raw')), sha256(want), "the child's sectors over the parent's");
    const rec = JSON.parse(readFileSync(path.join(r.out, 'custody.json'), 'utf8')) as CustodyRecord;
    const v = rec.virtualDisk;
    t.deepEqual(
      v?.layers.map((l) => [l.file, l.format, l.backingName]),
      [
        ['child.vhd', 'vpc', 'parent.vhd'],
        ['parent.vhd', 'vpc', null],
      ],
    );
    const parentId = v?.layers[1]?.ids.find((x) => x.name === 'VHD unique id')?.value;
    t.truthy(parentId);
    t.is(v?.layers[0]?.ids.find((x) => x.name === 'VHD parent unique id')?.value, parentId, 'the child names the parent it was made on');

    writeDifferencingVhd(f('parent.vhd'), f('odd.vhd'), [{ offset: 3 * MiB + 512, data: randomBytes(512) }]);
    const odd = await acquire(f, 'odd.vhd');
    t.is(odd.code, 1);
    t.regex(
      odd.stderr,
      /odd\.vhd is a VHD differencing disk whose sector bitmaps hold 1 byte\(s\) with set and clear bits together.*misreads: refused, nothing read/,
    );
    t.deepEqual(readdirSync(odd.out), []);
    writeDifferencingVhd(f('parent.vhd'), f('other.vhd'), aligned, { parentId: Buffer.alloc(16, 7) });
    const other = await acquire(f, 'other.vhd');
    t.is(other.code, 1);
    t.regex(other.stderr, /other\.vhd was made on a parent whose unique id is 07070707-0707-0707-0707-070707070707; parent\.vhd's is .*not its parent/);
    await noReaderLeft(t, path.dirname(f('x')));
  },
);

test("why a ZERO block stops custos: libvhdi 20210425 reads a VHDX child's PAYLOAD_BLOCK_ZERO from the parent, where [MS-VHDX] says zeros; this fails once Debian's libvhdi reads it as zeros", async (t) => {
  const f = dirOf(t);
  const base = await parentOf(f('p.vhdx'), 'vhdx');
  writeDifferencingVhdx(f('p.vhdx'), f('c.avhdx'), [], { zeroBlocks: [2] });
  const mnt = f('mnt');
  mkdirSync(mnt);
  const p = execa('vhdimount', [f('c.avhdx'), mnt], { reject: false });
  try {
    for (let i = 0; i < 100 && readdirSync(mnt).length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    const child = readFileSync(path.join(mnt, 'vhdi2'));
    t.deepEqual(child.subarray(2 * MiB, 3 * MiB), base.subarray(2 * MiB, 3 * MiB), "the ZERO block reads as the parent's data");
  } finally {
    await execa('umount', [mnt], { reject: false });
    await p;
  }
});
