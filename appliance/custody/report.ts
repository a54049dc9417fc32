// report.txt and report.html: the record for people. Every value shown comes
// from its display-safe form (case text, sanitized device strings); the HTML
// is escaped on top, so neither file can be broken or spoofed by its content.
import { fileSystemText } from '../vdisk/container-filesystem.js';
import { safeText } from '../sanitize.js';
import { CASE_FIELDS, type CaseField } from './case-data.js';
import { CUSTODY_FILE, ALLOWED_SIGNERS_FILE, type CustodyRecord } from './custody-record.js';
import { LOG_FILE } from './event-log.js';
import type { DriveHealth } from '../disk/drive-health.js';
import { chainLines } from '../vdisk/chain-text.js';

const LABELS: Record<CaseField, string> = {
  caseNumber: 'Case number',
  evidenceNumber: 'Evidence number',
  examiner: 'Examiner',
  organisation: 'Organisation',
  description: 'Description',
  notes: 'Notes',
  location: 'Location',
};

interface Section {
  title: string;
  rows: [string, string][];
  /** Values to print large (hashes, fingerprint) in the HTML. */
  big?: boolean;
}

function healthText(h: DriveHealth | null): string {
  if (!h) return 'not given by the drive';
  const status = h.passed === null ? 'status not given' : h.passed ? 'passed' : 'FAILING';
  return `${h.from}: ${status}; ${h.flags.length ? h.flags.map((f) => safeText(f)).join(', ') : 'nothing flagged'}`;
}

/** The drive's own view: identity from its firmware, security, and what the image covers of it. Absent in older records. */
function driveSection(r: CustodyRecord): Section[] {
  const d = r.sourceDrive;
  if (!d) return [];
  const id = d.report.ata?.identify ?? d.report.nvme?.controller ?? null;
  const sec = d.report.ata?.identify.security;
  const c = d.coverage;
  return [
    {
      title: 'Drive (its own answers)',
      rows: [
        ['Identity', id ? `model ${id.model.text || '-'}, serial ${id.serial.text || '-'}, firmware ${id.firmware.text || '-'}` : 'not asked'],
        ...(sec?.supported
          ? [
              ['ATA security', `${sec.locked ? 'LOCKED' : sec.enabled ? 'enabled, unlocked' : 'not enabled'}${sec.frozen ? ', frozen' : ''}`] as [
                string,
                string,
              ],
            ]
          : []),
        ['Covered', safeText(c.statement, 600)],
        ['Health before', healthText(d.report.health)],
        ...(d.healthAfter !== undefined ? [['Health after', healthText(d.healthAfter)] as [string, string]] : []),
        ['Drive size', c.driveBytes === null ? 'unknown' : `${c.driveBytes} bytes (${safeText(c.from)})`],
        ['Not imaged', c.hiddenBytes === null ? 'unknown' : `${c.hiddenBytes} bytes`],
        ...(d.encryptedVolumes ?? []).map((v): [string, string] => [`Encrypted ${safeText(v.device)}`, safeText(v.advice, 400)]),
        ...(c.locked
          ? [['LOCKED', `${c.locked}: imaged on the examiner's confirmation; its unreadable ranges are locked, not bad sectors`] as [string, string]]
          : []),
      ],
    },
  ];
}

/** A virtual disk source: the chain and each container file with its SHA-256 (sha256sum checks it) and whether it changed while read. */
function virtualDiskSection(r: CustodyRecord): Section[] {
  const v = r.virtualDisk;
  if (!v) return [];
  return [
    {
      title: 'Virtual disk',
      rows: [
        ['Given', safeText(v.given, 400)],
        ['Folder', `${safeText(v.folder, 400)} (nothing outside it was opened)`],
        ...chainLines(v).map((l, i): [string, string] => [i === 0 ? 'Chain' : '', safeText(l, 600)]),
        ...(v.snapshot
          ? [['Snapshot', `internal snapshot ${safeText(v.snapshot.id)} "${safeText(v.snapshot.name)}" imaged, not the current state`] as [string, string]]
          : []),
        ...v.files.map((f): [string, string] => [
          `File ${safeText(f.file, 200)}`,
          `${f.role}, ${f.sizeBytes} bytes, mtime ${safeText(f.mtime)}, SHA-256 ${f.sha256 ?? 'not computed'}${f.unchanged === false ? ', CHANGED WHILE READ' : f.unchanged ? ', unchanged' : ''}`,
        ]),
        ['Read by', `${safeText(v.reader.program, 300)}; ${safeText(v.reader.sandbox, 300)}`],
        ...(v.identifiers.length ? [['Identifiers', v.identifiers.map((i) => safeText(i)).join(', ')] as [string, string]] : []),
        ...(v.fileSystem ? [['Stored on', safeText(fileSystemText(v.fileSystem), 600)] as [string, string]] : []),
      ],
    },
  ];
}

function sections(r: CustodyRecord): Section[] {
  const a = r.acquisition;
  const locked = r.sourceDrive?.coverage.locked ?? null;
  const src = a.source;
  const wb = a.writeBlock;
  const c = r.clock;
  return [
    { title: 'Case', rows: CASE_FIELDS.map((f) => [LABELS[f], r.case[f]?.text ?? '-']) },
    {
      title: 'Signature',
      big: true,
      rows: [
        ['Signed by', `${r.signer.principal} (${r.signer.kind === 'one-time' ? 'one-time key made for this acquisition' : 'examiner key'})`],
        ['Key fingerprint', r.signer.fingerprint],
        ['Log head (SHA-256)', r.log.head],
      ],
    },
    {
      title: 'Clock',
      rows: [
        ['System clock (UTC)', c.systemUtc],
        ['Hardware clock (UTC)', c.rtcUtc ? `${c.rtcUtc} (offset ${c.rtcOffsetS} s)` : 'not available'],
        ['Examiner time (UTC)', c.examinerUtc ? `${c.examinerUtc} (system clock off by ${c.examinerOffsetS} s)` : 'not confirmed'],
        ['Local offset from UTC', `${c.localUtcOffsetMin} min`],
      ],
    },
    {
      title: 'Source',
      rows: [
        ['Device', safeText(src.path)],
        ['Vendor', src.vendor?.text ?? '-'],
        ['Model', src.model?.text ?? '-'],
        ['Serial', src.serial?.text ?? '-'],
        ['Stable id', src.stableId ? safeText(src.stableId) : '-'],
        ...(r.sourceDisk?.loop ? [['Loop backing file', r.sourceDisk.loop.backingFile.text] as [string, string]] : []),
        ['Transport', r.sourceDisk ? `${r.sourceDisk.transport}${r.sourceDisk.usbBridge ? ' (USB bridge)' : ''}` : '-'],
        ['Partitions', r.sourceDisk ? String(r.sourceDisk.partitions.length) : '-'],
        ['Warnings', r.sourceDisk && r.sourceDisk.warnings.length > 0 ? r.sourceDisk.warnings.map((w) => safeText(w.message)).join('; ') : 'none'],
        ['Size', `${src.sizeBytes} bytes, ${src.sectors} sectors of ${src.logicalSectorSize} bytes`],
        [
          'Write-block',
          wb
            ? `read-only at start: ${wb.intactAtStart ? 'yes' : 'NO'}, at end: ${wb.intactAtEnd ? 'yes' : 'NO'}, flag resets put back: ${wb.resets}; writes counted by the kernel during acquisition: ${wb.writesDuring?.writeIos ?? 'unknown'}`
            : 'not recorded',
        ],
      ],
    },
    ...driveSection(r),
    ...virtualDiskSection(r),
    {
      title: 'Acquisition',
      big: true,
      rows: [
        ['Status', a.status],
        ['Started (UTC)', a.timing.started],
        ['Finished (UTC)', a.timing.finished],
        ['Bytes', String(a.image.sizeBytes)],
        ...Object.entries(a.hashes).map(([k, v]): [string, string] => [k.toUpperCase(), v ?? '-']),
        ['Merkle root', a.pieces.merkleRoot || '-'],
        locked
          ? [
              'Locked sectors',
              `${a.badSectors} (the drive is locked: they could not be read, not bad media)${a.badRanges.map((b) => `; LBA ${b.firstLba}-${b.lastLba} locked`).join('')}`,
            ]
          : ['Unreadable sectors', `${a.badSectors}${a.badRanges.map((b) => `; LBA ${b.firstLba}-${b.lastLba} ${b.error}`).join('')}`],
      ],
    },
    {
      title: 'Files',
      rows: [
        ...a.image.files.map((f): [string, string] => [f.file, `${f.size} bytes, SHA-256 ${f.sha256 ?? '-'}`]),
        ...a.destinations.map((d): [string, string] => [
          `Copy in ${safeText(d.dir)}`,
          d.verification ? (d.verification.match ? 'read back and verified' : 'VERIFICATION FAILED') : 'not read back',
        ]),
      ],
    },
    {
      title: 'Tool and host',
      rows: [
        ['custos', `${r.tool.version} on Node ${r.tool.node}`],
        ['Executable SHA-256', r.tool.executable.sha256],
        ['Code SHA-256', r.tool.code?.sha256 ?? '-'],
        ['Kernel', safeText(r.kernel.release)],
        ['Host', r.host ? `${r.host.system.manufacturer.text} ${r.host.system.model.text}, serial ${r.host.system.serial.text}` : 'not recorded'],
        // Records written before controllers were listed have no storage section.
        ...(r.host?.storage
          ? [
              [
                'Storage controllers',
                r.host.storage.controllers.map((c) => `${c.id ?? c.address} ${c.kind} (${c.driver ?? 'NO DRIVER'})`).join('; ') || 'none found',
              ] as [string, string],
              ...r.host.storage.warnings.map((w): [string, string] => ['WARNING', w.message]),
            ]
          : []),
      ],
    },
  ];
}

function verifyHelp(r: CustodyRecord): string[] {
  return [
    `To check this record with stock tools (in the folder holding it):`,
    `  ssh-keygen -Y verify -f ${ALLOWED_SIGNERS_FILE} -I ${r.signer.principal} -n ${r.signer.namespace} -s ${CUSTODY_FILE}.sig < ${CUSTODY_FILE}`,
    `  ssh-keygen -Y verify -f ${ALLOWED_SIGNERS_FILE} -I ${r.signer.principal} -n ${r.signer.namespace} -s ${LOG_FILE}.sig < ${LOG_FILE}`,
    `  sha256sum ${r.acquisition.image.files.map((f) => f.file).join(' ')}`,
    `and compare the key fingerprint with the one written on the custody form.`,
  ];
}

export function reportText(r: CustodyRecord): string {
  const out = ['custos chain-of-custody report', '='.repeat(30), ''];
  for (const s of sections(r)) {
    out.push(s.title, '-'.repeat(s.title.length));
    const w = Math.max(...s.rows.map(([k]) => k.length));
    for (const [k, v] of s.rows) out.push(`${k.padEnd(w)}  ${v}`);
    out.push('');
  }
  out.push(...verifyHelp(r), '');
  return out.join('\n');
}

function html(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function reportHtml(r: CustodyRecord): string {
  const body = sections(r)
    .map((s) => {
      const rows = s.rows.map(([k, v]) => `<tr><th>${html(k)}</th><td${s.big ? ' class="big"' : ''}>${html(v)}</td></tr>`).join('\n');
      return `<h2>${html(s.title)}</h2>\n<table>\n${rows}\n</table>`;
    })
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>custos chain-of-custody report</title>
<style>
body { font-family: sans-serif; margin: 2em; }
th { text-align: left; vertical-align: top; padding-right: 1.5em; white-space: nowrap; }
td { font-family: monospace; word-break: break-all; }
td.big { font-size: 1.35em; letter-spacing: 0.05em; }
@media print { body { margin: 0; } h2 { page-break-after: avoid; } }
</style></head><body>
<h1>custos chain-of-custody report</h1>
${body}
<h2>Checking this record</h2>
<pre>${html(verifyHelp(r).join('\n'))}</pre>
</body></html>
`;
}
