// Case details, the clock check and the signing key, asked one field at a time.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { MountedDestination } from '../appliance/disk/destination-mount.js';
import { caseData, type CaseData } from '../appliance/custody/case-data.js';
import { parseExaminerTime } from '../appliance/custody/clock.js';
import { loadKey, oneTimeKey, type SigningKey } from '../appliance/custody/keys.js';
import { safeText } from '../appliance/sanitize.js';
import { askText, textBox, waitKey, type Ui } from './ui.js';

export interface Details {
  case: CaseData;
  examinerTime: Date | null;
  signer: SigningKey;
  /** The custody USB, if one was chosen: its keys were offered, and the record is copied to it. */
  custodyUsb: MountedDestination | null;
}

/** Examiner keys (`*.key`, as custos keygen writes them) at the top of a custody USB or in its keys/ folder. */
export function keysOn(dir: string): string[] {
  const found: string[] = [];
  for (const d of [dir, path.join(dir, 'keys')]) {
    try {
      for (const f of readdirSync(d)) if (f.endsWith('.key')) found.push(path.join(d, f));
    } catch {
      // No such folder.
    }
  }
  return found.sort();
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

/** Null when the examiner goes back (Esc). `pickCustodyUsb` makes a disk writable and mounts it (typed confirmation). */
export async function askDetails(
  ui: Ui,
  pickCustodyUsb: () => Promise<MountedDestination | null>,
  resumedCase: CaseData | null = null,
): Promise<Details | null> {
  const values: Record<string, string> = {};
  // A resumed acquisition keeps the case details it started with.
  for (const [key, label] of resumedCase ? [] : FIELDS) {
    ui.page('case details', 'type, then Enter: next field  Esc: back');
    textBox(ui, {
      top: 0,
      height: 3 + FIELDS.length,
      label: 'so far',
      content: FIELDS.map(([k, l]) => `${l.padEnd(16)} ${safeText(values[k] ?? '', 58)}`).join('\n'),
    });
    const v = await askText(ui, { top: 3 + FIELDS.length, label: label });
    if (v === null) return null;
    values[key] = v;
  }
  if (resumedCase?.examiner) values['examiner'] = resumedCase.examiner.value;
  let info: CaseData;
  try {
    info = resumedCase ?? caseData(values);
  } catch (e) {
    await problem(ui, e instanceof Error ? e.message : String(e));
    return askDetails(ui, pickCustodyUsb);
  }

  let examinerTime: Date | null = null;
  for (;;) {
    ui.page('clock check', 'Enter alone: the shown time is right  or type the real time, then Enter');
    textBox(ui, {
      top: 0,
      height: 5,
      content: `This machine's clock says ${new Date().toISOString()} (UTC).\nCompare it with a trusted clock. If it is wrong, type the real time as\n2026-11-21T10:00:00Z (or with +01:00).`,
    });
    const v = await askText(ui, { top: 5, label: 'real time (UTC or with zone)' });
    if (v === null) return null;
    try {
      examinerTime = v.trim() === '' ? new Date() : parseExaminerTime(v.trim());
      break;
    } catch (e) {
      await problem(ui, e instanceof Error ? e.message : String(e));
    }
  }

  let custodyUsb: MountedDestination | null = null;
  for (;;) {
    const keys = custodyUsb ? keysOn(custodyUsb.dir) : [];
    ui.page('signing key', `Enter: one-time key  k: type a key path${custodyUsb ? '  1-9: a key listed here' : '  u: use a custody USB'}  Esc: back`);
    textBox(ui, {
      top: 0,
      height: 6 + keys.length,
      content: [
        'The record is signed. With no examiner key, custos makes a one-time key for',
        'this acquisition and shows its fingerprint, to copy onto the custody form.',
        custodyUsb ? `custody USB ${custodyUsb.device}: the record is copied there too.` : 'A custody USB holds examiner keys and gets a copy of the record.',
        ...keys.map((k, i) => `  ${i + 1}: ${safeText(path.relative(custodyUsb?.dir ?? '/', k), 70)}`),
      ].join('\n'),
    });
    ui.screen.render();
    const numbers = keys.slice(0, 9).map((_, i) => String(i + 1));
    const k = await waitKey(ui, ['enter', 'escape', 'k', ...(custodyUsb ? numbers : ['u'])]);
    if (k === 'escape') return null;
    if (k === 'u') {
      custodyUsb = await pickCustodyUsb();
      continue;
    }
    let chosen: SigningKey | 'retry';
    if (k === 'enter') chosen = oneTimeKey(values['examiner'] || null);
    else if (k === 'k') {
      const typed = await askText(ui, { top: 6 + keys.length, label: 'examiner key file' });
      if (typed === null) continue;
      chosen = await keyFrom(ui, typed, values['examiner'] || null, 9 + keys.length);
    } else chosen = await keyFrom(ui, keys[Number(k) - 1] ?? '', values['examiner'] || null, 6 + keys.length);
    if (chosen === 'retry') continue;
    return { case: info, examinerTime, signer: chosen, custodyUsb };
  }
}

/** The key in `file`, opened with a passphrase typed now. */
async function keyFrom(ui: Ui, file: string, examiner: string | null, top: number): Promise<SigningKey | 'retry'> {
  const f = file.trim();
  if (!f || !existsSync(f)) {
    await problem(ui, `${f || '(none)'}: no such key`);
    return 'retry';
  }
  const pass = await askText(ui, { top, label: `passphrase for ${path.basename(f)}`, censor: true });
  if (pass === null) return 'retry';
  try {
    return loadKey(f, pass, examiner);
  } catch (e) {
    await problem(ui, e instanceof Error ? e.message : String(e));
    return 'retry';
  }
}
