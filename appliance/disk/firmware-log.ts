// Stage 1, no invisible disk: which devices asked the kernel for firmware it
// could not find. The kernel says so only in its log ("Direct firmware load
// for X failed with error -2"), so custos reads /dev/kmsg, where each record
// also names the device it came from (DEVICE=+pci:0000:00:05.0).
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { sanitizeText, type DeviceString } from '../sanitize.js';

export interface FirmwareFailure {
  /** The device as the kernel names it (a PCI address 0000:00:05.0, a USB interface 2-1:1.0). */
  device: string;
  /** The driver that asked, as the message gives it. */
  driver: string | null;
  /** The firmware file asked for (sanitized: it comes from a driver and may be anything). */
  file: DeviceString;
  errno: number | null;
}

/** At most this many records are read: the kernel's ring holds a few thousand at boot. */
const MAX_RECORDS = 20_000;

/** The kernel log's records, oldest first, from /dev/kmsg (root only; empty where it cannot be read). */
export function readKernelLog(file = '/dev/kmsg'): string[] {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return [];
  }
  const records: string[] = [];
  const buf = Buffer.alloc(16 * 1024);
  try {
    while (records.length < MAX_RECORDS) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        // EPIPE: the ring overwrote the record we were at; the next read goes on from the oldest still there.
        if ((e as NodeJS.ErrnoException).code === 'EPIPE') continue;
        break; // EAGAIN: no more records (or a file that is not /dev/kmsg).
      }
      if (n <= 0) break;
      records.push(buf.toString('utf8', 0, n));
    }
  } finally {
    closeSync(fd);
  }
  return records;
}

/** Most failures kept by a follower (a driver retrying firmware forever must not grow it without bound). */
const MAX_FAILURES = 1000;

/**
 * Failed firmware loads so far, read incrementally: the log stays open and
 * each call reads only the records written since the last. The disk list asks
 * every second; reading the whole ring each time (thousands of records, one
 * read each) cost a second of CPU under TCG before the first screen.
 */
export class FirmwareFailureFollower {
  private fd: number | null = null;
  private opened = false;
  private readonly found: FirmwareFailure[] = [];
  private readonly buf = Buffer.alloc(16 * 1024);

  constructor(private readonly file = '/dev/kmsg') {}

  failures(): FirmwareFailure[] {
    if (!this.opened) {
      this.opened = true;
      try {
        this.fd = openSync(this.file, constants.O_RDONLY | constants.O_NONBLOCK);
      } catch {
        this.fd = null;
      }
    }
    if (this.fd === null) return [];
    const records: string[] = [];
    while (records.length < MAX_RECORDS) {
      let n: number;
      try {
        n = readSync(this.fd, this.buf, 0, this.buf.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EPIPE') continue;
        break;
      }
      if (n <= 0) break;
      records.push(this.buf.toString('utf8', 0, n));
    }
    for (const f of firmwareFailures(records)) {
      if (this.found.length >= MAX_FAILURES) break;
      if (!this.found.some((k) => k.device === f.device && k.file.raw === f.file.raw)) this.found.push(f);
    }
    return [...this.found];
  }
}

const DEVICE_NAME = /^[A-Za-z0-9:._+-]{1,64}$/;

/**
 * Failed firmware loads in kernel log records. A record is "prio,seq,time,flags;message"
 * followed by " KEY=value" lines; the message is "<driver> <device>: Direct firmware
 * load for <file> failed with error -<errno>" (drivers/base/firmware_loader), and
 * DEVICE=+<subsystem>:<name> names the device where the driver passed one.
 */
export function firmwareFailures(records: readonly string[]): FirmwareFailure[] {
  const out: FirmwareFailure[] = [];
  for (const record of records) {
    const [head = '', ...dict] = record.split('\n');
    const message = head.slice(head.indexOf(';') + 1);
    const m = /^(?:(\S+) (\S+): )?Direct firmware load for (.{1,512}) failed with error -(\d+)$/.exec(message.trim());
    if (!m) continue;
    const fromDict = dict.map((l) => /^ DEVICE=\+[a-z0-9_-]+:(.+)$/.exec(l)?.[1] ?? null).find((d) => d !== null) ?? null;
    const device = [fromDict, m[2] ?? null].find((d): d is string => d !== null && DEVICE_NAME.test(d));
    if (!device) continue;
    const driver = m[1] && DEVICE_NAME.test(m[1]) ? m[1] : null;
    out.push({ device, driver, file: sanitizeText(m[3] ?? '', 128), errno: m[4] ? Number(m[4]) : null });
  }
  return out;
}
