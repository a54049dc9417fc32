// Malformed and hostile container headers, generated: every format custos
// takes is made by qemu-img, then its header fields are smashed with extreme
// values, its bytes flipped and the file cut, with the VHDX checksums
// recomputed so the damage reaches past them. Each case is resolved, opened
// through qemu-nbd in the sandbox and read at its start, middle and end; the
// only acceptable outcomes are data or a CustosError (a clear message), each
// within a time bound, and no qemu-nbd left behind. Seeded, so every run
// tries the same cases.
import test from 'ava';
import { execa } from 'execa';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CustosError } from '../../appliance/errors.js';
import { resolveChain } from '../../appliance/vdisk/container-chain.js';
import { crc32c } from '../../appliance/vdisk/container-ids.js';
import { VirtualDiskReader } from '../../appliance/vdisk/virtual-disk-reader.js';
import { tempDir } from '../helpers/loop.js';
import { xorshift } from '../helpers/mixed-content.js';

const CASES_PER_FORMAT = 18;
/** One case: qemu-img info, qemu-nbd start, three reads. A case that takes longer is a hang. */
const CASE_BUDGET_MS = 20_000;

interface Seed {
  name: string;
  file: string;
  make: string[];
  /** Byte ranges [start, end) that hold header structures, given the pristine file. */
  ranges: (b: Buffer) => [number, number][];
  /** Recomputes checksums after a mutation, so it is not just refused by them. */
  fixup?: (b: Buffer) => void;
}

/** VHDX headers (4 KiB) and region tables (64 KiB) carry a CRC-32C at offset 4 over the structure with that field zero. */
function vhdxFixup(b: Buffer): void {
  for (const [at, len] of [
    [64 * 1024, 4096],
    [128 * 1024, 4096],
    [192 * 1024, 64 * 1024],
    [256 * 1024, 64 * 1024],
  ] as const) {
    if (b.length < at + len) continue;
    b.writeUInt32LE(0, at + 4);
    b.writeUInt32LE(crc32c(b.subarray(at, at + len)), at + 4);
  }
}

/** A VHD footer's checksum (offset 64) and a dynamic header's (offset 36): the one's complement of the byte sum without it. */
function vhdFixup(b: Buffer): void {
  const sum = (at: number, len: number, field: number) => {
    if (at < 0 || b.length < at + len || b.subarray(at, at + 8).toString('latin1') !== (len === 512 ? 'conectix' : 'cxsparse')) return;
    b.writeUInt32BE(0, at + field);
    let s = 0;
    for (const x of b.subarray(at, at + len)) s += x;
    b.writeUInt32BE(~s >>> 0, at + field);
  };
  sum(0, 512, 64);
  sum(512, 1024, 36);
  sum(b.length - 512, 512, 64);
}

const SEEDS: Seed[] = [
  {
    name: 'QCOW2',
    file: 'disk.qcow2',
    make: ['-O', 'qcow2'],
    ranges: (b) => {
      const l1 = Number(b.readBigUInt64BE(40));
      const refcount = Number(b.readBigUInt64BE(48));
      return [
        [0, 112],
        [l1, l1 + 64],
        [refcount, refcount + 64],
      ];
    },
  },
  {
    name: 'QCOW2 compressed',
    file: 'disk.qcow2',
    make: ['-O', 'qcow2', '-c'],
    ranges: (b) => [
      [0, 112],
      [Number(b.readBigUInt64BE(40)), Number(b.readBigUInt64BE(40)) + 64],
    ],
  },
  {
    name: 'VMDK monolithicSparse',
    file: 'disk.vmdk',
    make: ['-O', 'vmdk', '-o', 'subformat=monolithicSparse'],
    // The SparseExtentHeader, the embedded descriptor (text) and the grain directory.
    ranges: (b) => [
      [0, 80],
      [512, 1400],
      [Number(b.readBigUInt64LE(56)) * 512, Number(b.readBigUInt64LE(56)) * 512 + 64],
    ],
  },
  {
    name: 'VMDK streamOptimized',
    file: 'disk.vmdk',
    make: ['-O', 'vmdk', '-o', 'subformat=streamOptimized'],
    ranges: (b) => [
      [0, 80],
      [512, 1400],
      [b.length - 1536, b.length],
    ],
  },
  {
    name: 'VHD dynamic',
    file: 'disk.vhd',
    make: ['-O', 'vpc', '-o', 'subformat=dynamic'],
    // The footer copy, the dynamic header, the block allocation table, the footer.
    ranges: (b) => [
      [0, 512],
      [512, 1024],
      [Number(b.readBigUInt64BE(512 + 16)), Number(b.readBigUInt64BE(512 + 16)) + 64],
      [b.length - 512, b.length],
    ],
    fixup: vhdFixup,
  },
  { name: 'VHD fixed', file: 'disk.vhd', make: ['-O', 'vpc', '-o', 'subformat=fixed'], ranges: (b) => [[b.length - 512, b.length]], fixup: vhdFixup },
  {
    name: 'VHDX',
    file: 'disk.vhdx',
    make: ['-O', 'vhdx'],
    // File identifier, both headers, both region tables, and the metadata region's table and items.
    ranges: (b) => {
      const meta = b.indexOf(Buffer.from('metadata'), 256 * 1024);
      return [
        [0, 16],
        [64 * 1024, 64 * 1024 + 80],
        [128 * 1024, 128 * 1024 + 80],
        [192 * 1024, 192 * 1024 + 80],
        [meta, meta + 256],
        [meta + 64 * 1024, meta + 64 * 1024 + 64],
      ];
    },
    fixup: vhdxFixup,
  },
  {
    name: 'VDI',
    file: 'disk.vdi',
    make: ['-O', 'vdi'],
    ranges: (b) => [
      [0, 0x200],
      [b.readUInt32LE(0x154), b.readUInt32LE(0x154) + 64],
    ],
  },
];

const EXTREMES = [
  0n,
  1n,
  0x7fn,
  0xffn,
  0x7fffn,
  0xffffn,
  0x7fffffffn,
  0x80000000n,
  0xffffffffn,
  0x7fffffffffffffffn,
  0xffffffffffffffffn,
  0x100000000n,
  0x200n,
];

type Mutation =
  { kind: 'field'; at: number; width: 2 | 4 | 8; value: bigint; le: boolean } | { kind: 'flip'; at: number; count: number } | { kind: 'cut'; to: number };

function mutations(seed: Seed, pristine: Buffer, caseSeed: number): Mutation[] {
  const next = xorshift(caseSeed);
  const ranges = seed.ranges(pristine).filter(([a, b]) => a >= 0 && b > a && b <= pristine.length);
  const pickAt = () => {
    const [a, b] = ranges[next() % ranges.length] ?? [0, 512];
    return a + (next() % (b - a));
  };
  const out: Mutation[] = [];
  const n = 1 + (next() % 3);
  for (let i = 0; i < n; i++) {
    const r = next() % 10;
    if (r < 6) {
      const width = ([2, 4, 8] as const)[next() % 3] ?? 4;
      const at = pickAt() & ~(width - 1);
      const value = next() % 4 === 0 ? BigInt(pristine.length + (next() % 3) - 1) : (EXTREMES[next() % EXTREMES.length] ?? 0n);
      out.push({ kind: 'field', at, width, value, le: next() % 2 === 0 });
    } else if (r < 9) out.push({ kind: 'flip', at: pickAt(), count: 1 + (next() % 8) });
    else out.push({ kind: 'cut', to: next() % pristine.length });
  }
  return out;
}

function apply(b: Buffer, m: Mutation): Buffer {
  if (m.kind === 'cut') return b.subarray(0, m.to);
  if (m.kind === 'flip') {
    for (let i = 0; i < m.count && m.at + i < b.length; i++) b[m.at + i] = (b[m.at + i] ?? 0) ^ (0x5a + i * 37);
    return b;
  }
  if (m.at + m.width > b.length) return b;
  const v = BigInt.asUintN(m.width * 8, m.value);
  if (m.width === 8) {
    if (m.le) b.writeBigUInt64LE(v, m.at);
    else b.writeBigUInt64BE(v, m.at);
  } else if (m.le) b.writeUIntLE(Number(v), m.at, m.width);
  else b.writeUIntBE(Number(v), m.at, m.width);
  return b;
}

function withinBudget<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${CASE_BUDGET_MS / 1000} s (a hang)`)), CASE_BUDGET_MS);
  });
  return Promise.race([p, hang]).finally(() => clearTimeout(timer));
}

/** Resolve, open, read the start, middle and end: 'read' or the CustosError's code. */
async function tryContainer(file: string): Promise<string> {
  try {
    const chain = await resolveChain(file);
    const reader = await VirtualDiskReader.open(chain);
    try {
      const buf = Buffer.alloc(64 * 1024);
      for (const at of [0, Math.floor(reader.size / 2 / 512) * 512, Math.max(0, reader.size - buf.length)]) await reader.read(buf, buf.length, at);
    } finally {
      reader.close();
    }
    return 'read';
  } catch (e) {
    if (e instanceof CustosError) return `${e.code}: ${e.message.replace(/case-\d+/g, 'case').slice(0, 160)}`;
    throw e;
  }
}

for (const seed of SEEDS) {
  test(`fuzz ${seed.name}: ${CASES_PER_FORMAT} damaged headers each give data or a CustosError, in time, and leave no qemu-nbd`, async (t) => {
    t.timeout(CASES_PER_FORMAT * CASE_BUDGET_MS);
    const root = tempDir();
    t.teardown(() => rmSync(root, { recursive: true, force: true }));
    // A small guest disk with data in its first, middle and last MiB, so every table has entries.
    const raw = path.join(root, 'guest.raw');
    const guest = Buffer.alloc(6 * 1024 * 1024);
    for (const at of [0, 3, 5]) guest.fill(0x40 + at, at * 1024 * 1024, at * 1024 * 1024 + 300 * 1024);
    writeFileSync(raw, guest);
    const pristinePath = path.join(root, seed.file);
    await execa('qemu-img', ['convert', '-q', '-f', 'raw', ...seed.make, raw, pristinePath]);
    const pristine = readFileSync(pristinePath);
    t.is(await tryContainer(pristinePath), 'read', 'the undamaged container reads');

    const outcomes = new Map<string, number>();
    for (let i = 0; i < CASES_PER_FORMAT; i++) {
      const caseSeed = 0x9e3779b1 * (i + 1) + seed.name.length * 7919;
      const ms = mutations(seed, pristine, caseSeed);
      let b: Buffer = Buffer.from(pristine);
      for (const m of ms) b = apply(b, m);
      seed.fixup?.(b);
      const dir = path.join(root, `case-${i}`);
      mkdirSync(dir);
      const file = path.join(dir, seed.file);
      writeFileSync(file, b);
      copyFileSync(file, `${file}.given`);
      const what = `${seed.name} case ${i} ${JSON.stringify(ms, (_, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))}`;
      const outcome = await withinBudget(tryContainer(file), what).catch((e: unknown) => {
        t.fail(`${what}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        return 'unexpected';
      });
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      t.true(readFileSync(file).equals(readFileSync(`${file}.given`)), `${what}: the container is unchanged`);
    }
    // qemu-nbd gets SIGTERM on close; give it a moment, then no sandbox may still hold a case's folder.
    await new Promise((r) => setTimeout(r, 300));
    const left = await execa('pgrep', ['-a', '-f', root], { reject: false });
    t.is(left.stdout, '', 'no qemu-nbd left running');
    t.log(`${seed.name}:\n${[...outcomes].map(([k, v]) => `${v} x ${k}`).join('\n')}`);
    t.true(outcomes.size >= 1);
  });
}
