// Adler-32 (RFC 1950), the checksum EWF puts on every section, table and raw
// chunk. Raw chunks are most of an uncompressed image, so this is hot: it is
// zlib's own (SIMD) adler32 from inside Node, through the native addon, at
// several GB/s, where a JavaScript loop manages about 1.
import { native } from '../../native.js';

export function adler32(bytes: Uint8Array, start = 0, end = bytes.length, seed = 1): number {
  return native().adler32(bytes, start, end, seed);
}
