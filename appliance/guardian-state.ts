import { mkdirSync, readFileSync, renameSync, writeFileSync, appendFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import path from 'node:path';
import { emptyState, type GuardianEvent, type GuardianState } from './guardian.js';
import { CustosError } from './errors.js';

/**
 * Where `custos writeblock` keeps what it protected, released and holds as a
 * source between invocations. /run is a tmpfs: the state, like the kernel's
 * read-only flags, lasts until reboot.
 */
export function stateDir(): string {
  return process.env['CUSTOS_STATE_DIR'] ?? '/run/custos';
}

const FILE = 'writeblock.json';
const LOG = 'writeblock-events.jsonl';

export function loadState(dir = stateDir()): GuardianState {
  let text: string;
  try {
    text = readFileSync(path.join(dir, FILE), 'utf8');
  } catch {
    return emptyState();
  }
  try {
    const parsed = JSON.parse(text) as Partial<GuardianState>;
    const obj = (v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? v : {});
    return {
      protected: obj(parsed.protected) as GuardianState['protected'],
      released: obj(parsed.released) as GuardianState['released'],
      sources: obj(parsed.sources) as GuardianState['sources'],
    };
  } catch {
    throw new CustosError('ESTATE', `write-block state ${path.join(dir, FILE)} is corrupt; remove it to start over`);
  }
}

/** Atomic replace with fsync, so a crash leaves the old or the new state, never half of one. */
export function saveState(state: GuardianState, dir = stateDir()): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
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
