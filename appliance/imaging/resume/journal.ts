// The resume journal: NAME.journal.json in every destination, replaced
// atomically at each resume point once the image files are on the medium up to
// `position`. It says what the next run needs to go on from there: which
// source, which settings, the piece hashes of everything before `position`
// (to check what is on the destination before trusting it), the unreadable
// ranges so far, and for E01 where the writer stood.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { CustosError } from '../../errors.js';
import { CASE_FIELDS, caseData, type CaseData } from '../../custody/case-data.js';
import { writeFileAtomic } from '../../custody/event-log.js';
import type { BadRange } from '../read/read-recovery.js';
import { EWF_CHUNK_SIZE } from '../ewf/ewf-plan.js';
import type { ValidateFunction } from 'ajv/dist/2020.js';
import type { AcquireSettings } from '../settings.js';
import type { EwfWriterState } from '../ewf/ewf-writer.js';
import type { DeferredRange } from '../read/fast-first.js';

export const JOURNAL_SCHEMA = 'custos.journal/1';
export const JOURNAL_SUFFIX = '.journal.json';
/** A journal is small (one hash per window); anything far larger is not one of ours. */
const JOURNAL_MAX_BYTES = 256 * 1024 * 1024;

export interface JournalSource {
  path: string;
  stableId: string | null;
  /** Exact serial bytes, escaped (DeviceString.raw); null when the disk has none. */
  serialRaw: string | null;
  sizeBytes: number;
  sectorSize: number;
}

export interface AcquisitionJournal {
  schema: typeof JOURNAL_SCHEMA;
  /** The same in every destination of one acquisition. */
  acquisitionId: string;
  written: string;
  checkpoint: number;
  /** Bytes of the image stream on every destination's medium (fdatasync'd) and hashed into `pieces`. */
  position: number;
  started: string;
  resumes: number;
  source: JournalSource;
  settings: AcquireSettings;
  /** Case details exactly as entered; display forms are made again when read. */
  case: Record<string, string | null>;
  destinations: string[];
  /** SHA-256 of every window of the image stream before `position`. */
  pieces: string[];
  badRanges: BadRange[];
  /** --fast-first: what the first pass filled and left for the recovery pass, before `position`. */
  deferred: DeferredRange[];
  ewf: EwfWriterState | null;
}

export function journalPath(dir: string, name: string): string {
  return path.join(dir, name + JOURNAL_SUFFIX);
}

export function writeJournal(dir: string, j: AcquisitionJournal): void {
  writeFileAtomic(journalPath(dir, j.settings.name), JSON.stringify(j), 0o644);
}

export class JournalError extends CustosError {
  readonly file: string;
  constructor(file: string, message: string) {
    super('EJOURNAL', `${file}: ${message}`);
    this.file = file;
  }
}

/** The journals in `dir` (an unfinished acquisition leaves exactly one). */
export function journalsIn(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new CustosError('ENOENT', `${dir}: cannot list it (${(e as Error).message})`);
  }
  return names.filter((n) => n.endsWith(JOURNAL_SUFFIX)).map((n) => path.join(dir, n));
}

/** Reads and checks one journal; anything malformed is a JournalError saying what, never a crash. */
export function readJournal(file: string): AcquisitionJournal {
  let text: string;
  try {
    if (statSync(file).size > JOURNAL_MAX_BYTES) throw new JournalError(file, 'too large to be a journal');
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof JournalError) throw e;
    throw new JournalError(file, `cannot read it (${(e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new JournalError(file, 'not JSON (damaged or not a custos journal)');
  }
  return checkJournal(raw, file);
}

/** The journal's JSON Schema (schema/journal.schema.json), compiled on first use: only a resume reads a journal. */
let validator: ValidateFunction | null = null;
function journalValidator(): ValidateFunction {
  if (!validator) {
    const schema = JSON.parse(readFileSync(new URL('../../../../schema/journal.schema.json', import.meta.url), 'utf8')) as object;
    // Loaded here, not at import: the TUI imports this module for its first screen, and loading ajv took
    // nearly 2 s of the UI's start under TCG.
    const { Ajv2020 } = createRequire(import.meta.url)('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js');
    validator = new Ajv2020({ strict: true, allErrors: false }).compile(schema);
  }
  return validator;
}

/** The journal as the schema describes it, before the checks between fields. */
type StoredJournal = Omit<AcquisitionJournal, 'badRanges'> & { badRanges: Omit<BadRange, 'sectors' | 'sectorSize'>[] };

function checkJournal(raw: unknown, file: string): AcquisitionJournal {
  const bad = (what: string) => new JournalError(file, what);
  const validate = journalValidator();
  if (!validate(raw)) {
    const e = validate.errors?.[0];
    throw bad(
      `${e?.instancePath ? `${e.instancePath.slice(1).replaceAll('/', '.')} ` : ''}${e?.message ?? 'does not match the journal schema'} (${JOURNAL_SCHEMA})`,
    );
  }
  const j = raw as StoredJournal;
  const { position, source, settings } = j;
  if (position > source.sizeBytes) throw bad('position is past the end of the source');
  const windows = Math.ceil(position / settings.pieceSize);
  if (j.pieces.length !== windows) throw bad(`holds ${j.pieces.length} piece hashes; position ${position} needs ${windows}`);
  const badRanges = j.badRanges.map((r, i): BadRange => {
    if (r.lastLba < r.firstLba || (r.lastLba + 1) * source.sectorSize > position) throw bad(`badRanges[${i}] is not a range before position`);
    return {
      firstLba: r.firstLba,
      lastLba: r.lastLba,
      sectors: r.lastLba - r.firstLba + 1,
      sectorSize: source.sectorSize,
      errno: r.errno,
      error: r.error,
      attempts: r.attempts,
    };
  });
  for (const [i, d] of j.deferred.entries()) {
    if (d.offset % source.sectorSize !== 0 || d.length % source.sectorSize !== 0 || d.offset + d.length > position)
      throw bad(`deferred[${i}] is not a sector range before position`);
  }
  if (j.deferred.length > 0 && !settings.fastFirst) throw bad('deferred ranges without --fast-first');
  const ewf = j.ewf;
  if (ewf) {
    if (Buffer.from(ewf.entries, 'base64').length % 4 !== 0) throw bad('ewf.entries is not base64 of 32-bit entries');
    for (const [i, [c, seg]] of ewf.rawChunks.entries()) {
      if (c * EWF_CHUNK_SIZE >= position || seg > ewf.segment) throw bad(`ewf.rawChunks[${i}] is not a chunk before the resume point`);
    }
    if (ewf.files.length !== ewf.segment) throw bad('ewf.files does not match ewf.segment');
    if (ewf.groupBase > ewf.pos) throw bad('ewf.groupBase is past ewf.pos');
    if (ewf.rawChunks.length > 0 && !settings.fastFirst) throw bad('raw chunks kept without --fast-first');
  }
  if ((settings.format === 'e01') !== (ewf !== null)) throw bad('E01 writer state is missing or does not belong');
  const caseValues: Record<string, string | null> = {};
  for (const f of CASE_FIELDS) caseValues[f] = j.case[f] ?? null;
  return { ...j, case: caseValues, badRanges };
}

/** The case details of a journal in the form the record takes (checked and display-escaped again). */
export function journalCase(j: AcquisitionJournal): CaseData {
  const input: Record<string, string | undefined> = {};
  for (const f of CASE_FIELDS) input[f] = j.case[f] ?? undefined;
  return caseData(input);
}

/**
 * Why `source` cannot be the disk this journal was made from, as far as can be
 * told before reading it: its size and sector size, and its serial where both
 * have one; null when it may be. Its content is compared when the resume starts
 * (resume-plan.ts). The one check the CLI, the UI and the engine share.
 */
export function journalSourceProblem(
  j: AcquisitionJournal,
  source: { path: string; sizeBytes: number; sectorSize: number; serial: { raw: string; text: string } | null },
): string | null {
  const s = j.source;
  if (s.sizeBytes !== source.sizeBytes || s.sectorSize !== source.sectorSize)
    return `${source.path} has ${source.sizeBytes} bytes in ${source.sectorSize}-byte sectors; the interrupted acquisition's source had ${s.sizeBytes} in ${s.sectorSize}-byte sectors`;
  const serial = source.serial?.raw ?? null;
  if (s.serialRaw !== null && serial !== null && s.serialRaw !== serial)
    return `${source.path} has serial ${source.serial?.text ?? ''}; the interrupted acquisition's source had another`;
  return null;
}
