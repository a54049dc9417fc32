// Stage: found (virtual disks). The chain of container files behind a virtual
// disk: the file the examiner gave, the backing file it names, the one that
// names, down to the base. Every name a container holds is the author's word:
// a file is followed only if it lies inside the folder the examiner chose
// (no absolute path elsewhere, no `..` out of it, no symlink out, no device
// node, no loop), and the chain is refused with a clear error otherwise.
// QEMU is then given this chain explicitly (virtual-disk-reader.ts).
import { lstatSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { CustosError } from '../errors.js';
import { safeText } from '../sanitize.js';
import { containerIds, type ContainerId } from './container-ids.js';
import { containerInfo, FORMAT_NAMES, type ContainerInfo, type VirtualFormat } from './qemu-info.js';
import { differencing, parentIdentity, type Differencing } from './differencing-disks.js';

/** More layers than any snapshot tree examiners meet; a longer chain is refused rather than walked. */
export const MAX_LAYERS = 64;

export type ContainerRole = 'top' | 'delta' | 'base' | 'only' | 'extent' | 'data-file';

export interface ChainLayer {
  /** Relative to the folder. */
  file: string;
  info: ContainerInfo;
  /** The identifiers in its header that QEMU does not report (VHD, VHDX, VDI). */
  ids: ContainerId[];
  /** A differencing disk's link to its parent and its blocks (QEMU cannot read it with its parent); null otherwise. */
  differencing: Differencing | null;
}

export interface ContainerFileRef {
  /** Relative to the folder. */
  file: string;
  role: ContainerRole;
  /** Which layer it belongs to (0: the file given). */
  layer: number;
}

export interface VirtualDiskChain {
  /** The folder the chain must stay in (real path). */
  folder: string;
  /** Top first: the file given, then each backing file. */
  layers: ChainLayer[];
  /** Every file QEMU reads: the layers and their extents and data files. */
  files: ContainerFileRef[];
  virtualSize: number;
  /** Who reads the guest data: QEMU's block layer, or (a VHD or VHDX differencing chain, which QEMU cannot read) libvhdi under QEMU. */
  reader: 'qemu' | 'libvhdi';
}

function refuse(what: string): never {
  throw new CustosError('EVDISKPATH', `${what}: refused, nothing read`);
}

/** The path of `p` relative to the folder, after every symlink, if it is a regular file inside it. */
export function fileInFolder(folder: string, p: string, said: string): string {
  let st;
  try {
    st = lstatSync(p);
  } catch {
    return refuse(`${said} does not exist`);
  }
  let real: string;
  try {
    real = realpathSync(p);
  } catch {
    return refuse(`${said} is a symlink that leads nowhere`);
  }
  const rel = path.relative(folder, real);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    return refuse(`${said} ${st.isSymbolicLink() ? `is a symlink to ${safeText(real, 200)}` : 'is'} outside the folder ${safeText(folder, 200)}`);
  }
  if (!statSync(real).isFile()) return refuse(`${said} is not a regular file (a device node, a directory or a pipe)`);
  return rel;
}

/** Where a backing name leads, relative to the folder: QEMU's rule (relative to the naming file's directory), and then ours. */
function backingFile(folder: string, layer: ChainLayer): string {
  const name = layer.info.backingName ?? '';
  const said = `${layer.file} names its backing file "${safeText(name, 200)}", which`;
  if (name === '' || name.includes('\0')) return refuse(`${said} is empty`);
  // QEMU would take "nbd://...", "json:{...}" or "file:..." as a protocol, not a file.
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(name)) return refuse(`${said} is a QEMU protocol, not a file`);
  const target = path.isAbsolute(name) ? name : path.resolve(folder, path.dirname(layer.file), name);
  return fileInFolder(folder, target, said);
}

/** A differencing disk as a layer: QEMU cannot open it with its parent, so this is taken from its own header. */
function differencingInfo(d: Differencing): ContainerInfo {
  return {
    format: d.format,
    virtualSize: d.virtualSize,
    backingName: d.parentName,
    backingFormat: d.format,
    extents: [],
    dataFile: null,
    vmdk: null,
    snapshots: [],
  };
}

/** The parent libvhdi would open: the file name the child gives, beside the child; held to the folder like any backing file. */
function parentFile(folder: string, child: string, d: Differencing): string {
  const said = `${child} names its parent "${safeText(d.parentName, 200)}", which`;
  return fileInFolder(folder, path.resolve(folder, path.dirname(child), d.parentName), said);
}

/** The parent is the disk the child was made on: of the child's format, with the identity the child names. */
function parentHolds(folder: string, file: string, e: { child: string; d: Differencing }): void {
  const id = parentIdentity(path.join(folder, file), e.d.format);
  const [child, parent, what] = [safeText(e.child, 200), safeText(file, 200), e.d.format === 'vhdx' ? 'data write GUID' : 'unique id'];
  if (id === null) refuse(`${child} names ${parent} as its parent, which is not a ${FORMAT_NAMES[e.d.format]} with a ${what}`);
  if (id !== e.d.linkage)
    refuse(
      `${child} was made on a parent whose ${what} is ${e.d.linkage}; ${parent}'s is ${id} (written after the child was made, or another disk): not its parent`,
    );
}

function roleOf(layer: number, count: number): ContainerRole {
  if (count === 1) return 'only';
  return layer === 0 ? 'top' : layer === count - 1 ? 'base' : 'delta';
}

/** Resolves the chain of `top` inside `folder` (default: top's own folder), asking QEMU of each file in the sandbox. */
export async function resolveChain(top: string, o: { folder?: string; format?: VirtualFormat } = {}): Promise<VirtualDiskChain> {
  let folder: string;
  try {
    folder = realpathSync(o.folder ?? path.dirname(path.resolve(top)));
    if (!statSync(folder).isDirectory()) throw new Error('not a directory');
  } catch {
    throw new CustosError('EVDISKPATH', `${safeText(o.folder ?? path.dirname(top), 200)} is not a folder`);
  }
  const layers: ChainLayer[] = [];
  const seen = new Set<string>();
  let file = fileInFolder(folder, path.resolve(top), safeText(top, 200));
  let format: string | null = o.format ?? null;
  /** What the layer above (a differencing disk) says its parent must be. */
  let expected: { child: string; d: Differencing } | null = null;
  for (;;) {
    if (seen.has(file)) refuse(`the chain comes back to ${safeText(file, 200)} (a loop)`);
    if (layers.length >= MAX_LAYERS) refuse(`the chain has more than ${MAX_LAYERS} layers`);
    seen.add(file);
    const shown = safeText(file, 200);
    if (expected) parentHolds(folder, file, expected);
    const diff = differencing(path.join(folder, file), shown);
    if (diff && format !== null && format !== diff.format) refuse(`${shown} is a ${FORMAT_NAMES[diff.format]} differencing disk, not ${safeText(format, 20)}`);
    if (diff && layers.length > 0 && !expected)
      refuse(
        `${safeText(layers[layers.length - 1]?.file ?? '', 200)} names ${shown} as its backing file, a ${FORMAT_NAMES[diff.format]} differencing disk, which QEMU cannot read below another format`,
      );
    const info = diff ? differencingInfo(diff) : await containerInfo(folder, file, format);
    if (expected && info.virtualSize !== expected.d.virtualSize)
      refuse(`${safeText(expected.child, 200)} is ${expected.d.virtualSize} bytes, its parent ${shown} ${info.virtualSize}: not its parent`);
    const ids = containerIds(path.join(folder, file), info.format, shown);
    // The parent a child was made on, by the identity its parent must still have.
    if (diff) ids.push({ name: diff.linkageName, value: diff.linkage });
    const layer = { file, info, ids, differencing: diff };
    layers.push(layer);
    if (info.backingName === null) break;
    file = diff ? parentFile(folder, file, diff) : backingFile(folder, layer);
    expected = diff ? { child: layer.file, d: diff } : null;
    format = info.backingFormat;
  }
  const top0 = layers[0] as ChainLayer;
  const files: ContainerFileRef[] = [];
  const listed = new Set<string>();
  const add = (f: string, role: ContainerRole, layer: number) => {
    if (listed.has(f)) return;
    // Extents and data files are checked as the layers are: inside the folder, regular files.
    fileInFolder(folder, path.join(folder, f), `${layers[layer]?.file ?? ''} uses ${safeText(f, 200)}, which`);
    listed.add(f);
    files.push({ file: f, role, layer });
  };
  layers.forEach((l, i) => add(l.file, roleOf(i, layers.length), i));
  layers.forEach((l, i) => {
    for (const e of l.info.extents) add(e, 'extent', i);
    if (l.info.dataFile) add(l.info.dataFile, 'data-file', i);
  });
  return { folder, layers, files, virtualSize: top0.info.virtualSize, reader: top0.differencing ? 'libvhdi' : 'qemu' };
}
