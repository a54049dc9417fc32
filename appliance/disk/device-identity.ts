// Stage 1: a disk's vendor, model, serial and WWN, from where its transport
// keeps them in sysfs; every string sanitized.
import type { Sysfs } from './sysfs.js';
import { deviceString, type DeviceString } from '../sanitize.js';
import type { Transport, UsbBridge } from './transport.js';
import { parseVpdUnitSerial } from './vpd.js';

export type SerialSource = 'vpd-0x80' | 'nvme' | 'virtio' | 'mmc' | 'usb-bridge' | null;

export interface DeviceIdentity {
  vendor: DeviceString | null;
  model: DeviceString | null;
  serial: DeviceString | null;
  serialSource: SerialSource;
  firmware: DeviceString | null;
  /** World Wide Name / EUI from the kernel's wwid (naa./eui./nvme.), when the device reports one. */
  wwn: DeviceString | null;
}

function str(sysfs: Sysfs, rel: string): DeviceString | null {
  const b = sysfs.readBytes(rel);
  if (b === null) return null;
  const s = deviceString(b);
  return s.text === '' ? null : s;
}

function wwnOf(sysfs: Sysfs, name: string): DeviceString | null {
  const w = str(sysfs, `block/${name}/wwid`) ?? str(sysfs, `block/${name}/device/wwid`);
  // "t10." identifiers are vendor+model+serial text, not a world-wide name.
  if (w === null || /^t10\./i.test(w.text)) return null;
  return w;
}

/**
 * Vendor, model, serial and WWN of a whole disk, each from the place its
 * transport keeps it. The serial is the drive's own where the bus exposes it;
 * only when it does not (some USB bridges) is the bridge's serial used, and
 * `serialSource` says so.
 */
export function identityOf(sysfs: Sysfs, name: string, transport: Transport, usb: UsbBridge | null): DeviceIdentity {
  const dev = `block/${name}/device`;
  const none: DeviceIdentity = { vendor: null, model: null, serial: null, serialSource: null, firmware: null, wwn: null };
  switch (transport) {
    case 'nvme': {
      // block/nvme0n1/device is the controller; serial and model live there.
      const serial = str(sysfs, `${dev}/serial`);
      return {
        vendor: null,
        model: str(sysfs, `${dev}/model`),
        serial,
        serialSource: serial ? 'nvme' : null,
        firmware: str(sysfs, `${dev}/firmware_rev`),
        wwn: wwnOf(sysfs, name),
      };
    }
    case 'virtio': {
      const serial = str(sysfs, `block/${name}/serial`);
      return { ...none, serial, serialSource: serial ? 'virtio' : null, wwn: wwnOf(sysfs, name) };
    }
    case 'mmc': {
      const serial = str(sysfs, `${dev}/serial`);
      return {
        vendor: str(sysfs, `${dev}/manfid`),
        model: str(sysfs, `${dev}/name`),
        serial,
        serialSource: serial ? 'mmc' : null,
        firmware: str(sysfs, `${dev}/fwrev`) ?? str(sysfs, `${dev}/hwrev`),
        wwn: null,
      };
    }
    case 'sata':
    case 'scsi':
    case 'usb': {
      const page = sysfs.readBytes(`${dev}/vpd_pg80`);
      const vpd = page === null ? null : parseVpdUnitSerial(page);
      let serial = vpd === null ? null : deviceString(vpd);
      let serialSource: SerialSource = serial && serial.text !== '' ? 'vpd-0x80' : null;
      if (serialSource === null) serial = null;
      if (serial === null && usb?.serial) {
        serial = usb.serial;
        serialSource = 'usb-bridge';
      }
      return {
        vendor: str(sysfs, `${dev}/vendor`),
        model: str(sysfs, `${dev}/model`),
        serial,
        serialSource,
        firmware: str(sysfs, `${dev}/rev`),
        wwn: wwnOf(sysfs, name),
      };
    }
    default:
      return none;
  }
}
