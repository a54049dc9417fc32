// Stage 2, held under write-block: the guardian's decisions per attachment,
// shared by every custos process under an flock.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import path from 'node:path';
import { CustosError } from '../errors.js';
import type { IoCounters } from '../disk/kernel-stat.js';
import { native } from '../native.js';
import { stateDir } from '../state-dir.js';

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
  /** The attachment (kernel name and diskseq) the event is about. */
  attachment: string;
  stableId: string;
  detail: string;
}

/** Counters of a disk and each of its partitions at one moment. */
export interface CounterSnapshot {
  time: string;
  disk: IoCounters | null;
  partitions: Record<string, IoCounters | null>;
}

/** One decision about one attachment; the stable id is kept for the record, never looked up. */
export interface AttachmentDecision {
  name: string;
  stableId: string;
  at: string;
}

export interface ProtectedRecord extends AttachmentDecision {
  atProtect: CounterSnapshot;
}

/**
 * What survives between CLI invocations, every map keyed by attachment
 * (`Disk.attachment`): a release or a source hold covers exactly one attached
 * device, never another with the same serial, and ends when it goes.
 */
export interface GuardianState {
  version: 2;
  bootId: string;
  protected: Record<string, ProtectedRecord>;
  released: Record<string, AttachmentDecision>;
  sources: Record<string, AttachmentDecision>;
}

export function emptyState(boot: string): GuardianState {
  return { version: 2, bootId: boot, protected: {}, released: {}, sources: {} };
}

export { stateDir } from '../state-dir.js';

const FILE = 'writeblock.json';
const LOCK = 'writeblock.lock';
const LOG = 'writeblock-events.jsonl';
/** Version 2: every decision keyed by attachment (kernel name and diskseq), with the boot it belongs to. */
const VERSION = 2;

/** This boot's id: attachments (diskseq) mean nothing in another boot. */
export function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

const obj = (v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? v : {});

/** The state as the file has it; an older format, or another boot's, counts as empty (its attachments are gone). */
function parse(text: string, file: string): GuardianState {
  let parsed: Partial<GuardianState> & { version?: unknown };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    throw new CustosError('ESTATE', `write-block state ${file} is corrupt; remove it to start over`);
  }
  if (parsed.version !== VERSION || parsed.bootId !== bootId()) return emptyState(bootId());
  return {
    version: VERSION,
    bootId: parsed.bootId,
    protected: obj(parsed.protected) as GuardianState['protected'],
    released: obj(parsed.released) as GuardianState['released'],
    sources: obj(parsed.sources) as GuardianState['sources'],
  };
}

/**
 * Where the guardian keeps its decisions. Every change is a read-modify-write
 * of the whole state, so two custos processes (a `writeblock watch` and a
 * `writeblock release`, the UI and the CLI) never undo each other's.
 */
export interface StateStore {
  /** The state as it stands now (re-read when another process changed it). */
  read(): GuardianState;
  /** Applies `change` to the current state and keeps the result. */
  update(change: (s: GuardianState) => void): GuardianState;
}

/** In memory: one process's guardian (tests, a guardian that needs no sharing). */
export class MemoryStateStore implements StateStore {
  private state: GuardianState;
  constructor(state: GuardianState = emptyState(bootId())) {
    this.state = state;
  }
  read(): GuardianState {
    return this.state;
  }
  update(change: (s: GuardianState) => void): GuardianState {
    change(this.state);
    return this.state;
  }
}

/**
 * The state file in the state directory, shared by every custos process:
 * changes happen under an flock, and a reader notices another process's
 * change by the file's inode (every save is a rename).
 */
export class FileStateStore implements StateStore {
  readonly dir: string;
  private cached: GuardianState | null = null;
  private cachedKey = '';

  constructor(dir = stateDir()) {
    this.dir = dir;
  }

  private get file(): string {
    return path.join(this.dir, FILE);
  }

  private key(): string {
    try {
      const st = statSync(this.file);
      return `${st.ino}:${st.mtimeMs}:${st.size}`;
    } catch {
      return 'none';
    }
  }

  read(): GuardianState {
    const key = this.key();
    if (this.cached && key === this.cachedKey) return this.cached;
    let text: string | null = null;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch {
      text = null;
    }
    this.cached = text === null ? emptyState(bootId()) : parse(text, this.file);
    this.cachedKey = key;
    return this.cached;
  }

  update(change: (s: GuardianState) => void): GuardianState {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const lockFd = openSync(path.join(this.dir, LOCK), 'a', 0o600);
    try {
      native().lockExclusive(lockFd);
      this.cachedKey = '';
      const state = this.read();
      change(state);
      save(state, this.dir);
      this.cached = state;
      this.cachedKey = this.key();
      return state;
    } finally {
      // Closing the descriptor drops the lock.
      closeSync(lockFd);
    }
  }
}

/** Atomic replace with fsync, so a crash leaves the old or the new state, never half of one. */
function save(state: GuardianState, dir: string): void {
  const tmp = path.join(dir, `${FILE}.${process.pid}.tmp`);
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path.join(dir, FILE));
}

export function appendEvents(events: GuardianEvent[], dir = stateDir()): void {
  if (events.length === 0) return;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  appendFileSync(path.join(dir, LOG), events.map((e) => JSON.stringify(e)).join('\n') + '\n', { mode: 0o600 });
}

export function readEvents(dir = stateDir()): GuardianEvent[] {
  try {
    return readFileSync(path.join(dir, LOG), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as GuardianEvent);
  } catch {
    return [];
  }
}
