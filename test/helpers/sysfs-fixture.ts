import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './loop.js';

/**
 * Builds a fake sysfs (and /proc) tree for inventory tests, laid out like the
 * kernel's: real directories under devices/, symlinks from block/, class/block/
 * and dev/block/. Only for what loop devices cannot show (USB bridges, NVMe
 * namespaces, hostile identity strings); real loop devices are tested beside it.
 */
export interface FixturePartition {
  name: string;
  majMin: string;
  start: number;
  size: number;
  ro?: boolean;
}

export interface FixtureDisk {
  name: string;
  majMin: string;
  /** Directory under devices/ that holds block/<name> (or <name> itself for NVMe). */
  parent: string;
  /** Directory under devices/ that block/<name>/device points to. */
  deviceDir?: string;
  /** NVMe namespaces sit directly in the controller directory, not under block/. */
  direct?: boolean;
  sizeSectors: number;
  logical?: number;
  physical?: number;
  rotational?: boolean;
  removable?: boolean;
  ro?: boolean;
  attrs?: Record<string, string | Buffer>;
  deviceAttrs?: Record<string, string | Buffer>;
  partitions?: FixturePartition[];
  holders?: string[];
  slaves?: string[];
}

export interface Fixture {
  root: string;
  sysfsRoot: string;
  procRoot: string;
  devRoot: string;
}

function write(file: string, content: string | Buffer): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
}

function link(target: string, at: string): void {
  mkdirSync(path.dirname(at), { recursive: true });
  symlinkSync(path.relative(path.dirname(at), target), at);
}

// Fixture trees are small but many; each test process removes its own on exit.
const made: string[] = [];
process.once('exit', () => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

export function buildFixture(
  disks: FixtureDisk[],
  extra: {
    mountinfo?: string;
    swaps?: string;
    files?: Record<string, string | Buffer>;
    /** Symlinks below the sysfs root: link path -> target path, both relative to the root (bus/pci/devices/X -> devices/...). */
    links?: Record<string, string>;
  } = {},
): Fixture {
  const root = tempDir('custos-sysfs-');
  made.push(root);
  const sys = path.join(root, 'sys');
  const proc = path.join(root, 'proc');
  const dev = path.join(root, 'dev');
  mkdirSync(path.join(sys, 'block'), { recursive: true });
  mkdirSync(dev, { recursive: true });
  for (const d of disks) {
    const diskDir = d.direct ? path.join(sys, 'devices', d.parent, d.name) : path.join(sys, 'devices', d.parent, 'block', d.name);
    const attrs: Record<string, string | Buffer> = {
      dev: `${d.majMin}\n`,
      size: `${d.sizeSectors}\n`,
      ro: `${d.ro ? 1 : 0}\n`,
      removable: `${d.removable ? 1 : 0}\n`,
      'queue/logical_block_size': `${d.logical ?? 512}\n`,
      'queue/physical_block_size': `${d.physical ?? d.logical ?? 512}\n`,
      'queue/rotational': `${d.rotational ? 1 : 0}\n`,
      stat: '     100        0     800       10        0        0        0        0        0       10       10        0        0        0        0        0        0\n',
      ...d.attrs,
    };
    for (const [k, v] of Object.entries(attrs)) write(path.join(diskDir, k), v);
    mkdirSync(path.join(diskDir, 'holders'), { recursive: true });
    mkdirSync(path.join(diskDir, 'slaves'), { recursive: true });
    for (const h of d.holders ?? []) write(path.join(diskDir, 'holders', h), '');
    for (const s of d.slaves ?? []) write(path.join(diskDir, 'slaves', s), '');
    if (d.deviceDir) {
      const devDir = path.join(sys, 'devices', d.deviceDir);
      mkdirSync(devDir, { recursive: true });
      link(devDir, path.join(diskDir, 'device'));
      for (const [k, v] of Object.entries(d.deviceAttrs ?? {})) write(path.join(devDir, k), v);
    }
    link(diskDir, path.join(sys, 'block', d.name));
    link(diskDir, path.join(sys, 'class/block', d.name));
    link(diskDir, path.join(sys, 'dev/block', d.majMin));
    for (const p of d.partitions ?? []) {
      const pDir = path.join(diskDir, p.name);
      write(path.join(pDir, 'dev'), `${p.majMin}\n`);
      write(path.join(pDir, 'partition'), `${p.name.replace(/^.*?(\d+)$/, '$1')}\n`);
      write(path.join(pDir, 'start'), `${p.start}\n`);
      write(path.join(pDir, 'size'), `${p.size}\n`);
      write(path.join(pDir, 'ro'), `${p.ro ? 1 : 0}\n`);
      mkdirSync(path.join(pDir, 'holders'), { recursive: true });
      link(pDir, path.join(sys, 'class/block', p.name));
      link(pDir, path.join(sys, 'dev/block', p.majMin));
    }
  }
  write(path.join(proc, 'self/mountinfo'), extra.mountinfo ?? '');
  write(path.join(proc, 'swaps'), `Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n${extra.swaps ?? ''}`);
  for (const [k, v] of Object.entries(extra.files ?? {})) write(path.join(sys, k), v);
  for (const [from, to] of Object.entries(extra.links ?? {})) {
    mkdirSync(path.join(sys, to), { recursive: true });
    link(path.join(sys, to), path.join(sys, from));
  }
  return { root, sysfsRoot: sys, procRoot: proc, devRoot: dev };
}

/** A VPD page 0x80 as a SCSI device returns it. */
export function vpd80(serial: Buffer | string): Buffer {
  const s = Buffer.isBuffer(serial) ? serial : Buffer.from(serial, 'latin1');
  const head = Buffer.from([0x00, 0x80, (s.length >> 8) & 0xff, s.length & 0xff]);
  return Buffer.concat([head, s]);
}
