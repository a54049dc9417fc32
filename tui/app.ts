// custos tui: one guided path from "which disk?" to "record written, safe to
// power off". It only renders and asks; the appliance core does the work.
import { safeText } from '../appliance/sanitize.js';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { CUSTODY_FILES } from '../appliance/custody/custody-session.js';
import path from 'node:path';
import { stateDir } from '../appliance/writeblock/guardian-state.js';
import { powerOffNow } from '../appliance/power.js';
import type { Disk } from '../appliance/disk/inventory.js';
import { unmountDestination, type MountedDestination } from '../appliance/disk/destination-mount.js';
import { acquireSettings } from '../appliance/imaging/settings.js';
import { DEFAULT_EWF_SETTINGS } from '../appliance/imaging/ewf/ewf-plan.js';
import { chooseDestinations, chooseSource, chooseWritableDisk, confirmLockedSource } from './choose-disks.js';
import { askDetails } from './details-screen.js';
import { DiskWatch } from './disk-watch.js';
import { askOptions } from './options-screen.js';
import { offerResume } from './resume-screen.js';
import { journalCase } from '../appliance/imaging/resume/journal.js';
import { acquisitionScreen, confirmSummary, resultScreen, type NextStep } from './run-screens.js';
import { createUi, type Ui } from './ui.js';
import { bootStamps, disksSettled } from './appliance-boot.js';
import { chooseVmFile, type VirtualSourceChoice } from './vm-files-screen.js';
import { unmountEvidence } from '../appliance/vdisk/evidence-mount.js';

export interface TuiOptions {
  /** Only these disks (kernel names) are shown and guarded; all when empty. */
  only: string[];
  /** On the appliance: offer power off. */
  appliance: boolean;
  /** How often the resume journal is brought up to date (default 10 s). */
  journalIntervalMs?: number;
}

async function release(mounts: MountedDestination[]): Promise<void> {
  for (const m of mounts) await unmountDestination(m).catch(() => undefined);
}

/** A new folder on the custody USB for this acquisition's record: custos-records/<UTC time>. */
function recordFolder(usb: string): string {
  const dir = path.join(usb, 'custos-records', new Date().toISOString().replace(/[:.]/g, '-'));
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The signed record files, as written beside the image, copied byte for byte. */
function copyRecord(from: string, to: string): void {
  for (const f of CUSTODY_FILES) if (existsSync(path.join(from, f))) copyFileSync(path.join(from, f), path.join(to, f));
}

async function oneAcquisition(ui: Ui, watch: DiskWatch, o: TuiOptions): Promise<NextStep> {
  const picked = await chooseSource(ui, watch);
  if (!picked) return 'quit';
  // A VM disk file on the chosen drive: the drive is opened read-only for it, and closed again whatever happens.
  const vm = picked.vmFiles ? await chooseVmFile(ui, watch, picked.disk) : null;
  if (picked.vmFiles && !vm) return 'again';
  try {
    return await acquireFrom(ui, watch, o, picked.disk, vm);
  } finally {
    if (vm) await unmountEvidence(vm.mount).catch(() => undefined);
  }
}

async function acquireFrom(ui: Ui, watch: DiskWatch, o: TuiOptions, source: Disk, vm: VirtualSourceChoice | null): Promise<NextStep> {
  const appliance = o.appliance;
  // The drive holding VM files is not imaged: a lock on it is not the VM disk's.
  const locked = vm ? 'not-locked' : await confirmLockedSource(ui, source);
  if (locked === 'back') return 'again';
  const dest = await chooseDestinations(ui, watch, source, vm ? { name: path.basename(vm.file), sizeBytes: vm.virtualSize, isDisk: false } : undefined);
  if (!dest) return 'again';
  // A virtual disk is resumed with custos acquire --resume DIR --source FILE; the TUI offers resumes of disks.
  const resume = vm ? null : await offerResume(ui, source, dest.mounts);
  if (resume === 'back') {
    await release(dest.mounts);
    return 'again';
  }
  const details = await askDetails(
    ui,
    () =>
      chooseWritableDisk(ui, watch, source, dest.mounts, {
        title: 'choose the custody USB (keys, and a copy of the record)',
        help: 'Up/Down: move  Enter: use this disk  Esc: back',
      }),
    resume ? journalCase(resume.journal) : null,
  );
  const mounts = details?.custodyUsb ? [...dest.mounts, details.custodyUsb] : [...dest.mounts];
  // A resumed acquisition keeps its settings; the resume screen was its confirmation.
  // A drive whose SMART or health log flags it gets fast-first proposed (switched on, said why).
  const health = watch.drive(source)?.health;
  const ailing = health && health.flags.length > 0 ? health.flags.join(', ') : null;
  const options = details && !resume ? await askOptions(ui, dest.needsSplit, ailing ? safeText(ailing, 200) : null) : null;
  if (!details || (!resume && (!options || !(await confirmSummary(ui, source, dest.mounts, details, options, vm))))) {
    await release(mounts);
    return 'again';
  }
  const custodyCopy = details.custodyUsb ? recordFolder(details.custodyUsb.dir) : null;
  const host = import('../appliance/host-identity.js').then((m) => m.hostIdentity(stateDir())).catch(() => null);
  // The engine loads when it is first needed: loading it before the first screen delayed the UI by seconds under TCG.
  const { runAcquisition } = await import('../appliance/run-acquisition.js');
  const { runVirtualAcquisition } = await import('../appliance/run-virtual-acquisition.js');
  const common = (sinks: Parameters<Parameters<typeof acquisitionScreen>[2]>[0]) => ({
    destinations: dest.mounts.map((m) => m.dir),
    settings: resume
      ? resume.journal.settings
      : // FAT-safe split files; the hashes, format, fast-first and verify as chosen on the options screen.
        acquireSettings({
          format: options?.format ?? 'raw',
          splitSize: 4000 * 1024 * 1024,
          hashes: options?.hashes ?? [],
          fastFirst: options?.fastFirst ?? false,
          verify: options?.verify ?? false,
          ...(options?.format === 'e01' ? { ewf: { ...DEFAULT_EWF_SETTINGS, compression: options.compression } } : {}),
        }),
    ...(resume ? { resume } : {}),
    ...(o.journalIntervalMs ? { journalIntervalMs: o.journalIntervalMs } : {}),
    case: details.case,
    examinerTime: details.examinerTime,
    signer: details.signer,
    host,
    custodyCopy,
    // Start-up in the record runs from the start key, not from when the UI came up.
    requestedAtMs: performance.now(),
    ...sinks,
  });
  const result = await acquisitionScreen(ui, vm ? path.basename(vm.file) : source.name, (sinks) =>
    vm
      ? runVirtualAcquisition({ ...common(sinks), file: vm.file })
      : runAcquisition({
          ...common(sinks),
          disk: source,
          guardian: watch.guardian,
          onSourceHeld: () => watch.save(),
          // Typed on the locked-drive screen; runAcquisition probes again and refuses a locked drive without it.
          confirmLocked: locked === 'confirmed',
        }),
  );
  let copies = custodyCopy;
  let next = await resultScreen(
    ui,
    { ...result, fingerprint: details.signer.fingerprint, custodyCopy: copies, lockedDrive: locked === 'confirmed' },
    appliance,
  );
  while (next === 'copy') {
    const usb = await chooseWritableDisk(ui, watch, source, mounts, {
      title: 'choose the custody USB for a copy of the record',
      help: 'Up/Down: move  Enter: copy the record here  Esc: back',
    });
    if (usb) {
      mounts.push(usb);
      copies = recordFolder(usb.dir);
      copyRecord(dest.mounts[0]?.dir ?? '', copies);
    }
    next = await resultScreen(ui, { ...result, fingerprint: details.signer.fingerprint, custodyCopy: copies, lockedDrive: locked === 'confirmed' }, appliance);
  }
  await release(mounts);
  return next;
}

export async function runTui(o: TuiOptions): Promise<number> {
  const stamp = bootStamps(o.appliance);
  stamp('ui-main');
  const only = new Set(o.only.map((d) => d.replace(/^\/dev\//, '')));
  const watch = new DiskWatch((d) => only.size === 0 || only.has(d.name));
  const ui = createUi();
  stamp('ui-terminal');
  ui.screen.once('render', () => stamp('ui-screen'));
  // Last resort: an error nothing caught must not vanish with the screen (on the appliance init starts the UI again).
  const crashed = (e: unknown) => {
    ui.destroy();
    process.stderr.write(
      `\ncustos tui stopped on an internal error; the UI starts again. ${safeText(e instanceof Error ? (e.stack ?? e.message) : String(e), 2000)}\n`,
    );
    setTimeout(() => process.exit(70), 5000);
  };
  process.once('uncaughtException', crashed);
  process.once('unhandledRejection', crashed);
  let next: NextStep = 'again';
  try {
    await disksSettled(o.appliance);
    stamp('ui-settled');
    watch.start();
    stamp('ui-disks');
    while (next === 'again') next = await oneAcquisition(ui, watch, o);
  } finally {
    watch.stop();
    ui.destroy();
  }
  // The destinations are unmounted already.
  if (next === 'poweroff') await powerOffNow();
  return 0;
}
