// Containers name their own parents and extents, and those names are the
// author's word. A chain that leaves the examiner's folder (an absolute path,
// `..`, a symlink out, a device node, a QEMU protocol) or comes back on
// itself is refused with a clear error before any guest data is read, and
// nothing is written. A VMDK descriptor naming an extent outside the folder
// cannot even be opened: QEMU runs in a sandbox that has only the folder.
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { custos } from '../helpers/cli.js';
import { tempDir } from '../helpers/loop.js';

function scratch(t: ExecutionContext): string {
  const d = tempDir();
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A qcow2 naming `backing` (not opened when made: -u). */
async function qcow2Naming(dir: string, file: string, backing: string, backingFormat = 'qcow2'): Promise<void> {
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-F', backingFormat, '-b', backing, file, '8M'], { cwd: dir });
}

interface Case {
  name: string;
  make: (dir: string, outside: string) => Promise<string>;
  error: RegExp;
}

const CASES: Case[] = [
  {
    name: 'an absolute backing path elsewhere (/etc/shadow)',
    make: async (dir) => (await qcow2Naming(dir, 'top.qcow2', '/etc/shadow', 'raw'), 'top.qcow2'),
    error: /names its backing file "\/etc\/shadow", which is outside the folder/,
  },
  {
    name: 'a relative path out of the folder (..)',
    make: async (dir, outside) => {
      await execa('qemu-img', ['create', '-q', '-f', 'qcow2', path.join(outside, 'parent.qcow2'), '8M']);
      await qcow2Naming(dir, 'top.qcow2', `../${path.basename(outside)}/parent.qcow2`);
      return 'top.qcow2';
    },
    error: /which is outside the folder/,
  },
  {
    name: 'a symlink out of the folder',
    make: async (dir, outside) => {
      await execa('qemu-img', ['create', '-q', '-f', 'qcow2', path.join(outside, 'real.qcow2'), '8M']);
      symlinkSync(path.join(outside, 'real.qcow2'), path.join(dir, 'link.qcow2'));
      await qcow2Naming(dir, 'top.qcow2', 'link.qcow2');
      return 'top.qcow2';
    },
    error: /which is a symlink to .* outside the folder/,
  },
  {
    name: 'a device node inside the folder',
    make: async (dir) => {
      await execa('mknod', [path.join(dir, 'disk0'), 'b', '7', '0']);
      await qcow2Naming(dir, 'top.qcow2', 'disk0', 'raw');
      return 'top.qcow2';
    },
    error: /which is not a regular file/,
  },
  {
    name: 'a loop (a names b, b names a)',
    make: async (dir) => {
      await qcow2Naming(dir, 'a.qcow2', 'b.qcow2');
      await qcow2Naming(dir, 'b.qcow2', 'a.qcow2');
      return 'a.qcow2';
    },
    error: /the chain comes back to a\.qcow2 \(a loop\)/,
  },
  {
    name: 'a QEMU protocol as backing file (nbd://)',
    make: async (dir) => (await qcow2Naming(dir, 'top.qcow2', 'nbd://127.0.0.1:10809/x', 'raw'), 'top.qcow2'),
    error: /is a QEMU protocol, not a file/,
  },
  {
    name: 'a missing backing file',
    make: async (dir) => (await qcow2Naming(dir, 'top.qcow2', 'gone.qcow2'), 'top.qcow2'),
    error: /names its backing file "gone\.qcow2", which does not exist/,
  },
  {
    name: 'a VMDK descriptor whose extent is /etc/shadow',
    make: (dir) => {
      writeFileSync(
        path.join(dir, 'evil.vmdk'),
        '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\nRW 16 FLAT "/etc/shadow" 0\n\nddb.virtualHWVersion = "4"\n',
      );
      return Promise.resolve('evil.vmdk');
    },
    error: /evil\.vmdk: QEMU cannot open it: .*\/etc\/shadow/,
  },
];

for (const c of CASES) {
  test(`refused: ${c.name}; nothing written`, async (t) => {
    const dir = scratch(t);
    const outside = scratch(t);
    const file = await c.make(dir, outside);
    const out = scratch(t);
    const r = await custos(['acquire', '--source', path.join(dir, file), '--out', out, '--hash', 'sha256'], scratch(t));
    t.not(r.exitCode, 0);
    t.regex(String(r.stderr), c.error);
    t.notRegex(String(r.stderr), /at .*\.js:\d+/, 'a clear error, no stack trace');
    t.deepEqual(readdirSync(out), [], 'nothing written to the destination');
  });
}

test('a chain inside the folder, through a subfolder and an absolute path into the folder, is followed', async (t) => {
  const dir = scratch(t);
  mkdirSync(path.join(dir, 'base'));
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', path.join(dir, 'base', 'b.qcow2'), '8M']);
  await qcow2Naming(dir, 'mid.qcow2', path.join(dir, 'base', 'b.qcow2'));
  await qcow2Naming(dir, 'top.qcow2', 'mid.qcow2');
  const out = scratch(t);
  const r = await custos(['acquire', '--source', path.join(dir, 'top.qcow2'), '--out', out, '--hash', 'sha256'], scratch(t));
  t.is(r.exitCode, 0, String(r.stderr));
  t.regex(`${String(r.stdout)}${String(r.stderr)}`, /top: top\.qcow2 .*delta: mid\.qcow2 .*base: base\/b\.qcow2/);
});
