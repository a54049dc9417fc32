// A VM disk as hypervisors leave it: a base file and one snapshot on top,
// made by qemu-img; the reference is the guest disk as qemu-img reads it.
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sha256File } from './loop.js';
import { writeMixedImage } from './mixed-content.js';

export interface ChainSpec {
  format: 'qcow2' | 'vmdk';
  /** File names in `dir`: the base, and the snapshot naming it as its backing file. */
  base: string;
  top: string;
  guestBytes: number;
  seed: number;
  /** What the guest wrote after the snapshot: a qemu-io pattern write (offset and length as qemu-io takes them, '3M', '768k'). */
  write: { pattern: number; offset: string; length: string };
  /** Where the guest disk and the reference are made; a temporary directory by default (keep it off a small drive). */
  scratch?: string;
}

/** Makes the chain in `dir` and returns the SHA-256 of the guest disk qemu-img reads through it. */
export async function snapshotChain(dir: string, spec: ChainSpec): Promise<string> {
  const scratch = mkdtempSync(path.join(spec.scratch ?? os.tmpdir(), 'custos-chain-'));
  try {
    const guest = path.join(scratch, 'guest.raw');
    writeMixedImage(guest, spec.guestBytes, spec.seed);
    await execa('qemu-img', ['convert', '-q', '-f', 'raw', '-O', spec.format, guest, spec.base], { cwd: dir });
    rmSync(guest);
    await execa('qemu-img', ['create', '-q', '-f', spec.format, '-F', spec.format, '-b', spec.base, spec.top], { cwd: dir });
    const w = spec.write;
    await execa('qemu-io', ['-f', spec.format, '-c', `write -P 0x${w.pattern.toString(16)} ${w.offset} ${w.length}`, spec.top], { cwd: dir });
    const ref = path.join(scratch, 'ref.raw');
    await execa('qemu-img', ['convert', '-O', 'raw', spec.top, ref], { cwd: dir });
    return await sha256File(ref);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
