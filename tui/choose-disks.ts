// Choosing the source and the destinations from the live disk list.
import blessed from 'blessed';
import type { Disk } from '../appliance/disk/inventory.js';
import { findFileSystems, mountDestination, unmountDestination, type MountedDestination } from '../appliance/disk/destination-mount.js';
import { humanSize } from '../appliance/format.js';
import { FAT_MAX_FILE, RECORD_RESERVE } from '../appliance/imaging/write/preflight.js';
import { safeText } from '../appliance/sanitize.js';
import { DISK_HEADER, diskDetail, diskRow } from './disk-rows.js';
import type { DiskWatch } from './disk-watch.js';
import { WriteBlockGuardian } from '../appliance/writeblock/guardian.js';
import { askText, setText, textBox, waitKey, type Ui } from './ui.js';
import { imageBytesIn, journalFits, unfinishedIn } from './resume-screen.js';

/**
 * A disk list that follows the watch (hot-plugged disks appear, vanished ones
 * go, RO/RW marks update) and resolves with the disk under the cursor on
 * Enter, or null on Esc / q.
 */
/** One line of the 78-column list area, display-safe, cut to `w` columns. */
function cut(s: string, w = 76): string {
  const t = safeText(s, 200);
  return t.length > w ? `${t.slice(0, w - 1)}~` : t;
}

function pickDisk(
  ui: Ui,
  watch: DiskWatch,
  o: { title: string; help: string; sourceName: string | null; note: (d: Disk) => string; keys?: string[] },
): Promise<{ disk: Disk; key: string } | null> {
  ui.page(o.title, o.help);
  blessed.box({ parent: ui.body, top: 0, left: 1, width: '100%-2', height: 1, content: DISK_HEADER, tags: false });
  const list = blessed.list({
    parent: ui.body,
    top: 1,
    left: 1,
    width: '100%-2',
    height: '50%-1',
    keys: true,
    vi: false,
    tags: false,
    style: { selected: { inverse: true } },
  });
  const detail = textBox(ui, { top: '50%', height: '50%', label: 'details' });
  // What hides disks (a controller without a driver, RAID/VMD mode) stands between the list and the details, in red.
  const hidden = blessed.box({ parent: ui.body, left: 1, width: '100%-2', height: 0, tags: false, style: { fg: 'red', bold: true } });
  const showHidden = () => {
    // What hides disks comes first; then what a drive hides or says of itself (a hidden area, a lock, encryption),
    // one line per finding while they fit, else one line naming the disks (their details say what).
    const storage = watch.storage.warnings.map((w) => `! ${w.short}`);
    const found = watch.disks
      .map((d) => ({ name: d.name, lines: watch.driveFindings(d).map((w) => cut(`! ${d.name}: ${w.message}`)) }))
      .filter((x) => x.lines.length > 0);
    const each = found.flatMap((x) => x.lines);
    const kept = storage.length > 2 ? [...storage.slice(0, 1), `! and ${storage.length - 1} more controller warnings (see custos disks)`] : storage;
    const room = 3 - kept.length;
    const drives = each.length <= room ? each : room > 0 ? [cut(`! warnings on ${found.map((x) => x.name).join(', ')}: see the details`)] : [];
    const shown = [...kept, ...drives];
    list.height = `50%-${1 + shown.length}`;
    hidden.top = `50%-${shown.length}`;
    hidden.height = shown.length;
    hidden.setContent(shown.join('\n'));
  };
  let names: string[] = [];
  const hasFs = (d: Disk) => {
    const f = watch.fileSystems(d);
    return f === null ? null : f.length > 0;
  };
  const fsLine = (d: Disk) => {
    const f = watch.fileSystems(d);
    return f === null
      ? 'file systems: probing'
      : `file systems: ${f.length ? f.map((x) => `${x.device.replace('/dev/', '')} ${x.fsType}`).join(', ') : 'none custos writes to'}`;
  };
  // The drive's own lines last, indented under the rest: what to do with the disk stays in view in a small panel.
  const details = (d: Disk) => [diskDetail(d), fsLine(d), o.note(d), ...watch.driveLines(d).map((l) => `  ${cut(l, 74)}`)].join('\n');
  const draw = () => {
    const selected = names[(list as unknown as { selected: number }).selected];
    names = watch.disks.map((d) => d.name);
    showHidden();
    list.setItems(watch.disks.map((d) => diskRow(d, o.sourceName, hasFs(d))));
    const at = Math.max(0, selected ? names.indexOf(selected) : 0);
    list.select(at);
    const d = watch.disks[at];
    setText(detail, d ? details(d) : 'no disks');
    ui.screen.render();
  };
  watch.on('change', draw);
  list.on('select item', () => {
    const d = watch.disks[(list as unknown as { selected: number }).selected];
    if (d) setText(detail, details(d));
    ui.screen.render();
  });
  draw();
  list.focus();
  return waitKey(ui, ['enter', 'escape', 'q', ...(o.keys ?? [])]).then((k) => {
    watch.off('change', draw);
    if (k === 'escape' || k === 'q') return null;
    const disk = watch.disks[(list as unknown as { selected: number }).selected];
    return disk ? { disk, key: k } : null;
  });
}

async function notice(ui: Ui, title: string, text: string): Promise<void> {
  ui.page(title, 'Enter: back');
  textBox(ui, { top: 0, height: '100%', content: text });
  ui.screen.render();
  await waitKey(ui, ['enter', 'escape']);
}

/** The source disk, and whether the examiner asked for a VM disk file on it (v) rather than the disk itself. */
export async function chooseSource(ui: Ui, watch: DiskWatch): Promise<{ disk: Disk; vmFiles: boolean } | null> {
  for (;;) {
    const picked = await pickDisk(ui, watch, {
      title: 'choose the SOURCE disk (every disk is write-blocked)',
      help: 'Up/Down: move  Enter: image this disk  v: a VM disk file on it  q: quit',
      sourceName: null,
      note: (x) =>
        x.roles.length ? `cannot be a source: ${x.roles.join(', ')}` : 'Enter: acquire this disk  v: open it read-only and image a VM disk file on it',
      keys: ['v'],
    });
    if (!picked) return null;
    const d = picked.disk;
    if (d.roles.includes('boot-medium') || d.roles.includes('running-system')) {
      await notice(ui, 'refused', `${d.name} is the ${d.roles.includes('boot-medium') ? 'boot medium' : 'running system'}; it cannot be acquired from here.`);
      continue;
    }
    return { disk: d, vmFiles: picked.key === 'v' };
  }
}

/**
 * A drive that refuses reads (ATA security locked) is imaged only after the
 * examiner types LOCKED: the image would hold fill, not data. True when it is
 * 'confirmed' after that, 'not-locked', or 'back' when the examiner goes back.
 */
export async function confirmLockedSource(ui: Ui, d: Disk): Promise<'confirmed' | 'not-locked' | 'back'> {
  const { probeDrive } = await import('../appliance/disk/drive-probe.js');
  const { driveCoverage } = await import('../appliance/disk/drive-coverage.js');
  const locked = driveCoverage(await probeDrive(d)).locked;
  if (!locked) return 'not-locked';
  for (;;) {
    ui.page(`${d.name} is LOCKED`, 'type, then Enter: confirm  Esc: back');
    textBox(ui, {
      top: 0,
      height: 8,
      content: `${d.name}: ${locked.toUpperCase()}.\nThe drive refuses every read until it is unlocked with its password: an image made now holds fill bytes, not data, and its unreadable ranges are recorded as locked.\nType LOCKED to image it anyway (the record says so).`,
    });
    const typed = await askText(ui, { top: 8, label: `LOCKED to image ${d.name} anyway` });
    if (typed === null) return 'back';
    if (typed.trim() === 'LOCKED') return 'confirmed';
  }
}

/** Why a disk may not be written to, or null if it may. */
export function writeRefusal(d: Disk, source: Disk, chosen: Pick<MountedDestination, 'device'>[]): string | null {
  if (d.name === source.name) return `${d.name} is the source: nothing is ever written to the disk the image comes from.`;
  if (d.roles.includes('boot-medium')) return `${d.name} is the boot medium.`;
  if (d.roles.includes('running-system')) return `${d.name} holds the running system.`;
  // Exact names: loop1 is not loop10, sda is not sdaa.
  const devices = new Set([d.devicePath, ...d.partitions.map((p) => p.devicePath)]);
  if (chosen.some((m) => devices.has(m.device))) return `${d.name} is already in use for this acquisition.`;
  return null;
}

/**
 * Picks a disk to write to (a destination, or the custody USB), makes it
 * writable after a typed confirmation and mounts its file system; null when
 * the examiner goes back.
 */
export async function chooseWritableDisk(
  ui: Ui,
  watch: DiskWatch,
  source: Disk,
  chosen: MountedDestination[],
  o: { title: string; help: string },
): Promise<MountedDestination | null> {
  for (;;) {
    const d = (
      await pickDisk(ui, watch, {
        title: o.title,
        help: o.help,
        sourceName: source.name,
        note: (x) => writeRefusal(x, source, chosen) ?? 'Enter: make writable and use it',
      })
    )?.disk;
    if (!d) return null;
    const why = writeRefusal(d, source, chosen);
    if (why) {
      await notice(ui, 'refused', why);
      continue;
    }
    // Not the list's ro flag: a drive plugged in a moment ago may not be write-blocked yet, and is not released.
    if (d.readOnly || !watch.guardian.isReleased(d)) {
      const expected = WriteBlockGuardian.confirmationWhat(d);
      const shared = (d.warnings.find((w) => w.code === 'twin')?.message ?? `shared with ${d.twins.join(', ')}`).replace(/:.*$/, '');
      const twin = d.twins.length > 0 ? `\nTWIN: ${shared}; this is ${d.name}, ${humanSize(d.sizeBytes)}.` : '';
      ui.page(`make ${d.name} writable`, 'type, then Enter: confirm  Esc: back');
      textBox(ui, {
        top: 0,
        height: 8,
        content: `${d.name}: model ${d.model?.text || '-'}, serial ${d.serial?.text || '-'}\nstable id ${d.stableId}${twin}\n\nThis disk will be made WRITABLE and its file system mounted.\nType its ${expected} exactly to confirm.`,
      });
      const typed = await askText(ui, { top: 8, label: `${d.twins.length > 0 ? `name and ${d.serial ? 'serial' : 'stable id'}` : expected} of ${d.name}` });
      if (typed === null) continue;
      try {
        // Exactly the attachment shown: a disk swapped in under the same name meanwhile is refused.
        watch.guardian.release(d.name, typed, d.attachment);
        watch.save();
      } catch (e) {
        // What was typed is shown back: a slip of the keyboard is then plain to see.
        await notice(ui, 'not released', `${safeText(e instanceof Error ? e.message : String(e), 300)}\n\nyou typed: "${safeText(typed, 60)}"`);
        continue;
      }
    }
    const fss = await findFileSystems(watch.byName(d.name) ?? d);
    const fs = fss[0];
    if (!fs) {
      await notice(ui, 'no file system', `${d.name} has no file system custos can write to (ext4, xfs, exfat, vfat, ntfs). Format it on a lab machine first.`);
      continue;
    }
    let m: MountedDestination;
    try {
      m = await mountDestination(fs);
    } catch (e) {
      await notice(ui, 'cannot mount', safeText(e instanceof Error ? e.message : String(e), 300));
      continue;
    }
    return m;
  }
}

export interface DestinationChoice {
  mounts: MountedDestination[];
  /** FAT cannot hold a file of 4 GiB or more: the image must be split. */
  needsSplit: boolean;
}

/**
 * The destinations for an image of `source`, or of `image` (a VM disk file on the source drive, whose
 * size is the virtual disk's, not the drive's).
 */
export async function chooseDestinations(
  ui: Ui,
  watch: DiskWatch,
  source: Disk,
  image: { name: string; sizeBytes: number; isDisk: boolean } = { name: source.name, sizeBytes: source.sizeBytes, isDisk: true },
): Promise<DestinationChoice | null> {
  // The same rules preflight applies before the first byte is read.
  // A drive holding an unfinished acquisition of this disk needs room only for the rest.
  const unfinished = (m: MountedDestination) => {
    const j = image.isDisk ? unfinishedIn(m.dir) : null;
    return j && journalFits(j, source) ? j : null;
  };
  const fits = (m: MountedDestination) => {
    const j = unfinished(m);
    return m.freeBytes >= image.sizeBytes - (j ? imageBytesIn(m.dir, j) : 0) + RECORD_RESERVE;
  };
  const mustSplit = (m: MountedDestination) => m.fsType === 'vfat' && image.sizeBytes > FAT_MAX_FILE;
  const choice = (mounts: MountedDestination[]): DestinationChoice => ({ mounts, needsSplit: mounts.some(mustSplit) });
  const mounts: MountedDestination[] = [];
  for (;;) {
    const m = await chooseWritableDisk(ui, watch, source, mounts, {
      title: `choose destination ${mounts.length + 1} for ${safeText(image.name, 40)} (${humanSize(image.sizeBytes)})`,
      help: 'Up/Down: move  Enter: write the image here  Esc: back',
    });
    if (!m) return mounts.length > 0 ? choice(mounts) : null;
    mounts.push(m);
    ui.page('destination ready', mounts.length < 2 ? 'Enter: continue  a: add a second destination' : 'Enter: continue');
    textBox(ui, {
      top: 0,
      height: '100%',
      content: mounts
        .map((x) => {
          const j = unfinished(x);
          const resume = j
            ? `\n  holds an unfinished acquisition of this disk, ${((j.position / source.sizeBytes) * 100).toFixed(1)}% done:\n  it will be offered for resume`
            : '';
          return `${x.device} (${x.fsType}) mounted at ${safeText(x.dir)}\n  free ${humanSize(x.freeBytes)}; image ${humanSize(image.sizeBytes)}: ${fits(x) ? 'fits' : 'DOES NOT FIT'}${mustSplit(x) ? '\n  FAT: the image will be split into 4000 MiB files' : ''}${resume}`;
        })
        .join('\n'),
    });
    ui.screen.render();
    if (!fits(m)) {
      await waitKey(ui, ['enter', 'escape']);
      await unmountDestination(m).catch(() => undefined);
      mounts.pop();
      continue;
    }
    const k = await waitKey(ui, mounts.length < 2 ? ['enter', 'a'] : ['enter']);
    if (k === 'enter') return choice(mounts);
  }
}
