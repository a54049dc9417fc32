// How a disk is shown on one line and in a detail panel. Every device string
// is its sanitized display form, padded and cut to a fixed width, so a
// hostile model or serial can neither shift the columns nor colour anything.
import { humanSize } from '../appliance/format.js';
import type { Disk } from '../appliance/disk/inventory.js';
import { safeText, type DeviceString } from '../appliance/sanitize.js';

function fit(s: string, w: number): string {
  return s.length > w ? s.slice(0, w - 1) + '~' : s.padEnd(w);
}

const text = (d: DeviceString | null) => (d && d.text ? d.text : '-');

/**
 * boot, system: never a source or destination. source: the chosen source.
 * twin: its serial is shared with another attached disk (a source or destination all the same).
 * src/dst: a candidate source that also carries a file system custos can
 * write an image to (a candidate destination); src: a candidate source only;
 * '?' while its file systems are being probed.
 */
export function roleOf(d: Disk, sourceName: string | null, writableFs: boolean | null): string {
  if (d.roles.includes('boot-medium')) return 'boot';
  if (d.roles.includes('running-system')) return 'system';
  if (d.name === sourceName) return 'source';
  // Another attached disk has the same serial: only kernel name and size tell them apart (details say which).
  if (d.twins.length > 0) return 'twin';
  return writableFs === null ? '?' : writableFs ? 'src/dst' : 'src';
}

/** RO/RW from the kernel's own flag, as the guardian keeps it. */
export function wbMark(d: Disk): string {
  return d.readOnly ? 'RO' : 'RW';
}

/** 78 columns (an 80-column console inside the frame): mark, name, role, transport, size, sectors, partitions, model, serial. */
export function diskRow(d: Disk, sourceName: string | null = null, writableFs: boolean | null = null): string {
  return [
    fit(wbMark(d), 2),
    fit(d.name, 8),
    fit(roleOf(d, sourceName, writableFs), 7),
    fit(d.transport, 6),
    fit(humanSize(d.sizeBytes), 10),
    fit(`${d.logicalSectorSize}/${d.physicalSectorSize}`, 9),
    fit(`p${d.partitions.length}`, 3),
    fit(text(d.model), 14),
    fit(text(d.serial), 11),
  ].join(' ');
}

export const DISK_HEADER = ['WB', 'NAME    ', 'ROLE   ', 'TRAN  ', 'SIZE      ', 'SECTORS  ', 'PRT', 'MODEL         ', 'SERIAL'].join(' ');

export function diskDetail(d: Disk): string {
  const lines = [
    `${d.devicePath}  ${d.readOnly ? 'read-only (write-blocked)' : 'WRITABLE'}  ${d.transport}  attachment ${d.attachment}`,
    `vendor ${text(d.vendor)}  model ${text(d.model)}  serial ${text(d.serial)}`,
    `size ${d.sizeBytes} bytes (${humanSize(d.sizeBytes)}), sectors ${d.logicalSectorSize} logical / ${d.physicalSectorSize} physical`,
    `stable id ${d.stableId}`,
    ...(d.loop ? [`loop backing file ${d.loop.backingFile.text}`] : []),
    ...d.partitions.map((p) => `  ${p.name}: offset ${p.startBytes}, ${p.sizeBytes} bytes${p.readOnly ? ', RO' : ', RW'}${p.mounts.length ? ', MOUNTED' : ''}`),
    ...d.warnings.map((w) => `! ${safeText(w.message, 76)}`),
  ];
  return lines.join('\n');
}
