// The Merkle root over the piece hashes (RFC 6962 tree hash), one value
// that stands for every window.
import { createHash } from 'node:crypto';

/**
 * Merkle tree hash of RFC 6962 section 2.1 (Certificate Transparency) over the
 * piecewise digests: leaf = SHA-256(0x00 || digest), node = SHA-256(0x01 ||
 * left || right), split at the largest power of two below n. A documented,
 * standard construction, so the root can be recomputed without custos.
 */
export function merkleRoot(leaves: readonly Buffer[]): Buffer {
  if (leaves.length === 0) return createHash('sha256').digest();
  return subtree(leaves, 0, leaves.length);
}

function subtree(leaves: readonly Buffer[], start: number, n: number): Buffer {
  if (n === 1)
    return createHash('sha256')
      .update(Buffer.from([0]))
      .update(leaves[start] as Buffer)
      .digest();
  let k = 1;
  while (k * 2 < n) k *= 2;
  const left = subtree(leaves, start, k);
  const right = subtree(leaves, start + k, n - k);
  return createHash('sha256')
    .update(Buffer.from([1]))
    .update(left)
    .update(right)
    .digest();
}
