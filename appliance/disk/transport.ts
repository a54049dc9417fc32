// Stage 1: a disk's bus (SATA, USB, NVMe, virtio, MMC, SCSI, loop) from its sysfs path.
import type { Sysfs } from './sysfs.js';
import { deviceString, type DeviceString } from '../sanitize.js';

export type Transport = 'sata' | 'usb' | 'nvme' | 'virtio' | 'mmc' | 'scsi' | 'loop' | 'virtual';

/**
 * Classifies a disk by the bus path sysfs resolves its block directory to.
 * Order matters: a USB or virtio-scsi disk also has SCSI host/target parts,
 * and NVMe or SATA controllers hang off PCI like everything else.
 */
export function transportOf(name: string, devicePath: string): Transport {
  const p = '/' + devicePath + '/';
  if (/^loop\d+$/.test(name)) return 'loop';
  if (p.includes('/nvme/') || /^nvme\d+n\d+$/.test(name)) return 'nvme';
  if (/\/usb\d+\//.test(p)) return 'usb';
  if (/\/ata\d+\//.test(p)) return 'sata';
  if (p.includes('/mmc_host/') || /^mmcblk\d+$/.test(name)) return 'mmc';
  if (/\/host\d+\/(?:.*\/)?target\d+:\d+:\d+\//.test(p)) return 'scsi';
  if (/\/virtio\d+\/block\//.test(p)) return 'virtio';
  return 'virtual';
}

export interface UsbBridge {
  vendorId: string;
  productId: string;
  manufacturer: DeviceString | null;
  product: DeviceString | null;
  /** The bridge's own serial (iSerialNumber), not the disk's. */
  serial: DeviceString | null;
  /** USB device path in sysfs, e.g. "2-1". */
  port: string;
}

/** The USB device a disk hangs off: the nearest ancestor with idVendor/idProduct. */
export function usbBridgeOf(sysfs: Sysfs, devicePath: string): UsbBridge | null {
  const parts = devicePath.split('/');
  for (let i = parts.length - 1; i > 0; i--) {
    const dir = parts.slice(0, i).join('/');
    const vid = sysfs.readText(`${dir}/idVendor`);
    const pid = sysfs.readText(`${dir}/idProduct`);
    if (vid !== null && pid !== null) {
      const str = (attr: string) => {
        const b = sysfs.readBytes(`${dir}/${attr}`);
        return b === null ? null : deviceString(b);
      };
      return {
        vendorId: deviceString(Buffer.from(vid, 'latin1'), 8).text,
        productId: deviceString(Buffer.from(pid, 'latin1'), 8).text,
        manufacturer: str('manufacturer'),
        product: str('product'),
        serial: str('serial'),
        port: deviceString(Buffer.from(parts[i - 1] ?? '', 'latin1')).text,
      };
    }
  }
  return null;
}
