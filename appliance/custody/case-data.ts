// Case details the examiner types in. They are kept exactly as entered for
// the JSON record (JSON escapes what needs escaping) and in a display form
// with every control, bidi and invisible character written out as \u{...},
// so a report or terminal cannot be spoofed or broken by them.
import { UsageError } from '../errors.js';

export interface CaseText {
  /** Exactly as entered (NFC). */
  value: string;
  /** Safe to show: one line, visible characters only. */
  text: string;
}

export const CASE_FIELDS = ['caseNumber', 'evidenceNumber', 'examiner', 'organisation', 'description', 'notes', 'location'] as const;
export type CaseField = (typeof CASE_FIELDS)[number];
export type CaseData = Record<CaseField, CaseText | null>;

export const CASE_TEXT_MAX = 4096;

function needsEscape(cp: number): boolean {
  return (
    cp < 0x20 ||
    (cp >= 0x7f && cp <= 0x9f) ||
    cp === 0x061c ||
    (cp >= 0x200b && cp <= 0x200f) ||
    (cp >= 0x2028 && cp <= 0x202e) ||
    (cp >= 0x2060 && cp <= 0x2069) ||
    cp === 0xfeff ||
    (cp >= 0xfff9 && cp <= 0xfffb) ||
    (cp >= 0xd800 && cp <= 0xdfff)
  );
}

/** Display form: backslash doubled, anything invisible or controlling as \u{hex}. */
export function displayText(value: string): string {
  let out = '';
  for (const ch of value) {
    const cp = ch.codePointAt(0) as number;
    if (ch === '\\') out += '\\\\';
    else if (needsEscape(cp)) out += `\\u{${cp.toString(16)}}`;
    else out += ch;
  }
  return out;
}

export function caseText(value: string, what: string): CaseText {
  const v = value.normalize('NFC');
  if (v.length > CASE_TEXT_MAX) throw new UsageError(`${what} is ${v.length} characters; at most ${CASE_TEXT_MAX}`);
  return { value: v, text: displayText(v) };
}

export function caseData(input: Partial<Record<CaseField, string | undefined>>): CaseData {
  const flag = (f: CaseField) =>
    '--' +
    f
      .replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())
      .replace('case-number', 'case')
      .replace('evidence-number', 'evidence');
  const out = {} as CaseData;
  for (const f of CASE_FIELDS) {
    const v = input[f];
    out[f] = v === undefined || v === '' ? null : caseText(v, flag(f));
  }
  return out;
}
