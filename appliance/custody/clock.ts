// The clock evidence: what the system clock said, what the hardware clock
// said, and what the examiner confirmed or entered from a trusted source.
import { readFileSync } from 'node:fs';
import { UsageError } from '../errors.js';

export interface ClockRecord {
  systemUtc: string;
  /** The RTC (/sys/class/rtc/rtc0), which Linux keeps in UTC; null where there is none. */
  rtcUtc: string | null;
  rtcOffsetS: number | null;
  /** What the examiner entered (or confirmed) as the true time, and how far the system clock is from it. */
  examinerUtc: string | null;
  examinerOffsetS: number | null;
  /** Offset of local time from UTC at the system clock's reading, in minutes (as the examiner's wall clock shows it). */
  localUtcOffsetMin: number;
}

/** An examiner's time must name its zone: 2026-11-21T10:00:00Z or ...+01:00. */
export function parseExaminerTime(text: string): Date {
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(text)) {
    throw new UsageError(`--examiner-time must be ISO 8601 with a zone, e.g. 2026-11-21T10:00:00Z (got "${text.slice(0, 40)}")`);
  }
  const d = new Date(text);
  if (Number.isNaN(d.getTime())) throw new UsageError(`--examiner-time "${text}" is not a valid time`);
  return d;
}

function rtcSeconds(): number | null {
  try {
    const n = Number(readFileSync('/sys/class/rtc/rtc0/since_epoch', 'utf8').trim());
    return Number.isSafeInteger(n) ? n : null;
  } catch {
    return null;
  }
}

export function readClock(examiner: Date | null, now = new Date()): ClockRecord {
  const rtc = rtcSeconds();
  const seconds = (ms: number) => Math.round(ms / 1000);
  return {
    systemUtc: now.toISOString(),
    rtcUtc: rtc === null ? null : new Date(rtc * 1000).toISOString(),
    rtcOffsetS: rtc === null ? null : rtc - seconds(now.getTime()),
    examinerUtc: examiner ? examiner.toISOString() : null,
    examinerOffsetS: examiner ? seconds(examiner.getTime() - now.getTime()) : null,
    localUtcOffsetMin: -now.getTimezoneOffset(),
  };
}
