// The virtual disk benchmark: a qcow2 base + two snapshots on tmpfs, imaged by
// custos (raw, MD5 + SHA-256, its defaults) against the way examiners do it
// today with the same hashes: `qemu-img convert -O raw`, then `md5sum` and
// `sha256sum` of the result, one after the other. qemu-img convert alone is
// shown too: QEMU's own speed at reading the chain and writing the disk.
import { execa } from 'execa';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { ImageRecord } from '../appliance/imaging/image-record.js';
import { writeMixedImage } from '../test/helpers/mixed-content.js';
import { MiB, median, timed } from './bench-timing.js';

export interface VirtualBench {
  layers: number;
  containerBytes: number;
  custosMiBs: number;
  qemuImgAndHashesMiBs: number;
  qemuImgConvertMiBs: number;
  custosOverQemuImgAndHashes: number;
  custosOverQemuImgConvert: number;
  custosOverMd5Limit: number;
  peakRssMiB: number;
  secondsPerRun: Record<string, number[]>;
  hashesAgree: boolean;
}

type Case = 'custos' | 'qemu-img+md5sum+sha256sum' | 'qemu-img convert';

export async function benchVirtual(
  mnt: string,
  env: Record<string, string>,
  o: { custos: string; size: number; rounds: number; md5Limit: number },
): Promise<VirtualBench> {
  const vm = path.join(mnt, 'vm');
  const out = path.join(mnt, 'out');
  mkdirSync(vm);
  const fresh = () => {
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out);
  };
  try {
    process.stderr.write(`bench: ${o.size / MiB} MiB qcow2 base + two snapshots on tmpfs...\n`);
    writeMixedImage(path.join(vm, 'guest.raw'), o.size, 29);
    await execa('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', 'guest.raw', 'base.qcow2'], { cwd: vm });
    rmSync(path.join(vm, 'guest.raw'));
    // Each snapshot rewrites scattered 4 MiB runs, as a guest's writes between snapshots would.
    let below = 'base.qcow2';
    for (const [snap, pattern] of [
      ['snap1.qcow2', 0x31],
      ['snap2.qcow2', 0x32],
    ] as const) {
      await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', below, snap], { cwd: vm });
      const writes = Array.from({ length: 16 }, (_, i) => [
        '-c',
        `write -P ${pattern} ${Math.floor(((i * 2 + (pattern & 1)) * o.size) / 32 / MiB)}M 4M`,
      ]).flat();
      await execa('qemu-io', ['-f', 'qcow2', ...writes, snap], { cwd: vm });
      below = snap;
    }
    const top = path.join(vm, below);
    const containerBytes = Number((await execa('du', ['-b', '-c', vm])).stdout.trim().split('\n').pop()?.split('\t')[0] ?? 0);

    // One untimed run of each, so that neither is charged for first touches.
    fresh();
    await execa(o.custos, ['acquire', '--source', top, '--out', out, '--hash', 'md5,sha256'], { env });
    fresh();
    await execa('qemu-img', ['convert', '-O', 'raw', top, path.join(out, 'disk.raw')]);

    const cases: Case[] = ['custos', 'qemu-img+md5sum+sha256sum', 'qemu-img convert'];
    const samples: Record<Case, number[]> = { custos: [], 'qemu-img+md5sum+sha256sum': [], 'qemu-img convert': [] };
    const rss: number[] = [];
    let custosSha = '';
    let peerSha = '';
    for (let round = 0; round < o.rounds; round++) {
      for (let k = 0; k < cases.length; k++) {
        const c = cases[(k + round) % cases.length] as Case;
        fresh();
        if (c === 'custos') {
          const r = await timed(o.custos, ['acquire', '--source', top, '--out', out, '--hash', 'md5,sha256', '--json'], env);
          const rec = JSON.parse(r.stdout) as ImageRecord;
          rss.push(rec.timing.peakRssMiB);
          custosSha = rec.hashes.sha256 ?? '';
          samples.custos.push(r.s);
          continue;
        }
        const raw = path.join(out, 'disk.raw');
        const convert = await timed('qemu-img', ['convert', '-O', 'raw', top, raw]);
        if (c === 'qemu-img convert') {
          samples[c].push(convert.s);
          continue;
        }
        const md5 = await timed('md5sum', [raw]);
        const sha = await timed('sha256sum', [raw]);
        peerSha = sha.stdout.split(' ')[0] ?? '';
        samples[c].push(convert.s + md5.s + sha.s);
      }
    }
    const rate = (c: Case) => o.size / MiB / median(samples[c]);
    return {
      layers: 3,
      containerBytes,
      custosMiBs: rate('custos'),
      qemuImgAndHashesMiBs: rate('qemu-img+md5sum+sha256sum'),
      qemuImgConvertMiBs: rate('qemu-img convert'),
      custosOverQemuImgAndHashes: rate('custos') / rate('qemu-img+md5sum+sha256sum'),
      custosOverQemuImgConvert: rate('custos') / rate('qemu-img convert'),
      custosOverMd5Limit: rate('custos') / o.md5Limit,
      peakRssMiB: Math.max(...rss),
      secondsPerRun: samples,
      hashesAgree: custosSha !== '' && custosSha === peerSha,
    };
  } finally {
    rmSync(out, { recursive: true, force: true });
    rmSync(vm, { recursive: true, force: true });
  }
}
