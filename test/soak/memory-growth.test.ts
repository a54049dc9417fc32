// Memory does not grow with the source: in every format, a 64 GiB sparse
// source peaks within 16 MiB of the RSS of a 1 GiB one. E01 stores zeros as one
// short stream per chunk (about 350 MB in all); raw and split write every
// byte, here to a btrfs evidence drive with compression, where 64 GiB of zeros
// take some 2 GB of disk. The sources are sparse files on tmpfs (a sparse file
// on ext4 behind a loop device reads at 240 MB/s; on tmpfs at over 6 GB/s).
// Here (test/soak/) because it keeps both cores busy for minutes.
import test from 'ava';
import { execa } from 'execa';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { custos, CUSTOS } from '../helpers/cli.js';
import { attachLoop, tempDir } from '../helpers/loop.js';
import type { ImageRecord } from '../../appliance/imaging/image-record.js';

const GiB = 1024 ** 3;
const ALLOWED_GROWTH_MIB = 16;

test('memory does not grow with the source: raw, split and E01 of 64 GiB within 16 MiB of the peak RSS of 1 GiB', async (t) => {
  t.timeout(40 * 60_000);
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const shm = path.join('/dev/shm', `custos-growth-${process.pid}`);
  mkdirSync(shm);
  t.teardown(() => rmSync(shm, { recursive: true, force: true }));
  const sources = new Map<number, string>();
  for (const gib of [1, 64]) {
    const file = path.join(shm, `${gib}g.img`);
    await execa('truncate', ['-s', `${gib}G`, file]);
    const loop = await attachLoop(file);
    t.teardown(loop.detach);
    sources.set(gib, loop.dev);
  }

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
  for (const dev of sources.values()) {
    const p = await custos(['writeblock', 'protect', dev], state);
    t.is(p.exitCode, 0, String(p.stderr));
  }

  // [format, arguments]. E01 keeps its piecewise SHA-256 (whose list does grow, by one digest per
  // 64 MiB); raw and split leave it off, which halves their CPU per byte (they write 64 GiB each) and
  // leaves out no code of theirs: the piece list is the same for every format.
  const formats: [string, string[]][] = [
    ['raw', ['--piece-size', '0']],
    ['split', ['--format', 'split', '--piece-size', '0']],
    ['E01', ['--format', 'e01']],
  ];
  // Zeros have known hashes, taken by sha256sum from the sparse files while custos reads them.
  const zeros = new Map<number, Promise<string>>();
  for (const gib of [1, 64]) {
    const hex = execa('sha256sum', [path.join(shm, `${gib}g.img`)]).then((r) => r.stdout.slice(0, 64));
    // Awaited at the end; a failure meanwhile is not an unhandled rejection.
    hex.catch(() => undefined);
    zeros.set(gib, hex);
  }
  const sha256 = new Map<string, { gib: number; sha: string }>();
  for (const [label, args] of formats) {
    const peaks = new Map<number, number>();
    for (const gib of [1, 64]) {
      const out = path.join(mnt, `${label}-${gib}g`);
      mkdirSync(out);
      // One hash keeps the run short.
      const r = await execa(CUSTOS, ['acquire', '--source', sources.get(gib) as string, '--out', out, '--hash', 'sha256', '--json', ...args], {
        reject: false,
        env: { ...process.env, CUSTOS_STATE_DIR: state },
      });
      t.is(r.exitCode, 0, String(r.stderr).slice(-2000));
      const rec = JSON.parse(String(r.stdout)) as ImageRecord;
      t.is(rec.source.sizeBytes, gib * GiB);
      peaks.set(gib, rec.timing.peakRssMiB);
      sha256.set(`${label} ${gib} GiB`, { gib, sha: rec.hashes.sha256 ?? '' });
      t.log(`${label}, ${gib} GiB: peak RSS ${rec.timing.peakRssMiB} MiB, ${rec.timing.acquireS.toFixed(0)} s`);
      t.true(readdirSync(out).length > 0);
      rmSync(out, { recursive: true, force: true });
    }
    const [small, big] = [peaks.get(1) as number, peaks.get(64) as number];
    t.true(big - small <= ALLOWED_GROWTH_MIB, `${label}: peak RSS ${small} MiB at 1 GiB, ${big} MiB at 64 GiB`);
  }
  // Every run hashed what it read.
  for (const [run, { gib, sha }] of sha256) t.is(sha, (await zeros.get(gib)) ?? 'no sha256sum', run);
});
