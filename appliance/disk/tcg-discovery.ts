// TCG Storage Level 0 Discovery (TCG Storage Architecture Core Spec 3.3.6):
// a self-encrypting drive says which security subsystem classes it implements
// (Opal, Opalite, Pyrite, Ruby, Enterprise) and whether locking is enabled and
// a range locked. Asked with Security Protocol 01h, ComID 0001h: IF-RECV,
// which only reads (TRUSTED RECEIVE inside ATA PASS-THROUGH, NVMe Security
// Receive; both on the native allowlist).
import { native } from '../native.js';

export interface TcgLocking {
  supported: boolean;
  enabled: boolean;
  /** At least one locking range is locked: its sectors read as errors until it is unlocked. */
  locked: boolean;
  mediaEncryption: boolean;
  /** The shadow MBR is on and not done: the host sees the pre-boot image, not the user data, at LBA 0. */
  mbrEnabled: boolean;
  mbrDone: boolean;
}

export interface TcgDiscovery {
  /** The subsystem classes the drive reports, by name ('Opal 2', 'Enterprise', ...), and feature codes it reports that custos does not name, in hex. */
  sscs: string[];
  locking: TcgLocking | null;
}

const SSC_NAMES: Record<number, string> = {
  0x0100: 'Enterprise',
  0x0200: 'Opal 1',
  0x0203: 'Opal 2',
  0x0301: 'Opalite',
  0x0302: 'Pyrite 1',
  0x0303: 'Pyrite 2',
  0x0304: 'Ruby',
  0x0305: 'Key Per I/O',
};
const LOCKING = 0x0002;
const HEADER_BYTES = 48;
export const DISCOVERY_BYTES = 2048;
const TIMEOUT_MS = 10_000;

/** Decodes a Level 0 Discovery answer; null when it is none (too short, no length, nothing in it). Lengths are never trusted past the buffer. */
export function decodeLevel0(b: Uint8Array): TcgDiscovery | null {
  if (b.length < HEADER_BYTES) return null;
  const v = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const total = v.readUInt32BE(0);
  if (total < HEADER_BYTES - 4) return null;
  const end = Math.min(b.length, total + 4);
  const sscs: string[] = [];
  let locking: TcgLocking | null = null;
  for (let at = HEADER_BYTES; at + 4 <= end;) {
    const code = v.readUInt16BE(at);
    const len = v[at + 3] as number;
    if (at + 4 + len > end) break;
    if (code === LOCKING && len >= 1) {
      const f = v[at + 4] as number;
      locking = {
        supported: (f & 0x01) !== 0,
        enabled: (f & 0x02) !== 0,
        locked: (f & 0x04) !== 0,
        mediaEncryption: (f & 0x08) !== 0,
        mbrEnabled: (f & 0x10) !== 0,
        mbrDone: (f & 0x20) !== 0,
      };
    } else if (SSC_NAMES[code]) sscs.push(SSC_NAMES[code]);
    at += 4 + len;
  }
  if (sscs.length === 0 && locking === null) return null;
  return { sscs, locking };
}

/** TRUSTED RECEIVE (5Ch) inside ATA PASS-THROUGH(16): protocol 01h, ComID 0001h (SP Specific in LBA 15:8), one 512-byte block. */
export function ataTrustedReceiveCdb(): Uint8Array {
  const cdb = new Uint8Array(16);
  cdb[0] = 0x85;
  cdb[1] = 4 << 1; // PIO data-in
  cdb[2] = 0x0e; // T_DIR from the device, BYT_BLOK, T_LENGTH in COUNT
  cdb[4] = 0x01; // FEATURES: security protocol 01h
  cdb[6] = 1; // COUNT: one block
  cdb[10] = 0x01; // LBA 15:8: ComID 0001h, low byte
  cdb[13] = 0x40;
  cdb[14] = 0x5c;
  return cdb;
}

/** Level 0 Discovery from an ATA drive (directly or through SAT); null when it gives none. */
export async function ataLevel0(fd: number): Promise<TcgDiscovery | null> {
  const a = await native().scsiRead(fd, ataTrustedReceiveCdb(), 512, TIMEOUT_MS);
  return a.status === 0 && a.hostStatus === 0 ? decodeLevel0(a.data) : null;
}

/** SECURITY PROTOCOL IN (A2h, SPC-4): protocol 01h, ComID 0001h, allocation length in bytes (INC_512 clear). */
export function scsiSecurityProtocolInCdb(): Uint8Array {
  const cdb = new Uint8Array(12);
  cdb[0] = 0xa2;
  cdb[1] = 0x01;
  cdb[3] = 0x01;
  new DataView(cdb.buffer).setUint32(6, DISCOVERY_BYTES);
  return cdb;
}

/** Level 0 Discovery from a SCSI/SAS drive (TCG Enterprise SAS SEDs); a drive without security protocols rejects the opcode. */
export async function scsiLevel0(fd: number): Promise<TcgDiscovery | null> {
  const a = await native().scsiRead(fd, scsiSecurityProtocolInCdb(), DISCOVERY_BYTES, TIMEOUT_MS);
  return a.status === 0 && a.hostStatus === 0 ? decodeLevel0(a.data) : null;
}

/** Level 0 Discovery from an NVMe controller: Security Receive, SECP 01h, SPSP 0001h. */
export async function nvmeLevel0(fd: number): Promise<TcgDiscovery | null> {
  const a = await native().nvmeAdminRead(fd, 0x82, 0, Uint32Array.of((0x01 << 24) | (0x0001 << 8), DISCOVERY_BYTES, 0, 0, 0, 0), DISCOVERY_BYTES, TIMEOUT_MS);
  return a.status === 0 ? decodeLevel0(a.data) : null;
}
