import test from 'ava';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, openSync, writeSync, closeSync, chmodSync, rmSync } from 'node:fs';
import path from 'node:path';
import { CUSTOS, custos } from '../helpers/cli.js';
import { patternLoop, tempDir, type Loop } from '../helpers/loop.js';
import { Sysfs } from '../../appliance/disk/sysfs.js';
import { readCounters } from '../../appliance/disk/kernel-stat.js';
import type { ImageRecord } from '../../appliance/imaging/image-record.js';
import type { CustodyRecord } from '../../appliance/custody/custody-record.js';

const sysfs = new Sysfs();

async function sums(file: string): Promise<{ md5: string; sha256: string }> {
  const md5 = (await execa('md5sum', [file])).stdout.split(/\s+/)[0] as string;
  const sha256 = (await execa('sha256sum', [file])).stdout.split(/\s+/)[0] as string;
  return { md5, sha256 };
}

async function protectedSource(bytes: number, sectorSize: 512 | 4096 = 512, seed = 1): Promise<{ loop: Loop & { dir: string }; state: string }> {
  const loop = await patternLoop(bytes, { sectorSize }, seed);
  const state = tempDir();
  const r = await custos(['writeblock', 'protect', loop.dev], state);
  if (r.exitCode !== 0) throw new Error(String(r.stderr));
  return { loop, state };
}

/** A scratch directory removed after the test (images are large). */
function scratch(t: import('ava').ExecutionContext): string {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function parseSummary(stdout: unknown): ImageRecord {
  const text = String(stdout).trim();
  // --json alone prints one indented document; with --json-progress the summary is the last NDJSON line.
  if (text.startsWith('{\n')) return JSON.parse(text) as ImageRecord;
  const lines = text.split('\n');
  return JSON.parse(lines[lines.length - 1] as string) as ImageRecord;
}

test('raw image of an odd-sized disk: md5sum/sha256sum match source and report; source never written', async (t) => {
  const bytes = 20481 * 512;
  const { loop, state } = await protectedSource(bytes);
  t.teardown(loop.detach);
  const out = scratch(t);
  const before = readCounters(sysfs, loop.name);
  const srcSums = await sums(loop.file);
  const t0 = Date.now();
  const r = await custos(
    ['acquire', '--source', loop.dev, '--out', out, '--name', 'ev1', '--hash', 'md5,sha1,sha256,sha512', '--verify', '--verify-source', '--json'],
    state,
  );
  const wallS = (Date.now() - t0) / 1000;
  t.is(r.exitCode, 0, String(r.stderr));
  const rec = parseSummary(r.stdout);
  // Start-up is its own figure: from the process start to the first read, and with the reading within the process's life.
  t.true(rec.timing.startupS > 0, `startupS ${rec.timing.startupS}`);
  t.true(rec.timing.startupS + rec.timing.acquireS < wallS, `startup ${rec.timing.startupS} s + acquire ${rec.timing.acquireS} s within ${wallS} s`);
  const image = path.join(out, 'ev1.raw');
  t.is(statSync(image).size, bytes);
  const imgSums = await sums(image);
  t.deepEqual(imgSums, srcSums);
  t.is(rec.hashes.md5, srcSums.md5);
  t.is(rec.hashes.sha256, srcSums.sha256);
  t.is(rec.hashes.sha1, (await execa('sha1sum', [loop.file])).stdout.split(/\s+/)[0]);
  t.is(rec.hashes.sha512, (await execa('sha512sum', [loop.file])).stdout.split(/\s+/)[0]);
  t.is(rec.status, 'complete');
  t.is(rec.source.sectors, 20481);
  t.is(rec.source.sizeBytes, bytes);
  t.true(rec.destinations[0]?.verification?.match);
  t.true(rec.sourceVerification?.match);
  t.deepEqual(rec.badRanges, []);
  // The kernel's counters: reads happened, writes did not.
  const after = readCounters(sysfs, loop.name);
  t.truthy(before && after);
  t.true((after?.readSectors ?? 0) > (before?.readSectors ?? 0));
  t.is(after?.writeIos, before?.writeIos);
  t.is(rec.writeBlock?.writesDuring?.writeIos, 0);
  t.deepEqual(await sums(loop.file), srcSums);
  // The signed record beside the image holds the same acquisition, read-only.
  const onDisk = JSON.parse(readFileSync(path.join(out, 'custody.json'), 'utf8')) as CustodyRecord;
  t.deepEqual(onDisk.acquisition.hashes, rec.hashes);
  t.is(onDisk.acquisition.image.files[0]?.sha256, srcSums.sha256);
  t.is(statSync(path.join(out, 'custody.json')).mode & 0o777, 0o444);
  t.is(statSync(image).mode & 0o777, 0o444);
  const types = rec.events.map((e) => e.type);
  for (const ty of ['writeblock', 'preflight', 'started', 'acquired', 'verify-started', 'verify-result', 'completed'] as const) t.true(types.includes(ty), ty);
});

test('4096-byte sectors, split set to two destinations: every copy hashes like the source', async (t) => {
  const bytes = 5 * 1024 * 1024 + 3 * 4096;
  const { loop, state } = await protectedSource(bytes, 4096, 7);
  t.teardown(loop.detach);
  const out1 = scratch(t);
  const out2 = scratch(t);
  const r = await custos(
    [
      'acquire',
      '--source',
      loop.dev,
      '--out',
      out1,
      '--out',
      out2,
      '--format',
      'split',
      '--split-size',
      '1M',
      '--block-size',
      '256K',
      '--fast-first',
      '--verify',
      '--json',
    ],
    state,
  );
  t.is(r.exitCode, 0, String(r.stderr));
  const rec = parseSummary(r.stdout);
  t.is(rec.source.logicalSectorSize, 4096);
  t.is(rec.source.sectors, bytes / 4096);
  const src = await sums(loop.file);
  for (const dir of [out1, out2]) {
    const files = readdirSync(dir)
      .filter((f) => /^image\.\d{3}$/.test(f))
      .sort();
    t.deepEqual(files, ['image.001', 'image.002', 'image.003', 'image.004', 'image.005', 'image.006']);
    // Every segment the requested size but the last (NIST DI-RO-04).
    t.deepEqual(
      files.map((f) => statSync(path.join(dir, f)).size),
      [1, 1, 1, 1, 1].map(() => 1024 * 1024).concat([3 * 4096]),
    );
    const cat = await execa('sh', ['-c', `cat ${files.map((f) => path.join(dir, f)).join(' ')} | sha256sum`]);
    t.is(cat.stdout.split(/\s+/)[0], src.sha256);
    const md5 = await execa('sh', ['-c', `cat ${files.map((f) => path.join(dir, f)).join(' ')} | md5sum`]);
    t.is(md5.stdout.split(/\s+/)[0], src.md5);
  }
  t.is(rec.hashes.sha256, src.sha256);
  // --fast-first on a healthy disk: one pass, hashes straight from the source stream.
  t.true(rec.settings.fastFirst);
  t.deepEqual(rec.recovery, { deferred: [], recoveredSectors: 0, hashesFrom: 'source-stream', rereadDir: null, untouchedPieces: null });
  t.is(rec.destinations.length, 2);
  t.true(rec.destinations.every((d) => d.verification?.match === true));
});

/** RFC 6962 tree hash, written here independently of custos. */
function rfc6962(leaves: Buffer[]): Buffer {
  const h = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
  if (leaves.length === 1) return h(Buffer.from([0]), leaves[0] as Buffer);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return h(Buffer.from([1]), rfc6962(leaves.slice(0, k)), rfc6962(leaves.slice(k)));
}

test('piecewise hashes reproduce with split + sha256sum; a flipped byte fails verify and names its window', async (t) => {
  const bytes = 2 * 1024 * 1024 + 512 * 3;
  const { loop, state } = await protectedSource(bytes, 512, 11);
  t.teardown(loop.detach);
  const out = scratch(t);
  const r = await custos(['acquire', '--source', loop.dev, '--out', out, '--piece-size', '256K', '--json'], state);
  t.is(r.exitCode, 0, String(r.stderr));
  const rec = parseSummary(r.stdout);
  const work = scratch(t);
  await execa('split', ['-b', String(256 * 1024), '-d', '-a', '4', loop.file, path.join(work, 'w')]);
  const pieces = readdirSync(work).sort();
  const expected = [];
  for (const p of pieces) expected.push((await execa('sha256sum', [path.join(work, p)])).stdout.split(/\s+/)[0]);
  t.is(pieces.length, 9);
  t.deepEqual(rec.pieces.sha256, expected);
  t.is(rec.pieces.merkleRoot, rfc6962(expected.map((x) => Buffer.from(x as string, 'hex'))).toString('hex'));

  const ok = await custos(['verify', out], state);
  t.is(ok.exitCode, 0, String(ok.stderr));
  t.regex(String(ok.stdout), /^VERIFIED/m);

  // Flip one byte in window 5 (bytes 1310720..1572863).
  const image = path.join(out, 'image.raw');
  chmodSync(image, 0o644);
  const at = 5 * 256 * 1024 + 1234;
  const fd = openSync(image, 'r+');
  const b = Buffer.alloc(1);
  b[0] = (readFileSync(image)[at] as number) ^ 0xff;
  writeSync(fd, b, 0, 1, at);
  closeSync(fd);
  const bad = await custos(['verify', out, '--json'], state);
  t.is(bad.exitCode, 1);
  const v = JSON.parse(String(bad.stdout)) as {
    ok: boolean;
    comparison: { match: boolean; pieces: { mismatched: { index: number; offset: number; firstLba: number }[] } };
  };
  t.false(v.ok);
  t.false(v.comparison.match);
  t.deepEqual(
    v.comparison.pieces.mismatched.map((m) => m.index),
    [5],
  );
  t.is(v.comparison.pieces.mismatched[0]?.offset, 5 * 256 * 1024);
  t.is(v.comparison.pieces.mismatched[0]?.firstLba, (5 * 256 * 1024) / 512);
  const text = await custos(['verify', out], state);
  t.is(text.exitCode, 1);
  t.regex(String(text.stdout), /window 5: bytes 1310720-1572863/);
});

test('NDJSON progress: events and per-stage progress lines, then the summary', async (t) => {
  const { loop, state } = await protectedSource(64 * 1024 * 1024, 512, 5);
  t.teardown(loop.detach);
  const out = scratch(t);
  const r = await custos(['acquire', '--source', loop.dev, '--out', out, '--json-progress', '--json', '--block-size', '1M', '--buffers', '4'], state);
  t.is(r.exitCode, 0, String(r.stderr));
  const lines = String(r.stdout)
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const progress = lines.filter((l) => l['kind'] === 'progress');
  t.true(progress.length >= 1);
  const last = progress[progress.length - 1] as {
    bytesDone: number;
    bytesTotal: number;
    stages: { name: string; kind: string; busy: number; queueFill: number }[];
    writeBlock: { intact: boolean };
  };
  t.is(last.bytesDone, last.bytesTotal);
  t.deepEqual(
    last.stages.map((s) => s.name),
    ['read', 'md5', 'sha256', 'sha256-pieces', 'write1'],
  );
  t.true(last.writeBlock.intact);
  t.true(lines.some((l) => l['kind'] === 'event' && l['type'] === 'started'));
  t.is((lines[lines.length - 1] as { schema?: string }).schema, 'custos.image/1');
});

test('refusals before any byte is read: not write-blocked, existing image, full or bad destination, bad options', async (t) => {
  const loop = await patternLoop(4 * 1024 * 1024, {}, 3);
  t.teardown(loop.detach);
  const state = scratch(t);
  const out = scratch(t);
  const before = readCounters(sysfs, loop.name);
  const notBlocked = await custos(['acquire', '--source', loop.dev, '--out', out], state);
  t.is(notBlocked.exitCode, 1);
  t.regex(String(notBlocked.stderr), /is not write-blocked.*custos writeblock protect/);
  t.deepEqual(readdirSync(out), []);
  t.is(readCounters(sysfs, loop.name)?.readIos, before?.readIos);

  t.is((await custos(['writeblock', 'protect', loop.dev], state)).exitCode, 0);
  const usage = [
    [['--out', out], /needs --source/],
    [['--source', loop.dev], /one or two --out/],
    [['--source', loop.dev, '--out', out, '--hash', 'crc32'], /unknown algorithm "crc32"/],
    [['--source', loop.dev, '--out', out, '--format', 'aff4'], /--format must be raw, split or e01/],
    [['--source', loop.dev, '--out', out, '--split-size', '1M'], /goes with --format split/],
    [['--source', loop.dev, '--out', out, '--name', '../x'], /--name must/],
    [['--source', loop.dev, '--out', out, '--piece-size', 'lots'], /not a size/],
  ] as const;
  for (const [args, re] of usage) {
    const r = await custos(['acquire', ...args], state);
    t.is(r.exitCode, 2, args.join(' '));
    t.regex(String(r.stderr), re);
  }
  const missing = await custos(['acquire', '--source', loop.dev, '--out', path.join(out, 'nope')], state);
  t.is(missing.exitCode, 1);
  t.regex(String(missing.stderr), /does not exist/);
  const same = await custos(['acquire', '--source', loop.dev, '--out', out, '--out', out], state);
  t.regex(String(same.stderr), /given twice/);
  const odd = await custos(['acquire', '--source', loop.dev, '--out', out, '--piece-size', '1000'], state);
  t.regex(String(odd.stderr), /multiple of the 512-byte sector/);

  // A destination too small for the image.
  const small = scratch(t);
  await execa('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'custos-small', small]);
  t.teardown(() => execa('umount', [small]).then(() => undefined));
  const full = await custos(['acquire', '--source', loop.dev, '--out', small], state);
  t.is(full.exitCode, 1);
  t.regex(String(full.stderr), /bytes free, \d+ needed/);
  t.deepEqual(readdirSync(small), []);

  // An image of the same name is never overwritten.
  const ok = await custos(['acquire', '--source', loop.dev, '--out', out], state);
  t.is(ok.exitCode, 0, String(ok.stderr));
  const again = await custos(['acquire', '--source', loop.dev, '--out', out], state);
  t.is(again.exitCode, 1);
  t.regex(String(again.stderr), /image\.raw already exists; custos never overwrites/);
  t.is(readCounters(sysfs, loop.name)?.writeIos, before?.writeIos);
  t.false(existsSync(path.join(small, 'image.raw')));
});

test('a destination on the source disk is refused', async (t) => {
  const loop = await patternLoop(16 * 1024 * 1024, {}, 9);
  t.teardown(loop.detach);
  const state = scratch(t);
  await execa('mkfs.ext4', ['-q', '-F', loop.dev]);
  t.is((await custos(['writeblock', 'protect', loop.dev], state)).exitCode, 0);
  const mnt = scratch(t);
  await execa('mount', ['-o', 'ro,noload', loop.dev, mnt]);
  t.teardown(() => execa('umount', [mnt]).then(() => undefined));
  const r = await custos(['acquire', '--source', loop.dev, '--out', mnt], state);
  t.is(r.exitCode, 1);
  t.regex(String(r.stderr), new RegExp(`is on the source disk ${loop.name}`));
});

test('--piece-size 0 turns piecewise hashing off; linear hashes and verify still hold', async (t) => {
  const { loop, state } = await protectedSource(3 * 1024 * 1024, 512, 13);
  t.teardown(loop.detach);
  const out = scratch(t);
  const r = await custos(['acquire', '--source', loop.dev, '--out', out, '--piece-size', '0', '--hash', 'sha1', '--verify', '--json'], state);
  t.is(r.exitCode, 0, String(r.stderr));
  const rec = parseSummary(r.stdout);
  t.is(rec.pieces.size, 0);
  t.deepEqual(rec.pieces.sha256, []);
  t.is(rec.hashes.sha1, (await execa('sha1sum', [loop.file])).stdout.split(/\s+/)[0]);
  t.deepEqual(Object.keys(rec.hashes), ['sha1']);
  t.true(rec.destinations[0]?.verification?.match);
  const v = await custos(['verify', out], state);
  t.is(v.exitCode, 0, String(v.stderr));
});

test('SIGINT mid-run: stops, logs an aborted event, leaves an aborted record, exits non-zero', async (t) => {
  const { loop, state } = await protectedSource(768 * 1024 * 1024, 512, 17);
  t.teardown(loop.detach);
  const out = scratch(t);
  const child = execa(CUSTOS, ['acquire', '--source', loop.dev, '--out', out, '--json-progress', '--block-size', '1M', '--buffers', '2'], {
    reject: false,
    env: { CUSTOS_STATE_DIR: state },
  });
  let sent = false;
  child.stdout?.on('data', (d: Buffer) => {
    if (!sent && d.toString().includes('"type":"started"')) {
      sent = true;
      setTimeout(() => child.kill('SIGINT'), 150);
    }
  });
  const r = await child;
  t.true(sent);
  t.is(r.exitCode, 1, String(r.stderr));
  t.regex(String(r.stderr), /interrupted by SIGINT/);
  const custody = JSON.parse(readFileSync(path.join(out, 'custody.json'), 'utf8')) as CustodyRecord;
  const rec = custody.acquisition;
  t.is(custody.status, 'aborted');
  t.is(rec.error?.code, 'EINTR');
  t.true(readFileSync(path.join(out, 'events.jsonl'), 'utf8').includes('"type":"aborted"'));
  t.deepEqual(rec.hashes, {});
  // A signed record of an aborted run verifies as a record, and says there is no complete image.
  const v = await custos(['verify', out], state);
  t.is(v.exitCode, 1);
  t.regex(String(v.stdout), /ok {4}record signature/);
  t.regex(String(v.stdout), /FAIL {2}image files +the acquisition was aborted/);
});
