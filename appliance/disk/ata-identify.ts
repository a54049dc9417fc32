// Decodes an ATA IDENTIFY DEVICE answer (512 bytes, 256 little-endian words;
// ACS-3 section 7.12.7) into what an examiner must know: who the drive says it
// is, how many sectors it offers, which hidden-area and security features it
// has. Every field comes from drive firmware and is treated as hostile: strings
// are sanitized, words are read only inside the 512 bytes, and a word whose
// "valid" bits are wrong counts as not reported. `hdparm --Istdin` decodes the
// same bytes in the tests.
import { deviceString, type DeviceString } from '../sanitize.js';

export const IDENTIFY_BYTES = 512;

export interface AtaSecurity {
  supported: boolean;
  enabled: boolean;
  locked: boolean;
  frozen: boolean;
  /** The password attempt counter ran out: the drive takes no unlock until power-cycled. */
  countExpired: boolean;
}

export interface AtaIdentity {
  model: DeviceString;
  serial: DeviceString;
  firmware: DeviceString;
  /** World Wide Name (words 108-111), hex, when the drive reports one. */
  wwn: string | null;
  lba48: boolean;
  /** Sectors the drive offers now: words 100-103 with 48-bit addressing, else words 60-61. */
  userSectors: number;
  logicalSectorBytes: number;
  physicalSectorBytes: number;
  /** Host Protected Area feature set: supported, and enabled (word 85). */
  hpa: { supported: boolean; enabled: boolean };
  /** Device Configuration Overlay feature set supported (word 83 bit 11). */
  dcoSupported: boolean;
  /** Accessible Max Address Configuration supported (word 119 bit 8), which replaces HPA and DCO in ACS-3. */
  amaSupported: boolean;
  /** Trusted Computing feature set (word 48 bit 0): the drive may be a self-encrypting (TCG) drive. */
  trustedComputing: boolean;
  security: AtaSecurity;
  /** Nominal media rotation rate (word 217): 1 for solid state, else RPM; null when not reported. */
  rotationRate: number | null;
  /** Word 255: 'valid', 'bad' (the checksum does not add up: the answer is damaged) or 'absent'. */
  integrity: 'valid' | 'bad' | 'absent';
}

/** Word `i` of the answer; 0 outside it. */
function word(b: Uint8Array, i: number): number {
  return 2 * i + 1 < b.length ? (b[2 * i] as number) | ((b[2 * i + 1] as number) << 8) : 0;
}

/** ATA strings store two characters per word, the first in the high byte. */
function ataString(b: Uint8Array, first: number, words: number): DeviceString {
  const out = new Uint8Array(words * 2);
  for (let i = 0; i < words; i++) {
    const w = word(b, first + i);
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  }
  return deviceString(out);
}

/** Bits 15:14 of words 48, 83, 84, 87, 106 and 119 are 01 when the word holds anything. */
function validWord(w: number): boolean {
  return (w & 0xc000) === 0x4000;
}

function bit(w: number, n: number): boolean {
  return ((w >> n) & 1) === 1;
}

/** The decoded answer; throws only when it is not 512 bytes. */
export function decodeIdentify(b: Uint8Array): AtaIdentity {
  if (b.length !== IDENTIFY_BYTES) throw new RangeError(`IDENTIFY DEVICE answers 512 bytes, not ${b.length}`);
  const w83 = word(b, 83);
  const w86 = word(b, 86);
  const w82 = word(b, 82);
  const w85 = word(b, 85);
  const lba48 = validWord(w83) && bit(w83, 10) && bit(w86, 10);
  const lba28 = word(b, 60) + word(b, 61) * 0x10000;
  // 48-bit count; words above 2^53 sectors would not be exact in a JS number, and no drive has them.
  const lba48Count = word(b, 100) + word(b, 101) * 2 ** 16 + word(b, 102) * 2 ** 32 + Math.min(word(b, 103), 0x1f) * 2 ** 48;
  const w106 = word(b, 106);
  let logical = 512;
  let physical = 512;
  if (validWord(w106)) {
    if (bit(w106, 12)) {
      const words = word(b, 117) + word(b, 118) * 0x10000;
      // 256 words is 512 bytes; a lying size outside 256..32768 words (64 KiB sectors) is not believed.
      if (words >= 256 && words <= 32768) logical = words * 2;
    }
    physical = bit(w106, 13) ? logical * 2 ** (w106 & 0x0f) : logical;
  }
  const w87 = word(b, 87);
  const w84 = word(b, 84);
  const hasWwn = (validWord(w84) && bit(w84, 8)) || (validWord(w87) && bit(w87, 8));
  const wwn = hasWwn ? [108, 109, 110, 111].map((i) => word(b, i).toString(16).padStart(4, '0')).join('') : null;
  const w128 = word(b, 128);
  const w119 = word(b, 119);
  const w48 = word(b, 48);
  const w217 = word(b, 217);
  return {
    model: ataString(b, 27, 20),
    serial: ataString(b, 10, 10),
    firmware: ataString(b, 23, 4),
    wwn,
    lba48,
    userSectors: lba48 ? lba48Count : lba28,
    logicalSectorBytes: logical,
    physicalSectorBytes: physical,
    hpa: { supported: validWord(w83) && bit(w82, 10), enabled: bit(w85, 10) },
    dcoSupported: validWord(w83) && bit(w83, 11),
    amaSupported: validWord(w119) && bit(w119, 8),
    trustedComputing: validWord(w48) && bit(w48, 0),
    security: {
      supported: bit(w128, 0),
      enabled: bit(w128, 0) && bit(w128, 1),
      locked: bit(w128, 0) && bit(w128, 2),
      frozen: bit(w128, 0) && bit(w128, 3),
      countExpired: bit(w128, 0) && bit(w128, 4),
    },
    rotationRate: w217 === 1 || (w217 >= 0x0401 && w217 <= 0xfffe) ? w217 : null,
    integrity: integrityOf(b),
  };
}

/** Word 255: signature A5h in the low byte, and all 512 bytes summing to 0 mod 256. */
function integrityOf(b: Uint8Array): AtaIdentity['integrity'] {
  if (b[510] !== 0xa5) return 'absent';
  let sum = 0;
  for (const x of b) sum = (sum + x) & 0xff;
  return sum === 0 ? 'valid' : 'bad';
}
