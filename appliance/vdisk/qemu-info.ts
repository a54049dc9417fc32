// Stage: found (virtual disks). What QEMU's block layer says of one container
// file: `qemu-img info` in the sandbox, which opens the file without its
// backing file (QEMU's BDRV_O_NO_BACKING) and without reading guest data.
// Its JSON is taken field by field, bounded, as everything a container says
// is the container author's word.
import { loadExeca } from '../load-execa.js';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { CustosError, UsageError } from '../errors.js';
import { safeText } from '../sanitize.js';
import { fromSandbox, insideSandbox, sandboxed } from './qemu-sandbox.js';

/** The formats custos takes, by QEMU's driver names (vpc is VHD). */
export const VIRTUAL_FORMATS = ['qcow2', 'vmdk', 'vpc', 'vhdx', 'vdi', 'raw'] as const;
export type VirtualFormat = (typeof VIRTUAL_FORMATS)[number];
/** The --vm-format option: one of QEMU's format names, or absent (probe). */
export function virtualFormatOption(v: string | undefined): VirtualFormat | undefined {
  if (v !== undefined && !(VIRTUAL_FORMATS as readonly string[]).includes(v))
    throw new UsageError(`--vm-format ${safeText(v, 40)}: one of ${VIRTUAL_FORMATS.join(', ')} (QEMU's names; vpc is VHD)`);
  return v as VirtualFormat | undefined;
}

/** QEMU's format names as examiners know them. */
export const FORMAT_NAMES: Record<VirtualFormat, string> = { qcow2: 'QCOW2', vmdk: 'VMDK', vpc: 'VHD', vhdx: 'VHDX', vdi: 'VDI', raw: 'raw' };

export interface InternalSnapshot {
  id: string;
  name: string;
  /** Seconds since the epoch, as the container says. */
  dateSec: number | null;
  vmStateBytes: number | null;
}

export interface ContainerInfo {
  format: VirtualFormat;
  virtualSize: number;
  /** The backing file as the container names it (unsanitized; null without one). */
  backingName: string | null;
  backingFormat: string | null;
  /** Other files QEMU opened for this container (VMDK extents, a qcow2 data file), relative to the folder. */
  extents: string[];
  dataFile: string | null;
  /** VMDK's content ids and create type; null elsewhere. */
  vmdk: { cid: number; parentCid: number; createType: string } | null;
  snapshots: InternalSnapshot[];
}

const INFO_TIMEOUT_MS = 30_000;
const MAX_SNAPSHOTS = 10_000;

function obj(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null;
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

/** A path QEMU reported for a file it opened; it must lie in the folder (it cannot be elsewhere: the sandbox has nothing else). */
function openedFile(p: string | null, file: string): string | null {
  if (p === null) return null;
  const rel = fromSandbox(p);
  if (rel === null) throw new CustosError('EVDISKPATH', `${file}: QEMU opened ${safeText(p, 200)}, outside the chosen folder: refused`);
  return rel;
}

function snapshotsOf(v: unknown): InternalSnapshot[] {
  if (!Array.isArray(v)) return [];
  return v.slice(0, MAX_SNAPSHOTS).map((s) => {
    const o = obj(s);
    const vm = num(o['vm-state-size']);
    return { id: str(o['id']) ?? '', name: str(o['name']) ?? '', dateSec: num(o['date-sec']), vmStateBytes: vm };
  });
}

/** Parses qemu-img info's JSON for one file (relative to the folder); throws on anything it does not take. */
export function parseInfo(json: string, file: string): ContainerInfo {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new CustosError('EVDISK', `${file}: qemu-img info gave no JSON`);
  }
  const o = obj(raw);
  const format = str(o['format']);
  if (!format || !(VIRTUAL_FORMATS as readonly string[]).includes(format)) {
    throw new CustosError(
      'EVDISKFORMAT',
      `${file}: ${format ? `format ${safeText(format, 40)}` : 'no format'} is not a virtual disk custos takes (${VIRTUAL_FORMATS.join(', ')})`,
    );
  }
  const virtualSize = num(o['virtual-size']);
  if (virtualSize === null) throw new CustosError('EVDISK', `${file}: QEMU gave no virtual size`);
  const spec = obj(obj(o['format-specific'])['data']);
  const extents = Array.isArray(spec['extents'])
    ? spec['extents'].map((e) => openedFile(str(obj(e)['filename']), file)).filter((e): e is string => e !== null)
    : [];
  const cid = num(spec['cid']);
  return {
    format: format as VirtualFormat,
    virtualSize,
    backingName: str(o['backing-filename']),
    backingFormat: str(o['backing-filename-format']),
    extents: [...new Set(extents)].filter((e) => e !== file),
    dataFile: openedFile(str(spec['data-file']), file),
    vmdk: format === 'vmdk' && cid !== null ? { cid, parentCid: num(spec['parent-cid']) ?? 0, createType: str(spec['create-type']) ?? '' } : null,
    snapshots: snapshotsOf(o['snapshots']),
  };
}

/**
 * Options QEMU is given for a format, here and when it serves the disk. VHD:
 * the footer's Current Size, as the VHD specification, Hyper-V, Azure and
 * libvhdi take it, not the CHS geometry QEMU would otherwise use for images
 * made by some tools (a fixed image then shows its own footer as a last sector).
 */
export const FORMAT_OPTIONS: Partial<Record<VirtualFormat, Record<string, string>>> = { vpc: { force_size_calc: 'current_size' } };

/** QemuOpts escapes a comma by doubling it. */
export function optValue(v: string): string {
  return v.replaceAll(',', ',,');
}

/** The VHD footer's cookie "conectix" in a file's last 512 bytes (VHD specification, Hard Disk Footer Format). */
export function hasVhdFooter(p: string): boolean {
  const fd = openSync(p, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size < 1024) return false;
    const b = Buffer.alloc(8);
    return readSync(fd, b, 0, 8, size - 512) === 8 && b.toString('latin1') === 'conectix';
  } finally {
    closeSync(fd);
  }
}

async function runInfo(folder: string, file: string, args: string[]): Promise<ContainerInfo> {
  const execa = await loadExeca();
  const cmd = await sandboxed(folder, null, 'qemu-img', ['info', '--output=json', ...args]);
  const r = await execa(cmd.file, cmd.args, {
    env: cmd.env,
    reject: false,
    timeout: INFO_TIMEOUT_MS,
    maxBuffer: 8 * 1024 * 1024,
  });
  if (r.timedOut) throw new CustosError('EVDISK', `${file}: qemu-img info did not answer in ${INFO_TIMEOUT_MS / 1000} s`);
  if (r.exitCode !== 0) {
    const why = safeText(String(r.stderr).split('\n')[0] ?? '', 300).replace(/^qemu-img: /, '');
    throw new CustosError('EVDISK', `${file}: QEMU cannot open it: ${why || `exit ${r.exitCode}`}`);
  }
  return parseInfo(String(r.stdout), file);
}

/** qemu-img info of one file of the folder, in the sandbox; format given (a layer of a known chain) or probed by QEMU. */
export async function containerInfo(folder: string, file: string, format: string | null): Promise<ContainerInfo> {
  let info = await runInfo(folder, file, [...(format ? ['-f', format] : []), insideSandbox(file)]);
  // QEMU probes the start of a file; a fixed VHD has its only footer at the end and would be taken as raw, footer included.
  if (!format && info.format === 'raw' && hasVhdFooter(path.join(folder, file))) info = await runInfo(folder, file, ['-f', 'vpc', insideSandbox(file)]);
  const extra = FORMAT_OPTIONS[info.format];
  if (!extra) return info;
  const opts = [`driver=${info.format}`, ...Object.entries(extra).map(([k, v]) => `${k}=${v}`), `file.filename=${optValue(insideSandbox(file))}`];
  return runInfo(folder, file, ['--image-opts', opts.join(',')]);
}
