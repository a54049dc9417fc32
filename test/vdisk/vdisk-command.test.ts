// `custos vdisk FILE` shows the chain before any acquisition: what custos
// would read, held to the folder, with sizes and mtimes the file system
// agrees with, the identifiers and the snapshots --snapshot can name. A
// hostile chain is refused the same way acquire refuses it.
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { custos } from '../helpers/cli.js';
import { sha256File, tempDir } from '../helpers/loop.js';
import type { VirtualDiskRecord } from '../../appliance/vdisk/virtual-disk-record.js';

function scratch(t: ExecutionContext): string {
  const d = tempDir();
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function qemuImg(args: string[], cwd: string): Promise<void> {
  await execa('qemu-img', args, { cwd });
}

test('vdisk: a qcow2 base + snapshot with an internal snapshot on top, in words and as JSON; the files are unchanged', async (t) => {
  const dir = scratch(t);
  await qemuImg(['create', '-q', '-f', 'qcow2', 'base.qcow2', '32M'], dir);
  await qemuImg(['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', 'base.qcow2', 'top.qcow2'], dir);
  await qemuImg(['snapshot', '-c', 'before-incident', 'top.qcow2'], dir);
  const before = [await sha256File(path.join(dir, 'top.qcow2')), await sha256File(path.join(dir, 'base.qcow2'))];

  const r = await custos(['vdisk', path.join(dir, 'top.qcow2')], scratch(t));
  t.is(r.exitCode, 0, String(r.stderr));
  const out = String(r.stdout);
  t.regex(out, /^virtual disk {2}33554432 bytes \(32\.0 MiB\), 2 layer\(s\), held to /);
  t.regex(
    out,
    /\n {2}top: top\.qcow2 \(QCOW2, 33554432 bytes, 1 internal snapshot\(s\)\), names "base\.qcow2" as its backing file\n {2}base: base\.qcow2 \(QCOW2, 33554432 bytes\)\n/,
  );
  t.regex(out, new RegExp(`\\n {2}top +${statSync(path.join(dir, 'top.qcow2')).size} {2}\\S+Z {2}top\\.qcow2\\n`));
  t.regex(out, /internal snapshots of top\.qcow2 \(acquire --snapshot ID\|NAME\):\n {2}1 +"before-incident" {2}\d{4}-/);
  t.regex(out, /read with +qemu-nbd \d/);

  const j = await custos(['vdisk', path.join(dir, 'top.qcow2'), '--json'], scratch(t));
  t.is(j.exitCode, 0, String(j.stderr));
  const doc = JSON.parse(String(j.stdout)) as { schema: string; virtualDisk: VirtualDiskRecord; internalSnapshots: { id: string; name: string }[] };
  t.is(doc.schema, 'custos.vdisk/1');
  t.deepEqual(
    doc.virtualDisk.files.map((f) => [f.file, f.role, f.sizeBytes, f.sha256]),
    ['top.qcow2', 'base.qcow2'].map((f, i) => [f, i === 0 ? 'top' : 'base', statSync(path.join(dir, f)).size, null]),
  );
  // To the millisecond, cut (not rounded) from the nanoseconds the file system keeps.
  t.is(doc.virtualDisk.files[1]?.mtime, new Date(Number(statSync(path.join(dir, 'base.qcow2'), { bigint: true }).mtimeNs / 1_000_000n)).toISOString());
  t.deepEqual(
    doc.internalSnapshots.map((s) => [s.id, s.name]),
    [['1', 'before-incident']],
  );
  t.deepEqual([await sha256File(path.join(dir, 'top.qcow2')), await sha256File(path.join(dir, 'base.qcow2'))], before, 'nothing written');
});

test('vdisk: a VHD shows its unique id; a chain naming /etc/shadow is refused; a wrong --vm-format is a usage error', async (t) => {
  const dir = scratch(t);
  await qemuImg(['create', '-q', '-f', 'vpc', 'disk.vhd', '8M'], dir);
  const id = /Identifier\s+:\s+([0-9a-f-]{36})/.exec((await execa('vhdiinfo', [path.join(dir, 'disk.vhd')])).stdout)?.[1] ?? 'none';
  const v = await custos(['vdisk', path.join(dir, 'disk.vhd')], scratch(t));
  t.is(v.exitCode, 0, String(v.stderr));
  t.regex(String(v.stdout), new RegExp(`identifiers {3}VHD unique id ${id}\\n`));

  await qemuImg(['create', '-q', '-f', 'qcow2', '-u', '-F', 'raw', '-b', '/etc/shadow', 'evil.qcow2', '8M'], dir);
  const bad = await custos(['vdisk', path.join(dir, 'evil.qcow2')], scratch(t));
  t.is(bad.exitCode, 1);
  t.is(String(bad.stdout), '');
  t.regex(String(bad.stderr), /^custos: .*names its backing file "\/etc\/shadow", which is outside the folder/);

  const fmt = await custos(['vdisk', path.join(dir, 'disk.vhd'), '--vm-format', 'vhd'], scratch(t));
  t.is(fmt.exitCode, 2);
  t.regex(String(fmt.stderr), /--vm-format vhd: one of qcow2, vmdk, vpc, vhdx, vdi, raw/);
  t.is((await custos(['vdisk'], scratch(t))).exitCode, 2);
});
