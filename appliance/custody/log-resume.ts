// Resuming an acquisition carries its custody log on: the copies left by the
// interrupted run are checked like any third party would check them, a line
// cut off by the crash is dropped (and said so), and the longest copy is the
// one the log goes on from.
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { CustosError } from '../errors.js';
import { LOG_FILE } from './event-log.js';
import { ALLOWED_SIGNERS_FILE, CUSTODY_FILE, REPORT_HTML, REPORT_TXT, SIG_SUFFIX } from './custody-record.js';
import { checkLog } from './log-check.js';

export interface ContinuedLog {
  /** The complete, checked lines the log goes on from. */
  content: string;
  entries: number;
  head: string;
  /** Copies whose last line was cut off by the interruption, and how many bytes of it were dropped. */
  cut: { file: string; bytes: number }[];
  /** Who signed the interrupted run(s): the signer of each custody-opened or custody-resumed entry. */
  signers: unknown[];
}

/** Reads the log copies in `dirs`; throws if none is there or they are not one log, unfinished. */
export function continuedLog(dirs: string[]): ContinuedLog {
  const copies = dirs.map((d) => path.join(d, LOG_FILE)).filter((f) => existsSync(f));
  if (copies.length === 0)
    throw new CustosError('ERESUMELOG', `no ${LOG_FILE} in ${dirs.join(', ')}: the custody log of the interrupted acquisition is needed to resume it`);
  let best: { file: string; content: string; entries: number; head: string } | null = null;
  const cut: ContinuedLog['cut'] = [];
  const signers: unknown[] = [];
  for (const file of copies) {
    const bytes = readFileSync(file);
    const check = checkLog(bytes);
    const serious = check.problems.filter((p) => !p.includes('incomplete line') && !p.includes('has no seal entry'));
    if (serious.length > 0) throw new CustosError('ERESUMELOG', `${file} does not check: ${serious.slice(0, 3).join('; ')}`);
    if (check.sealed && !check.abortedSeal) throw new CustosError('ERESUMELOG', `${file} is sealed: that acquisition finished, there is nothing to resume`);
    const whole = check.prefixBytes[check.prefixBytes.length - 1] ?? 0;
    if (check.partialTail) cut.push({ file, bytes: bytes.length - whole });
    const content = bytes.subarray(0, whole).toString('utf8');
    if (check.entries.length === 0 || check.entries[0]?.type !== 'custody-opened')
      throw new CustosError('ERESUMELOG', `${file} does not begin with custody-opened`);
    if (!best || content.length > best.content.length) {
      if (best && !content.startsWith(best.content)) throw new CustosError('ERESUMELOG', `${file} and ${best.file} are different logs`);
      best = { file, content, entries: check.entries.length, head: check.lineHashes[check.lineHashes.length - 1] as string };
      signers.length = 0;
      for (const e of check.entries) {
        if (e.type === 'custody-opened') signers.push(e.data.signer);
        if (e.type === 'custody-resumed') signers.push((e.data.data as Record<string, unknown> | undefined)?.signer);
      }
    } else if (!best.content.startsWith(content)) throw new CustosError('ERESUMELOG', `${file} and ${best.file} are different logs`);
  }
  const b = best as NonNullable<typeof best>;
  return { content: b.content, entries: b.entries, head: b.head, cut, signers };
}

/** The files an aborted run's record leaves beside the image (the log itself goes on). */
const RECORD_FILES = [CUSTODY_FILE, CUSTODY_FILE + SIG_SUFFIX, LOG_FILE + SIG_SUFFIX, ALLOWED_SIGNERS_FILE, REPORT_TXT, REPORT_HTML];

/**
 * An aborted run wrote its record (status aborted) before the resume: it is
 * kept, whole and still verifiable against the log's prefix, in
 * `interrupted-N/` beside the image; the resumed run writes the record anew.
 * Returns where it went, or null when there was none.
 */
export function setAsideAbortedRecord(dir: string): string | null {
  if (!RECORD_FILES.some((f) => f !== LOG_FILE + SIG_SUFFIX && existsSync(path.join(dir, f)))) return null;
  let n = 1;
  while (existsSync(path.join(dir, `interrupted-${n}`))) n++;
  const into = path.join(dir, `interrupted-${n}`);
  mkdirSync(into);
  for (const f of RECORD_FILES) {
    if (existsSync(path.join(dir, f))) renameSync(path.join(dir, f), path.join(into, f));
  }
  return into;
}

/** The status an existing custody.json in `dir` records, or null when there is none; throws when it cannot be read. */
export function recordStatus(dir: string): string | null {
  const file = path.join(dir, CUSTODY_FILE);
  if (!existsSync(file)) return null;
  try {
    const status = (JSON.parse(readFileSync(file, 'utf8')) as { status?: unknown }).status;
    return typeof status === 'string' ? status : 'unknown';
  } catch {
    throw new CustosError('ERESUME', `${file} cannot be read as a record; resume refused (nothing changed)`);
  }
}
