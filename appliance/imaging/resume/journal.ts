// The resume journal: NAME.journal.json in every destination, replaced
// atomically at each checkpoint once the image files are on the medium up to
// `position`. It says what the next run needs to go on from there: which
// source, which settings, the piece hashes of everything before `position`
// (to check what is on the destination before trusting it), the unreadable
// ranges so far, and for E01 where the writer stood.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { CustosError } from '../../errors.js';
import { CASE_FIELDS, caseData, type CaseData } from '../../custody/case-data.js';
import { writeFileAtomic } from '../../custody/event-log.js';
import { HASH_ALGORITHMS, type HashAlgorithm } from '../hash/hash-algorithms.js';
import type { BadRange } from '../read/read-recovery.js';
import { EWF_COMPRESSIONS } from '../ewf/chunk-store.js';
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

type Obj = Record<string, unknown>;

function checkJournal(raw: unknown, file: string): AcquisitionJournal {
  const bad = (what: string) => new JournalError(file, what);
  const obj = (v: unknown, what: string): Obj => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${what} is not an object`);
    return v as Obj;
  };
  const int = (v: unknown, what: string, min = 0): number => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw bad(`${what} is not an integer >= ${min}`);
    return v;
  };
  const str = (v: unknown, what: string, max = 4096): string => {
    if (typeof v !== 'string' || v.length > max) throw bad(`${what} is not a string of at most ${max} characters`);
    return v;
  };
  const strOrNull = (v: unknown, what: string, max = 4096): string | null => (v === null ? null : str(v, what, max));
  const bool = (v: unknown, what: string): boolean => {
    if (typeof v !== 'boolean') throw bad(`${what} is not true or false`);
    return v;
  };
  const arr = (v: unknown, what: string): unknown[] => {
    if (!Array.isArray(v)) throw bad(`${what} is not a list`);
    return v;
  };
  const hex = (v: unknown, what: string, length: number): string => {
    const s = str(v, what, length);
    if (!new RegExp(`^[0-9a-f]{${length}}$`).test(s)) throw bad(`${what} is not ${length} hex digits`);
    return s;
  };

  const j = obj(raw, 'the journal');
  if (j.schema !== JOURNAL_SCHEMA) throw bad(`schema is not ${JOURNAL_SCHEMA}`);
  const src = obj(j.source, 'source');
  const source: JournalSource = {
    path: str(src.path, 'source.path'),
    stableId: strOrNull(src.stableId, 'source.stableId'),
    serialRaw: strOrNull(src.serialRaw, 'source.serialRaw', 64 * 1024),
    sizeBytes: int(src.sizeBytes, 'source.sizeBytes', 1),
    sectorSize: int(src.sectorSize, 'source.sectorSize', 512),
  };
  const s = obj(j.settings, 'settings');
  const format = str(s.format, 'settings.format');
  if (format !== 'raw' && format !== 'split' && format !== 'e01') throw bad('settings.format is not raw, split or e01');
  const hashes = arr(s.hashes, 'settings.hashes').map((h, i) => {
    const a = HASH_ALGORITHMS.find((x) => x === h);
    if (!a) throw bad(`settings.hashes[${i}] is not a known hash`);
    return a as HashAlgorithm;
  });
  const policy = obj(s.policy, 'settings.policy');
  let ewfSettings: AcquireSettings['ewf'];
  if (s.ewf !== undefined && s.ewf !== null) {
    const e = obj(s.ewf, 'settings.ewf');
    const compression = EWF_COMPRESSIONS.find((c) => c === e.compression);
    if (!compression) throw bad('settings.ewf.compression is not known');
    ewfSettings = { compression, segmentSize: int(e.segmentSize, 'settings.ewf.segmentSize', 1) };
  }
  const settings: AcquireSettings = {
    name: str(s.name, 'settings.name', 255),
    format,
    splitSize: int(s.splitSize, 'settings.splitSize'),
    hashes,
    pieceSize: int(s.pieceSize, 'settings.pieceSize', 1),
    blockSize: int(s.blockSize, 'settings.blockSize', 4096),
    buffers: int(s.buffers, 'settings.buffers', 2),
    policy: { retries: int(policy.retries, 'settings.policy.retries'), fill: int(policy.fill, 'settings.policy.fill') },
    fastFirst: bool(s.fastFirst, 'settings.fastFirst'),
    verify: bool(s.verify, 'settings.verify'),
    verifySource: bool(s.verifySource, 'settings.verifySource'),
    ...(ewfSettings ? { ewf: ewfSettings } : {}),
  };
  const c = obj(j.case, 'case');
  const caseValues: Record<string, string | null> = {};
  for (const f of CASE_FIELDS) caseValues[f] = strOrNull(c[f] ?? null, `case.${f}`);
  const position = int(j.position, 'position');
  if (position > source.sizeBytes) throw bad('position is past the end of the source');
  const pieces = arr(j.pieces, 'pieces').map((p, i) => hex(p, `pieces[${i}]`, 64));
  if (pieces.length !== Math.ceil(position / settings.pieceSize)) throw bad(`holds ${pieces.length} piece hashes; position ${position} needs ${Math.ceil(position / settings.pieceSize)}`);
  const badRanges = arr(j.badRanges, 'badRanges').map((r, i): BadRange => {
    const b = obj(r, `badRanges[${i}]`);
    const firstLba = int(b.firstLba, `badRanges[${i}].firstLba`);
    const lastLba = int(b.lastLba, `badRanges[${i}].lastLba`);
    if (lastLba < firstLba || (lastLba + 1) * source.sectorSize > position) throw bad(`badRanges[${i}] is not a range before position`);
    return { firstLba, lastLba, sectors: lastLba - firstLba + 1, sectorSize: source.sectorSize, errno: int(b.errno, `badRanges[${i}].errno`), error: str(b.error, `badRanges[${i}].error`, 200), attempts: int(b.attempts, `badRanges[${i}].attempts`) };
  });
  const deferred = arr(j.deferred, 'deferred').map((r, i): DeferredRange => {
    const d = obj(r, `deferred[${i}]`);
    const offset = int(d.offset, `deferred[${i}].offset`);
    const length = int(d.length, `deferred[${i}].length`, 1);
    if (offset % source.sectorSize !== 0 || length % source.sectorSize !== 0 || offset + length > position) throw bad(`deferred[${i}] is not a sector range before position`);
    return { offset, length, errno: d.errno === null ? null : int(d.errno, `deferred[${i}].errno`) };
  });
  if (deferred.length > 0 && !settings.fastFirst) throw bad('deferred ranges without --fast-first');
  let ewf: EwfWriterState | null = null;
  if (j.ewf !== null && j.ewf !== undefined) {
    const e = obj(j.ewf, 'ewf');
    const entries = str(e.entries, 'ewf.entries', 1024 * 1024);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(entries) || Buffer.from(entries, 'base64').length % 4 !== 0) throw bad('ewf.entries is not base64 of 32-bit entries');
    const state: EwfWriterState = {
      setIdentifier: hex(e.setIdentifier, 'ewf.setIdentifier', 32),
      segment: int(e.segment, 'ewf.segment', 1),
      pos: int(e.pos, 'ewf.pos'),
      groupBase: int(e.groupBase, 'ewf.groupBase'),
      entries,
      segmentChunks: int(e.segmentChunks, 'ewf.segmentChunks'),
      files: arr(e.files, 'ewf.files').map((f, i) => {
        const o = obj(f, `ewf.files[${i}]`);
        const name = str(o.file, `ewf.files[${i}].file`, 255);
        if (name.includes('/') || name.startsWith('.')) throw bad(`ewf.files[${i}].file is not a plain file name`);
        return { file: name, size: int(o.size, `ewf.files[${i}].size`) };
      }),
      rawChunks: arr(e.rawChunks, 'ewf.rawChunks').map((r, i): [number, number, number] => {
        const t = arr(r, `ewf.rawChunks[${i}]`);
        if (t.length !== 3) throw bad(`ewf.rawChunks[${i}] is not [chunk, segment, offset]`);
        const [c, seg, at] = [int(t[0], `ewf.rawChunks[${i}][0]`), int(t[1], `ewf.rawChunks[${i}][1]`, 1), int(t[2], `ewf.rawChunks[${i}][2]`)];
        if (c * 32768 >= position || seg > (e.segment as number)) throw bad(`ewf.rawChunks[${i}] is not a chunk before the checkpoint`);
        return [c, seg, at];
      }),
    };
    if (state.files.length !== state.segment) throw bad('ewf.files does not match ewf.segment');
    if (state.groupBase > state.pos) throw bad('ewf.groupBase is past ewf.pos');
    if (state.rawChunks.length > 0 && !settings.fastFirst) throw bad('raw chunks kept without --fast-first');
    ewf = state;
  }
  if ((settings.format === 'e01') !== (ewf !== null)) throw bad('E01 writer state is missing or does not belong');
  const destinations = arr(j.destinations, 'destinations').map((d, i) => str(d, `destinations[${i}]`));
  return {
    schema: JOURNAL_SCHEMA,
    acquisitionId: hex(j.acquisitionId, 'acquisitionId', 32),
    written: str(j.written, 'written', 64),
    checkpoint: int(j.checkpoint, 'checkpoint'),
    position,
    started: str(j.started, 'started', 64),
    resumes: int(j.resumes, 'resumes'),
    source,
    settings,
    case: caseValues,
    destinations,
    pieces,
    badRanges,
    deferred,
    ewf,
  };
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
export function journalSourceProblem(j: AcquisitionJournal, source: { path: string; sizeBytes: number; sectorSize: number; serial: { raw: string; text: string } | null }): string | null {
  const s = j.source;
  if (s.sizeBytes !== source.sizeBytes || s.sectorSize !== source.sectorSize) return `${source.path} has ${source.sizeBytes} bytes in ${source.sectorSize}-byte sectors; the interrupted acquisition's source had ${s.sizeBytes} in ${s.sectorSize}-byte sectors`;
  const serial = source.serial?.raw ?? null;
  if (s.serialRaw !== null && serial !== null && s.serialRaw !== serial) return `${source.path} has serial ${source.serial?.text ?? ''}; the interrupted acquisition's source had another`;
  return null;
}
