// The ATA registers an ATA PASS-THROUGH command with CK_COND returns in its
// sense data (SAT-3 12.2.2.6 and 12.2.2.7): the LBA of READ NATIVE MAX ADDRESS
// comes back there, not in a data buffer. Descriptor format (72h, descriptor
// 09h) holds all 48 bits; fixed format (70h) holds 24, with a flag when the upper
// bits are not zero, so a larger address is then unknown, never guessed.

export interface AtaRegisters {
  status: number;
  error: number;
  /** The DEVICE register: bits 3:0 are LBA 27:24 of a 28-bit command. */
  device: number;
  /** The 48-bit LBA field, or null when the sense format could not hold it. */
  lba: number | null;
}

/** The registers in `sense`, or null when it holds none (no sense, or another kind of sense data). */
export function ataRegisters(sense: Uint8Array): AtaRegisters | null {
  const code = (sense[0] ?? 0) & 0x7f;
  if (code === 0x72 || code === 0x73) {
    const total = Math.min(sense.length, 8 + (sense[7] ?? 0));
    for (let at = 8; at + 1 < total; at += 2 + (sense[at + 1] as number)) {
      if (sense[at] !== 0x09 || at + 14 > total) continue;
      const d = sense.subarray(at, at + 14);
      const byte = (i: number) => d[i] as number;
      const extend = (byte(2) & 1) === 1;
      const low = byte(7) + byte(9) * 2 ** 8 + byte(11) * 2 ** 16;
      const high = extend ? byte(6) * 2 ** 24 + byte(8) * 2 ** 32 + byte(10) * 2 ** 40 : 0;
      return { error: byte(3), device: byte(12), status: byte(13), lba: low + high };
    }
    return null;
  }
  if (code === 0x70 || code === 0x71) {
    if (sense.length < 18) return null;
    const byte = (i: number) => sense[i] as number;
    const upperNonZero = (byte(8) & 0x20) !== 0;
    return { error: byte(3), status: byte(4), device: byte(5), lba: upperNonZero ? null : byte(9) + byte(10) * 2 ** 8 + byte(11) * 2 ** 16 };
  }
  return null;
}

/** Status register bit 0 (ERR): the drive aborted the command (it does not support it, or refuses it now). */
export function aborted(r: AtaRegisters): boolean {
  return (r.status & 0x01) === 1;
}
