// Case details, the clock check and the signing key, asked one field at a time.
import { existsSync } from 'node:fs';
import { caseData, type CaseData } from '../appliance/custody/case-data.js';
import { parseExaminerTime } from '../appliance/custody/clock.js';
import { loadKey, oneTimeKey, type SigningKey } from '../appliance/custody/keys.js';
import { safeText } from '../appliance/sanitize.js';
import { askText, textBox, waitKey, type Ui } from './ui.js';

export interface Details {
  case: CaseData;
  examinerTime: Date | null;
  signer: SigningKey;
}

const FIELDS = [
  ['caseNumber', 'case number'],
  ['evidenceNumber', 'evidence number'],
  ['examiner', 'examiner'],
  ['description', 'description'],
  ['notes', 'notes'],
] as const;

async function problem(ui: Ui, text: string): Promise<void> {
  textBox(ui, { top: 12, height: 4, label: 'not accepted', content: safeText(text, 300) });
  ui.screen.render();
  await waitKey(ui, ['enter', 'escape']);
}

/** Null when the examiner goes back (Esc). */
export async function askDetails(ui: Ui): Promise<Details | null> {
  const values: Record<string, string> = {};
  for (const [key, label] of FIELDS) {
    ui.page('case details', 'type, then Enter: next field  Esc: back');
    textBox(ui, { top: 0, height: 3 + FIELDS.length, label: 'so far', content: FIELDS.map(([k, l]) => `${l.padEnd(16)} ${safeText(values[k] ?? '', 58)}`).join('\n') });
    const v = await askText(ui, { top: 3 + FIELDS.length, label: label });
    if (v === null) return null;
    values[key] = v;
  }
  let info: CaseData;
  try {
    info = caseData(values);
  } catch (e) {
    await problem(ui, e instanceof Error ? e.message : String(e));
    return askDetails(ui);
  }

  let examinerTime: Date | null = null;
  for (;;) {
    ui.page('clock check', 'Enter alone: the shown time is right  or type the real time, then Enter');
    textBox(ui, { top: 0, height: 5, content: `This machine's clock says ${new Date().toISOString()} (UTC).\nCompare it with a trusted clock. If it is wrong, type the real time as\n2026-11-21T10:00:00Z (or with +01:00).` });
    const v = await askText(ui, { top: 5, label: 'real time (UTC or with zone)' });
    if (v === null) return null;
    try {
      examinerTime = v.trim() === '' ? new Date() : parseExaminerTime(v.trim());
      break;
    } catch (e) {
      await problem(ui, e instanceof Error ? e.message : String(e));
    }
  }

  for (;;) {
    ui.page('signing key', 'Enter alone: one-time key  or type the path of the examiner key, then Enter');
    textBox(ui, { top: 0, height: 5, content: 'The record is signed. With no examiner key, custos makes a one-time key for\nthis acquisition and shows its fingerprint, to copy onto the custody form.' });
    const path = await askText(ui, { top: 5, label: 'examiner key file (e.g. /media/usb/jane.key)' });
    if (path === null) return null;
    if (path.trim() === '') return { case: info, examinerTime, signer: oneTimeKey(values['examiner'] ?? null) };
    if (!existsSync(path.trim())) {
      await problem(ui, `${path.trim()} does not exist`);
      continue;
    }
    const pass = await askText(ui, { top: 8, label: 'passphrase', censor: true });
    if (pass === null) continue;
    try {
      return { case: info, examinerTime, signer: loadKey(path.trim(), pass, values['examiner'] || null) };
    } catch (e) {
      await problem(ui, e instanceof Error ? e.message : String(e));
    }
  }
}
