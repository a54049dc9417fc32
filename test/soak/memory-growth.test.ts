// Memory does not grow with the source: a large sparse source peaks within
// 16 MiB of the RSS of a 1 GiB one, in every format. E01 takes 64 GiB (zeros
// store as one short stream per chunk, about 350 MB in all); raw and split
// take 8 GiB, as every byte of theirs is written, here to a btrfs evidence
// drive with compression (8 GiB of zeros take some 300 MB of disk) that took
// them at about 150 MB/s on this machine: 64 GiB would add 7 minutes a format.
// The sources are sparse files on tmpfs (a sparse file on ext4 behind a loop
// device reads at 240 MB/s; on tmpfs at over 6 GB/s). Here (test/soak/)
// because it keeps both cores busy for minutes.
import test from 'ava';
import { execa } from 'execa';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { custos, CUSTOS } from '../helpers/cli.js';
import { attachLoop, tempDir } from '../helpers/loop.js';
import type { ImageRecord } from '../../appliance/imaging/image-record.js';

const GiB = 1024 ** 3;
const ALLOWED_GROWTH_MIB = 16;

test('memory does not grow with the source: E01 of 64 GiB sparse, raw and split of 8 GiB, each within 16 MiB of the peak RSS of 1 GiB', async (t) => {
  t.timeout(30 * 60_000);
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const shm = path.join('/dev/shm', `custos-growth-${process.pid}`);
  mkdirSync(shm);
  t.teardown(() => rmSync(shm, { recursive: true, force: true }));
  const source = async (gib: number): Promise<{ dev: string; bytes: number }> => {
    const file = path.join(shm, `${gib}g.img`);
    await execa('truncate', ['-s', `${gib}G`, file]);
    const loop = await attachLoop(file);
    t.teardown(loop.detach);
    return { dev: loop.dev, bytes: gib * GiB };
  };
  const [one, eight, sixtyFour] = [await source(1), await source(8), await source(64)];

  const drive = path.join(dir, 'evidence.img');
  await execa('truncate', ['-s', '200G', drive]);
  await execa('mkfs.btrfs', ['-q', '-f', drive]);
  const driveLoop = await attachLoop(drive);
  t.teardown(driveLoop.detach);
  const mnt = path.join(dir, 'mnt');
  mkdirSync(mnt);
  await execa('mount', ['-o', 'compress=zstd:1', driveLoop.dev, mnt]);
  t.teardown(async () => {
    await execa('umount', [mnt], { reject: false });
  });

  const state = path.join(dir, 'state');
  for (const l of [one, eight, sixtyFour]) {
    const p = await custos(['writeblock', 'protect', l.dev], state);
    t.is(p.exitCode, 0, String(p.stderr));
  }

  const formats: [string, string[], { dev: string; bytes: number }][] = [
    ['raw', [], eight],
    ['split', ['--format', 'split'], eight],
    ['E01', ['--format', 'e01'], sixtyFour],
  ];
  const sha256ByFormat: Record<string, string> = {};
  for (const [label, args, large] of formats) {
    const peaks: number[] = [];
    for (const src of [one, large]) {
      const out = path.join(mnt, `${label}-${src.bytes / GiB}g`);
      mkdirSync(out);
      // One hash keeps the run short; the piecewise SHA-256 (whose list does grow, by one digest per 64 MiB) stays on.
      const r = await execa(CUSTOS, ['acquire', '--source', src.dev, '--out', out, '--hash', 'sha256', '--json', ...args], {
        reject: false,
        env: { ...process.env, CUSTOS_STATE_DIR: state },
      });
      t.is(r.exitCode, 0, String(r.stderr).slice(-2000));
      const rec = JSON.parse(String(r.stdout)) as ImageRecord;
      t.is(rec.source.sizeBytes, src.bytes);
      peaks.push(rec.timing.peakRssMiB);
      sha256ByFormat[`${label} ${src.bytes / GiB} GiB`] = rec.hashes.sha256 ?? '';
      t.log(`${label}, ${src.bytes / GiB} GiB: peak RSS ${rec.timing.peakRssMiB} MiB, ${rec.timing.acquireS.toFixed(0)} s`);
      t.true(readdirSync(out).length > 0);
      rmSync(out, { recursive: true, force: true });
    }
    const [small, big] = peaks as [number, number];
    t.true(big - small <= ALLOWED_GROWTH_MIB, `${label}: peak RSS ${small} MiB at 1 GiB, ${big} MiB at ${large.bytes / GiB} GiB`);
  }
  // Zeros have known hashes: every run hashed what it read.
  const zeros = (gib: number) => execa('sh', ['-c', `head -c ${gib}G /dev/zero | sha256sum`]).then((r) => r.stdout.slice(0, 64));
  const expected: Record<string, string> = { 1: await zeros(1), 8: await zeros(8) };
  for (const [run, sha] of Object.entries(sha256ByFormat)) {
    const gib = run.split(' ')[1] as string;
    if (expected[gib]) t.is(sha, expected[gib], run);
  }
  t.is(sha256ByFormat['E01 64 GiB']?.length, 64);
});
