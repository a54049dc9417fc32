// The case data EnCase shows, as the `header2` (UTF-16LE, LF) and `header`
// (ASCII, CRLF) sections hold it. Fields are tab-separated lines, so a tab
// or line break in a value would shift every later field: they become spaces.
import { deflateSync } from 'node:zlib';

export interface EwfCaseInfo {
  caseNumber: string;
  evidenceNumber: string;
  description: string;
  examiner: string;
  notes: string;
  model: string;
  serial: string;
  /** When the image was acquired (the examiner-confirmed time where there is one). */
  acquired: Date;
  /** What the system clock said then. */
  systemTime: Date;
  softwareVersion: string;
  os: string;
}

/** EnCase's limits: 2999 characters for the text fields, 11 for the version, 23 for the OS. */
const TEXT_MAX = 2999;
const VERSION_MAX = 11;
const OS_MAX = 23;

/** One field value: controls (tab, CR, LF among them) become spaces, trimmed to `max` characters. */
export function fieldValue(value: string, max = TEXT_MAX): string {
  // eslint-disable-next-line no-control-regex
  const flat = value.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ');
  return Array.from(flat).slice(0, max).join('');
}

/** The `header` section's 8-bit text: accents dropped, anything else outside ASCII as '?'. */
export function asciiValue(value: string): string {
  return value
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^\x20-\x7e]/g, '?');
}

function localDate(d: Date): string {
  return `${d.getFullYear()} ${d.getMonth() + 1} ${d.getDate()} ${d.getHours()} ${d.getMinutes()} ${d.getSeconds()}`;
}

function epoch(d: Date): string {
  return String(Math.floor(d.getTime() / 1000));
}

function values(info: EwfCaseInfo): Record<string, string> {
  return {
    a: fieldValue(info.description),
    c: fieldValue(info.caseNumber),
    n: fieldValue(info.evidenceNumber),
    e: fieldValue(info.examiner),
    t: fieldValue(info.notes),
    md: fieldValue(info.model),
    sn: fieldValue(info.serial),
    av: fieldValue(info.softwareVersion, VERSION_MAX),
    ov: fieldValue(info.os, OS_MAX),
    p: '0',
    dc: '',
  };
}

/** The text of `header2`, as ewfacquire -f encase6 lays it out (with its source and subject blocks). */
export function header2Text(info: EwfCaseInfo): string {
  const v = { ...values(info), m: epoch(info.acquired), u: epoch(info.systemTime) };
  const keys = ['a', 'c', 'n', 'e', 't', 'md', 'sn', 'av', 'ov', 'm', 'u', 'p', 'dc'];
  return [
    '3',
    'main',
    keys.join('\t'),
    keys.map((k) => v[k as keyof typeof v] ?? '').join('\t'),
    '',
    'srce',
    '0\t1',
    'p\tn\tid\tev\ttb\tlo\tpo\tah\tgu\taq',
    '0\t0',
    '\t\t\t\t\t-1\t-1\t\t\t',
    '',
    'sub',
    '0\t1',
    'p\tn\tid\tnu\tco\tgu',
    '0\t0',
    '\t\t\t\t1\t',
    '',
    '',
  ].join('\n');
}

/** The text of `header` (EnCase 5 and older, and tools that read only it). */
export function headerText(info: EwfCaseInfo): string {
  const v = values(info);
  const keys = ['c', 'n', 'a', 'e', 't', 'av', 'ov', 'm', 'u', 'p'];
  const vals = { ...v, m: localDate(info.acquired), u: localDate(info.systemTime) };
  return ['1', 'main', keys.join('\t'), keys.map((k) => asciiValue(vals[k as keyof typeof vals] ?? '')).join('\t'), '', ''].join('\r\n');
}

export function header2Body(info: EwfCaseInfo): Buffer {
  return deflateSync(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(header2Text(info), 'utf16le')]));
}

export function headerBody(info: EwfCaseInfo): Buffer {
  return deflateSync(Buffer.from(headerText(info), 'latin1'));
}
