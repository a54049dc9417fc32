import { EventEmitter } from 'node:events';
import path from 'node:path';
import { BlockDevice } from './block-device.js';
import { Sysfs } from './sysfs.js';
import { readCounters, writesBetween, type IoCounters } from './kernel-stat.js';
import { listDisks, readDiskByName, type Disk, type InventoryOptions } from './inventory.js';
import { WriteBlockError, DeviceError, CustosError } from './errors.js';
import { resolveDevice, requireWholeDisk } from './resolve-device.js';
import { disksUnder } from './system-disks.js';

export type GuardianEventType =
  | 'protected'
  | 'reset-detected'
  | 'reprotected'
  | 'partition-appeared'
  | 'device-appeared'
  | 'device-vanished'
  | 'skipped'
  | 'released'
  | 'source-held'
  | 'check-error';

export interface GuardianEvent {
  time: string;
  type: GuardianEventType;
  device: string;
  stableId: string;
  detail: string;
}

/** Counters of a disk and each of its partitions at one moment. */
export interface CounterSnapshot {
  time: string;
  disk: IoCounters | null;
  partitions: Record<string, IoCounters | null>;
}

export interface ProtectedRecord {
  name: string;
  protectedAt: string;
  atProtect: CounterSnapshot;
}

/** What survives between CLI invocations (kept in a state file by guardian-state.ts). */
export interface GuardianState {
  protected: Record<string, ProtectedRecord>;
  released: Record<string, { name: string; at: string }>;
  sources: Record<string, { name: string; at: string }>;
}

export function emptyState(): GuardianState {
  return { protected: {}, released: {}, sources: {} };
}

export interface GuardianOptions extends InventoryOptions {
  /** Which disks protectAll() and the watch loop manage; default all. */
  include?: (disk: Disk) => boolean;
  intervalMs?: number;
  state?: GuardianState;
  now?: () => Date;
}

export interface DeviceStatus {
  name: string;
  devicePath: string;
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
  private readonly state: GuardianState;
  private readonly known = new Map<string, { stableId: string; partitions: Set<string> }>();
  private readonly devRoot: string;
  private timer: NodeJS.Timeout | null = null;
  private checking = false;
  readonly log: GuardianEvent[] = [];

  constructor(options: GuardianOptions = {}) {
    super();
    this.opts = options;
    this.sysfs = new Sysfs(options.sysfsRoot ?? '/sys');
    this.devRoot = options.devRoot ?? '/dev';
    this.state = options.state ?? emptyState();
  }

  private now(): string {
    return (this.opts.now?.() ?? new Date()).toISOString();
  }

  private emitEvent(type: GuardianEventType, device: string, stableId: string, detail: string): GuardianEvent {
    const ev: GuardianEvent = { time: this.now(), type, device, stableId, detail };
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

  private diskByArg(arg: string): Disk {
    const name = requireWholeDisk(arg, resolveDevice(arg, this.sysfs, this.devRoot));
    const disk = readDiskByName(name, { ...this.opts, probe: false });
    if (!disk) throw new DeviceError('ENOENT', arg, `${name}: no such disk`);
    return disk;
  }

  counters(disk: Disk): CounterSnapshot {
    const partitions: Record<string, IoCounters | null> = {};
    for (const p of disk.partitions) partitions[p.name] = readCounters(this.sysfs, disk.name, p.name);
    return { time: this.now(), disk: readCounters(this.sysfs, disk.name), partitions };
  }

  /** Records a disk as seen, so the watch can tell new devices and partitions from known ones. */
  private remember(disk: Disk): void {
    this.known.set(disk.name, { stableId: disk.stableId, partitions: new Set(disk.partitions.map((p) => p.name)) });
  }

  private nodeOf(name: string): string {
    return path.join(this.devRoot, name);
  }

  /** BLKROSET on one node. */
  private setFlag(name: string, readOnly: boolean): void {
    const dev = BlockDevice.open(this.nodeOf(name));
    try {
      dev.setReadOnly(readOnly);
    } finally {
      dev.close();
    }
  }

  /** Confirms a node's state by BLKROGET and by sysfs `ro`; both must agree with what was asked. */
  private verifyFlag(name: string, sysfsRo: string, readOnly: boolean): void {
    const dev = BlockDevice.open(this.nodeOf(name));
    let ioctlRo: boolean;
    try {
      ioctlRo = dev.isReadOnly();
    } finally {
      dev.close();
    }
    const sysRo = this.sysfs.readText(sysfsRo);
    if (ioctlRo !== readOnly || sysRo !== (readOnly ? '1' : '0')) {
      const why = !readOnly && sysRo === '1' ? ' (the device may report hardware write-protect)' : '';
      throw new WriteBlockError(
        'EROVERIFY',
        name,
        `${name}: asked for ${readOnly ? 'read-only' : 'read-write'} but BLKROGET says ${ioctlRo ? 'ro' : 'rw'} and sysfs says ${sysRo}${why}`,
      );
    }
  }

  private setAndVerify(name: string, sysfsRo: string, readOnly: boolean): void {
    this.setFlag(name, readOnly);
    this.verifyFlag(name, sysfsRo, readOnly);
  }

  private applyReadOnly(disk: Disk): void {
    // The whole disk first: since Linux 5.12 its flag covers every partition at once.
    this.setAndVerify(disk.name, `block/${disk.name}/ro`, true);
    for (const p of disk.partitions) this.setAndVerify(p.name, `block/${disk.name}/${p.name}/ro`, true);
  }

  /** Protects one whole disk and all its partitions. */
  protect(arg: string): Disk {
    const disk = this.diskByArg(arg);
    return this.protectDisk(disk);
  }

  private protectDisk(disk: Disk, reason = 'BLKROSET on disk and partitions, confirmed by BLKROGET and sysfs ro'): Disk {
    if (disk.roles.includes('running-system')) {
      throw new WriteBlockError('ESYSTEMDISK', disk.name, `${disk.name} holds the running system (${disk.mounts.concat(disk.partitions.flatMap((p) => p.mounts)).map((m) => m.mountPoint).join(', ') || 'swap'}); custos does not write-block it`);
    }
    this.applyReadOnly(disk);
    const now = this.now();
    const previous = this.state.protected[disk.stableId];
    this.state.protected[disk.stableId] = {
      name: disk.name,
      protectedAt: previous?.protectedAt ?? now,
      atProtect: previous?.atProtect ?? this.counters(disk),
    };
    delete this.state.released[disk.stableId];
    this.remember(disk);
    const parts = disk.partitions.map((p) => p.name);
    this.emitEvent('protected', disk.name, disk.stableId, `${reason}${parts.length ? `; partitions ${parts.join(', ')}` : ''}`);
    return disk;
  }

  /** Limits which disks protectAll() and the watch loop manage. */
  setScope(include: (disk: Disk) => boolean): void {
    this.opts.include = include;
  }

  private included(disk: Disk): boolean {
    return this.opts.include ? this.opts.include(disk) : true;
  }

  /** Protects every included disk that was not explicitly released; the running system is skipped with an event. */
  protectAll(): Disk[] {
    const done: Disk[] = [];
    for (const disk of this.inventory()) {
      if (!this.included(disk)) continue;
      if (this.state.released[disk.stableId]) {
        this.remember(disk);
        continue;
      }
      if (disk.roles.includes('running-system')) {
        this.remember(disk);
        this.emitEvent('skipped', disk.name, disk.stableId, 'holds the running system; not write-blocked');
        continue;
      }
      try {
        done.push(this.protectDisk(disk));
      } catch (e) {
        this.emitEvent('check-error', disk.name, disk.stableId, e instanceof Error ? e.message : String(e));
      }
    }
    return done;
  }

  /** Marks a protected disk as an acquisition source: it can then never be released. */
  holdAsSource(arg: string): Disk {
    const disk = this.diskByArg(arg);
    if (!this.state.protected[disk.stableId] || !disk.readOnly) this.protectDisk(disk);
    this.state.sources[disk.stableId] = { name: disk.name, at: this.now() };
    this.remember(disk);
    this.emitEvent('source-held', disk.name, disk.stableId, 'held as acquisition source; release refused from now on');
    return disk;
  }

  /** The text an examiner must type to release a disk: its serial, or its stable id when it has none. */
  static confirmationFor(disk: Disk): string {
    return disk.serial ? disk.serial.text : disk.stableId;
  }

  private sourceRelation(disk: Disk): string | null {
    const all = this.inventory();
    for (const src of all.filter((d) => this.state.sources[d.stableId])) {
      if (src.stableId === disk.stableId) return `${disk.name} is the acquisition source`;
      // A device built on the source (dm, md) contains it; a disk the source is built on carries it.
      if (disksUnder(this.sysfs, disk.majMin).includes(src.name)) return `${disk.name} is built on the acquisition source ${src.name}`;
      if (disksUnder(this.sysfs, src.majMin).includes(disk.name)) return `the acquisition source ${src.name} is built on ${disk.name}`;
    }
    return null;
  }

  /** Whether `disk` was made writable by release() and has not gone away since. */
  isReleased(disk: Disk): boolean {
    return Boolean(this.state.released[disk.stableId]);
  }

  /**
   * Makes a chosen destination writable. Refused for the source (or anything
   * built on it), the boot medium and the running system, and unless the
   * confirmation names the device.
   */
  release(arg: string, confirmation: string): Disk {
    const disk = this.diskByArg(arg);
    const related = this.sourceRelation(disk);
    if (related) throw new WriteBlockError('ESOURCE', disk.name, `refusing to release ${disk.name}: ${related}`);
    if (disk.roles.includes('boot-medium')) throw new WriteBlockError('EBOOTMEDIUM', disk.name, `refusing to release ${disk.name}: it is the boot medium`);
    if (disk.roles.includes('running-system')) throw new WriteBlockError('ESYSTEMDISK', disk.name, `refusing to release ${disk.name}: it holds the running system`);
    const expected = WriteBlockGuardian.confirmationFor(disk);
    if (confirmation.trim() !== expected) {
      const what = disk.serial ? 'its serial number' : 'its stable id';
      throw new WriteBlockError('ECONFIRM', disk.name, `release of ${disk.name} not confirmed: type ${what} exactly as \`custos disks\` shows it`);
    }
    // Every flag is cleared before any is checked: a partition reads as
    // read-only while its disk still is (Linux >= 5.12 ORs the two).
    try {
      for (const p of disk.partitions) this.setFlag(p.name, false);
      this.setFlag(disk.name, false);
      this.verifyFlag(disk.name, `block/${disk.name}/ro`, false);
      for (const p of disk.partitions) this.verifyFlag(p.name, `block/${disk.name}/${p.name}/ro`, false);
    } catch (e) {
      // Half-released is worse than either state: put every flag back.
      this.applyReadOnly(disk);
      throw e;
    }
    this.state.released[disk.stableId] = { name: disk.name, at: this.now() };
    delete this.state.protected[disk.stableId];
    this.remember(disk);
    this.emitEvent('released', disk.name, disk.stableId, `made writable after confirmation (${disk.serial ? 'serial' : 'stable id'} typed)`);
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
      // Gone from the inventory: unplugged, or a detached loop (whose node stays, empty).
      const disks = this.inventory();
      const present = new Set(disks.map((d) => d.name));
      for (const [name, k] of [...this.known]) {
        if (!present.has(name)) {
          this.known.delete(name);
          // A release is for one attachment: whatever comes back with this identity is protected on sight and must be confirmed again.
          const wasReleased = Boolean(this.state.released[k.stableId]);
          delete this.state.released[k.stableId];
          this.emitEvent('device-vanished', name, k.stableId, wasReleased ? 'no longer present; its release ends (write-blocked again if it returns)' : 'no longer present');
        }
      }
      for (const disk of disks) {
        try {
          this.checkDisk(disk);
        } catch (e) {
          this.emitEvent('check-error', disk.name, disk.stableId, e instanceof CustosError || e instanceof Error ? e.message : String(e));
        }
      }
    } finally {
      this.checking = false;
    }
    return this.log.slice(before);
  }

  private checkDisk(disk: Disk): void {
    const k = this.known.get(disk.name);
    if (!k || k.stableId !== disk.stableId) {
      // New, or a different device under a reused kernel name.
      if (!this.included(disk)) return;
      if (this.state.released[disk.stableId] || disk.roles.includes('running-system')) {
        this.remember(disk);
        return;
      }
      this.emitEvent('device-appeared', disk.name, disk.stableId, `${disk.transport} ${disk.sizeBytes} B`);
      this.protectDisk(disk, 'protected on sight');
      return;
    }
    if (this.state.released[disk.stableId] || !this.state.protected[disk.stableId]) return;
    if (!disk.readOnly) {
      this.emitEvent('reset-detected', disk.name, disk.stableId, 'sysfs ro is 0 on a protected disk');
      this.applyReadOnly(disk);
      this.emitEvent('reprotected', disk.name, disk.stableId, 'BLKROSET re-applied and confirmed');
    }
    for (const p of disk.partitions) {
      if (!k.partitions.has(p.name)) {
        this.setAndVerify(p.name, `block/${disk.name}/${p.name}/ro`, true);
        k.partitions.add(p.name);
        this.emitEvent('partition-appeared', p.name, disk.stableId, `new partition of ${disk.name} set read-only`);
      } else if (!p.readOnly) {
        this.emitEvent('reset-detected', p.name, disk.stableId, `sysfs ro is 0 on partition of ${disk.name}`);
        this.setAndVerify(p.name, `block/${disk.name}/${p.name}/ro`, true);
        this.emitEvent('reprotected', p.name, disk.stableId, 'BLKROSET re-applied and confirmed');
      }
    }
    for (const name of [...k.partitions]) if (!disk.partitions.some((p) => p.name === name)) k.partitions.delete(name);
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
      let ioctlRo: boolean | null = null;
      try {
        const dev = BlockDevice.open(this.nodeOf(disk.name));
        try {
          ioctlRo = dev.isReadOnly();
        } finally {
          dev.close();
        }
      } catch {
        ioctlRo = null;
      }
      const rec = this.state.protected[disk.stableId];
      const counters = this.counters(disk);
      return {
        name: disk.name,
        devicePath: disk.devicePath,
        stableId: disk.stableId,
        readOnly: disk.readOnly,
        ioctlReadOnly: ioctlRo,
        partitions: disk.partitions.map((p) => ({ name: p.name, readOnly: p.readOnly })),
        protectedAt: rec?.protectedAt ?? null,
        intact: Boolean(rec) && disk.readOnly && ioctlRo !== false && disk.partitions.every((p) => p.readOnly),
        released: Boolean(this.state.released[disk.stableId]),
        source: Boolean(this.state.sources[disk.stableId]),
        roles: disk.roles,
        counters,
        sinceProtect: rec && rec.atProtect.disk && counters.disk ? writesBetween(rec.atProtect.disk, counters.disk) : null,
      };
    });
  }
}
