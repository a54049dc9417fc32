// Summary, live acquisition, and result: the part of the flow that runs the
// acquisition through the same core path as `custos acquire`.
import blessed from 'blessed';
import path from 'node:path';
import { humanSize } from '../appliance/format.js';
import type { Disk } from '../appliance/disk/inventory.js';
import type { ImagingEvent } from '../appliance/events.js';
import type { ProgressReport } from '../appliance/imaging/pipeline/progress.js';
import type { MountedDestination } from '../appliance/disk/destination-mount.js';
import type { AcquisitionOutcome } from '../appliance/run-acquisition.js';
import { CustosError } from '../appliance/errors.js';
import { safeText } from '../appliance/sanitize.js';
import type { Details } from './details-screen.js';
import type { Options } from './options-screen.js';
import { fitText, innerWidth, setText, textBox, waitKey, type Ui } from './ui.js';

export async function confirmSummary(
  ui: Ui,
  source: Disk,
  mounts: MountedDestination[],
  d: Details,
  o: Options,
  vm: { file: string; chain: string[] } | null = null,
): Promise<boolean> {
  ui.page('check and start', 'Enter: start the acquisition  Esc: start over');
  const drive = `${source.name}  ${source.model?.text || '-'}  serial ${source.serial?.text || '-'}`;
  const lines = [
    ...(vm
      ? [
          `source       VM disk ${safeText(path.basename(vm.file), 60)}: ${safeText(vm.chain[0] ?? '', 120)}`,
          `             on ${drive}, read-only, write-blocked`,
        ]
      : [`source       ${drive}`, `             ${source.sizeBytes} bytes, ${source.logicalSectorSize}-byte sectors, write-blocked`]),
    ...mounts.map((m, i) => `destination ${i + 1} ${m.device} (${m.fsType}) at ${safeText(m.dir)}`),
    ...(d.custodyUsb ? [`custody USB  ${d.custodyUsb.device} (${d.custodyUsb.fsType}): keys, and a copy of the record`] : []),
    `case         ${d.case.caseNumber?.text ?? '-'}   evidence ${d.case.evidenceNumber?.text ?? '-'}`,
    `examiner     ${d.case.examiner?.text ?? '-'}`,
    `clock        examiner time ${d.examinerTime?.toISOString() ?? 'not confirmed'}`,
    `signing key  ${d.signer.kind === 'one-time' ? 'one-time key' : d.signer.principal} ${d.signer.fingerprint}`,
    `image        ${o.format}${o.format === 'split' ? ' (4000 MiB files)' : o.format === 'e01' ? ` (${o.compression} compression, 1.4 GiB segments)` : ''}, ${o.hashes.join(' + ')}${o.verify ? ', verify after' : ''}${o.fastFirst ? ', fast-first' : ''}`,
  ];
  textBox(ui, { top: 0, height: '100%', content: lines.join('\n') });
  ui.screen.render();
  return (await waitKey(ui, ['enter', 'escape'])) === 'enter';
}

function bar(percent: number, width: number): string {
  const n = Math.max(0, Math.min(width, Math.round((percent / 100) * width)));
  return '#'.repeat(n) + '.'.repeat(width - n);
}

/** A phase as one short word or two: `verify /long/mount/dir` shows as `verify dir`; the full path is in the events. */
function phaseLabel(phase: string): string {
  const [verb = '', ...rest] = phase.split(' ');
  const where = rest.join(' ');
  return where ? `${verb} ${safeText(path.basename(where), 16)}` : verb;
}

function hms(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return '--:--:--';
  const t = Math.round(s);
  return [Math.floor(t / 3600), Math.floor(t / 60) % 60, t % 60].map((x) => String(x).padStart(2, '0')).join(':');
}

/**
 * The live acquisition. `start` runs it with our progress and event sinks and
 * an abort signal; 'a' asks for confirmation and then aborts (the record is
 * still written and signed, marked aborted).
 */
export async function acquisitionScreen(
  ui: Ui,
  sourceName: string,
  start: (sinks: { onEvent: (e: ImagingEvent) => void; onProgress: (p: ProgressReport) => void; signal: AbortSignal }) => Promise<AcquisitionOutcome>,
): Promise<{ outcome: AcquisitionOutcome | null; error: Error | null }> {
  ui.page(`acquiring ${safeText(sourceName, 60)}`, 'a: abort (asks first)');
  // Ten fields, and a row for the stages to go on (two copies, compression).
  const status = textBox(ui, { top: 0, height: 13, label: 'progress' });
  // A plain box holding the newest lines (blessed's log widget scrolls on a timer, which outlives the screen).
  const log = textBox(ui, { top: 13, height: '100%-13', label: 'events' });
  const events: string[] = [];
  const addEvent = (line: string) => {
    events.push(line);
    if (events.length > 200) events.shift();
    // The newest rows that fit, a long event continued on indented rows.
    const rows = events.slice(-40).flatMap((e) => fitText(e, innerWidth(log)).split('\n'));
    log.setContent(rows.slice(-Math.max(1, Number(log.height) - 2)).join('\n'));
    ui.screen.render();
  };
  let last: ProgressReport | null = null;
  let lastBad: string | null = null;
  let sourceGone = false;
  let checks = 0;
  let lastCheck: Date | null = null;
  const render = () => {
    const p = last;
    if (!p) return;
    if (p.writeBlock && p.writeBlock.checks !== checks) {
      checks = p.writeBlock.checks;
      lastCheck = new Date();
    }
    const stages = p.stages.map((s) => `${s.name} ${s.rateMiBs.toFixed(0)}`).join('  ');
    const width = innerWidth(status);
    const phase = phaseLabel(p.phase);
    const percent = `${p.percent.toFixed(1)}%`;
    setText(
      status,
      [
        `${phase}  [${bar(p.percent, Math.min(50, width - phase.length - percent.length - 5))}] ${percent}`,
        `${humanSize(p.bytesDone, true)} of ${humanSize(p.bytesTotal, true)}  (${p.bytesDone} of ${p.bytesTotal} bytes)`,
        `now ${p.rateMiBs.toFixed(0)} MiB/s  average ${p.averageMiBs.toFixed(0)} MiB/s  elapsed ${hms(p.elapsedS)}  ETA ${hms(p.etaS)}`,
        `stages MiB/s: ${stages}`,
        `bottleneck: ${p.bottleneck ?? '-'}`,
        `unreadable sectors: ${p.badSectors}${lastBad ? `  last: ${lastBad}` : ''}`,
        `write-block: ${p.writeBlock ? (p.writeBlock.intact ? 'intact' : 'FLAG WAS RESET, put back') : '-'}, ${p.writeBlock?.checks ?? 0} checks, last ${lastCheck ? lastCheck.toISOString().slice(11, 19) : '-'}`,
        p.journal
          ? p.journal.position > 0
            ? `resume point: ${((100 * p.journal.position) / p.bytesTotal).toFixed(1)}% (#${p.journal.checkpoints}${p.journal.written ? ` at ${p.journal.written.slice(11, 19)}` : ''})`
            : 'resume point: none yet'
          : 'resume journal: off',
        sourceGone ? 'SOURCE UNPLUGGED: plug the same disk back in to go on (a: abort)' : p.stalledS !== null ? `NO PROGRESS FOR ${p.stalledS} s` : '',
      ].join('\n'),
    );
    ui.screen.render();
  };
  const stop = new AbortController();
  let asking = false;
  const onKey = (_ch: unknown, key: { name?: string }) => {
    if (key.name !== 'a' || asking || stop.signal.aborted) return;
    asking = true;
    const q = blessed.question({
      parent: ui.screen,
      top: 'center',
      left: 'center',
      width: 60,
      height: 7,
      border: { type: 'line' },
      tags: false,
      label: ' abort? ',
    });
    q.ask('Stop the acquisition? The record will say aborted. (y/n)', (_err, yes) => {
      q.destroy();
      asking = false;
      if (yes) stop.abort(new CustosError('EABORTED', 'aborted by the examiner'));
      ui.screen.render();
    });
  };
  ui.screen.on('keypress', onKey);
  const stallTimer = setInterval(render, 1000);
  try {
    const outcome = await start({
      onEvent: (e) => {
        if (e.type === 'bad-range') lastBad = `LBA ${typeof e.data?.['lastLba'] === 'number' ? e.data['lastLba'] : '?'}`;
        if (e.type === 'source-lost') sourceGone = true;
        if (e.type === 'source-returned') sourceGone = false;
        addEvent(`${e.time.slice(11, 19)} ${e.type}: ${safeText(e.message, 200)}`);
      },
      onProgress: (p) => {
        last = p;
        render();
      },
      signal: stop.signal,
    });
    return { outcome, error: null };
  } catch (e) {
    return { outcome: null, error: e instanceof Error ? e : new Error(String(e)) };
  } finally {
    clearInterval(stallTimer);
    ui.screen.removeListener('keypress', onKey);
  }
}

/** Groups a fingerprint so it can be read aloud and copied by hand. */
export function spacedFingerprint(fp: string): string {
  const body = fp.replace(/^SHA256:/, '');
  return 'SHA256: ' + (body.match(/.{1,4}/g) ?? []).join(' ');
}

export type NextStep = 'again' | 'quit' | 'poweroff' | 'copy';

export async function resultScreen(
  ui: Ui,
  r: { outcome: AcquisitionOutcome | null; error: Error | null; fingerprint: string; custodyCopy: string | null; lockedDrive?: boolean },
  appliance: boolean,
): Promise<NextStep> {
  // An aborted run's error carries the record and the custody copies it got to (AcquisitionAborted, CustodyAborted).
  const failed = r.error && ('record' in r.error || 'custody' in r.error) ? (r.error as Partial<AcquisitionOutcome>) : null;
  const rec = r.outcome?.record ?? failed?.record ?? null;
  const status = rec?.status ?? 'failed';
  // Only copies whose medium still took writes hold the record; say so rather than claim it.
  const custody = r.outcome?.custody ?? failed?.custody ?? null;
  const written = new Set(custody?.copies ?? []);
  const missing = (rec?.destinations ?? []).map((d) => d.dir).filter((d) => !written.has(d));
  ui.page(`result: ${status}`, `c: copy record to a custody USB  n: another  q: unmount and quit${appliance ? '  p: power off' : ''}`);
  const lines = [
    `status   ${status.toUpperCase()}${r.error ? `: ${safeText(r.error.message, 200)}` : ''}`,
    ...(rec ? Object.entries(rec.hashes).map(([k, v]) => `${k.padEnd(8)} ${v}`) : []),
    ...(rec?.destinations ?? []).map(
      (d) => `copy     ${safeText(d.dir)}: ${d.verification ? (d.verification.match ? 'verified' : 'VERIFICATION FAILED') : 'not read back'}`,
    ),
    // A locked drive's unreadable sectors are the lock, not bad media (the record says so too).
    ...(rec ? [`bad      ${rec.badSectors} unreadable sector(s)${r.lockedDrive ? ': the drive is LOCKED, not bad media' : ''}`] : []),
    ...(written.size > 0 ? [`record   custody.json, events.jsonl, signatures, report.txt beside the image`] : []),
    ...missing.map((d) => `record   NOT WRITTEN in ${safeText(d, 40)}: its drive failed (the log up to then is there)`),
    ...(r.custodyCopy ? [`         and a copy on the custody USB: ${safeText(r.custodyCopy, 50)}`] : []),
  ];
  textBox(ui, { top: 0, height: '100%-7', content: lines.join('\n') });
  textBox(ui, { top: '100%-7', height: 7, label: 'signing key fingerprint: copy onto the custody form', content: `\n  ${spacedFingerprint(r.fingerprint)}\n` });
  ui.screen.render();
  const k = await waitKey(ui, appliance ? ['c', 'n', 'q', 'p'] : ['c', 'n', 'q']);
  return k === 'n' ? 'again' : k === 'p' ? 'poweroff' : k === 'c' ? 'copy' : 'quit';
}
