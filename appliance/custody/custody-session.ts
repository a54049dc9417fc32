// Keeps the chain of custody for one acquisition: opens the log in every
// destination (and the custody copy) once preflight has passed, logs every
// event as it happens, signs checkpoints, and at the end writes, signs and
// seals the record next to the image.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { safeText } from '../sanitize.js';
import path from 'node:path';
import { CustosError } from '../errors.js';
import type { HostIdentity } from '../host-identity.js';
import type { Disk } from '../disk/inventory.js';
import { event, type ImagingEvent } from '../events.js';
import type { DriveHealth } from '../disk/drive-health.js';
import type { ImageRecord } from '../imaging/image-record.js';
import type { CaseData } from './case-data.js';
import type { ClockRecord } from './clock.js';
import {
  ALLOWED_SIGNERS_FILE,
  CUSTODY_FILE,
  CUSTODY_SCHEMA,
  kernelIdentity,
  REPORT_HTML,
  REPORT_TXT,
  SIG_SUFFIX,
  type CustodyRecord,
  type SourceDrive,
  type SignerRecord,
} from './custody-record.js';
import { EventLog, LOG_FILE, writeFileAtomic } from './event-log.js';
import { setAsideAbortedRecord, type ContinuedLog } from './log-resume.js';
import { canonicalJson } from './jcs.js';
import { allowedSignersLine, type SigningKey } from './keys.js';
import { reportHtml, reportText } from './report.js';
import { SSHSIG_NAMESPACE, sshsigSign } from './sshsig.js';
import type { ToolIdentity } from './tool-identity.js';
import type { VirtualDiskRecord } from '../vdisk/virtual-disk-record.js';

/** Every file the custody record puts in a destination; preflight refuses a destination that has any. */
export const CUSTODY_FILES = [CUSTODY_FILE, CUSTODY_FILE + SIG_SUFFIX, LOG_FILE, LOG_FILE + SIG_SUFFIX, ALLOWED_SIGNERS_FILE, REPORT_TXT, REPORT_HTML];

export const DEFAULT_CHECKPOINT_MS = 10 * 60 * 1000;
const HOST_WAIT_MS = 15_000;

export interface CustodyContext {
  case: CaseData;
  clock: ClockRecord;
  signer: SigningKey;
  tool: ToolIdentity;
  /**
   * The host's DMI identity takes a while to read (systeminformation runs
   * subprocesses): the acquisition does not wait for it. It goes into the
   * log's first entry if it is there by then, else into its own `host` entry
   * as soon as it arrives, and into the record either way.
   */
  host: Promise<HostIdentity | null>;
  sourceDisk: Disk | null;
  sourceDrive?: SourceDrive | null;
  /** Reads the source drive's health again when the acquisition ends, before the seal: the record holds both snapshots. */
  healthAfter?: () => Promise<DriveHealth | null>;
  /** A virtual disk source as known before the first byte (its chain); the record gets it from virtualDiskAfter at the end. */
  virtualDisk?: VirtualDiskRecord | null;
  /** The container files' SHA-256 and whether any changed while read, awaited before the seal. */
  virtualDiskAfter?: () => Promise<VirtualDiskRecord>;
  /** A second place for the whole record (the custody USB); null for none. */
  copyDir: string | null;
  checkpointMs?: number;
  /** Resuming: the interrupted acquisition's log, carried on in every copy. */
  resume?: { log: ContinuedLog; position: number; checkpoint: number; journalWritten: string };
}

/** What was mounted when the log opened (/proc/self/mounts, display-safe): nothing from the source may be there. */
function mountsNow(): string[] {
  try {
    return readFileSync('/proc/self/mounts', 'utf8')
      .trim()
      .split('\n')
      .map((l) => safeText(l, 400));
  } catch {
    return [];
  }
}

export class CustodySession {
  readonly fileNames = CUSTODY_FILES;
  private log: EventLog | null = null;
  private closed = false;
  private dirs: string[] = [];
  private pending: ImagingEvent[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly signerRecord: SignerRecord;
  private host: HostIdentity | null = null;
  private hostKnown = false;

  constructor(private readonly ctx: CustodyContext) {
    const k = ctx.signer;
    this.signerRecord = { kind: k.kind, principal: k.principal, fingerprint: k.fingerprint, publicKey: k.publicLine, namespace: SSHSIG_NAMESPACE };
    void ctx.host.then((h) => this.hostArrived(h));
    if (ctx.copyDir) {
      // Resuming, the copy may hold the interrupted run's log (carried on) and its aborted record (set aside, checked in planResume).
      for (const f of ctx.resume ? [] : CUSTODY_FILES) {
        if (existsSync(path.join(ctx.copyDir, f)))
          throw new CustosError('EEXIST', `${path.join(ctx.copyDir, f)} exists; the custody copy never overwrites a record`);
      }
    }
  }

  /** Who, what, when and with what: the same in the log's first entry and in the record. */
  private identity(): Pick<CustodyRecord, 'case' | 'clock' | 'signer' | 'tool' | 'kernel' | 'host' | 'sourceDisk' | 'sourceDrive' | 'virtualDisk'> {
    return {
      case: this.ctx.case,
      clock: this.ctx.clock,
      signer: this.signerRecord,
      tool: this.ctx.tool,
      kernel: kernelIdentity(),
      host: this.host,
      sourceDisk: this.ctx.sourceDisk,
      sourceDrive: this.ctx.sourceDrive ?? null,
      ...(this.ctx.virtualDisk ? { virtualDisk: this.ctx.virtualDisk } : {}),
    };
  }

  private hostArrived(h: HostIdentity | null): void {
    this.host = h;
    this.hostKnown = true;
    if (this.log && !this.closed) this.log.append('host', { host: h });
  }

  /** Preflight passed: the log starts in every destination, with what is known before the first byte. */
  open(dirs: string[]): void {
    this.dirs = this.ctx.copyDir ? [...dirs, this.ctx.copyDir] : [...dirs];
    const r = this.ctx.resume;
    if (r) {
      const setAside = this.dirs.map((d) => setAsideAbortedRecord(d)).filter((d): d is string => d !== null);
      this.log = new EventLog(this.dirs, r.log);
      // The interrupted run's key may have died with it: this entry says who signs from here on, and the seal covers the whole log.
      this.log.append('custody-resumed', {
        message: `acquisition resumed at byte ${r.position} (journal checkpoint ${r.checkpoint} of ${r.journalWritten}); the log goes on after entry ${r.log.entries - 1}${r.log.cut.length > 0 ? `; a line cut off by the interruption was dropped from ${r.log.cut.length} copy(ies)` : ''}`,
        data: {
          ...this.identity(),
          hostPending: !this.hostKnown,
          copies: this.dirs,
          mounts: mountsNow(),
          position: r.position,
          journalCheckpoint: r.checkpoint,
          journalWritten: r.journalWritten,
          cut: r.log.cut,
          earlierSigners: r.log.signers,
          abortedRecordsMovedTo: setAside,
        },
      });
    } else {
      this.log = new EventLog(this.dirs);
      this.log.append('custody-opened', { ...this.identity(), hostPending: !this.hostKnown, copies: this.dirs, mounts: mountsNow() });
    }
    for (const e of this.pending.splice(0)) this.event(e);
    this.checkpoint(r ? 'resumed' : 'opened');
    const every = this.ctx.checkpointMs ?? DEFAULT_CHECKPOINT_MS;
    this.timer = setInterval(() => this.checkpoint('interval'), every);
    this.timer.unref();
  }

  event(e: ImagingEvent): void {
    // After the seal nothing more belongs to this acquisition's log.
    if (this.closed) return;
    if (!this.log) {
      this.pending.push(e);
      return;
    }
    this.log.append(e.type, e.data ? { message: e.message, data: e.data } : { message: e.message }, new Date(e.time));
  }

  /** Logs a checkpoint and signs the whole log up to it, so an interrupted run still has a signed prefix. */
  checkpoint(reason: string): void {
    if (!this.log) return;
    this.log.append('checkpoint', { reason, entries: this.log.entries + 1 });
    const sig = sshsigSign(this.log.content, this.ctx.signer.privateKey);
    for (const dir of this.liveDirs()) {
      try {
        writeFileAtomic(path.join(dir, LOG_FILE + SIG_SUFFIX), sig);
      } catch (e) {
        // Runs on a timer: a failing medium is logged (and dropped by the log's next write), never thrown.
        this.log.append('custody-copy-error', { dir, file: LOG_FILE + SIG_SUFFIX, error: e instanceof Error ? e.message : String(e) });
      }
    }
  }

  /** The copies whose log is still being written. */
  private liveDirs(): string[] {
    return this.log ? this.log.paths.map((p) => path.dirname(p)) : this.dirs;
  }

  /** The drive's health after the acquisition, into the log and the record's sourceDrive. */
  private async readHealthAfter(): Promise<void> {
    const drive = this.ctx.sourceDrive;
    if (!drive || !this.ctx.healthAfter) return;
    const after = await this.ctx.healthAfter().catch(() => null);
    this.ctx.sourceDrive = { ...drive, healthAfter: after };
    const flags = after?.flags ?? [];
    this.event(
      event(
        'drive-health',
        after
          ? `drive health after the acquisition (${after.from}): ${flags.length ? flags.join(', ') : 'nothing flagged'}`
          : 'drive health after the acquisition: the drive gave none',
        {
          when: 'after',
          passed: after?.passed ?? null,
          flags,
        },
      ),
    );
  }

  /** The container files' hashes and end check, into the log and the record. */
  private async readVirtualDiskAfter(): Promise<void> {
    if (!this.ctx.virtualDiskAfter) return;
    let v: VirtualDiskRecord;
    try {
      v = await this.ctx.virtualDiskAfter();
    } catch (e) {
      this.event(event('container-files', `the container files could not be hashed: ${e instanceof Error ? e.message : String(e)}`, { hashed: false }));
      return;
    }
    this.ctx.virtualDisk = v;
    const changed = v.files.filter((f) => f.unchanged === false).map((f) => f.file);
    const w = v.fileSystem?.writes;
    const drive = w
      ? w.writeIos + w.discardIos > 0
        ? `; ${w.writeIos} WRITE(S) and ${w.discardIos} discard(s) counted on ${v.fileSystem?.disk ?? '?'}, the drive holding them, while they were read`
        : `; no write counted on ${v.fileSystem?.disk ?? '?'}, the drive holding them`
      : '';
    this.event(
      event(
        'container-files',
        `${
          changed.length
            ? `CONTAINER FILES CHANGED while they were read: ${changed.join(', ')}; the image is of a disk whose files changed`
            : `${v.files.length} container file(s) hashed, none changed while read`
        }${drive}`,
        {
          files: v.files.map((f) => ({ file: f.file, role: f.role, sizeBytes: f.sizeBytes, sha256: f.sha256, unchanged: f.unchanged })),
          fileSystem: v.fileSystem,
        },
      ),
    );
  }

  /** Seals the log and writes the signed record, the allowed_signers line and the reports in every copy. */
  async finish(acquisition: ImageRecord): Promise<CustodyRecord | null> {
    if (this.timer) clearInterval(this.timer);
    const log = this.log;
    if (!log) return null;
    // A short acquisition can end before the host's identity is read; the record waits for it (briefly).
    if (!this.hostKnown) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.ctx.host, new Promise((r) => (timer = setTimeout(r, HOST_WAIT_MS)))]);
      clearTimeout(timer);
    }
    await this.readHealthAfter();
    await this.readVirtualDiskAfter();
    log.append('seal', { status: acquisition.status, entries: log.entries + 1 });
    this.closed = true;
    const { events: _events, ...withoutEvents } = acquisition;
    const record: CustodyRecord = {
      schema: CUSTODY_SCHEMA,
      status: acquisition.status,
      ...this.identity(),
      acquisition: withoutEvents,
      log: { file: LOG_FILE, entries: log.entries, head: log.head },
    };
    const text = canonicalJson(record);
    const key = this.ctx.signer.privateKey;
    const recordSig = sshsigSign(Buffer.from(text, 'utf8'), key);
    const logSig = sshsigSign(log.content, key);
    const allowed = allowedSignersLine(this.ctx.signer, SSHSIG_NAMESPACE) + '\n';
    const failures: string[] = log.lost.map((l) => `${l.path}: ${l.error}`);
    for (const dir of this.liveDirs()) {
      const at = (f: string) => path.join(dir, f);
      try {
        writeFileSync(at(CUSTODY_FILE), text, { flag: 'wx', mode: 0o444, flush: true });
        writeFileSync(at(CUSTODY_FILE + SIG_SUFFIX), recordSig, { flag: 'wx', mode: 0o444, flush: true });
        writeFileAtomic(at(LOG_FILE + SIG_SUFFIX), logSig);
        writeFileSync(at(ALLOWED_SIGNERS_FILE), allowed, { flag: 'wx', mode: 0o444, flush: true });
        writeFileSync(at(REPORT_TXT), reportText(record), { flag: 'wx', mode: 0o444, flush: true });
        writeFileSync(at(REPORT_HTML), reportHtml(record), { flag: 'wx', mode: 0o444, flush: true });
      } catch (e) {
        failures.push(`${dir}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    log.close(true);
    // Every copy that could be written has the record; say which could not.
    if (failures.length > 0) throw new CustosError('ECUSTODYWRITE', `the custody record could not be written to every copy: ${failures.join('; ')}`);
    return record;
  }

  /** Where the record went and who signed it, for the command's summary. */
  summary(): { copies: string[]; files: readonly string[]; signer: SignerRecord; log: { entries: number; head: string } | null } {
    return {
      copies: this.liveDirs(),
      files: CUSTODY_FILES,
      signer: this.signerRecord,
      log: this.log ? { entries: this.log.entries, head: this.log.head } : null,
    };
  }

  /** Stops checkpoints without sealing (the process is going down). */
  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.log?.close();
  }
}
