import { parseArgs } from 'node:util';
import { CustosError, UsageError } from '../errors.js';
import { WriteBlockGuardian } from '../guardian.js';
import { loadState, saveState, appendEvents } from '../guardian-state.js';
import { readDiskByName } from '../inventory.js';
import { resolveDevice, requireWholeDisk } from '../resolve-device.js';
import { Sysfs } from '../sysfs.js';
import { acquire, AcquisitionAborted, DEFAULT_BLOCK_SIZE, DEFAULT_BUFFERS, DEFAULT_PIECE_SIZE } from '../imaging/acquire.js';
import { DEFAULT_HASHES, parseHashList } from '../imaging/hash-algorithms.js';
import { checkImageName, type ImageFormat } from '../imaging/image-layout.js';
import type { ImageRecord, SourceInfo } from '../imaging/image-record.js';
import { DEFAULT_READ_POLICY } from '../imaging/read-recovery.js';
import { DeviceReader } from '../imaging/sector-reader.js';
import { SourceWriteBlock } from '../imaging/source-writeblock.js';
import { parseSize } from '../imaging/sizes.js';
import { ProgressPrinter } from './progress-printer.js';

export interface AcquireArgs {
  source: string | undefined;
  out: string[];
  name: string;
  format: string;
  splitSize: string | undefined;
  hash: string | undefined;
  pieceSize: string | undefined;
  blockSize: string | undefined;
  buffers: string | undefined;
  retries: string | undefined;
  fill: string | undefined;
  fastFirst: boolean;
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
      hash: { type: 'string' },
      'piece-size': { type: 'string' },
      'block-size': { type: 'string' },
      buffers: { type: 'string' },
      retries: { type: 'string' },
      fill: { type: 'string' },
      'fast-first': { type: 'boolean', default: false },
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
    hash: values.hash,
    pieceSize: values['piece-size'],
    blockSize: values['block-size'],
    buffers: values.buffers,
    retries: values.retries,
    fill: values.fill,
    fastFirst: values['fast-first'],
    verify: values.verify,
    verifySource: values['verify-source'],
    json: values.json,
    jsonProgress: values['json-progress'],
  };
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

export async function acquireCommand(a: AcquireArgs): Promise<number> {
  // Every argument is checked before anything is opened.
  if (!a.source) throw new UsageError('acquire needs --source DEV');
  if (a.out.length === 0 || a.out.length > 2) throw new UsageError('acquire needs one or two --out DIR');
  const nameProblem = checkImageName(a.name);
  if (nameProblem) throw new UsageError(`--name ${nameProblem}`);
  if (a.format !== 'raw' && a.format !== 'split') throw new UsageError(`--format must be raw or split (e01 is not supported yet)`);
  const format: ImageFormat = a.format;
  if (a.splitSize !== undefined && format !== 'split') throw new UsageError('--split-size goes with --format split');
  const splitSize = a.splitSize ? parseSize(a.splitSize, '--split-size') : 2 * 1024 ** 3;
  const hashes = a.hash ? parseHashList(a.hash) : DEFAULT_HASHES;
  // --piece-size 0 turns piecewise hashing off (a later mismatch can then not be located).
  const pieceSize = a.pieceSize === undefined ? DEFAULT_PIECE_SIZE : a.pieceSize.trim() === '0' ? 0 : parseSize(a.pieceSize, '--piece-size');
  const blockSize = a.blockSize ? parseSize(a.blockSize, '--block-size') : DEFAULT_BLOCK_SIZE;
  const buffers = intArg(a.buffers, DEFAULT_BUFFERS, 2, 256, '--buffers');
  const retries = intArg(a.retries, DEFAULT_READ_POLICY.retries, 0, 100, '--retries');
  const fill = intArg(a.fill, DEFAULT_READ_POLICY.fill, 0, 255, '--fill');

  const sysfs = new Sysfs();
  const diskName = requireWholeDisk(a.source, resolveDevice(a.source, sysfs));
  const disk = readDiskByName(diskName);
  if (!disk) throw new UsageError(`${a.source}: no such disk`);

  const printer = new ProgressPrinter({ json: a.jsonProgress });
  const state = loadState();
  const guardian = new WriteBlockGuardian({ state });
  const logStart = guardian.log.length;
  let writeBlock: SourceWriteBlock;
  try {
    writeBlock = new SourceWriteBlock(guardian, disk);
  } finally {
    saveState(guardian.snapshotState());
    appendEvents(guardian.log.slice(logStart));
  }
  const reader = new DeviceReader(disk.devicePath);
  const source: SourceInfo = {
    path: disk.devicePath,
    name: disk.name,
    stableId: disk.stableId,
    vendor: disk.vendor,
    model: disk.model,
    serial: disk.serial,
    sizeBytes: reader.size,
    logicalSectorSize: reader.sectorSize,
    physicalSectorSize: disk.physicalSectorSize,
    sectors: reader.size / reader.sectorSize,
  };
  let record: ImageRecord;
  const guardLogAt = guardian.log.length;
  // An interrupt stops reading and still leaves an aborted record and event, never a silent half image.
  const stop = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => stop.abort(new CustosError('EINTR', `interrupted by ${sig}`));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    record = await acquire({
      reader,
      source,
      sourceDisk: disk.name,
      writeBlock,
      destinations: a.out,
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
      onEvent: (e) => printer.event(e),
      onProgress: (p) => printer.progress(p),
      signal: stop.signal,
    });
  } catch (e) {
    if (e instanceof AcquisitionAborted && a.json) printer.summary(e.record);
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    reader.close();
    printer.end();
    saveState(guardian.snapshotState());
    appendEvents(guardian.log.slice(guardLogAt));
  }
  if (a.json) printer.summary(record);
  else printer.text(summaryText(record));
  return exitCodeFor(record);
}

function summaryText(r: ImageRecord): string {
  const lines = [
    `status      ${r.status}`,
    `source      ${r.source.path} ${r.source.model?.text ?? ''} serial ${r.source.serial?.text ?? '-'} (${r.source.sizeBytes} bytes, ${r.source.sectors} sectors of ${r.source.logicalSectorSize})`,
    ...Object.entries(r.hashes).map(([k, v]) => `${k.padEnd(11)} ${v}`),
    `pieces      ${r.pieces.count} x ${r.pieces.size} B, merkle root ${r.pieces.merkleRoot}`,
    `bad sectors ${r.badSectors}${r.badRanges.map((b) => `\n  LBA ${b.firstLba}-${b.lastLba} ${b.error}`).join('')}`,
    ...r.destinations.map((d) => `image       ${d.dir}/${r.image.files[0]?.file ?? ''}${r.image.files.length > 1 ? ` (+${r.image.files.length - 1} more)` : ''}${d.verification ? (d.verification.match ? '  verified' : '  VERIFY FAILED') : ''}`),
    `time        ${r.timing.acquireS.toFixed(1)} s, ${r.timing.averageMiBs} MiB/s`,
  ];
  if (r.writeBlock?.writesDuring) lines.push(`source writes during acquisition: ${r.writeBlock.writesDuring.writeIos}`);
  return lines.join('\n');
}
