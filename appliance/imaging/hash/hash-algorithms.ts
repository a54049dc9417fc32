// The hashes custos computes, the defaults, and the list parsed from --hash.
import { UsageError } from '../../errors.js';

/** Linear hashes custos computes; the names are also OpenSSL's. */
export const HASH_ALGORITHMS = ['md5', 'sha1', 'sha256', 'sha512'] as const;
export type HashAlgorithm = (typeof HASH_ALGORITHMS)[number];
export const DEFAULT_HASHES: HashAlgorithm[] = ['md5', 'sha256'];

export function isHashAlgorithm(s: string): s is HashAlgorithm {
  return (HASH_ALGORITHMS as readonly string[]).includes(s);
}

/** "md5,SHA-256" -> ['md5', 'sha256'], in canonical order, without duplicates. */
export function parseHashList(text: string): HashAlgorithm[] {
  const asked = text
    .split(',')
    .map((s) => s.trim().toLowerCase().replace('-', ''))
    .filter((s) => s.length > 0);
  if (asked.length === 0) throw new UsageError('--hash needs at least one of md5, sha1, sha256, sha512');
  for (const a of asked) if (!isHashAlgorithm(a)) throw new UsageError(`--hash: unknown algorithm "${a}" (md5, sha1, sha256, sha512)`);
  return HASH_ALGORITHMS.filter((a) => asked.includes(a));
}

/** E01 stores MD5 and SHA-1 in the image itself: they are always computed for it, beside what was asked. */
export function hashesFor(format: string, asked: readonly HashAlgorithm[]): HashAlgorithm[] {
  const want = format === 'e01' ? [...asked, 'md5', 'sha1'] : asked;
  return HASH_ALGORITHMS.filter((a) => want.includes(a));
}
