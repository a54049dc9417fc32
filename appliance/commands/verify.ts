// `custos verify`: reads an image back against its record and checks the
// record's signature and hash-chained log (custody/verify-custody.ts).
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { fileHashWindow } from '../imaging/hash/file-hash.js';
import { verifyFiles } from '../imaging/verify/verify-files.js';
import type { HashComparison } from '../imaging/verify/verify-image.js';
import { CUSTODY_FILE, readCustody } from '../custody/custody-record.js';
import { LOG_FILE } from '../custody/event-log.js';
import { verifyCustody, verifyInterruptedLog, type Verdict } from '../custody/verify-custody.js';
import { safeText } from '../sanitize.js';
import { ProgressPrinter } from './progress-printer.js';

export const VERIFY_SCHEMA = 'custos.verify/1';

/**
 * custos verify DIR: the record's and the log's signatures, the log's chain,
 * the record against the log's head, then every image file re-read against
 * the record's hashes. One verdict line per check; non-zero on any failure.
 */
export async function verifyCommand(a: { dir: string | undefined; json: boolean; jsonProgress: boolean; recordOnly: boolean }): Promise<number> {
  if (!a.dir) throw new UsageError('verify needs DIR');
  const dir = a.dir;
  const printer = new ProgressPrinter({ json: a.jsonProgress });
  const report = (verdicts: Verdict[], comparison: HashComparison | null, status: string | null): number => {
    const ok = verdicts.every((v) => v.ok);
    if (a.json) printer.summary({ schema: VERIFY_SCHEMA, dir, status, ok, verdicts, comparison });
    else
      printer.text(
        [
          ...verdicts.map((v) => `${v.ok ? 'ok  ' : 'FAIL'}  ${v.check.padEnd(22)} ${safeText(v.detail, 1000)}`),
          ok ? `VERIFIED  ${safeText(dir)}` : `NOT VERIFIED  ${safeText(dir)}`,
        ].join('\n'),
      );
    return ok ? 0 : 1;
  };

  if (!existsSync(path.join(dir, CUSTODY_FILE)) && existsSync(path.join(dir, LOG_FILE))) return report(verifyInterruptedLog(dir), null, 'interrupted');
  const { bytes, record } = readCustody(dir);
  const verdicts = verifyCustody(dir, bytes, record);
  const acq = record.acquisition;
  if (a.recordOnly) {
    // A custody copy holds the record without the image; say plainly what was not checked.
    verdicts.push({ check: 'image files', ok: true, detail: 'not checked (--record-only); verify an evidence copy for the image itself' });
    return report(verdicts, null, acq.status);
  }

  // The image: every file present at its recorded size, then re-read against every hash.
  const files = acq.image.files.map((f) => ({ path: path.join(dir, f.file), size: f.size, sha256: f.sha256 }));
  const problems: string[] = [];
  for (const f of files) {
    let size = -1;
    try {
      size = statSync(f.path).size;
    } catch {
      problems.push(`${path.basename(f.path)} is missing`);
      continue;
    }
    if (size !== f.size) problems.push(`${path.basename(f.path)} is ${size} bytes; the record says ${f.size}`);
  }
  if (problems.length > 0 || acq.status === 'aborted') {
    verdicts.push({
      check: 'image files',
      ok: false,
      detail: problems.length > 0 ? problems.join('; ') : 'the acquisition was aborted; there is no complete image to check',
    });
    return report(verdicts, null, acq.status);
  }
  const expected = { hashes: acq.hashes, pieceSize: acq.pieces.size, pieces: acq.pieces.sha256, merkleRoot: acq.pieces.merkleRoot };
  let cmp: HashComparison;
  try {
    cmp = await verifyFiles(
      files,
      expected,
      {
        blockSize: acq.settings.blockSize,
        buffers: acq.settings.buffers,
        sectorSize: acq.image.sectorSize,
        fileWindow: fileHashWindow({ format: acq.image.format, splitSize: acq.image.splitSize, hashes: acq.settings.hashes, size: acq.image.sizeBytes }),
        ewf: acq.image.format === 'e01',
        onProgress: (p) => printer.progress(p),
      },
      'verify',
      (e) => printer.event(e),
    );
  } finally {
    printer.end();
  }
  if (cmp.unreadable) verdicts.push({ check: 'image readable', ok: false, detail: `${cmp.unreadable.error}: the copy cannot be read back to its end` });
  if (cmp.container) {
    const c = cmp.container.problems;
    verdicts.push({
      check: 'E01 container',
      ok: c.length === 0,
      detail:
        c.length === 0
          ? 'every chunk checksum, table and section checks; stored MD5/SHA-1 match'
          : `${c.length} problem(s): ${c.slice(0, 5).join('; ')}${c.length > 5 ? '; ...' : ''}`,
    });
  }
  for (const h of cmp.hashes)
    verdicts.push({ check: `image ${h.algorithm}`, ok: h.match, detail: h.match ? h.expected : `image hashes ${h.actual ?? '-'}, record says ${h.expected}` });
  for (const f of cmp.files)
    verdicts.push({
      check: `file ${f.file}`.slice(0, 22),
      ok: f.match,
      detail: f.match ? `SHA-256 ${f.expected}` : `${f.file}: SHA-256 ${f.actual ?? '-'}, record says ${f.expected}`,
    });
  if (acq.pieces.size > 0 && !cmp.unreadable) {
    const bad = cmp.pieces.mismatched;
    verdicts.push({
      check: 'image windows',
      ok: bad.length === 0 && cmp.merkleRootMatch,
      detail:
        bad.length === 0 && cmp.merkleRootMatch
          ? `${cmp.pieces.compared} windows of ${acq.pieces.size} bytes and the Merkle root match`
          : bad.map((m) => `window ${m.index}: bytes ${m.offset}-${m.offset + m.length - 1} (LBA ${m.firstLba}-${m.lastLba}) differs`).join('; ') ||
            'Merkle root differs',
    });
  }
  if (acq.status !== 'complete')
    verdicts.push({
      check: 'acquisition',
      ok: acq.status === 'complete-with-bad-sectors',
      detail: `the acquisition itself ended ${acq.status}${acq.badSectors > 0 ? ` (${acq.badSectors} unreadable sectors, filled)` : ''}`,
    });
  return report(verdicts, cmp, acq.status);
}
