// The live disk list behind the screens: the guardian protects every disk
// (and any that appears) while the list refreshes from sysfs each second.
import { EventEmitter } from 'node:events';
import { WriteBlockGuardian, type GuardianEvent } from '../appliance/writeblock/guardian.js';
import { appendEvents, FileStateStore } from '../appliance/writeblock/guardian-state.js';
import { listDisks, type Disk } from '../appliance/disk/inventory.js';
import { listStorageControllers, type StorageInventory } from '../appliance/disk/storage-controllers.js';
import { fileSystemsIn, type FileSystemProbe } from '../appliance/disk/destination-mount.js';
import { blockFingerprint } from '../appliance/disk/block-fingerprint.js';
import { driveWarnings, probeDrive, type DriveReport } from '../appliance/disk/drive-probe.js';
import { driveCoverage, type DriveCoverage } from '../appliance/disk/drive-coverage.js';
import type { DiskWarning } from '../appliance/disk/disk.js';
import { encryptedVolumesIn, volumeWarnings, type EncryptedVolume } from '../appliance/disk/encrypted-volumes.js';
import { probeSignatures, type VolumeSignature } from '../appliance/disk/volume-signatures.js';

/** What an image would cover, short enough for one line of the panel (the record has the whole sentence). */
function coverShort(c: DriveCoverage): string {
  if (c.hiddenBytes === null) return "covers: what the kernel shows; the drive's own size could not be asked";
  if (c.hiddenBytes === 0) return `covers: every sector the drive has (${c.from})`;
  return `covers: NOT ${c.hiddenBytes} bytes the drive holds (${c.from})`;
}

interface VolumeFindings {
  fileSystems: FileSystemProbe[];
  volumes: EncryptedVolume[];
}

/** Controllers are listed again at least this often while no disk changes (one hot-plugged without a driver has none). */
const CONTROLLERS_EVERY_MS = 5000;

export class DiskWatch extends EventEmitter {
  disks: Disk[] = [];
  /** Every disk listed, the included ones and the rest (controllers count disks behind them all). */
  private all: Disk[] = [];
  /** The machine's storage controllers, and what hides disks (the first screen shows it). */
  storage: StorageInventory = { controllers: [], warnings: [] };
  readonly guardian: WriteBlockGuardian;
  /** When the guardian last re-checked the flags. */
  lastCheck: Date | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** What libblkid finds on each disk's volumes (read-only probe, once per attachment, size and partition count). */
  private readonly signatures = new Map<string, VolumeFindings | 'probing'>();
  /** The drive's own answers, asked once per attachment and size (read-only pass-through, drive-probe.ts). */
  private readonly drives = new Map<string, DriveReport | 'probing'>();
  private logged = 0;
  /** The devices and flags the current list was read under, and when the controllers were last listed. */
  private seen: string | null = null;
  private controllersAt = 0;

  constructor(private readonly include: (d: Disk) => boolean) {
    super();
    this.guardian = new WriteBlockGuardian({ store: new FileStateStore(), include, intervalMs: 250 });
    this.logged = this.guardian.log.length;
    this.guardian.on('event', (e: GuardianEvent) => {
      this.save();
      // The guardian sees a new or vanished disk within its 250 ms check: show it now, not at the next tick.
      if (e.type !== 'check-error') setImmediate(() => this.refresh());
    });
  }

  start(): void {
    this.guardian.protectAll();
    this.guardian.start();
    this.refresh();
    this.timer = setInterval(() => this.refresh(), 1000);
  }

  refresh(): void {
    try {
      // Read before the list: a change after it shows as a change at the next tick.
      const fp = blockFingerprint();
      const seen = `${fp.structure}\n${[...fp.readOnly].map(([n, ro]) => `${n}=${ro ? 1 : 0}`).join(' ')}`;
      const changed = seen !== this.seen;
      if (changed) {
        this.all = listDisks();
        this.disks = this.all.filter(this.include);
      }
      if (changed || Date.now() - this.controllersAt >= CONTROLLERS_EVERY_MS) {
        this.storage = listStorageControllers(this.all.map((d) => d.name));
        this.controllersAt = Date.now();
      }
      this.seen = seen;
      this.lastCheck = new Date();
    } catch {
      this.seen = null;
      // A device vanishing mid-scan: keep the last list; the next tick reads again.
    }
    this.emit('change');
  }

  /** The writable file systems on a disk, or null while not yet probed. */
  fileSystems(d: Disk): FileSystemProbe[] | null {
    return this.volumeFindings(d)?.fileSystems ?? null;
  }

  /** One blkid probe per volume serves both the file systems and the encrypted volumes (the entropy samples are read once too). */
  private volumeFindings(d: Disk): VolumeFindings | null {
    return this.probeOnce(this.signatures, `${d.attachment}:${d.sizeBytes}:${d.partitions.length}`, async () => {
      const sigs: VolumeSignature[] = await probeSignatures(d).catch(() => []);
      return { fileSystems: fileSystemsIn(sigs), volumes: encryptedVolumesIn(d, sigs) };
    });
  }

  /** The drive's own view of a disk, or null while it is being asked. */
  drive(d: Disk): DriveReport | null {
    return this.probeOnce(this.drives, `${d.attachment}:${d.sizeBytes}`, () =>
      probeDrive(d).catch((e: unknown): DriveReport => ({
        ata: null,
        nvme: null,
        scsi: null,
        tcg: null,
        health: null,
        kernelBytes: d.sizeBytes,
        unreachable: `probe failed: ${e instanceof Error ? e.message : String(e)}`,
      })),
    );
  }

  /** The encrypted volumes on a disk (libblkid, read-only), or null while it is being probed. */
  volumes(d: Disk): EncryptedVolume[] | null {
    return this.volumeFindings(d)?.volumes ?? null;
  }

  /** A probe run once per key in the background; the list is drawn again when it answers. */
  private probeOnce<T>(cache: Map<string, T | 'probing'>, key: string, run: () => Promise<T>): T | null {
    const known = cache.get(key);
    if (known === undefined) {
      cache.set(key, 'probing');
      void run()
        .then((v) => cache.set(key, v))
        .finally(() => this.emit('change'));
      return null;
    }
    return known === 'probing' ? null : known;
  }

  /** What the drive says about itself that the examiner must see first (a hidden area, a locked drive), with the disk it concerns. */
  driveFindings(d: Disk): DiskWarning[] {
    const r = this.drive(d);
    return [...(r ? driveWarnings(r) : []), ...volumeWarnings(this.volumes(d) ?? [])];
  }

  /** The details panel's lines from the drive itself: its identity, what an image would cover, its warnings. */
  driveLines(d: Disk): string[] {
    const r = this.drive(d);
    if (!r) return ['drive: asking it for its own view'];
    const id = r.ata?.identify ?? r.nvme?.controller ?? null;
    const sec = r.ata?.identify.security;
    return [
      ...(id ? [`drive says: model ${id.model.text || '-'}  serial ${id.serial.text || '-'}  firmware ${id.firmware.text || '-'}`] : []),
      ...(sec?.supported ? [`ATA security: ${sec.locked ? 'LOCKED' : sec.enabled ? 'enabled, unlocked' : 'not enabled'}${sec.frozen ? ', frozen' : ''}`] : []),
      coverShort(driveCoverage(r)),
      ...(r.health ? [`health: ${r.health.from}, ${r.health.passed === null ? 'status not given' : r.health.passed ? 'passed' : 'FAILING'}`] : []),
      ...driveWarnings(r).map((w) => `! ${w.message}`),
    ];
  }

  byName(name: string): Disk | null {
    return this.disks.find((d) => d.name === name) ?? null;
  }

  /** The guardian's events go where `custos writeblock` keeps them (its decisions are kept by the store as made). */
  save(): void {
    appendEvents(this.guardian.log.slice(this.logged));
    this.logged = this.guardian.log.length;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.guardian.stop();
    this.save();
  }
}
