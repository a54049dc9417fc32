// events.jsonl: the custody log. One canonical JSON entry per line, each
// naming the SHA-256 of the line before it, written and flushed to the medium
// as things happen, so a crash leaves a valid prefix.
import { createHash } from 'node:crypto';
import { closeSync, fdatasyncSync, fchmodSync, openSync, renameSync, writeFileSync, writeSync } from 'node:fs';
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
  private seq = 0;
  private prev = GENESIS_PREV;
  private text = '';
  private closed = false;

  constructor(dirs: string[]) {
    try {
      for (const dir of dirs) {
        const file = path.join(dir, LOG_FILE);
        this.files.push({ path: file, fd: openSync(file, 'wx', 0o644) });
      }
    } catch (e) {
      this.close();
      throw new DeviceIoError(path.join(dirs[this.files.length] ?? '.', LOG_FILE), 'open', errnoOf(e) ?? 5, null);
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

  get paths(): string[] {
    return this.files.map((f) => f.path);
  }

  /** Appends one entry to every copy and forces it to the medium before returning. */
  append(type: string, data: Record<string, unknown>, time = new Date()): LogEntry {
    if (this.closed) throw new Error('custody log is closed');
    const entry: LogEntry = { v: 1, seq: this.seq, time: time.toISOString(), type, data, prev: this.prev };
    const line = canonicalJson(entry);
    const bytes = Buffer.from(line + '\n', 'utf8');
    for (const f of this.files) {
      try {
        let off = 0;
        while (off < bytes.length) off += writeSync(f.fd, bytes, off, bytes.length - off);
        fdatasyncSync(f.fd);
      } catch (e) {
        throw new DeviceIoError(f.path, 'write', errnoOf(e) ?? 5, this.text.length);
      }
    }
    this.text += line + '\n';
    this.prev = sha256Hex(line);
    this.seq++;
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
}
