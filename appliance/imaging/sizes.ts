// Sizes as the examiner types them (64M, 2G) and the checks on them.
import { UsageError } from '../errors.js';

const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/**
 * Parses a size like "64M", "4000MiB", "2G" or "512" (bytes). Units are binary
 * (K = 1024) because sector and segment arithmetic is.
 */
export function parseSize(text: string, what: string): number {
  const m = /^(\d+)\s*([KMGT]?)(i?B)?$/i.exec(text.trim());
  const unit = UNITS[(m?.[2] ?? '').toUpperCase()];
  if (!m || unit === undefined) throw new UsageError(`${what}: "${text}" is not a size (examples: 512, 64M, 2G)`);
  const n = Number(m[1]) * unit;
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${what}: ${text} is out of range`);
  return n;
}

/** Throws unless `n` is a positive multiple of `unit`. */
export function requireMultiple(n: number, unit: number, what: string): void {
  if (n <= 0 || n % unit !== 0) throw new UsageError(`${what} must be a multiple of ${unit} bytes (got ${n})`);
}
