// `custos acquire`: every argument checked before anything is opened, then one
// acquisition through run-acquisition.ts, printed as text or JSON.
import { statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CustosError, UsageError } from '../errors.js';
import { WriteBlockGuardian } from '../writeblock/guardian.js';
import { FileStateStore, appendEvents, stateDir } from '../writeblock/guardian-state.js';
import { readDiskByName } from '../disk/inventory.js';
import { resolveDevice, requireWholeDisk } from '../disk/resolve-device.js';
import { runAcquisition } from '../run-acquisition.js';
import type { AcquisitionCommon, AcquisitionOutcome } from '../acquisition-session.js';
import { runVirtualAcquisition } from '../run-virtual-acquisition.js';
import { virtualFormatOption } from '../vdisk/qemu-info.js';
import { safeText } from '../sanitize.js';
import { Sysfs } from '../disk/sysfs.js';
import { caseData } from '../custody/case-data.js';
import { parseExaminerTime } from '../custody/clock.js';
import { DEFAULT_CHECKPOINT_MS } from '../custody/custody-session.js';
import { loadKey, oneTimeKey } from '../custody/keys.js';
import { AcquisitionAborted } from '../imaging/acquire-options.js';
import { acquireSettings, DEFAULT_BLOCK_SIZE, DEFAULT_BUFFERS, DEFAULT_PIECE_SIZE, type AcquireSettings } from '../imaging/settings.js';
import { DEFAULT_HASHES, hashesFor, parseHashList } from '../imaging/hash/hash-algorithms.js';
import { EWF_COMPRESSIONS, type EwfCompression } from '../imaging/ewf/chunk-store.js';
import { DEFAULT_EWF_SETTINGS, ewfSettingsProblem } from '../imaging/ewf/ewf-plan.js';
import { checkImageName, type ImageFormat } from '../imaging/write/image-layout.js';
import type { ImageRecord } from '../imaging/image-record.js';
import { DEFAULT_READ_POLICY } from '../imaging/read/read-recovery.js';
import { parseSize } from '../imaging/sizes.js';
import { readPassphrase } from './passphrase.js';
import { DEFAULT_JOURNAL_INTERVAL_MS } from '../imaging/resume/journal-keeper.js';
import { planResume } from '../imaging/resume/resume-plan.js';
import { ProgressPrinter } from './progress-printer.js';

export interface AcquireArgs {
  source: string | undefined;
  out: string[];
  name: string;
  format: string;
  splitSize: string | undefined;
  compression: string | undefined;
  segmentSize: string | undefined;
  hash: string | undefined;
  pieceSize: string | undefined;
  blockSize: string | undefined;
  buffers: string | undefined;
  retries: string | undefined;
  fill: string | undefined;
  fastFirst: boolean;
  /** Image a drive that refuses reads (ATA security locked): named for the condition so that it is never given by accident. */
  imageLockedDrive: boolean;
  /** A virtual disk source: the folder its chain must stay in, its format (else QEMU probes it), a qcow2 internal snapshot. */
  vmFolder: string | undefined;
  vmFormat: string | undefined;
  snapshot: string | undefined;
  case: string | undefined;
  evidence: string | undefined;
  examiner: string | undefined;
  organisation: string | undefined;
  description: string | undefined;
  notes: string | undefined;
  location: string | undefined;
  examinerTime: string | undefined;
  key: string | undefined;
  custodyCopy: string | undefined;
  checkpointInterval: string | undefined;
  journalInterval: string | undefined;
  resume: string[];
  verify: boolean;
  verifySource: boolean;
  json: boolean;
  jsonProgress: boolean;
}

export function parseAcquireArgs(argv: string[]): AcquireArgs {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      source: { type: 'string' },
      out: { type: 'string', multiple: true, default: [] },
      name: { type: 'string', default: 'image' },
      format: { type: 'string', default: 'raw' },
      'split-size': { type: 'string' },
      compression: { type: 'string' },
      'segment-size': { type: 'string' },
      hash: { type: 'string' },
      'piece-size': { type: 'string' },
      'block-size': { type: 'string' },
      buffers: { type: 'string' },
      retries: { type: 'string' },
      fill: { type: 'string' },
      'fast-first': { type: 'boolean', default: false },
      'image-locked-drive': { type: 'boolean', default: false },
      'vm-folder': { type: 'string' },
      'vm-format': { type: 'string' },
      snapshot: { type: 'string' },
      case: { type: 'string' },
      evidence: { type: 'string' },
      examiner: { type: 'string' },
      organisation: { type: 'string' },
      description: { type: 'string' },
      notes: { type: 'string' },
      location: { type: 'string' },
      'examiner-time': { type: 'string' },
      key: { type: 'string' },
      'custody-copy': { type: 'string' },
      'checkpoint-interval': { type: 'string' },
      'journal-interval': { type: 'string' },
      resume: { type: 'string', multiple: true, default: [] },
      verify: { type: 'boolean', default: false },
      'verify-source': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'json-progress': { type: 'boolean', default: false },
    },
  });
  if (positionals.length > 0) throw new UsageError(`acquire takes options only (got "${positionals[0]}")`);
  return {
    source: values.source,
    out: values.out,
    name: values.name,
    format: values.format,
    splitSize: values['split-size'],
    compression: values.compression,
    segmentSize: values['segment-size'],
    hash: values.hash,
    pieceSize: values['piece-size'],
    blockSize: values['block-size'],
    buffers: values.buffers,
    retries: values.retries,
    fill: values.fill,
    fastFirst: values['fast-first'],
    imageLockedDrive: values['image-locked-drive'],
    vmFolder: values['vm-folder'],
    vmFormat: values['vm-format'],
    snapshot: values.snapshot,
    case: values.case,
    evidence: values.evidence,
    examiner: values.examiner,
    organisation: values.organisation,
    description: values.description,
    notes: values.notes,
    location: values.location,
    examinerTime: values['examiner-time'],
    key: values.key,
    custodyCopy: values['custody-copy'],
    checkpointInterval: values['checkpoint-interval'],
    journalInterval: values['journal-interval'],
    resume: values.resume,
    verify: values.verify,
    verifySource: values['verify-source'],
    json: values.json,
    jsonProgress: values['json-progress'],
  };
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function parseCompression(text: string): EwfCompression {
  const c = EWF_COMPRESSIONS.find((x) => x === text);
  if (!c) throw new UsageError(`--compression must be one of ${EWF_COMPRESSIONS.join(', ')}`);
  return c;
}

/** 90s, 10m, 1h, or plain milliseconds. */
export function parseDurationMs(text: string, what: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(text.trim());
  const n = m ? Number(m[1]) * { ms: 1, s: 1000, m: 60000, h: 3600000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h'] : NaN;
  if (!Number.isSafeInteger(n) || n < 1000) throw new UsageError(`${what} must be a duration of at least 1s, like 90s, 10m or 1h`);
  return n;
}

function intArg(text: string | undefined, def: number, min: number, max: number, what: string): number {
  if (text === undefined) return def;
  const n = Number(text.startsWith('0x') ? parseInt(text, 16) : text);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${what} must be an integer ${min}..${max}`);
  return n;
}

/** Exit status: 0 complete (and verified if asked), 3 complete but with unreadable sectors, 1 otherwise. */
export function exitCodeFor(record: ImageRecord): number {
  return record.status === 'complete' ? 0 : record.status === 'complete-with-bad-sectors' ? 3 : 1;
}

/** What a resumed acquisition takes from its journal; giving it again is refused rather than silently ignored. */
function journalSettingGiven(a: AcquireArgs): string | null {
  const given: [string, boolean][] = [
    ['--out', a.out.length > 0],
    ['--name', a.name !== 'image'],
    ['--format', a.format !== 'raw'],
    ['--split-size', a.splitSize !== undefined],
    ['--compression', a.compression !== undefined],
    ['--segment-size', a.segmentSize !== undefined],
    ['--hash', a.hash !== undefined],
    ['--piece-size', a.pieceSize !== undefined],
    ['--block-size', a.blockSize !== undefined],
    ['--buffers', a.buffers !== undefined],
    ['--retries', a.retries !== undefined],
    ['--fill', a.fill !== undefined],
    ['--fast-first', a.fastFirst],
    ['--verify', a.verify],
    ['--verify-source', a.verifySource],
    ...(['case', 'evidence', 'description', 'notes', 'location', 'organisation'] as const).map((k): [string, boolean] => [`--${k}`, a[k] !== undefined]),
  ];
  return given.find(([, g]) => g)?.[0] ?? null;
}

/** The acquisition's settings from the command line, each checked with the option it came from. */
function settingsFromArgs(a: AcquireArgs): AcquireSettings {
  const nameProblem = checkImageName(a.name);
  if (nameProblem) throw new UsageError(`--name ${nameProblem}`);
  if (a.format !== 'raw' && a.format !== 'split' && a.format !== 'e01') throw new UsageError('--format must be raw, split or e01');
  const format: ImageFormat = a.format;
  if (a.splitSize !== undefined && format !== 'split') throw new UsageError('--split-size goes with --format split');
  if ((a.compression !== undefined || a.segmentSize !== undefined) && format !== 'e01')
    throw new UsageError('--compression and --segment-size go with --format e01');
  const splitSize = a.splitSize ? parseSize(a.splitSize, '--split-size') : 2 * 1024 ** 3;
  const ewf =
    format === 'e01'
      ? {
          compression: a.compression ? parseCompression(a.compression) : DEFAULT_EWF_SETTINGS.compression,
          segmentSize: a.segmentSize ? parseSize(a.segmentSize, '--segment-size') : DEFAULT_EWF_SETTINGS.segmentSize,
        }
      : undefined;
  const hashes = hashesFor(format, a.hash ? parseHashList(a.hash) : DEFAULT_HASHES);
  // --piece-size 0 turns piecewise hashing off (a later mismatch can then not be located).
  const pieceSize = a.pieceSize === undefined ? DEFAULT_PIECE_SIZE : a.pieceSize.trim() === '0' ? 0 : parseSize(a.pieceSize, '--piece-size');
  const blockSize = a.blockSize ? parseSize(a.blockSize, '--block-size') : DEFAULT_BLOCK_SIZE;
  const ewfProblem = ewf ? ewfSettingsProblem({ ewf, blockSize, hashes }) : null;
  if (ewfProblem) throw new UsageError(ewfProblem);
  // Absent: sized from the memory left when the run starts (0).
  const buffers = a.buffers === undefined ? DEFAULT_BUFFERS : intArg(a.buffers, DEFAULT_BUFFERS, 2, 256, '--buffers');
  const retries = intArg(a.retries, DEFAULT_READ_POLICY.retries, 0, 100, '--retries');
  const fill = intArg(a.fill, DEFAULT_READ_POLICY.fill, 0, 255, '--fill');
  return acquireSettings({
    name: a.name,
    format,
    splitSize,
    hashes,
    pieceSize,
    blockSize,
    buffers,
    policy: { retries, fill },
    fastFirst: a.fastFirst,
    verify: a.verify,
    verifySource: a.verifySource,
    ...(ewf ? { ewf } : {}),
  });
}

export async function acquireCommand(a: AcquireArgs): Promise<number> {
  // Every argument is checked before anything is opened.
  if (!a.source) throw new UsageError('acquire needs --source DEV (a disk) or --source FILE (a virtual disk)');
  if (a.resume.length > 0) {
    const clash = journalSettingGiven(a);
    if (clash)
      throw new UsageError(
        `${clash} does not go with --resume: a resumed acquisition keeps the settings and case details it started with (they are in its journal)`,
      );
    if (a.resume.length > 2) throw new UsageError('--resume takes one or two destination directories');
    for (const d of a.resume) if (!isDirectory(d)) throw new UsageError(`--resume ${d} is not a directory`);
  } else if (a.out.length === 0 || a.out.length > 2) throw new UsageError('acquire needs one or two --out DIR');
  const settings = settingsFromArgs(a);
  // The host's DMI identity takes a while (subprocesses); it runs alongside the checks below.
  const hostP = import('../host-identity.js').then((m) => m.hostIdentity(stateDir())).catch(() => null);
  const caseInfo = caseData({
    caseNumber: a.case,
    evidenceNumber: a.evidence,
    examiner: a.examiner,
    organisation: a.organisation,
    description: a.description,
    notes: a.notes,
    location: a.location,
  });
  const examinerTime = a.examinerTime === undefined ? null : parseExaminerTime(a.examinerTime);
  const checkpointMs = a.checkpointInterval === undefined ? DEFAULT_CHECKPOINT_MS : parseDurationMs(a.checkpointInterval, '--checkpoint-interval');
  const journalIntervalMs = a.journalInterval === undefined ? DEFAULT_JOURNAL_INTERVAL_MS : parseDurationMs(a.journalInterval, '--journal-interval');
  // A journal that does not check stops here, before the source is opened.
  const resume = a.resume.length > 0 ? planResume(a.resume) : null;
  if (a.custodyCopy !== undefined && !isDirectory(a.custodyCopy)) throw new UsageError(`--custody-copy ${a.custodyCopy} is not a directory`);
  if (a.custodyCopy !== undefined && [...a.out, ...a.resume].some((d) => path.resolve(d) === path.resolve(a.custodyCopy as string)))
    throw new UsageError('--custody-copy must not be an --out directory');
  // The examiner's key, or a key for this acquisition only; a wrong passphrase stops here, before the disk is touched.
  const signer = a.key ? loadKey(a.key, await readPassphrase(`passphrase for ${a.key}: `), a.examiner ?? null) : oneTimeKey(a.examiner ?? null);

  const printer = new ProgressPrinter({ json: a.jsonProgress });
  // An interrupt stops reading and still leaves an aborted record and event, never a silent half image.
  const stop = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => stop.abort(new CustosError('EINTR', `interrupted by ${sig}`));
  const common: AcquisitionCommon = {
    destinations: resume ? resume.dirs : a.out,
    settings,
    case: caseInfo,
    examinerTime,
    signer,
    host: hostP,
    custodyCopy: a.custodyCopy ?? null,
    checkpointMs,
    onEvent: (e) => printer.event(e),
    onProgress: (p) => printer.progress(p),
    signal: stop.signal,
    journalIntervalMs,
    ...(resume ? { resume } : {}),
  };
  const run = isRegularFile(a.source) ? virtualRun(a, a.source, common) : diskRun(a, a.source, common);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let outcome: AcquisitionOutcome;
  try {
    outcome = await run.start();
  } catch (e) {
    if (e instanceof AcquisitionAborted && a.json) printer.summary({ ...e.record, custody: (e as AcquisitionAborted & { custody?: unknown }).custody ?? null });
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    printer.end();
    run.done();
  }
  const { record, custody } = outcome;
  if (a.json) printer.summary({ ...record, custody });
  else
    printer.text(
      summaryText(record) +
        `\ncustody     ${custody.copies.map((d) => safeText(d)).join(', ')}: custody.json signed by ${custody.signer.principal} ${custody.signer.fingerprint}, log head ${custody.log?.head ?? '-'}`,
    );
  return exitCodeFor(record);
}

interface SourceRun {
  start: () => Promise<AcquisitionOutcome>;
  done: () => void;
}

/** A disk: held under write-block by a guardian of this command (the source, and any disk that looks like it). */
function diskRun(a: AcquireArgs, source: string, common: AcquisitionCommon): SourceRun {
  if (a.vmFolder !== undefined || a.vmFormat !== undefined || a.snapshot !== undefined)
    throw new UsageError(`--vm-folder, --vm-format and --snapshot are for a virtual disk file; ${source} is not a file`);
  const diskName = requireWholeDisk(source, resolveDevice(source, new Sysfs()));
  const disk = readDiskByName(diskName);
  if (!disk) throw new UsageError(`${source}: no such disk`);
  // Other disks are the examiner's business (custos writeblock watch).
  const guardian = new WriteBlockGuardian({ store: new FileStateStore(), include: (d) => d.stableId === disk.stableId });
  const logStart = guardian.log.length;
  // Decisions are kept by the store as they are made; the events go to the shared log.
  const saveGuardian = () => appendEvents(guardian.log.slice(logStart));
  return {
    start: () => runAcquisition({ ...common, disk, guardian, onSourceHeld: saveGuardian, confirmLocked: a.imageLockedDrive }),
    done: saveGuardian,
  };
}

/** A virtual disk file (docs/virtual-disks.md): its chain, read through QEMU in a sandbox. */
function virtualRun(a: AcquireArgs, file: string, common: AcquisitionCommon): SourceRun {
  if (a.imageLockedDrive) throw new UsageError('--image-locked-drive is for a drive; a virtual disk file has no lock');
  const format = virtualFormatOption(a.vmFormat);
  if (a.vmFolder !== undefined && !isDirectory(a.vmFolder)) throw new UsageError(`--vm-folder ${a.vmFolder} is not a directory`);
  return {
    start: () =>
      runVirtualAcquisition({
        ...common,
        file,
        ...(a.vmFolder !== undefined ? { folder: a.vmFolder } : {}),
        ...(format !== undefined ? { format } : {}),
        ...(a.snapshot !== undefined ? { snapshot: a.snapshot } : {}),
      }),
    done: () => undefined,
  };
}

function isRegularFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function summaryText(r: ImageRecord): string {
  const lines = [
    `status      ${r.status}`,
    `source      ${r.source.path} ${r.source.model?.text ?? ''} serial ${r.source.serial?.text ?? '-'} (${r.source.sizeBytes} bytes, ${r.source.sectors} sectors of ${r.source.logicalSectorSize})`,
    ...Object.entries(r.hashes).map(([k, v]) => `${k.padEnd(11)} ${v}`),
    `pieces      ${r.pieces.count} x ${r.pieces.size} B, merkle root ${r.pieces.merkleRoot}`,
    `bad sectors ${r.badSectors}${r.badRanges.map((b) => `\n  LBA ${b.firstLba}-${b.lastLba} ${b.error}`).join('')}`,
    ...r.destinations.map(
      (d) =>
        `image       ${d.dir}/${r.image.files[0]?.file ?? ''}${r.image.files.length > 1 ? ` (+${r.image.files.length - 1} more)` : ''}${d.verification ? (d.verification.match ? '  verified' : '  VERIFY FAILED') : ''}`,
    ),
    `time        ${r.timing.acquireS.toFixed(1)} s, ${r.timing.averageMiBs} MiB/s (start-up before the first read ${r.timing.startupS.toFixed(2)} s)`,
  ];
  if (r.writeBlock?.writesDuring) lines.push(`source writes during acquisition: ${r.writeBlock.writesDuring.writeIos}`);
  return lines.join('\n');
}
