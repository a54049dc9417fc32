// Stage: recorded (virtual disks). The chain in words, for the log, the CLI
// and the report: what custos shows before it reads a byte of guest data.
import type { VirtualDiskRecord } from './virtual-disk-record.js';
import { FORMAT_NAMES } from './qemu-info.js';

/** One line per layer, top first, then the other files QEMU reads. */
export function chainLines(v: VirtualDiskRecord): string[] {
  const layers = v.layers.map((l, i) => {
    const role = v.layers.length === 1 ? 'the disk' : i === 0 ? 'top' : i === v.layers.length - 1 ? 'base' : 'delta';
    const vmdk = l.vmdk ? ` ${l.vmdk.createType}, CID ${l.vmdk.cid}, parent CID ${l.vmdk.parentCid}` : '';
    const ids = l.ids.length ? `, ${l.ids.map((x) => `${x.name} ${x.value}`).join(', ')}` : '';
    const parent = l.ids.some((x) => x.name === 'VHDX parent data write GUID' || x.name === 'VHD parent unique id');
    const backing = l.backingName !== null ? `, names "${l.backingName}" as its ${parent ? 'parent' : 'backing file'}` : '';
    return `${role}: ${l.file} (${FORMAT_NAMES[l.format]}${vmdk}, ${l.virtualSize} bytes${ids}${l.internalSnapshots ? `, ${l.internalSnapshots} internal snapshot(s)` : ''})${backing}`;
  });
  const others = v.files.filter((f) => f.role === 'extent' || f.role === 'data-file').map((f) => `${f.role}: ${f.file} of layer ${f.layer}`);
  return [...layers, ...others];
}

/** The chain in one sentence, for the log. */
export function chainText(v: VirtualDiskRecord): string {
  const snap = v.snapshot ? `; internal snapshot ${v.snapshot.id} "${v.snapshot.name}" is imaged, not the current state` : '';
  return `virtual disk of ${v.virtualSize} bytes from ${v.files.length} container file(s) in ${v.folder}, read through ${v.reader.via === 'libvhdi' ? 'libvhdi and QEMU' : 'QEMU'} in a sandbox: ${chainLines(v).join('; ')}${snap}`;
}
