// Stage 1: bounded, sanitized reads of sysfs (attacker-controlled strings,
// symlinks that point elsewhere).
import { closeSync, openSync, readdirSync, readSync, realpathSync, existsSync, lstatSync } from 'node:fs';
import path from 'node:path';

const SCRATCH = Buffer.allocUnsafe(16 * 1024);

/**
 * Reads sysfs below an injectable root, so tests can point it at a fixture
 * tree. Attribute reads are capped: a hostile fixture or device cannot make
 * custos read without bound.
 */
export class Sysfs {
  readonly root: string;
  static readonly READ_CAP = 64 * 1024;
  /** The root's own real path, resolved on first use (it does not move while custos runs). */
  private rootReal: string | null = null;

  constructor(root = '/sys') {
    this.root = path.resolve(root);
  }

  abs(rel: string): string {
    return path.join(this.root, rel);
  }

  /** Raw bytes of an attribute with the kernel's single trailing newline removed; null if absent or unreadable. */
  readBytes(rel: string): Buffer | null {
    let fd: number;
    try {
      fd = openSync(this.abs(rel), 'r');
    } catch {
      return null;
    }
    try {
      const chunks: Buffer[] = [];
      let total = 0;
      // One scratch buffer for every read (they are synchronous): a zeroed 16 KiB per attribute, hundreds
      // per disk list, was a measurable part of the list's cost under TCG.
      const chunk = SCRATCH;
      while (total < Sysfs.READ_CAP) {
        let n: number;
        try {
          n = readSync(fd, chunk, 0, Math.min(chunk.length, Sysfs.READ_CAP - total), null);
        } catch {
          return total > 0 ? Buffer.concat(chunks) : null;
        }
        if (n === 0) break;
        chunks.push(Buffer.from(chunk.subarray(0, n)));
        total += n;
      }
      let out = Buffer.concat(chunks);
      if (out.length > 0 && out[out.length - 1] === 0x0a) out = out.subarray(0, out.length - 1);
      return out;
    } finally {
      closeSync(fd);
    }
  }

  /** Attribute as trimmed text, for values the kernel itself formats (numbers, flags, dev). */
  readText(rel: string): string | null {
    const b = this.readBytes(rel);
    return b === null ? null : b.toString('latin1').trim();
  }

  readInt(rel: string): number | null {
    const t = this.readText(rel);
    if (t === null || !/^-?\d+$/.test(t)) return null;
    const n = Number(t);
    return Number.isSafeInteger(n) ? n : null;
  }

  list(rel: string): string[] {
    try {
      return readdirSync(this.abs(rel)).sort();
    } catch {
      return [];
    }
  }

  exists(rel: string): boolean {
    return existsSync(this.abs(rel));
  }

  isLink(rel: string): boolean {
    try {
      return lstatSync(this.abs(rel)).isSymbolicLink();
    } catch {
      return false;
    }
  }

  /** Resolved path of a sysfs entry relative to the root, e.g. "devices/pci0000:00/.../block/sda". */
  resolve(rel: string): string | null {
    try {
      const real = realpathSync(this.abs(rel));
      const rootReal = (this.rootReal ??= realpathSync(this.root));
      if (real !== rootReal && !real.startsWith(rootReal + path.sep)) return null;
      return path.relative(rootReal, real);
    } catch {
      return null;
    }
  }
}
