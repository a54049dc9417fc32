// Asks a SCSI target (a SCSI or SAS disk, a USB bridge, libata's own SCSI
// layer) who it is and how large it says it is: standard INQUIRY and READ
// CAPACITY(16) (SPC-4 6.6, SBC-3 5.16), so that its size can be held against
// the kernel's. Read-only commands through the native allowlist; every field is
// device data, sanitized and bounded.
import { native } from '../native.js';
import { deviceString, type DeviceString } from '../sanitize.js';

const TIMEOUT_MS = 10_000;
const INQUIRY_BYTES = 96;
const CAPACITY_BYTES = 32;

export interface ScsiInquiry {
  /** Peripheral device type (0: disk, 5: CD/DVD, 0x0e: simplified disk, 0x1f: unknown). */
  deviceType: number;
  vendor: DeviceString;
  product: DeviceString;
  revision: DeviceString;
}

export interface ScsiCapacity {
  sectors: number;
  blockBytes: number;
  /** Logical blocks per physical block, as a power of two. */
  physicalExponent: number;
  /** Logical block provisioning (thin, TRIM/UNMAP) enabled: the drive may return zeros for unmapped blocks. */
  provisioning: boolean;
}

export interface ScsiProbe {
  inquiry: ScsiInquiry;
  capacity: ScsiCapacity | null;
}

export function decodeInquiry(b: Uint8Array): ScsiInquiry | null {
  if (b.length < 36) return null;
  return {
    deviceType: (b[0] as number) & 0x1f,
    vendor: deviceString(b.subarray(8, 16)),
    product: deviceString(b.subarray(16, 32)),
    revision: deviceString(b.subarray(32, 36)),
  };
}

export function decodeReadCapacity16(b: Uint8Array): ScsiCapacity | null {
  if (b.length < 16) return null;
  const v = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const last = v.readBigUInt64BE(0);
  const blockBytes = v.readUInt32BE(8);
  // A lying block length or a count no JS number holds exactly is no answer.
  if (blockBytes < 512 || blockBytes > 65536 || last >= BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return { sectors: Number(last) + 1, blockBytes, physicalExponent: (b[13] as number) & 0x0f, provisioning: ((b[14] as number) & 0x80) !== 0 };
}

/** INQUIRY and READ CAPACITY(16) on `fd`; null when the target answers no INQUIRY. */
export async function probeScsi(fd: number): Promise<ScsiProbe | null> {
  const n = native();
  const inq = await n.scsiRead(fd, Uint8Array.of(0x12, 0, 0, 0, INQUIRY_BYTES, 0), INQUIRY_BYTES, TIMEOUT_MS).catch(() => null);
  const inquiry = inq && inq.status === 0 && inq.hostStatus === 0 ? decodeInquiry(inq.data) : null;
  if (inquiry === null) return null;
  const cdb = new Uint8Array(16);
  cdb[0] = 0x9e;
  cdb[1] = 0x10;
  cdb[13] = CAPACITY_BYTES;
  const cap = await n.scsiRead(fd, cdb, CAPACITY_BYTES, TIMEOUT_MS).catch(() => null);
  const capacity = cap && cap.status === 0 && cap.hostStatus === 0 ? decodeReadCapacity16(cap.data) : null;
  return { inquiry, capacity };
}
