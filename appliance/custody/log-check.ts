// Checks a custody log the way a third party would: every line canonical,
// seq without gaps, every prev the SHA-256 of the line before.
import { canonicalJson } from './jcs.js';
import { GENESIS_PREV, sha256Hex, type LogEntry } from './event-log.js';

export interface LogCheck {
  ok: boolean;
  /** Complete lines that parsed. */
  entries: LogEntry[];
  /** SHA-256 of each complete line, in order. */
  lineHashes: string[];
  /** Byte length of the first n complete lines, for checking a signature over a prefix. */
  prefixBytes: number[];
  problems: string[];
  /** A last line without its newline: the writer stopped mid-line (crash, power loss). */
  partialTail: boolean;
  sealed: boolean;
  /** Sealed by an aborted run: a resumed run may carry the log on. */
  abortedSeal: boolean;
}

export function checkLog(content: Buffer): LogCheck {
  const text = content.toString('utf8');
  const problems: string[] = [];
  const entries: LogEntry[] = [];
  const lineHashes: string[] = [];
  const prefixBytes: number[] = [];
  const parts = text.split('\n');
  const tail = parts.pop() ?? '';
  const partialTail = tail.length > 0;
  if (partialTail) problems.push(`events.jsonl ends in an incomplete line (${Buffer.byteLength(tail)} bytes): the writer was interrupted`);
  let bytes = 0;
  let sealed = false;
  let abortedSeal = false;
  for (const [i, line] of parts.entries()) {
    const where = `events.jsonl line ${i + 1}`;
    bytes += Buffer.byteLength(line) + 1;
    prefixBytes.push(bytes);
    lineHashes.push(sha256Hex(line));
    let e: LogEntry;
    try {
      e = JSON.parse(line) as LogEntry;
    } catch {
      problems.push(`${where} is not JSON`);
      continue;
    }
    entries.push(e);
    if (canonicalJson(e) !== line) problems.push(`${where} is not in canonical form (RFC 8785)`);
    if (e.seq !== i) problems.push(`${where} has seq ${String(e.seq)}, expected ${i} (a line is missing, added or moved)`);
    const expectedPrev = i === 0 ? GENESIS_PREV : lineHashes[i - 1];
    if (e.prev !== expectedPrev)
      problems.push(
        `${where} (seq ${String(e.seq)}): prev does not match ${i === 0 ? 'the genesis value' : `the SHA-256 of line ${i}`}; line ${i === 0 ? 1 : i} or this one was changed`,
      );
    // An aborted acquisition's log may be reopened by a resumed run, and only by it.
    if (sealed && !(abortedSeal && e.type === 'custody-resumed')) problems.push(`${where} comes after the seal`);
    sealed = e.type === 'seal' || (sealed && e.type !== 'custody-resumed');
    abortedSeal = e.type === 'seal' && (e.data as { status?: unknown } | undefined)?.status === 'aborted';
  }
  if (!sealed && !partialTail) problems.push('events.jsonl has no seal entry: the acquisition did not finish');
  return { ok: problems.length === 0, entries, lineHashes, prefixBytes, problems, partialTail, sealed, abortedSeal: sealed && abortedSeal };
}
