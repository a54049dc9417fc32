// Stage: recorded (virtual disks). What the custody record says of a virtual
// disk: the folder, the chain top first, each container file with its size,
// mtime and SHA-256 computed in the same run, and whether each file was the
// same at the end as at the start (size, mtime, ctime, inode).
import { statSync } from 'node:fs';
import path from 'node:path';
import { loadExeca } from '../load-execa.js';
import { safeText } from '../sanitize.js';
import { toolPath, vmTools } from './vm-tools.js';
import type { ContainerRole, VirtualDiskChain } from './container-chain.js';
import type { ContainerId } from './container-ids.js';
import { ContainerFileSystemWatch, type ContainerFileSystem } from './container-filesystem.js';
import type { InternalSnapshot, VirtualFormat } from './qemu-info.js';

export interface ContainerFileRecord {
  /** Relative to the folder (display-safe). */
  file: string;
  role: ContainerRole;
  /** The chain layer it belongs to, 0 being the file given. */
  layer: number;
  /** QEMU's driver for a layer; null for an extent or a data file. */
  format: VirtualFormat | null;
  sizeBytes: number;
  mtime: string;
  sha256: string | null;
  /** Size, mtime, ctime and inode at the end as at the start; null until checked. */
  unchanged: boolean | null;
}

export interface VirtualLayerRecord {
  file: string;
  format: VirtualFormat;
  virtualSize: number;
  /** The backing file as this layer names it (display-safe), or null. */
  backingName: string | null;
  vmdk: { cid: string; parentCid: string; createType: string } | null;
  /** VHD, VHDX and VDI identifiers from the container's header. */
  ids: ContainerId[];
  internalSnapshots: number;
}

export interface VirtualDiskRecord {
  /** The path the examiner gave, and the folder the chain was held to (display-safe). */
  given: string;
  folder: string;
  virtualSize: number;
  /** The qcow2 internal snapshot imaged instead of the current state, or null. */
  snapshot: { id: string; name: string; dateSec: number | null } | null;
  layers: VirtualLayerRecord[];
  files: ContainerFileRecord[];
  /** How the guest data was read. */
  reader: ReaderIdentity;
  /** The container's own identifiers for the E01 header and the report, e.g. "VMDK CID 3a1f..". */
  identifiers: string[];
  /** The file system holding the folder, and at the end the writes counted on its disk; null if not found. */
  fileSystem: ContainerFileSystem | null;
}

interface Stamp {
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
}

function stamp(p: string): Stamp {
  const s = statSync(p, { bigint: true });
  return { size: Number(s.size), mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs, ino: s.ino };
}

function same(a: Stamp, b: Stamp): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino;
}

async function firstLine(cmd: string, args: string[], env: Record<string, string>): Promise<string> {
  const execa = await loadExeca();
  // Its own name as argv[0]: qemu-nbd prints argv[0] before its version.
  const r = await execa(cmd, args, { env, argv0: path.basename(cmd), reject: false, timeout: 10_000 });
  return safeText(String(r.stdout).split('\n')[0] ?? '', 120);
}

export interface ReaderIdentity {
  program: string;
  sandbox: string;
  /** Who reads the container: QEMU's block layer, or libvhdi (a VHDX differencing chain) under qemu-nbd; absent in older records. */
  via?: 'qemu' | 'libvhdi';
}

const identity = new Map<'qemu' | 'libvhdi', Promise<ReaderIdentity>>();

/** The versions of the programs that read the guest data; asked once per process and reader, a failure asked again next time. */
export function readerIdentity(via: 'qemu' | 'libvhdi' = 'qemu'): Promise<ReaderIdentity> {
  let p = identity.get(via);
  if (!p) {
    p = askReaderIdentity(via).catch((e: unknown) => {
      identity.delete(via);
      throw e;
    });
    identity.set(via, p);
  }
  return p;
}

async function askReaderIdentity(via: 'qemu' | 'libvhdi'): Promise<ReaderIdentity> {
  const t = await vmTools();
  const [nbd, sandbox, vhdi] = await Promise.all([
    firstLine(toolPath(t, 'qemu-nbd'), ['--version'], t.env),
    firstLine(toolPath(t, 'bwrap'), ['--version'], t.env),
    via === 'libvhdi' ? firstLine(toolPath(t, 'vhdimount'), ['-V'], t.env) : Promise.resolve(''),
  ]);
  const served = `${nbd}, read-only, export over a private unix socket`;
  const jail = `${sandbox}: the folder bound read-only, no devices, no network`;
  if (via === 'qemu') return { program: served, sandbox: jail, via };
  return {
    program: `${vhdi} (libvhdi) reading the child over its parents, under ${served}`,
    sandbox: `${jail}; vhdimount's FUSE mount in a user namespace of its own, qemu-nbd with no capability`,
    via,
  };
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/** The container's identifiers, for the record and the E01 header. */
export function chainIdentifiers(chain: VirtualDiskChain): string[] {
  const top = chain.layers[0];
  const vmdk = top?.info.vmdk;
  return [...(vmdk ? [`VMDK CID ${hex(vmdk.cid)}`, `parent CID ${hex(vmdk.parentCid)}`] : []), ...(top?.ids ?? []).map((i) => `${i.name} ${i.value}`)];
}

/** Keeps each container file's stamp from the start, to say at the end whether any changed while it was read. */
export class ContainerWatch {
  private readonly start = new Map<string, Stamp>();
  private readonly fileSystem: ContainerFileSystemWatch;

  constructor(private readonly chain: VirtualDiskChain) {
    for (const f of chain.files) this.start.set(f.file, stamp(path.join(chain.folder, f.file)));
    this.fileSystem = new ContainerFileSystemWatch(chain.folder);
  }

  /** The files that changed since the start (or vanished). */
  changed(): string[] {
    return this.chain.files
      .filter((f) => {
        try {
          const was = this.start.get(f.file);
          return !was || !same(was, stamp(path.join(this.chain.folder, f.file)));
        } catch {
          return true;
        }
      })
      .map((f) => f.file);
  }

  /** The record of the chain, with the SHA-256 of each file (same order as chain.files) and the end check. */
  record(o: {
    given: string;
    snapshot: InternalSnapshot | null;
    sha256: (string | null)[];
    changed: string[] | null;
    reader: ReaderIdentity;
  }): VirtualDiskRecord {
    const c = this.chain;
    const text = (s: string) => safeText(s, 400);
    return {
      given: text(o.given),
      folder: text(c.folder),
      virtualSize: c.virtualSize,
      snapshot: o.snapshot ? { id: text(o.snapshot.id), name: text(o.snapshot.name), dateSec: o.snapshot.dateSec } : null,
      layers: c.layers.map((l) => ({
        file: text(l.file),
        format: l.info.format,
        virtualSize: l.info.virtualSize,
        backingName: l.info.backingName === null ? null : text(l.info.backingName),
        vmdk: l.info.vmdk ? { cid: hex(l.info.vmdk.cid), parentCid: hex(l.info.vmdk.parentCid), createType: text(l.info.vmdk.createType) } : null,
        ids: l.ids,
        internalSnapshots: l.info.snapshots.length,
      })),
      files: c.files.map((f, i) => ({
        file: text(f.file),
        role: f.role,
        layer: f.layer,
        format: f.role === 'extent' || f.role === 'data-file' ? null : (c.layers[f.layer]?.info.format ?? null),
        sizeBytes: this.start.get(f.file)?.size ?? 0,
        mtime: new Date(Number((this.start.get(f.file)?.mtimeNs ?? 0n) / 1_000_000n)).toISOString(),
        sha256: o.sha256[i] ?? null,
        unchanged: o.changed === null ? null : !o.changed.includes(f.file),
      })),
      reader: o.reader,
      identifiers: chainIdentifiers(c),
      fileSystem: o.changed === null ? this.fileSystem.fs : this.fileSystem.end(),
    };
  }
}
