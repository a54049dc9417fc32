// Stage 2, held under write-block: every disk read-only on sight, proven, and
// re-checked; released only on the examiner's explicit confirmation.
import { EventEmitter } from 'node:events';
import { Sysfs } from '../disk/sysfs.js';
import { readCounters, writesBetween, type IoCounters } from '../disk/kernel-stat.js';
import { listDisks, readDiskByName, type Disk, type InventoryOptions } from '../disk/inventory.js';
import { blockFingerprint } from '../disk/block-fingerprint.js';
import { WriteBlockError, DeviceError, CustosError } from '../errors.js';
import { resolveDevice, requireWholeDisk } from '../disk/resolve-device.js';
import { disksUnder } from '../disk/system-disks.js';
import { ReadOnlyFlags } from './read-only-flags.js';
import { MemoryStateStore, type CounterSnapshot, type GuardianEvent, type GuardianEventType, type GuardianState, type StateStore } from './guardian-state.js';

export type { GuardianEvent, GuardianEventType, GuardianState, CounterSnapshot, ProtectedRecord } from './guardian-state.js';

export interface GuardianOptions extends InventoryOptions {
  /** Which disks protectAll() and the watch loop manage; default all. */
  include?: (disk: Disk) => boolean;
  intervalMs?: number;
  /** Where decisions are kept: shared with other custos processes (FileStateStore) or this one's only (default). */
  store?: StateStore;
  now?: () => Date;
}

export interface DeviceStatus {
  name: string;
  devicePath: string;
  attachment: string;
  stableId: string;
  readOnly: boolean;
  ioctlReadOnly: boolean | null;
  partitions: { name: string; readOnly: boolean }[];
  protectedAt: string | null;
  /** Protected by custos and every flag (disk and partitions) still read-only. */
  intact: boolean;
  released: boolean;
  source: boolean;
  roles: string[];
  counters: CounterSnapshot;
  /** Writes between protection and now, per the kernel's counters; null when not protected by custos. */
  sinceProtect: ReturnType<typeof writesBetween> | null;
}

/**
 * Holds disks read-only with BLKROSET, proves it with BLKROGET, sysfs `ro` and
 * the kernel's write counters, and keeps it so: every pass re-reads the flags
 * (hotplug, partition rescans and revalidation can reset them) and protects
 * new devices on sight. Every action is an event.
 */
export class WriteBlockGuardian extends EventEmitter<{ event: [GuardianEvent] }> {
  readonly sysfs: Sysfs;
  private readonly opts: GuardianOptions;
  private readonly store: StateStore;
  /** Disks seen, by kernel name: a name that comes back with another attachment is another device. */
  private readonly known = new Map<string, { attachment: string; stableId: string; partitions: Set<string> }>();
  private readonly devRoot: string;
  private readonly flags: ReadOnlyFlags;
  private timer: NodeJS.Timeout | null = null;
  private checking = false;
  /** The devices as they stood before the last full pass that left nothing to retry; null: the next pass reads everything. */
  private lastStructure: string | null = null;
  readonly log: GuardianEvent[] = [];

  constructor(options: GuardianOptions = {}) {
    super();
    this.opts = options;
    this.sysfs = new Sysfs(options.sysfsRoot ?? '/sys');
    this.devRoot = options.devRoot ?? '/dev';
    this.flags = new ReadOnlyFlags(this.devRoot, this.sysfs);
    this.store = options.store ?? new MemoryStateStore();
  }

  private get state(): GuardianState {
    return this.store.read();
  }

  private now(): string {
    return (this.opts.now?.() ?? new Date()).toISOString();
  }

  private emitEvent(type: GuardianEventType, disk: { name: string; attachment: string; stableId: string }, detail: string, device = disk.name): GuardianEvent {
    const ev: GuardianEvent = { time: this.now(), type, device, attachment: disk.attachment, stableId: disk.stableId, detail };
    this.log.push(ev);
    this.emit('event', ev);
    return ev;
  }

  snapshotState(): GuardianState {
    return structuredClone(this.state);
  }

  private inventory(): Disk[] {
    return listDisks({ ...this.opts, probe: false });
  }

  /** The disk an argument names now; with `attachment`, it must still be that attachment (not another device under the name). */
  private diskByArg(arg: string, attachment?: string): Disk {
    const name = requireWholeDisk(arg, resolveDevice(arg, this.sysfs, this.devRoot));
    const disk = readDiskByName(name, { ...this.opts, probe: false });
    if (!disk) throw new DeviceError('ENOENT', arg, `${name}: no such disk`);
    if (attachment !== undefined && disk.attachment !== attachment) {
      throw new WriteBlockError(
        'EATTACHMENT',
        name,
        `${name} is now another attachment (${disk.attachment}, not ${attachment}): the disk shown was unplugged or replaced; nothing changed`,
      );
    }
    return disk;
  }

  counters(disk: Disk): CounterSnapshot {
    const partitions: Record<string, IoCounters | null> = {};
    for (const p of disk.partitions) partitions[p.name] = readCounters(this.sysfs, disk.name, p.name);
    return { time: this.now(), disk: readCounters(this.sysfs, disk.name), partitions };
  }

  /** Records a disk as seen, so the watch can tell new devices and partitions from known ones. */
  private remember(disk: Disk): void {
    this.known.set(disk.name, { attachment: disk.attachment, stableId: disk.stableId, partitions: new Set(disk.partitions.map((p) => p.name)) });
  }

  protect(arg: string): Disk {
    const disk = this.diskByArg(arg);
    return this.protectDisk(disk);
  }

  private protectDisk(disk: Disk, reason = 'BLKROSET on disk and partitions, confirmed by BLKROGET and sysfs ro'): Disk {
    if (disk.roles.includes('running-system')) {
      throw new WriteBlockError(
        'ESYSTEMDISK',
        disk.name,
        `${disk.name} holds the running system (${
          disk.mounts
            .concat(disk.partitions.flatMap((p) => p.mounts))
            .map((m) => m.mountPoint)
            .join(', ') || 'swap'
        }); custos does not write-block it`,
      );
    }
    this.flags.holdDisk(disk);
    const now = this.now();
    const counters = this.counters(disk);
    this.store.update((s) => {
      const previous = s.protected[disk.attachment];
      s.protected[disk.attachment] = { name: disk.name, stableId: disk.stableId, at: previous?.at ?? now, atProtect: previous?.atProtect ?? counters };
      delete s.released[disk.attachment];
    });
    this.remember(disk);
    const parts = disk.partitions.map((p) => p.name);
    this.emitEvent('protected', disk, `${reason}${parts.length ? `; partitions ${parts.join(', ')}` : ''}`);
    return disk;
  }

  /** Limits which disks protectAll() and the watch loop manage. */
  setScope(include: (disk: Disk) => boolean): void {
    this.opts.include = include;
    this.lastStructure = null;
  }

  private included(disk: Disk): boolean {
    return this.opts.include ? this.opts.include(disk) : true;
  }

  /** Protects every included disk that was not explicitly released; the running system is skipped with an event. */
  protectAll(): Disk[] {
    const done: Disk[] = [];
    for (const disk of this.inventory()) {
      if (!this.included(disk)) continue;
      if (this.state.released[disk.attachment]) {
        this.remember(disk);
        continue;
      }
      if (disk.roles.includes('running-system')) {
        this.remember(disk);
        this.emitEvent('skipped', disk, 'holds the running system; not write-blocked');
        continue;
      }
      try {
        done.push(this.protectDisk(disk));
      } catch (e) {
        this.emitEvent('check-error', disk, e instanceof Error ? e.message : String(e));
      }
    }
    return done;
  }

  /** Marks a protected disk as an acquisition source: it can then never be released. */
  holdAsSource(arg: string, attachment?: string): Disk {
    const disk = this.diskByArg(arg, attachment);
    if (!this.state.protected[disk.attachment] || !disk.readOnly) this.protectDisk(disk);
    const at = this.now();
    this.store.update((s) => {
      s.sources[disk.attachment] = { name: disk.name, stableId: disk.stableId, at };
    });
    this.remember(disk);
    this.emitEvent('source-held', disk, 'held as acquisition source; release refused from now on');
    return disk;
  }

  /** No longer the source (a disk taken for the returning source and then refused by content); it stays write-blocked. */
  dropSource(disk: Disk): void {
    this.store.update((s) => {
      delete s.sources[disk.attachment];
    });
  }

  /**
   * The text an examiner must type to release a disk: its serial, or its
   * stable id when it has none. A twin (another attached disk has the same
   * serial) also needs its kernel name first: `sdc SERIAL`.
   */
  static confirmationFor(disk: Disk): string {
    const id = disk.serial ? disk.serial.text : disk.stableId;
    return disk.twins.length > 0 ? `${disk.name} ${id}` : id;
  }

  /** How the confirmation is described to the examiner. */
  static confirmationWhat(disk: Disk): string {
    const id = disk.serial ? 'serial number' : 'stable id';
    return disk.twins.length > 0 ? `kernel name, a space and its ${id}` : id;
  }

  private sourceRelation(disk: Disk): string | null {
    const all = this.inventory();
    for (const src of all.filter((d) => this.state.sources[d.attachment])) {
      if (src.attachment === disk.attachment) return `${disk.name} is the acquisition source`;
      // A device built on the source (dm, md) contains it; a disk the source is built on carries it.
      if (disksUnder(this.sysfs, disk.majMin).includes(src.name)) return `${disk.name} is built on the acquisition source ${src.name}`;
      if (disksUnder(this.sysfs, src.majMin).includes(disk.name)) return `the acquisition source ${src.name} is built on ${disk.name}`;
    }
    return null;
  }

  /** Whether `disk` was made writable by release() and has not gone away since. */
  isReleased(disk: Disk): boolean {
    return Boolean(this.state.released[disk.attachment]);
  }

  /**
   * Makes a chosen destination writable. Refused for the source (or anything
   * built on it), the boot medium and the running system, and unless the
   * confirmation names the device.
   */
  release(arg: string, confirmation: string, attachment?: string): Disk {
    const disk = this.diskByArg(arg, attachment);
    const related = this.sourceRelation(disk);
    if (related) throw new WriteBlockError('ESOURCE', disk.name, `refusing to release ${disk.name}: ${related}`);
    if (disk.roles.includes('boot-medium')) throw new WriteBlockError('EBOOTMEDIUM', disk.name, `refusing to release ${disk.name}: it is the boot medium`);
    if (disk.roles.includes('running-system'))
      throw new WriteBlockError('ESYSTEMDISK', disk.name, `refusing to release ${disk.name}: it holds the running system`);
    const expected = WriteBlockGuardian.confirmationFor(disk);
    if (confirmation.trim().replace(/\s+/g, ' ') !== expected) {
      const twin = disk.twins.length > 0 ? ` (its serial is shared with ${disk.twins.join(', ')}, so the kernel name comes first: "${disk.name} ...")` : '';
      throw new WriteBlockError(
        'ECONFIRM',
        disk.name,
        `release of ${disk.name} not confirmed: type its ${WriteBlockGuardian.confirmationWhat(disk)} exactly as \`custos disks\` shows it${twin}`,
      );
    }
    // The decision is kept before any flag is cleared: a guardian in another
    // process that then finds this disk writable reads it and leaves it be.
    const previous = this.state.protected[disk.attachment];
    this.store.update((s) => {
      s.released[disk.attachment] = { name: disk.name, stableId: disk.stableId, at: this.now() };
      delete s.protected[disk.attachment];
    });
    // Every flag is cleared before any is checked: a partition reads as
    // read-only while its disk still is (Linux >= 5.12 ORs the two).
    try {
      for (const p of disk.partitions) this.flags.set(p.name, false);
      this.flags.set(disk.name, false);
      this.flags.verify(disk.name, `block/${disk.name}/ro`, false);
      for (const p of disk.partitions) this.flags.verify(p.name, `block/${disk.name}/${p.name}/ro`, false);
    } catch (e) {
      // Half-released is worse than either state: put every flag back.
      this.flags.holdDisk(disk);
      this.store.update((s) => {
        delete s.released[disk.attachment];
        if (previous) s.protected[disk.attachment] = previous;
      });
      throw e;
    }
    this.remember(disk);
    this.emitEvent(
      'released',
      disk,
      `made writable after confirmation (${disk.twins.length > 0 ? 'kernel name and ' : ''}${disk.serial ? 'serial' : 'stable id'} typed); this attachment only`,
    );
    return disk;
  }

  /**
   * One pass of the watch: vanished and new devices, new partitions, and any
   * read-only flag found cleared. Never throws; problems become events.
   */
  check(): GuardianEvent[] {
    const before = this.log.length;
    if (this.checking) return [];
    this.checking = true;
    try {
      // Taken before the disks are read: whatever changes after it shows as a change next time.
      const seen = blockFingerprint(this.opts);
      if (seen.structure === this.lastStructure && this.flagsHeld(seen.readOnly)) return [];
      let failed = false;
      // Gone from the inventory: unplugged, or a detached loop (whose node stays, empty).
      const disks = this.inventory();
      const present = new Map(disks.map((d) => [d.name, d.attachment]));
      for (const [name, k] of [...this.known]) {
        if (present.get(name) !== k.attachment) {
          this.known.delete(name);
          // Every decision was for that attachment only: whatever comes back, under any name, is protected on sight and must be confirmed again.
          const wasReleased = Boolean(this.state.released[k.attachment]);
          this.store.update((s) => {
            delete s.released[k.attachment];
            delete s.protected[k.attachment];
            delete s.sources[k.attachment];
          });
          this.emitEvent(
            'device-vanished',
            { name, attachment: k.attachment, stableId: k.stableId },
            wasReleased ? 'no longer present; its release ends (write-blocked again if it returns)' : 'no longer present',
          );
        }
      }
      for (const disk of disks) {
        try {
          this.checkDisk(disk);
        } catch (e) {
          failed = true;
          this.emitEvent('check-error', disk, e instanceof CustosError || e instanceof Error ? e.message : String(e));
        }
      }
      // A pass that failed somewhere is tried in full again next time.
      this.lastStructure = failed ? null : seen.structure;
    } finally {
      this.checking = false;
    }
    return this.log.slice(before);
  }

  /**
   * Whether every protected disk known, and each of its partitions, still reads
   * read-only: with the devices unchanged, that is all a full pass would check
   * (a flag found cleared, by a reset or another process's release, takes the full pass).
   */
  private flagsHeld(readOnly: Map<string, boolean>): boolean {
    const state = this.state;
    for (const [name, k] of this.known) {
      if (!state.protected[k.attachment] || state.released[k.attachment]) continue;
      if (readOnly.get(name) !== true) return false;
      for (const p of k.partitions) if (readOnly.get(p) !== true) return false;
    }
    return true;
  }

  private checkDisk(disk: Disk): void {
    const k = this.known.get(disk.name);
    if (!k || k.attachment !== disk.attachment) {
      // New: a device never seen, or another attachment under a reused kernel name.
      if (!this.included(disk)) return;
      // Released already only by another custos process that met it first (the UI, `writeblock release`).
      if (this.state.released[disk.attachment] || disk.roles.includes('running-system')) {
        this.remember(disk);
        return;
      }
      this.emitEvent(
        'device-appeared',
        disk,
        `${disk.transport} ${disk.sizeBytes} B${disk.twins.length > 0 ? `; serial shared with ${disk.twins.join(', ')}` : ''}`,
      );
      this.protectDisk(disk, 'protected on sight');
      return;
    }
    if (this.released(disk) || !this.state.protected[disk.attachment]) return;
    if (!disk.readOnly) {
      // Writable: released a moment ago by another process? It keeps its decision before clearing a flag.
      if (this.released(disk, true)) return;
      this.emitEvent('reset-detected', disk, 'sysfs ro is 0 on a protected disk');
      this.flags.holdDisk(disk);
      this.emitEvent('reprotected', disk, 'BLKROSET re-applied and confirmed');
    }
    for (const p of disk.partitions) {
      if (!k.partitions.has(p.name)) {
        this.flags.setAndVerify(p.name, `block/${disk.name}/${p.name}/ro`, true);
        k.partitions.add(p.name);
        this.emitEvent('partition-appeared', disk, `new partition of ${disk.name} set read-only`, p.name);
      } else if (!p.readOnly) {
        if (this.released(disk, true)) return;
        this.emitEvent('reset-detected', disk, `sysfs ro is 0 on partition of ${disk.name}`, p.name);
        this.flags.setAndVerify(p.name, `block/${disk.name}/${p.name}/ro`, true);
        this.emitEvent('reprotected', disk, 'BLKROSET re-applied and confirmed', p.name);
      }
    }
    for (const name of [...k.partitions]) if (!disk.partitions.some((p) => p.name === name)) k.partitions.delete(name);
  }

  /** Whether this attachment is released; `fresh` reads the shared state again first (the store notices another process's change). */
  private released(disk: Disk, fresh = false): boolean {
    return Boolean((fresh ? this.store.read() : this.state).released[disk.attachment]);
  }

  /** Starts the watch loop; the first pass runs at once. */
  start(): void {
    if (this.timer) return;
    this.check();
    this.timer = setInterval(() => this.check(), this.opts.intervalMs ?? 250);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Write-block state and write evidence for the given disks (default: all listed). */
  status(args?: string[]): DeviceStatus[] {
    const disks = args && args.length > 0 ? args.map((a) => this.diskByArg(a)) : this.inventory();
    return disks.map((disk) => {
      const ioctlRo = this.flags.query(disk.name);
      const rec = this.state.protected[disk.attachment];
      const counters = this.counters(disk);
      return {
        name: disk.name,
        devicePath: disk.devicePath,
        attachment: disk.attachment,
        stableId: disk.stableId,
        readOnly: disk.readOnly,
        ioctlReadOnly: ioctlRo,
        partitions: disk.partitions.map((p) => ({ name: p.name, readOnly: p.readOnly })),
        protectedAt: rec?.at ?? null,
        intact: Boolean(rec) && disk.readOnly && ioctlRo !== false && disk.partitions.every((p) => p.readOnly),
        released: Boolean(this.state.released[disk.attachment]),
        source: Boolean(this.state.sources[disk.attachment]),
        roles: disk.roles,
        counters,
        sinceProtect: rec && rec.atProtect.disk && counters.disk ? writesBetween(rec.atProtect.disk, counters.disk) : null,
      };
    });
  }
}
