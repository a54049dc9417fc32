// Virtual disks as sources, one run per format variant: each container is
// made by qemu-img from the same guest disk, imaged by `custos acquire
// --source FILE`, and the image is held against two readers we did not write:
// `qemu-img convert -O raw` of the same chain, and libyal's FUSE readers
// (vmdkmount, vhdimount, qcowmount) for the variants they read. Every
// container file's SHA-256 in the record is sha256sum's, and none changed.
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { custos } from '../helpers/cli.js';
import { sha256File, tempDir } from '../helpers/loop.js';
import { custodyProblems } from '../helpers/schema.js';
import type { CustodyRecord } from '../../appliance/custody/custody-record.js';

const MiB = 1024 * 1024;

function scratch(t: ExecutionContext): string {
  const d = tempDir();
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A guest disk of 24 MiB: random areas, zeros (sparse in the containers) and a repeated pattern, as a real disk has. */
function guestDisk(file: string): void {
  const b = Buffer.alloc(24 * MiB);
  randomBytes(3 * MiB).copy(b, 0);
  randomBytes(2 * MiB).copy(b, 11 * MiB);
  for (let i = 16 * MiB; i < 20 * MiB; i += 4096) b.write(`sector pattern ${i}`, i, 'latin1');
  randomBytes(4096).copy(b, 24 * MiB - 4096);
  writeFileSync(file, b);
}

const qemuImg = (args: string[], cwd: string) => execa('qemu-img', args, { cwd });
const qemuIo = (fmt: string, file: string, cmd: string, cwd: string) => execa('qemu-io', ['-f', fmt, '-c', cmd, file], { cwd });

/** sha256sum of what a libyal FUSE reader shows of a container. */
async function libyalSha256(tool: 'vmdkmount' | 'vhdimount' | 'qcowmount', file: string, t: ExecutionContext): Promise<string> {
  const mnt = scratch(t);
  const p = execa(tool, [file, mnt], { reject: false });
  try {
    for (let i = 0; i < 100 && readdirSync(mnt).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    const [only] = readdirSync(mnt);
    if (!only) throw new Error(`${tool} showed nothing for ${file}`);
    return await sha256File(path.join(mnt, only));
  } finally {
    await execa('umount', [mnt], { reject: false });
    await p;
  }
}

interface Variant {
  name: string;
  /** Makes the containers in dir from guest.raw; returns the file to give custos. */
  make: (dir: string) => Promise<string>;
  /** qemu-img's way to read the same chain (default: the file, format probed). */
  oracleArgs?: (file: string) => string[];
  libyal?: 'vmdkmount' | 'vhdimount' | 'qcowmount';
  /** Container files expected in the record, top first. */
  files: string[];
  /** The container identifier libvhdi reads (vhdiinfo's Identifier), under custos's name for it. */
  vhdiId?: string;
}

async function vhdiIdentifier(file: string): Promise<string> {
  const out = (await execa('vhdiinfo', [file])).stdout;
  return /Identifier\s+:\s+([0-9a-f-]{36})/.exec(out)?.[1] ?? `no identifier in: ${out}`;
}

const convert =
  (fmt: string, out: string, ...opts: string[]) =>
  async (dir: string) => {
    await qemuImg(['convert', '-q', '-f', 'raw', '-O', fmt, ...opts, 'guest.raw', out], dir);
    return out;
  };

/** A base converted from the guest disk, then one snapshot layer per entry, each naming the one before and written with its qemu-io commands. */
const chainOf =
  (fmt: string, base: string, layers: [string, ...string[]][]) =>
  async (dir: string): Promise<string> => {
    await convert(fmt, base)(dir);
    let below = base;
    for (const [file, ...writes] of layers) {
      await qemuImg(['create', '-q', '-f', fmt, '-F', fmt, '-b', below, file], dir);
      for (const w of writes) await qemuIo(fmt, file, w, dir);
      below = file;
    }
    return below;
  };

const VARIANTS: Variant[] = [
  { name: 'raw', make: () => Promise.resolve('guest.raw'), files: ['guest.raw'] },
  { name: 'QCOW2', make: convert('qcow2', 'disk.qcow2'), libyal: 'qcowmount', files: ['disk.qcow2'] },
  { name: 'QCOW2 compressed clusters', make: convert('qcow2', 'disk.qcow2', '-c'), libyal: 'qcowmount', files: ['disk.qcow2'] },
  {
    name: 'QCOW2 base + two snapshots',
    make: chainOf('qcow2', 'base.qcow2', [
      ['snap1.qcow2', 'write -P 0x51 1M 192k'],
      ['snap2.qcow2', 'write -P 0x52 1088k 64k', 'write -z 12M 1M'],
    ]),
    files: ['snap2.qcow2', 'snap1.qcow2', 'base.qcow2'],
  },
  { name: 'VMDK monolithicSparse', make: convert('vmdk', 'disk.vmdk', '-o', 'subformat=monolithicSparse'), libyal: 'vmdkmount', files: ['disk.vmdk'] },
  { name: 'VMDK streamOptimized', make: convert('vmdk', 'disk.vmdk', '-o', 'subformat=streamOptimized'), libyal: 'vmdkmount', files: ['disk.vmdk'] },
  {
    name: 'VMDK split sparse (twoGbMaxExtentSparse)',
    make: convert('vmdk', 'disk.vmdk', '-o', 'subformat=twoGbMaxExtentSparse'),
    libyal: 'vmdkmount',
    files: ['disk.vmdk', 'disk-s001.vmdk'],
  },
  { name: 'VMDK flat + descriptor', make: convert('vmdk', 'disk.vmdk', '-o', 'subformat=monolithicFlat'), files: ['disk.vmdk', 'disk-flat.vmdk'] },
  {
    // What an ESXi datastore holds: a descriptor with createType "vmfs" naming a VMFS extent (the -flat file).
    name: 'VMDK ESXi flat + descriptor (vmfs)',
    make: async (dir) => {
      await convert('vmdk', 'disk.vmdk', '-o', 'subformat=monolithicFlat')(dir);
      const d = path.join(dir, 'disk.vmdk');
      const text = readFileSync(d, 'latin1');
      const esxi = text
        .replace('createType="monolithicFlat"', 'createType="vmfs"')
        .replace(/^RW (\d+) FLAT "disk-flat\.vmdk" 0$/m, 'RW $1 VMFS "disk-flat.vmdk"');
      if (esxi === text || !esxi.includes('VMFS')) throw new Error(`descriptor not as expected:\n${text}`);
      writeFileSync(d, esxi, 'latin1');
      return 'disk.vmdk';
    },
    libyal: 'vmdkmount',
    files: ['disk.vmdk', 'disk-flat.vmdk'],
  },
  {
    name: 'VMDK base + two snapshot deltas',
    make: chainOf('vmdk', 'base.vmdk', [
      ['base-000001.vmdk', 'write -P 0x61 2M 128k'],
      ['base-000002.vmdk', 'write -P 0x62 2112k 64k'],
    ]),
    files: ['base-000002.vmdk', 'base-000001.vmdk', 'base.vmdk'],
  },
  {
    name: 'VHD fixed',
    make: convert('vpc', 'disk.vhd', '-o', 'subformat=fixed'),
    oracleArgs: (f) => ['--image-opts', `driver=vpc,force_size_calc=current_size,file.filename=${f}`],
    libyal: 'vhdimount',
    files: ['disk.vhd'],
    vhdiId: 'VHD unique id',
  },
  {
    name: 'VHD dynamic',
    make: convert('vpc', 'disk.vhd', '-o', 'subformat=dynamic'),
    oracleArgs: (f) => ['--image-opts', `driver=vpc,force_size_calc=current_size,file.filename=${f}`],
    libyal: 'vhdimount',
    files: ['disk.vhd'],
    vhdiId: 'VHD unique id',
  },
  { name: 'VHDX', make: convert('vhdx', 'disk.vhdx'), libyal: 'vhdimount', files: ['disk.vhdx'], vhdiId: 'VHDX data write GUID' },
  { name: 'VDI', make: convert('vdi', 'disk.vdi'), files: ['disk.vdi'] },
];

for (const v of VARIANTS) {
  test(`${v.name}: the image equals qemu-img convert${v.libyal ? ` and ${v.libyal}` : ''}; each container file's SHA-256 is sha256sum's`, async (t) => {
    const dir = scratch(t);
    guestDisk(path.join(dir, 'guest.raw'));
    const file = await v.make(dir);
    if (file !== 'guest.raw') rmSync(path.join(dir, 'guest.raw'));
    const before = Object.fromEntries(await Promise.all(v.files.map(async (f) => [f, await sha256File(path.join(dir, f))] as const)));
    const ref = path.join(scratch(t), 'ref.raw');
    await execa('qemu-img', ['convert', '-O', 'raw', ...(v.oracleArgs ? v.oracleArgs(file) : [file]), ref], { cwd: dir });
    const expected = await sha256File(ref);

    const out = scratch(t);
    const r = await custos(['acquire', '--source', path.join(dir, file), '--out', out, '--hash', 'md5,sha256'], scratch(t));
    t.is(r.exitCode, 0, String(r.stderr));
    t.is(await sha256File(path.join(out, 'image.raw')), expected, 'the image is what qemu-img convert reads');
    if (v.libyal) t.is(await libyalSha256(v.libyal, path.join(dir, file), t), expected, `${v.libyal} reads the same disk`);

    const rec = JSON.parse(readFileSync(path.join(out, 'custody.json'), 'utf8')) as CustodyRecord;
    t.deepEqual(custodyProblems(rec), []);
    t.is(rec.acquisition.hashes.sha256, expected);
    t.is(rec.acquisition.source.sizeBytes, statSync(ref).size);
    t.deepEqual(
      rec.virtualDisk?.files.map((f) => [f.file, f.sha256, f.unchanged]),
      v.files.map((f) => [f, before[f], true]),
    );
    for (const f of v.files) t.is(await sha256File(path.join(dir, f)), before[f] ?? '', `${f} is unchanged`);
    t.regex(readFileSync(path.join(out, 'report.txt'), 'utf8'), /Virtual disk/);
    if (v.vhdiId) {
      const id = `${v.vhdiId} ${await vhdiIdentifier(path.join(dir, file))}`;
      t.true(rec.virtualDisk?.identifiers.includes(id), `${id} in ${JSON.stringify(rec.virtualDisk?.identifiers)}`);
      t.true(rec.acquisition.source.serial?.text.includes(id), 'and in the source serial (the E01 header)');
    }
  });
}

test('a qcow2 internal snapshot is imaged as it was, not the current state; an unknown snapshot name is refused with the list', async (t) => {
  const dir = scratch(t);
  guestDisk(path.join(dir, 'guest.raw'));
  await convert('qcow2', 'vm.qcow2')(dir);
  await qemuImg(['snapshot', '-c', 'before-incident', 'vm.qcow2'], dir);
  await qemuIo('qcow2', 'vm.qcow2', 'write -P 0x71 4M 256k', dir);
  const then = await sha256File(path.join(dir, 'guest.raw'));
  const nowRef = path.join(scratch(t), 'now.raw');
  await qemuImg(['convert', '-O', 'raw', 'vm.qcow2', nowRef], dir);
  t.not(await sha256File(nowRef), then);

  const out = scratch(t);
  const r = await custos(['acquire', '--source', path.join(dir, 'vm.qcow2'), '--snapshot', 'before-incident', '--out', out, '--hash', 'sha256'], scratch(t));
  t.is(r.exitCode, 0, String(r.stderr));
  t.is(await sha256File(path.join(out, 'image.raw')), then, 'the snapshot is the guest disk as it was when the snapshot was taken');
  const rec = JSON.parse(readFileSync(path.join(out, 'custody.json'), 'utf8')) as CustodyRecord;
  t.is(rec.virtualDisk?.snapshot?.name, 'before-incident');
  t.regex(readFileSync(path.join(out, 'report.txt'), 'utf8'), /internal snapshot 1 "before-incident" imaged, not the current state/);

  const out2 = scratch(t);
  const bad = await custos(['acquire', '--source', path.join(dir, 'vm.qcow2'), '--snapshot', 'nope', '--out', out2], scratch(t));
  t.is(bad.exitCode === 0, false);
  t.regex(String(bad.stderr), /--snapshot nope: vm\.qcow2 has only 1 "before-incident"/);
  t.deepEqual(readdirSync(out2), [], 'nothing written');
});

test('E01 to two destinations with verify, and split raw: the same guest disk, checked by ewfverify and by the split files joined', async (t) => {
  const dir = scratch(t);
  guestDisk(path.join(dir, 'guest.raw'));
  const expected = await sha256File(path.join(dir, 'guest.raw'));
  await convert('vmdk', 'disk.vmdk')(dir);
  const [a, b] = [scratch(t), scratch(t)];
  const e01 = await custos(
    ['acquire', '--source', path.join(dir, 'disk.vmdk'), '--out', a, '--out', b, '--format', 'e01', '--verify', '--case', 'VM-1'],
    scratch(t),
    {
      timeoutMs: 120_000,
    },
  );
  t.is(e01.exitCode, 0, String(e01.stderr));
  for (const d of [a, b]) {
    const v = await execa('ewfverify', ['-q', '-d', 'sha256', path.join(d, 'image.E01')], { reject: false });
    t.is(v.exitCode, 0, v.stdout);
    t.regex(v.stdout, new RegExp(`SHA256 hash calculated over data:\\s+${expected}`));
  }
  const info = (await execa('ewfinfo', [path.join(a, 'image.E01')])).stdout;
  t.regex(info, /Model:\s+VMDK monolithicSparse/);
  t.regex(info, /Serial number:\s+VMDK CID [0-9a-f]{8} parent CID ffffffff/);

  const s = scratch(t);
  const split = await custos(
    ['acquire', '--source', path.join(dir, 'disk.vmdk'), '--out', s, '--format', 'split', '--split-size', '5M', '--hash', 'sha256'],
    scratch(t),
  );
  t.is(split.exitCode, 0, String(split.stderr));
  const parts = readdirSync(s)
    .filter((f) => /^image\.\d{3}$/.test(f))
    .sort();
  t.is(parts.length, 5);
  const joined = path.join(scratch(t), 'joined.raw');
  await execa('sh', ['-c', `cat ${parts.map((p) => path.join(s, p)).join(' ')} > ${joined}`]);
  t.is(await sha256File(joined), expected);
});
