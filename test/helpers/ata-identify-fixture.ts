// Builds IDENTIFY DEVICE answers for what QEMU cannot emulate (HPA, DCO, locked
// drives, 4Kn): a canned answer, decoded by custos and by hdparm --Istdin.

export interface IdentifyFixture {
  model?: string | Uint8Array;
  serial?: string;
  firmware?: string;
  lba28?: number;
  /** 48-bit user sectors; leaves 48-bit addressing off when absent. */
  lba48?: number;
  hpa?: 'none' | 'supported' | 'enabled';
  dco?: boolean;
  ama?: boolean;
  tcg?: boolean;
  security?: { enabled?: boolean; locked?: boolean; frozen?: boolean; expired?: boolean };
  /** Logical sector bytes (4096 for 4Kn) and physical per logical as a power of two. */
  logicalBytes?: number;
  physicalExponent?: number;
  wwn?: string;
  ssd?: boolean;
  checksum?: 'valid' | 'bad' | 'absent';
}

function putString(w: number[], first: number, words: number, s: string | Uint8Array): void {
  const bytes = typeof s === 'string' ? Buffer.from(s.padEnd(words * 2, ' '), 'latin1') : Buffer.concat([Buffer.from(s), Buffer.alloc(words * 2, 0x20)]);
  for (let i = 0; i < words; i++) w[first + i] = ((bytes[2 * i] as number) << 8) | (bytes[2 * i + 1] as number);
}

export function identifyWords(f: IdentifyFixture): number[] {
  const w = new Array<number>(256).fill(0);
  w[0] = 0x0040;
  w[49] = 0x0200; // LBA supported
  putString(w, 10, 10, f.serial ?? 'FIXTURE-SERIAL');
  putString(w, 23, 4, f.firmware ?? 'FW01');
  putString(w, 27, 20, f.model ?? 'CUSTOS FIXTURE DISK');
  const lba28 = f.lba28 ?? Math.min(f.lba48 ?? 1_000_000, 0x0fffffff);
  w[60] = lba28 & 0xffff;
  w[61] = Math.floor(lba28 / 0x10000) & 0xffff;
  w[82] = 0x4000 | (f.security ? 0x0002 : 0) | (f.hpa && f.hpa !== 'none' ? 0x0400 : 0);
  w[83] = 0x4000 | (f.lba48 !== undefined ? 0x0400 : 0) | (f.dco ? 0x0800 : 0);
  w[84] = 0x4000 | (f.wwn ? 0x0100 : 0);
  w[85] = 0x4000 | (f.hpa === 'enabled' ? 0x0400 : 0) | (f.security?.enabled ? 0x0002 : 0);
  w[86] = f.lba48 !== undefined ? 0x0400 : 0;
  w[87] = 0x4000 | (f.wwn ? 0x0100 : 0);
  w[48] = f.tcg ? 0x4001 : 0;
  w[119] = 0x4000 | (f.ama ? 0x0100 : 0);
  if (f.lba48 !== undefined) {
    let n = f.lba48;
    for (let i = 100; i <= 103; i++) {
      w[i] = n % 0x10000;
      n = Math.floor(n / 0x10000);
    }
  }
  const logical = f.logicalBytes ?? 512;
  const exp = f.physicalExponent ?? 0;
  if (logical !== 512 || exp !== 0) {
    w[106] = 0x4000 | (logical !== 512 ? 0x1000 : 0) | (exp ? 0x2000 | exp : 0);
    if (logical !== 512) {
      w[117] = (logical / 2) & 0xffff;
      w[118] = Math.floor(logical / 2 / 0x10000);
    }
  }
  if (f.wwn) for (let i = 0; i < 4; i++) w[108 + i] = parseInt(f.wwn.slice(4 * i, 4 * i + 4), 16);
  if (f.security) {
    const s = f.security;
    w[128] = 0x0001 | (s.enabled ? 0x0002 : 0) | (s.locked ? 0x0004 : 0) | (s.frozen ? 0x0008 : 0) | (s.expired ? 0x0010 : 0);
  }
  w[217] = f.ssd ? 1 : 7200;
  const checksum = f.checksum ?? 'valid';
  if (checksum !== 'absent') {
    w[255] = 0xa5;
    let sum = 0;
    for (const x of w) sum += (x & 0xff) + (x >> 8);
    w[255] = 0xa5 | (((256 - (sum & 0xff)) & 0xff) << 8);
    if (checksum === 'bad') w[255] ^= 0x0100;
  }
  return w;
}

export function identifyBytes(f: IdentifyFixture): Buffer {
  const b = Buffer.alloc(512);
  identifyWords(f).forEach((x, i) => b.writeUInt16LE(x, 2 * i));
  return b;
}

/** The text `hdparm --Istdin` reads: the words in hex, eight to a line. */
export function identifyHex(f: IdentifyFixture): string {
  const w = identifyWords(f);
  const lines: string[] = [];
  for (let i = 0; i < 256; i += 8)
    lines.push(
      w
        .slice(i, i + 8)
        .map((x) => x.toString(16).padStart(4, '0'))
        .join(' '),
    );
  return lines.join('\n') + '\n';
}
