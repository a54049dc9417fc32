// npm run bench: custos acquire side by side with dc3dd on one tmpfs-backed
// loop source, with the read limit and each hash's single-core limit measured
// in the same run. Prints MiB/s and ratios; writes them as JSON.
import { execa } from 'execa';
import { createHash, randomFillSync } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ImageRecord } from '../appliance/imaging/image-record.js';
import { parseSize } from '../appliance/imaging/sizes.js';
import { writeMixedImage } from '../test/helpers/mixed-content.js';
import { MiB, median, seconds, timed } from './bench-timing.js';
import { benchVirtual } from './vdisk-bench.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CUSTOS = path.join(root, 'appliance/bin/custos');
const size = parseSize(process.env['CUSTOS_BENCH_SIZE'] ?? '2G', 'CUSTOS_BENCH_SIZE');
const resultFile = process.env['CUSTOS_BENCH_JSON'] ?? path.join(root, 'out/bench/acquire-bench.json');
const rounds = Number(process.env['CUSTOS_BENCH_ROUNDS'] ?? '3');
if (!Number.isInteger(rounds) || rounds < 1) throw new Error('CUSTOS_BENCH_ROUNDS must be a positive integer');

function writeStat(name: string): number {
  const f = readFileSync(`/sys/block/${name}/stat`, 'utf8').trim().split(/\s+/).map(Number);
  return (f[4] ?? 0) + (f[11] ?? 0);
}

/** One core, one algorithm, data already in memory: the fastest that hash can go here. */
function hashLimit(alg: string): number {
  const buf = Buffer.alloc(64 * MiB);
  randomFillSync(buf);
  const rounds = Math.max(4, Math.round(Math.min(size, 1024 * MiB) / buf.length));
  const h = createHash(alg);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) h.update(buf);
  h.digest();
  return (rounds * buf.length) / MiB / seconds(t0);
}

// This VM hands freed memory back to its host (virtio-balloon free page
// reporting), and the host then backs it again lazily: whichever tool writes
// into recently freed pages pays host page faults, which made single runs up
// to 2x slower at random. Reporting is switched off for the bench (order 11
// is above the largest free block, MAX_PAGE_ORDER 10) and put back afterwards.
const PAGE_REPORTING = '/sys/module/page_reporting/parameters/page_reporting_order';

function pauseFreePageReporting(): (() => void) | null {
  if (process.env['CUSTOS_BENCH_KEEP_REPORTING'] === '1') return null;
  let before: string;
  try {
    before = readFileSync(PAGE_REPORTING, 'utf8').trim();
    writeFileSync(PAGE_REPORTING, '11');
  } catch {
    return null;
  }
  return () => writeFileSync(PAGE_REPORTING, before);
}

async function main(): Promise<void> {
  const resumeReporting = pauseFreePageReporting();
  if (resumeReporting) process.stderr.write(`bench: free page reporting paused (${PAGE_REPORTING}), restored at the end\n`);
  try {
    await bench();
  } finally {
    resumeReporting?.();
  }
}

async function bench(): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'custos-bench-'));
  const mnt = path.join(work, 'tmpfs');
  mkdirSync(mnt);
  await execa('mount', ['-t', 'tmpfs', '-o', `size=${Math.ceil((2 * size) / MiB) + 256}m,huge=always`, 'custos-bench', mnt]);
  let loop = '';
  try {
    const srcFile = path.join(mnt, 'source.img');
    process.stderr.write(`bench: ${size / MiB} MiB random source on tmpfs...\n`);
    const fd = openSync(srcFile, 'w');
    const chunk = Buffer.alloc(16 * MiB);
    for (let off = 0; off < size; off += chunk.length) {
      randomFillSync(chunk);
      writeSync(fd, chunk, 0, Math.min(chunk.length, size - off), off);
    }
    closeSync(fd);
    loop = (await execa('losetup', ['--find', '--show', srcFile])).stdout.trim();
    const name = path.basename(loop);
    const state = path.join(work, 'state');
    mkdirSync(state);
    const env = { CUSTOS_STATE_DIR: state };
    await execa(CUSTOS, ['writeblock', 'protect', loop], { env });
    const writesBefore = writeStat(name);
    const out = path.join(mnt, 'out');
    const fresh = () => {
      rmSync(out, { recursive: true, force: true });
      mkdirSync(out);
    };
    const rate = (s: number) => size / MiB / s;
    // A VM backs guest memory lazily: the first touch of a page costs far more
    // than later ones. Touch as much as one image once, so that whichever tool
    // runs first is not charged for it.
    await execa('dd', ['if=/dev/zero', `of=${path.join(mnt, 'warm')}`, 'bs=4M', `count=${Math.ceil(size / (4 * MiB))}`]);
    rmSync(path.join(mnt, 'warm'));

    // One untimed custos run: the first acquisition of a boot hashes the executable and reads the
    // host's firmware identity (both then cached for the boot); the timed runs are the usual case.
    fresh();
    await execa(CUSTOS, ['acquire', '--source', loop, '--out', out, '--hash', 'sha256'], { env });
    fresh();

    if (process.env['CUSTOS_BENCH_ONLY'] === 'e01') {
      // Development shortcut: the E01 comparison alone.
      await execa('blockdev', ['--setrw', loop], { reject: false });
      await execa('losetup', ['-d', loop]);
      loop = '';
      rmSync(srcFile);
      process.stdout.write(JSON.stringify(await benchE01(mnt, env), null, 1) + '\n');
      return;
    }
    if (process.env['CUSTOS_BENCH_ONLY'] === 'vdisk') {
      // Development shortcut: the virtual disk comparison alone.
      await execa('blockdev', ['--setrw', loop], { reject: false });
      await execa('losetup', ['-d', loop]);
      loop = '';
      rmSync(srcFile);
      process.stdout.write(JSON.stringify(await benchVirtual(mnt, env, { custos: CUSTOS, size, rounds, md5Limit: hashLimit('md5') }), null, 1) + '\n');
      return;
    }
    const dd = await timed('dd', [`if=${loop}`, 'of=/dev/null', 'bs=4M', 'iflag=direct']);
    const readLimit = rate(dd.s);
    const limits: Record<string, number> = {};
    for (const alg of ['md5', 'sha256']) limits[alg] = hashLimit(alg);

    const scenarios = [
      { label: 'sha256', custos: 'sha256', dc3dd: ['hash=sha256'] },
      { label: 'md5+sha256', custos: 'md5,sha256', dc3dd: ['hash=md5', 'hash=sha256'] },
    ];
    // This machine is shared: one run of each can be 30% off either way. Each
    // tool runs `rounds` times, interleaved and in a rotating order so that no
    // tool always runs first or after a given other; the median counts.
    type Tool = 'same' | 'dc3dd' | 'default';
    const rows = [];
    for (const sc of scenarios) {
      const runs = async (tool: Tool): Promise<{ s: number; record: ImageRecord | null }> => {
        fresh();
        if (tool === 'dc3dd') {
          const d = await timed('dc3dd', [`if=${loop}`, `of=${path.join(out, 'dc3dd.img')}`, ...sc.dc3dd, `log=${path.join(work, `dc3dd-${sc.label}.log`)}`]);
          return { s: d.s, record: null };
        }
        // 'same': like for like, the same linear hashes as dc3dd and nothing else;
        // 'default': also the piecewise SHA-256, work dc3dd does not do.
        const extra = tool === 'same' ? ['--piece-size', '0'] : [];
        const r = await timed(CUSTOS, ['acquire', '--source', loop, '--out', out, '--hash', sc.custos, ...extra, '--json'], env);
        return { s: r.s, record: JSON.parse(r.stdout) as ImageRecord };
      };
      const samples: Record<Tool, number[]> = { same: [], dc3dd: [], default: [] };
      const records: ImageRecord[] = [];
      const order: Tool[] = ['same', 'dc3dd', 'default'];
      for (let round = 0; round < rounds; round++) {
        for (let k = 0; k < order.length; k++) {
          const tool = order[(k + round) % order.length] as Tool;
          const r = await runs(tool);
          samples[tool].push(r.s);
          if (r.record) records.push(r.record);
        }
      }
      const same = rate(median(samples.same));
      const d = rate(median(samples.dc3dd));
      const def = rate(median(samples.default));
      const limit = Math.min(readLimit, ...sc.custos.split(',').map((a) => limits[a] ?? Infinity));
      rows.push({
        scenario: sc.label,
        custosMiBs: same,
        dc3ddMiBs: d,
        custosWithPiecesMiBs: def,
        limitMiBs: limit,
        custosOverDc3dd: same / d,
        custosOverLimit: same / limit,
        custosOverMd5Limit: same / (limits['md5'] ?? Infinity),
        withPiecesOverDc3dd: def / d,
        peakRssMiB: Math.max(...records.map((r) => r.timing.peakRssMiB)),
        secondsPerRun: samples,
        stages: records[0]?.stages ?? [],
      });
    }
    fresh();
    let sourceWrites = writeStat(name) - writesBefore;
    // E01 on a mixed source, on the same tmpfs: the random source goes first to make room.
    await execa('blockdev', ['--setrw', loop], { reject: false });
    await execa('losetup', ['-d', loop]);
    loop = '';
    rmSync(srcFile);
    const e01 = await benchE01(mnt, env);
    sourceWrites += e01.sourceWrites;
    const vdisk = await benchVirtual(mnt, env, { custos: CUSTOS, size, rounds, md5Limit: limits['md5'] ?? Infinity });
    const sha = rows.find((r) => r.scenario === 'sha256');
    const both = rows.find((r) => r.scenario === 'md5+sha256');
    const targets = {
      sha256AtLeast4xDc3dd: (sha?.custosOverDc3dd ?? 0) >= 4,
      md5Sha256AtLeast2_5xDc3dd: (both?.custosOverDc3dd ?? 0) >= 2.5,
      md5Sha256AtLeast0_75OfMd5Limit: (both?.custosOverMd5Limit ?? 0) >= 0.75,
      e01FastAtLeast2_5xEwfacquire: e01.fastOverEwfacquire >= 2.5,
      e01EmptyAtLeast0_8xRaw: e01.emptyOverRaw >= 0.8,
      vdiskAtLeast1_5xQemuImgAndHashes: vdisk.custosOverQemuImgAndHashes >= 1.5 && vdisk.hashesAgree,
      sourceWritesZero: sourceWrites === 0,
    };
    const result = {
      date: new Date().toISOString(),
      sizeBytes: size,
      rounds,
      freePageReportingPaused: process.env['CUSTOS_BENCH_KEEP_REPORTING'] !== '1' && existsSync(PAGE_REPORTING),
      cpus: os.cpus().length,
      node: process.version,
      readLimitMiBs: readLimit,
      hashLimitsMiBs: limits,
      rows,
      e01,
      vdisk,
      sourceWrites,
      targets,
    };
    mkdirSync(path.dirname(resultFile), { recursive: true });
    writeFileSync(resultFile, JSON.stringify(result, null, 2) + '\n');
    const f = (n: number) => n.toFixed(0).padStart(6);
    const r2 = (n: number) => n.toFixed(2).padStart(5);
    const lines = [
      `source ${size / MiB} MiB on tmpfs loop, ${os.cpus().length} CPUs, node ${process.version}`,
      `read limit (dd iflag=direct bs=4M)  ${f(readLimit)} MiB/s`,
      ...Object.entries(limits).map(([a, v]) => `${a.padEnd(7)} alone, one core         ${f(v)} MiB/s`),
      '',
      `MiB/s, wall clock incl. start-up, median of ${rounds} interleaved runs each; custos with the same hashes as dc3dd (--piece-size 0), and with its default piecewise SHA-256`,
      'scenario     custos  dc3dd  limit  custos/dc3dd  custos/limit  custos/md5-limit  +pieces  +pieces/dc3dd  peak RSS',
      ...rows.map(
        (r) =>
          `${r.scenario.padEnd(11)} ${f(r.custosMiBs)} ${f(r.dc3ddMiBs)} ${f(r.limitMiBs)}  ${r2(r.custosOverDc3dd)}x        ${r2(r.custosOverLimit)}         ${r2(r.custosOverMd5Limit)}       ${f(r.custosWithPiecesMiBs)}   ${r2(r.withPiecesOverDc3dd)}x       ${r.peakRssMiB} MiB`,
      ),
      '',
      `E01 on a mixed source (${size / MiB} MiB: zero, text-like and random MiB blocks in turn), MD5+SHA-1 as ewfacquire -d sha1, median of ${rounds}`,
      'case                          MiB/s   peak RSS   output',
      ...e01.rows.map(
        (r) => `${r.label.padEnd(28)} ${f(r.MiBs)}   ${String(r.peakRssMiB ?? '-').padStart(4)} MiB   ${(r.outputBytes / MiB).toFixed(0).padStart(5)} MiB`,
      ),
      `custos E01 fast / ewfacquire -c fast      ${r2(e01.fastOverEwfacquire)}x  (with piecewise SHA-256 too: ${r2(e01.fastWithPiecesOverEwfacquire)}x)`,
      `custos E01 empty-block / custos raw       ${r2(e01.emptyOverRaw)}x`,
      '',
      `virtual disk: qcow2 base + 2 snapshots (${(vdisk.containerBytes / MiB).toFixed(0)} MiB of container files), raw out, MD5+SHA-256, median of ${rounds}`,
      `custos acquire                                  ${f(vdisk.custosMiBs)} MiB/s   peak RSS ${vdisk.peakRssMiB} MiB`,
      `qemu-img convert -O raw, then md5sum, sha256sum ${f(vdisk.qemuImgAndHashesMiBs)} MiB/s`,
      `qemu-img convert -O raw alone                   ${f(vdisk.qemuImgConvertMiBs)} MiB/s`,
      `custos / (qemu-img + md5sum + sha256sum)  ${r2(vdisk.custosOverQemuImgAndHashes)}x   custos / qemu-img convert ${r2(vdisk.custosOverQemuImgConvert)}x   custos / md5-limit ${r2(vdisk.custosOverMd5Limit)}   SHA-256 agree: ${vdisk.hashesAgree ? 'yes' : 'NO'}`,
      '',
      `source writes (kernel counter): ${sourceWrites}`,
      ...Object.entries(targets).map(([k, v]) => `${v ? 'MET   ' : 'MISSED'} ${k}`),
      `results: ${resultFile}`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    if (loop) {
      await execa('blockdev', ['--setrw', loop], { reject: false });
      await execa('losetup', ['-d', loop], { reject: false });
    }
    await execa('umount', [mnt], { reject: false });
    rmSync(work, { recursive: true, force: true });
  }
}

interface E01Row {
  label: string;
  MiBs: number;
  peakRssMiB: number | null;
  outputBytes: number;
  secondsPerRun: number[];
}

function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((n, f) => n + statSync(path.join(dir, f)).size, 0);
}

/**
 * custos E01 against ewfacquire (both MD5 + SHA-1, fast deflate), and
 * custos E01 empty-block against custos raw, on one mixed-content source.
 */
async function benchE01(
  mnt: string,
  env: Record<string, string>,
): Promise<{ rows: E01Row[]; fastOverEwfacquire: number; fastWithPiecesOverEwfacquire: number; emptyOverRaw: number; sourceWrites: number }> {
  const srcFile = path.join(mnt, 'mixed.img');
  process.stderr.write(`bench: ${size / MiB} MiB mixed source on tmpfs...\n`);
  writeMixedImage(srcFile, size);
  const loop = (await execa('losetup', ['--find', '--show', srcFile])).stdout.trim();
  try {
    await execa(CUSTOS, ['writeblock', 'protect', loop], { env });
    const writesBefore = writeStat(path.basename(loop));
    const out = path.join(mnt, 'out');
    const fresh = () => {
      rmSync(out, { recursive: true, force: true });
      mkdirSync(out);
    };
    const same = ['--hash', 'md5,sha1', '--piece-size', '0', '--json'];
    const cases: Record<string, string[] | null> = {
      'custos E01 fast': ['--format', 'e01', '--compression', 'fast', ...same],
      'custos E01 fast +pieces': ['--format', 'e01', '--compression', 'fast', '--hash', 'md5,sha1', '--json'],
      'ewfacquire -c fast -d sha1': null,
      'custos E01 empty-block': ['--format', 'e01', '--compression', 'empty', ...same],
      'custos raw': same,
    };
    const labels = Object.keys(cases);
    const samples = new Map<string, { s: number[]; rss: number[]; bytes: number }>(labels.map((l) => [l, { s: [], rss: [], bytes: 0 }]));
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < labels.length; k++) {
        const label = labels[(k + round) % labels.length] as string;
        const args = cases[label];
        fresh();
        const r = args
          ? await timed(CUSTOS, ['acquire', '--source', loop, '--out', out, ...args], env)
          : await timed('ewfacquire', [
              '-u',
              '-q',
              '-t',
              path.join(out, 'ref'),
              '-c',
              'deflate:fast',
              '-d',
              'sha1',
              '-f',
              'encase6',
              '-m',
              'fixed',
              '-M',
              'physical',
              loop,
            ]);
        const sm = samples.get(label) as { s: number[]; rss: number[]; bytes: number };
        sm.s.push(r.s);
        if (args) sm.rss.push((JSON.parse(r.stdout) as ImageRecord).timing.peakRssMiB);
        sm.bytes = dirBytes(out);
      }
    }
    fresh();
    const rows: E01Row[] = labels.map((label) => {
      const sm = samples.get(label) as { s: number[]; rss: number[]; bytes: number };
      return { label, MiBs: size / MiB / median(sm.s), peakRssMiB: sm.rss.length ? Math.max(...sm.rss) : null, outputBytes: sm.bytes, secondsPerRun: sm.s };
    });
    const at = (l: string) => rows.find((r) => r.label === l)?.MiBs ?? 0;
    return {
      rows,
      fastOverEwfacquire: at('custos E01 fast') / at('ewfacquire -c fast -d sha1'),
      fastWithPiecesOverEwfacquire: at('custos E01 fast +pieces') / at('ewfacquire -c fast -d sha1'),
      emptyOverRaw: at('custos E01 empty-block') / at('custos raw'),
      sourceWrites: writeStat(path.basename(loop)) - writesBefore,
    };
  } finally {
    await execa('blockdev', ['--setrw', loop], { reject: false });
    await execa('losetup', ['-d', loop], { reject: false });
    rmSync(srcFile, { force: true });
  }
}

await main();
