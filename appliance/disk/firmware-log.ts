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

const openLog = (file: string): number | null => {
  try {
    return openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return null;
  }
};

/** The records an open /dev/kmsg has from where it stands to the end of the ring, one read each. */
function readRecords(fd: number): string[] {
  const records: string[] = [];
  const buf = Buffer.alloc(16 * 1024);
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
  return records;
}

/** The kernel log's records, oldest first, from /dev/kmsg (root only; empty where it cannot be read). */
export function readKernelLog(file = '/dev/kmsg'): string[] {
  const fd = openLog(file);
  if (fd === null) return [];
  try {
    return readRecords(fd);
  } finally {
    closeSync(fd);
  }
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
  private fd: number | null | undefined = undefined;
  private readonly found: FirmwareFailure[] = [];

  constructor(private readonly file = '/dev/kmsg') {}

  failures(): FirmwareFailure[] {
    // Opened once, on first use; a log that cannot be opened stays unread.
    if (this.fd === undefined) this.fd = openLog(this.file);
    if (this.fd === null) return [];
    for (const f of firmwareFailures(readRecords(this.fd))) {
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
