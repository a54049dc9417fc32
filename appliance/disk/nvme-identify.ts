// Decodes NVMe Identify answers (NVMe Base Specification 2.0, 5.17.2): the
// controller's identity and total capacity, each namespace's size, and the
// namespace lists. Every byte comes from controller firmware: strings are
// sanitized, counts are bounded, and 128-bit capacities are kept as decimal
// strings (a JS number would round them).
import { deviceString, type DeviceString } from '../sanitize.js';

export const IDENTIFY_NVME_BYTES = 4096;

export interface NvmeController {
  serial: DeviceString;
  model: DeviceString;
  firmware: DeviceString;
  /** Namespace Management supported (OACS bit 3): namespaces can exist that are not attached. */
  namespaceManagement: boolean;
  /** Security Send/Receive supported (OACS bit 0): the controller may be a TCG (Opal) drive. */
  securityCommands: boolean;
  /** Total and unallocated NVM capacity in bytes (TNVMCAP, UNVMCAP), decimal; '0' when not reported. */
  totalCapacity: string;
  unallocatedCapacity: string;
  /** The highest namespace ID the controller has (NN). */
  namespaces: number;
}

export interface NvmeNamespace {
  /** Size, capacity and use in logical blocks (NSZE, NCAP, NUSE). */
  sizeBlocks: number;
  capacityBlocks: number;
  usedBlocks: number;
  blockBytes: number;
}

function le(b: Uint8Array, at: number, bytes: number): bigint {
  let v = 0n;
  for (let i = bytes - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[at + i] ?? 0);
  return v;
}

/** A 64-bit count as a number, held to what a JS number carries exactly. */
function count(b: Uint8Array, at: number): number {
  const v = le(b, at, 8);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

function need(b: Uint8Array): void {
  if (b.length !== IDENTIFY_NVME_BYTES) throw new RangeError(`an NVMe Identify answer is 4096 bytes, not ${b.length}`);
}

export function decodeController(b: Uint8Array): NvmeController {
  need(b);
  const oacs = Number(le(b, 256, 2));
  return {
    serial: deviceString(b.subarray(4, 24)),
    model: deviceString(b.subarray(24, 64)),
    firmware: deviceString(b.subarray(64, 72)),
    namespaceManagement: (oacs & 0x08) !== 0,
    securityCommands: (oacs & 0x01) !== 0,
    totalCapacity: le(b, 280, 16).toString(),
    unallocatedCapacity: le(b, 296, 16).toString(),
    namespaces: Number(le(b, 516, 4)),
  };
}

export function decodeNamespace(b: Uint8Array): NvmeNamespace {
  need(b);
  const nlbaf = b[25] ?? 0;
  const flbas = b[26] ?? 0;
  // FLBAS bits 3:0, and 6:5 above them when there are more than 16 formats.
  const index = (flbas & 0x0f) | (nlbaf >= 16 ? ((flbas >> 5) & 0x03) << 4 : 0);
  const lbads = b[128 + 4 * Math.min(index, 63) + 2] ?? 0;
  // LBADS is a power of two, at least 9 (512 bytes); a lying one is not believed.
  const blockBytes = lbads >= 9 && lbads <= 16 ? 2 ** lbads : 512;
  return { sizeBlocks: count(b, 0), capacityBlocks: count(b, 8), usedBlocks: count(b, 16), blockBytes };
}

/** A namespace list (CNS 02h active, 10h allocated): up to 1024 IDs, ascending, ended by 0. */
export function decodeNamespaceList(b: Uint8Array): number[] {
  need(b);
  const ids: number[] = [];
  for (let i = 0; i < 1024; i++) {
    const id = Number(le(b, 4 * i, 4));
    if (id === 0 || id === 0xffffffff) break;
    ids.push(id);
  }
  return ids;
}
