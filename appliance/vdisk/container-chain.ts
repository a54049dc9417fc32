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
import { containerIds, unfollowedParent, type ContainerId } from './container-ids.js';
import { containerInfo, type ContainerInfo, type VirtualFormat } from './qemu-info.js';

/** More layers than any snapshot tree examiners meet; a longer chain is refused rather than walked. */
export const MAX_LAYERS = 64;

export type ContainerRole = 'top' | 'delta' | 'base' | 'only' | 'extent' | 'data-file';

export interface ChainLayer {
  /** Relative to the folder. */
  file: string;
  info: ContainerInfo;
  /** The identifiers in its header that QEMU does not report (VHD, VHDX, VDI). */
  ids: ContainerId[];
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
  for (;;) {
    if (seen.has(file)) refuse(`the chain comes back to ${safeText(file, 200)} (a loop)`);
    if (layers.length >= MAX_LAYERS) refuse(`the chain has more than ${MAX_LAYERS} layers`);
    seen.add(file);
    const parent = unfollowedParent(path.join(folder, file), safeText(file, 200));
    if (parent)
      throw new CustosError(
        'EVDISKFORMAT',
        `${parent}: refused, nothing read; merge the chain in its hypervisor (or image the parent alone) and give custos the merged disk`,
      );
    const info = await containerInfo(folder, file, format);
    const layer = { file, info, ids: containerIds(path.join(folder, file), info.format, safeText(file, 200)) };
    layers.push(layer);
    if (info.backingName === null) break;
    file = backingFile(folder, layer);
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
  return { folder, layers, files, virtualSize: top0.info.virtualSize };
}
