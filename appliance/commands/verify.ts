import path from 'node:path';
import { CustosError, UsageError } from '../errors.js';
import { verifyFiles } from '../imaging/acquire.js';
import { readRecord } from '../imaging/image-record.js';
import { checkImageName } from '../imaging/image-layout.js';
import { ProgressPrinter } from './progress-printer.js';
import { statSync } from 'node:fs';

export const VERIFY_SCHEMA = 'custos.verify/1';

/** Re-reads a finished image in DIR and compares every hash and window with its record. */
export async function verifyCommand(a: { dir: string | undefined; name: string | undefined; json: boolean; jsonProgress: boolean }): Promise<number> {
  if (!a.dir) throw new UsageError('verify needs DIR');
  const nameProblem = a.name === undefined ? null : checkImageName(a.name);
  if (nameProblem) throw new UsageError(`--name ${nameProblem}`);
  const { file, record } = readRecord(a.dir, a.name);
  const files = record.image.files.map((f) => ({ path: path.join(a.dir as string, f.file), size: f.size }));
  for (const f of files) {
    let size: number;
    try {
      size = statSync(f.path).size;
    } catch {
      throw new CustosError('EMISSING', `${f.path} is missing`);
    }
    if (size !== f.size) throw new CustosError('ESIZE', `${f.path} is ${size} bytes; the record says ${f.size}`);
  }
  const printer = new ProgressPrinter({ json: a.jsonProgress });
  const expected = { hashes: record.hashes, pieceSize: record.pieces.size, pieces: record.pieces.sha256, merkleRoot: record.pieces.merkleRoot };
  let cmp;
  try {
    cmp = await verifyFiles(files, expected, { blockSize: record.settings.blockSize, buffers: record.settings.buffers, sectorSize: record.image.sectorSize, onProgress: (p) => printer.progress(p) }, 'verify', (e) => printer.event(e));
  } finally {
    printer.end();
  }
  const out = { schema: VERIFY_SCHEMA, record: file, status: record.status, match: cmp.match, comparison: cmp };
  if (a.json) printer.summary(out);
  else {
    const lines = [
      `${cmp.match ? 'VERIFIED' : 'MISMATCH'}  ${file}`,
      ...cmp.hashes.map((h) => `${h.algorithm.padEnd(7)} ${h.match ? 'ok     ' : 'DIFFERS'} ${h.actual ?? '-'}`),
      `pieces  ${cmp.pieces.compared - cmp.pieces.mismatched.length}/${cmp.pieces.compared} match, merkle root ${cmp.merkleRootMatch ? 'ok' : 'DIFFERS'}`,
      ...cmp.pieces.mismatched.map((m) => `  window ${m.index}: bytes ${m.offset}-${m.offset + m.length - 1} (LBA ${m.firstLba}-${m.lastLba}) differs`),
    ];
    if (record.status !== 'complete') lines.push(`note: the acquisition itself ended ${record.status}`);
    printer.text(lines.join('\n'));
  }
  return cmp.match ? 0 : 1;
}
