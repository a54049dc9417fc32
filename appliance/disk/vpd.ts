/**
 * SCSI VPD page 0x80 (Unit Serial Number, SPC-4 7.8.15): byte 1 is the page
 * code, bytes 2-3 the big-endian length, the serial follows. Returns the
 * serial bytes as the device sent them, or null for a malformed page.
 */
export function parseVpdUnitSerial(page: Uint8Array): Uint8Array | null {
  if (page.length < 4 || page[1] !== 0x80) return null;
  const declared = ((page[2] ?? 0) << 8) | (page[3] ?? 0);
  // A device may declare more than it sent; take what is there, never more.
  const end = Math.min(page.length, 4 + declared);
  return page.subarray(4, end);
}
