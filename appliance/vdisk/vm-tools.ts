// Stage: found (virtual disks). Where QEMU's programs and bubblewrap come
// from: the system's /usr on a workstation. The appliance carries them on its
// boot medium, not in the initramfs: there their 18 MB (5 MB packed) pushed
// the boot's memory peak past what a 512 MiB machine has under UEFI. The
// first time a virtual disk is opened, /boot/vmtools.txz is read from the boot
// medium (found by content, never mounted), checked against the SHA-256 and
// size the initramfs holds, and unpacked into the state directory (tmpfs).
import { loadExeca } from '../load-execa.js';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { CustosError } from '../errors.js';
import { stateDir } from '../state-dir.js';
import { BlockDevice } from '../disk/block-device.js';
import { bootKernel, custosMediumOf, isoFileExtent } from '../disk/custos-medium.js';
import { listDisks } from '../disk/inventory.js';

/** "<sha256> <size>" of the boot medium's /boot/vmtools.txz; only the appliance's initramfs has it. */
export const VM_TOOLS_RECORD = '/etc/custos/vm-tools';
const ON_MEDIUM = ['BOOT', 'VMTOOLS.TXZ'];

export interface VmTools {
  /** The tree bound as /usr in the sandbox: the programs, their libraries and the loader. */
  usr: string;
  /** The environment for running one of them outside the sandbox (bwrap itself, --version). */
  env: Record<string, string>;
}

let ready: Promise<VmTools> | null = null;

function unavailable(why: string): CustosError {
  return new CustosError('EVDISKTOOLS', `QEMU's programs, kept on the custos boot medium, cannot be loaded: ${why}`);
}

/** Copies the packed tools off the boot medium into `to`, checking their SHA-256 and size; false if this disk does not hold them. */
function copyFromMedium(devicePath: string, to: string, want: { sha256: string; size: number }): boolean {
  const dev = BlockDevice.open(devicePath);
  const out = openSync(to, 'w', 0o600);
  try {
    const read = (offset: number, length: number) => {
      const b = Buffer.alloc(length);
      return b.subarray(0, dev.readSyncAt(b, length, offset));
    };
    const file = isoFileExtent(read, ON_MEDIUM);
    if (!file || file.size !== want.size) return false;
    const hash = createHash('sha256');
    for (let at = 0; at < file.size;) {
      const chunk = read(file.offset + at, Math.min(4 * 1024 * 1024, file.size - at));
      if (chunk.length === 0) return false;
      hash.update(chunk);
      writeSync(out, chunk);
      at += chunk.length;
    }
    return hash.digest('hex') === want.sha256;
  } finally {
    closeSync(out);
    dev.close();
  }
}

async function unpack(): Promise<VmTools> {
  const execa = await loadExeca();
  const dir = path.join(stateDir(), 'vm-tools');
  const usr = path.join(dir, 'usr');
  if (!existsSync(path.join(usr, 'bin', 'qemu-nbd'))) {
    const [sha256 = '', size = '0'] = readFileSync(VM_TOOLS_RECORD, 'utf8').trim().split(/\s+/);
    const kernel = bootKernel();
    if (!kernel) throw unavailable('this system does not know its boot kernel');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const packed = path.join(dir, 'vmtools.txz');
    const media = listDisks().filter((d) => custosMediumOf(d, kernel) === 'boot-medium');
    if (media.length === 0) throw unavailable('the boot medium is not attached (plug the custos stick or CD back in)');
    if (!media.some((d) => copyFromMedium(d.devicePath, packed, { sha256, size: Number(size) })))
      throw unavailable(`${media.map((d) => d.name).join(', ')} does not hold the /boot/vmtools.txz this system was built with`);
    const r = await execa('tar', ['-xJf', packed, '-C', dir], { reject: false, timeout: 120_000 });
    rmSync(packed, { force: true });
    if (r.exitCode !== 0) throw unavailable(`unpacking failed: ${String(r.stderr).split('\n')[0] ?? ''}`);
  }
  return { usr, env: { LD_LIBRARY_PATH: path.join(usr, 'lib', 'x86_64-linux-gnu') } };
}

export function vmTools(): Promise<VmTools> {
  if (!existsSync(VM_TOOLS_RECORD)) return Promise.resolve({ usr: '/usr', env: {} });
  ready ??= unpack().catch((e: unknown) => {
    ready = null;
    throw e;
  });
  return ready;
}

/** A program of the tools tree, by name, for running outside the sandbox. */
export function toolPath(t: VmTools, name: 'bwrap' | 'qemu-nbd' | 'qemu-img' | 'vhdimount'): string {
  return path.join(t.usr, 'bin', name);
}
