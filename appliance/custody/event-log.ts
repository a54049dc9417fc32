// events.jsonl: the custody log. One canonical JSON entry per line, each
// naming the SHA-256 of the line before it, written and flushed to the medium
// as things happen, so a crash leaves a valid prefix.
import { createHash } from 'node:crypto';
import { closeSync, fdatasyncSync, fchmodSync, fsyncSync, ftruncateSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { DeviceIoError, errnoOf } from '../errors.js';
import { canonicalJson } from './jcs.js';

export const LOG_FILE = 'events.jsonl';
export const GENESIS_PREV = '0'.repeat(64);

export interface LogEntry {
  v: 1;
  seq: number;
  time: string;
  type: string;
  data: Record<string, unknown>;
  prev: string;
}

export function sha256Hex(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The same log in several directories (each evidence copy, the custody USB). */
export class EventLog {
  private readonly files: { path: string; fd: number }[] = [];
  /** Copies whose medium failed (unplugged, full, read-only): they hold a prefix of the log. */
  readonly lost: { path: string; error: string }[] = [];
  private seq = 0;
  private prev = GENESIS_PREV;
  private text = '';
  private closed = false;

  /**
   * A new log in each of `dirs`; or, resuming, the log `continued` (its
   * complete lines, checked) carried on in each: a copy holding a prefix of
   * it (or a cut-off last line) is brought up to it, a missing copy is made.
   */
  constructor(dirs: string[], continued?: { content: string; entries: number; head: string }) {
    try {
      for (const dir of dirs) {
        const file = path.join(dir, LOG_FILE);
        if (!continued) {
          this.files.push({ path: file, fd: openSync(file, 'wx', 0o644) });
          continue;
        }
        // O_APPEND: every later write goes to the end, after the cut below.
        const fd = openSync(file, 'a', 0o644);
        this.files.push({ path: file, fd });
        const have = readFileSync(file, 'utf8');
        const whole = have.slice(0, have.lastIndexOf('\n') + 1);
        if (!continued.content.startsWith(whole)) throw Object.assign(new Error(`${file} is not a copy of the log being resumed`), { errno: -22 });
        ftruncateSync(fd, Buffer.byteLength(whole));
        const rest = Buffer.from(continued.content.slice(whole.length), 'utf8');
        let off = 0;
        while (off < rest.length) off += writeSync(fd, rest, off, rest.length - off);
        fdatasyncSync(fd);
      }
    } catch (e) {
      this.close();
      throw new DeviceIoError(path.join(dirs[Math.max(0, this.files.length - (continued ? 1 : 0))] ?? '.', LOG_FILE), 'open', errnoOf(e) ?? 5, null);
    }
    if (continued) {
      this.text = continued.content;
      this.seq = continued.entries;
      this.prev = continued.head;
    }
  }

  get entries(): number {
    return this.seq;
  }

  /** SHA-256 of the last line written (what the next entry's prev will be). */
  get head(): string {
    return this.prev;
  }

  /** Everything written so far, byte for byte what is in each file. */
  get content(): Buffer {
    return Buffer.from(this.text, 'utf8');
  }

  /** The copies still being written. */
  get paths(): string[] {
    return this.files.map((f) => f.path);
  }

  /**
   * Appends one entry to every copy and forces it to the medium before
   * returning. A copy that cannot be written is dropped (it keeps the prefix
   * it has) and the others get an entry saying so; the log goes on in memory
   * even with no copy left, so no caller (a timer, an event listener) ever
   * fails for a medium's sake.
   */
  append(type: string, data: Record<string, unknown>, time = new Date()): LogEntry {
    if (this.closed) throw new Error('custody log is closed');
    const entry: LogEntry = { v: 1, seq: this.seq, time: time.toISOString(), type, data, prev: this.prev };
    const line = canonicalJson(entry);
    const bytes = Buffer.from(line + '\n', 'utf8');
    const failed: { path: string; error: string }[] = [];
    for (const f of [...this.files]) {
      try {
        let off = 0;
        while (off < bytes.length) off += writeSync(f.fd, bytes, off, bytes.length - off);
        fdatasyncSync(f.fd);
      } catch (e) {
        const err = new DeviceIoError(f.path, 'write', errnoOf(e) ?? 5, this.text.length);
        failed.push({ path: f.path, error: err.message });
        this.files.splice(this.files.indexOf(f), 1);
        try {
          closeSync(f.fd);
        } catch {
          // The medium is gone; there is nothing to close cleanly.
        }
      }
    }
    this.text += line + '\n';
    this.prev = sha256Hex(line);
    this.seq++;
    for (const f of failed) {
      this.lost.push(f);
      this.append('custody-copy-lost', { file: f.path, error: f.error, entriesInIt: this.seq - 1, copiesLeft: this.files.length });
    }
    return entry;
  }

  /** Closes every copy; a finished log is made read-only. */
  close(readOnly = false): void {
    if (this.closed) return;
    this.closed = true;
    for (const f of this.files) {
      try {
        if (readOnly) fchmodSync(f.fd, 0o444);
        closeSync(f.fd);
      } catch {
        // Nothing more can be done for a copy whose medium failed; the error was reported by append.
      }
    }
  }
}

/** Replaces `file` with `content` atomically and durably (a reader sees the old or the new, never half). */
export function writeFileAtomic(file: string, content: string | Buffer, mode = 0o444): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, content, { mode, flush: true });
  renameSync(tmp, file);
  // The rename itself must reach the medium, or a power cut can bring back the old file.
  const dir = openSync(path.dirname(file), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
