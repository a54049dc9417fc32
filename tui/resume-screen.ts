// An evidence drive holding an unfinished acquisition (its journal, no
// finished record): the examiner is offered to resume it, or told why not.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { MountedDestination } from '../appliance/disk/destination-mount.js';
import type { Disk } from '../appliance/disk/inventory.js';
import { JOURNAL_SUFFIX, journalSourceProblem, journalsIn, readJournal, type AcquisitionJournal } from '../appliance/imaging/resume/journal.js';
import { planResume, type ResumePlan } from '../appliance/imaging/resume/resume-plan.js';
import { safeText } from '../appliance/sanitize.js';
import { textBox, waitKey, type Ui } from './ui.js';

/** The unfinished acquisition's journal in `dir`, if there is one that reads. */
export function unfinishedIn(dir: string): AcquisitionJournal | null {
  try {
    const [file] = journalsIn(dir);
    return file ? readJournal(file) : null;
  } catch {
    return null;
  }
}

/** Bytes of the unfinished image already in `dir` (the rest needs room). */
export function imageBytesIn(dir: string, j: AcquisitionJournal): number {
  let n = 0;
  try {
    for (const f of readdirSync(dir)) {
      if (f.startsWith(`${j.settings.name}.`) && !f.endsWith(JOURNAL_SUFFIX)) n += statSync(path.join(dir, f)).size;
    }
  } catch {
    return 0;
  }
  return n;
}

/** The same disk, as far as can be told before reading it (its content is checked when the resume starts). */
export function journalFits(j: AcquisitionJournal, source: Disk): boolean {
  return (
    journalSourceProblem(j, { path: source.devicePath, sizeBytes: source.sizeBytes, sectorSize: source.logicalSectorSize, serial: source.serial }) === null
  );
}

/**
 * Null: nothing to resume here, go on with a new acquisition. 'back': the
 * examiner declined or it cannot be resumed. Otherwise the plan to resume.
 */
export async function offerResume(ui: Ui, source: Disk, mounts: MountedDestination[]): Promise<ResumePlan | 'back' | null> {
  const holding = mounts.filter((m) => journalsIn(m.dir).length > 0);
  if (holding.length === 0) return null;
  let plan: ResumePlan;
  try {
    plan = planResume(holding.map((m) => m.dir));
    if (!journalFits(plan.journal, source))
      throw new Error(
        `it is of another disk (${plan.journal.source.sizeBytes} bytes, from ${plan.journal.source.path}), not of ${source.name}; choose that disk as the source, or another destination`,
      );
  } catch (e) {
    ui.page('unfinished acquisition', 'Esc: back');
    textBox(ui, {
      top: 0,
      height: '100%',
      content: `${holding.map((m) => m.device).join(', ')} holds an unfinished acquisition that cannot be resumed here:\n${safeText(e instanceof Error ? e.message : String(e), 600)}`,
    });
    ui.screen.render();
    await waitKey(ui, ['escape', 'enter']);
    return 'back';
  }
  const j = plan.journal;
  const pct = ((j.position / j.source.sizeBytes) * 100).toFixed(1);
  ui.page('unfinished acquisition', 'Enter: resume it  Esc: back');
  textBox(ui, {
    top: 0,
    height: '100%',
    content: [
      `${holding.map((m) => m.device).join(', ')} holds an unfinished acquisition of this disk.`,
      `  started      ${safeText(j.started, 40)}`,
      `  case         ${safeText(j.case['caseNumber'] ?? '-', 60)}`,
      `  format       ${j.settings.format}, hashes ${j.settings.hashes.join(', ')}`,
      `  saved        #${j.checkpoint} at ${safeText(j.written, 40)}: ${pct}% (${j.position} bytes) on the drive`,
      '',
      'Resuming reads back what is on the drive, checks it against the journal, and',
      'goes on from the source; the hashes come out as for an uninterrupted run.',
      'The case details are the ones it started with. The log records the resume.',
    ].join('\n'),
  });
  ui.screen.render();
  return (await waitKey(ui, ['enter', 'escape'])) === 'enter' ? plan : 'back';
}
