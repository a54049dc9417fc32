// A virtual machine's disk as the source: the write-blocked drive that holds
// the VM files is opened read-only (appliance/vdisk/evidence-mount.ts), the
// examiner picks the disk file among those found on it, and sees the chain
// custos will read before anything else happens.
import blessed from 'blessed';
import { lstatSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Disk } from '../appliance/disk/inventory.js';
import type { FileSystemProbe } from '../appliance/disk/destination-mount.js';
import { humanSize } from '../appliance/format.js';
import { safeText } from '../appliance/sanitize.js';
import type { EvidenceMount } from '../appliance/vdisk/evidence-mount.js';
import type { DiskWatch } from './disk-watch.js';
import { setText, textBox, waitKey, type Ui } from './ui.js';

/** Names VM disk files go by; VMDK extents (-flat, -sNNN, -fNNN) are read through their descriptor, not picked. */
const VM_FILE = /\.(vmdk|vhd|vhdx|avhdx|qcow2|qcow|vdi)$/i;
const EXTENT = /-(flat|s\d{3}|f\d{3}|delta|sesparse)\.vmdk$/i;
/** A bounded walk: a drive full of files must not hold the screen. */
const MAX_DEPTH = 5;
const MAX_ENTRIES = 20_000;

export interface VmFile {
  /** Path relative to the mount. */
  rel: string;
  sizeBytes: number;
}

/** VM disk files under `root` (regular files only, symlinks not followed), at most MAX_DEPTH folders down. */
export function findVmFiles(root: string): VmFile[] {
  const found: VmFile[] = [];
  let seen = 0;
  const walk = (dir: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return;
    }
    for (const n of names) {
      if (++seen > MAX_ENTRIES) return;
      const p = path.join(dir, n);
      let st;
      try {
        st = lstatSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory() && depth < MAX_DEPTH) walk(p, depth + 1);
      else if (st.isFile() && VM_FILE.test(n) && !EXTENT.test(n)) found.push({ rel: path.relative(root, p), sizeBytes: st.size });
    }
  };
  walk(root, 0);
  return found;
}

async function notice(ui: Ui, title: string, text: string): Promise<void> {
  ui.page(title, 'Enter: back');
  textBox(ui, { top: 0, height: '100%', content: text });
  ui.screen.render();
  await waitKey(ui, ['enter', 'escape']);
}

function pickOne<T>(ui: Ui, o: { title: string; help: string; items: T[]; row: (x: T) => string; detail: (x: T) => string }): Promise<T | null> {
  ui.page(o.title, o.help);
  const list = blessed.list({
    parent: ui.body,
    top: 0,
    left: 1,
    width: '100%-2',
    height: '60%',
    keys: true,
    tags: false,
    style: { selected: { inverse: true } },
    items: o.items.map((x) => safeText(o.row(x), 200).slice(0, 76)),
  });
  const detail = textBox(ui, { top: '60%', height: '40%', label: 'details' });
  const show = () => {
    const x = o.items[(list as unknown as { selected: number }).selected];
    setText(detail, x === undefined ? '' : o.detail(x));
    ui.screen.render();
  };
  list.on('select item', show);
  list.select(0);
  show();
  list.focus();
  return waitKey(ui, ['enter', 'escape']).then((k) => (k === 'enter' ? (o.items[(list as unknown as { selected: number }).selected] ?? null) : null));
}

export interface VirtualSourceChoice {
  file: string;
  mount: EvidenceMount;
  /** The chain in lines, as shown to the examiner before the acquisition. */
  chain: string[];
  virtualSize: number;
}

/**
 * Opens a file system of `drive` read-only, lists the VM disk files on it and
 * shows the chosen file's chain; null (and the drive unmounted) when the
 * examiner goes back or nothing can be opened.
 */
export async function chooseVmFile(ui: Ui, watch: DiskWatch, drive: Disk): Promise<VirtualSourceChoice | null> {
  const { mountEvidenceReadOnly, unmountEvidence, REPLAY_NOTHING } = await import('../appliance/vdisk/evidence-mount.js');
  const fileSystems = (watch.fileSystems(drive) ?? []).filter((f) => f.fsType in REPLAY_NOTHING);
  if (fileSystems.length === 0) {
    await notice(ui, 'no file system', `${drive.name}: no file system custos opens for VM files (${Object.keys(REPLAY_NOTHING).join(', ')}).`);
    return null;
  }
  const fs: FileSystemProbe | null =
    fileSystems.length === 1
      ? (fileSystems[0] ?? null)
      : await pickOne(ui, {
          title: `${drive.name}: which file system holds the VM files?`,
          help: 'Up/Down: move  Enter: open it read-only  Esc: back',
          items: fileSystems,
          row: (f) => `${f.device}  ${f.fsType}  ${f.label ?? ''}`,
          detail: (f) =>
            `${f.device} (${f.fsType}) is mounted read-only with options that replay nothing: ${REPLAY_NOTHING[f.fsType]?.options.join(',') ?? ''}; the drive stays write-blocked.`,
        });
  if (!fs) return null;
  let mount: EvidenceMount;
  try {
    mount = await mountEvidenceReadOnly(fs);
  } catch (e) {
    await notice(ui, 'cannot open', safeText(e instanceof Error ? e.message : String(e), 600));
    return null;
  }
  const files = findVmFiles(mount.dir);
  for (;;) {
    const f =
      files.length === 0
        ? null
        : await pickOne(ui, {
            title: `choose the VM disk file on ${fs.device} (read-only, write-blocked)`,
            help: 'Up/Down: move  Enter: show its chain  Esc: back',
            items: files,
            row: (x) => `${x.rel}  ${humanSize(x.sizeBytes)}`,
            detail: (x) =>
              `${safeText(x.rel, 400)}\n${x.sizeBytes} bytes. The disk it describes is imaged: its snapshot chain is shown next, before anything is read.`,
          });
    if (files.length === 0) await notice(ui, 'no VM files', `${fs.device}: no .vmdk, .vhd, .vhdx, .qcow2 or .vdi file within ${MAX_DEPTH} folders of the top.`);
    if (!f) {
      await unmountEvidence(mount).catch(() => undefined);
      return null;
    }
    const file = path.join(mount.dir, f.rel);
    let chain: { lines: string[]; virtualSize: number };
    try {
      chain = await chainOf(file);
    } catch (e) {
      await notice(ui, 'refused', safeText(e instanceof Error ? e.message : String(e), 600));
      continue;
    }
    ui.page(`the chain of ${safeText(path.basename(f.rel), 60)}`, 'Enter: image this disk  Esc: back');
    textBox(ui, { top: 0, height: '100%', content: chain.lines.join('\n') });
    ui.screen.render();
    if ((await waitKey(ui, ['enter', 'escape'])) === 'enter') return { file, mount, chain: chain.lines, virtualSize: chain.virtualSize };
  }
}

/** The chain as `custos vdisk` prints it: resolved and held to the file's folder, no guest data read. */
async function chainOf(file: string): Promise<{ lines: string[]; virtualSize: number }> {
  const [{ resolveChain }, { ContainerWatch, readerIdentity }, { chainLines }] = await Promise.all([
    import('../appliance/vdisk/container-chain.js'),
    import('../appliance/vdisk/virtual-disk-record.js'),
    import('../appliance/vdisk/chain-text.js'),
  ]);
  const chain = await resolveChain(file);
  const record = new ContainerWatch(chain).record({ given: file, snapshot: null, sha256: [], changed: null, reader: await readerIdentity(chain.reader) });
  const lines = [
    `virtual disk of ${record.virtualSize} bytes (${humanSize(record.virtualSize)}), ${record.layers.length} layer(s), in ${safeText(record.folder, 200)}`,
    ...chainLines(record).map((l) => safeText(l, 300)),
    ...(record.identifiers.length ? [`identifiers: ${record.identifiers.join(', ')}`] : []),
    `read by ${record.reader.program}`,
  ];
  return { lines, virtualSize: record.virtualSize };
}
