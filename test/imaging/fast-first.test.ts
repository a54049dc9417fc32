import test from 'ava';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { checkImage, imageWithFaults, ranges, SECTORS } from '../helpers/faulty-acquire.js';
import { maxSkip } from '../../appliance/imaging/read/fast-first.js';
import type { DeferredRange } from '../../appliance/imaging/read/fast-first.js';

const run = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

function inRanges(ranges: DeferredRange[], byte: number): boolean {
  return ranges.some((r) => byte >= r.offset && byte < r.offset + r.length);
}

const cases: [string, number[]][] = [
  ['first sector', [0]],
  ['a single sector in the middle of a block', [5000]],
  ['a run across a block boundary', run(2028, 40)],
  ['the last sector', [SECTORS - 1]],
  ['start, middle, run and last together', [0, 1, 7777, ...run(12000, 9), SECTORS - 1]],
];

for (const [label, bad] of cases) {
  test(`--fast-first (${label}): good data first, bad areas last; same image and error list as without it`, async (t) => {
    let firstPass: { image: Buffer; deferred: DeferredRange[] } | null = null;
    const got = await imageWithFaults(bad, {
      fastFirst: true,
      onEvent: (e, { imagePath }) => {
        if (e.type !== 'recovery-started') return;
        firstPass = { image: readFileSync(imagePath), deferred: e.data?.['ranges'] as DeferredRange[] };
      },
    });
    const { record, source, image, events, reader } = got;
    // Everything readable was already in the image when the recovery pass began.
    t.truthy(firstPass, 'a recovery pass ran');
    const fp = firstPass as unknown as { image: Buffer; deferred: DeferredRange[] };
    let misplaced = 0;
    for (let lba = 0; lba < SECTORS; lba++) {
      const at = lba * 512;
      const img = fp.image.subarray(at, at + 512);
      const ok = inRanges(fp.deferred, at) ? img.every((b) => b === 0) : img.equals(source.subarray(at, at + 512));
      if (!ok) misplaced++;
    }
    t.is(misplaced, 0, 'after pass 1: source bytes outside the deferred ranges, fill inside');
    t.true(
      bad.every((lba) => inRanges(fp.deferred, lba * 512)),
      'every bad LBA was deferred',
    );
    // The end result is exactly that of a normal acquisition.
    checkImage(t, source, image, new Set(bad), 0);
    t.deepEqual(
      record.badRanges.map((r) => ({ firstLba: r.firstLba, lastLba: r.lastLba })),
      ranges(bad),
    );
    t.is(record.status, 'complete-with-bad-sectors');
    t.is(record.hashes.sha256, createHash('sha256').update(image).digest('hex'));
    t.is(record.hashes.md5, createHash('md5').update(image).digest('hex'));
    t.true(record.destinations[0]?.verification?.match);
    t.true(record.settings.fastFirst);
    t.deepEqual(record.recovery?.deferred, fp.deferred);
    t.true(
      events.findIndex((e) => e.type === 'recovery-started') < events.findIndex((e) => e.type === 'bad-range'),
      'bad ranges are settled in the recovery pass',
    );
    // Each bad sector: at most one try in pass 1, then the block try and 3 sector tries in pass 2.
    t.true([...reader.attempts.values()].every((n) => n <= 5));
  });
}

test('--fast-first: a sector that fails once is read in the recovery pass; hashes come from a re-read that matches the source stream elsewhere', async (t) => {
  const { record, source, image, events } = await imageWithFaults([], { fastFirst: true, flaky: new Map([[9000, 1]]) });
  t.true(image.equals(source));
  t.deepEqual(record.badRanges, []);
  t.is(record.status, 'complete');
  t.is(record.recovery?.recoveredSectors, (record.recovery?.deferred ?? []).reduce((n, r) => n + r.length, 0) / 512);
  t.is(record.recovery?.hashesFrom, 'destination-reread');
  t.is(record.hashes.sha256, createHash('sha256').update(source).digest('hex'));
  t.is(record.hashes.md5, createHash('md5').update(source).digest('hex'));
  t.is(record.recovery?.untouchedPieces?.mismatched.length, 0);
  t.true((record.recovery?.untouchedPieces?.compared ?? 0) > 0);
  t.true(events.some((e) => e.type === 'rehashed'));
});

test('--fast-first into a split set on two destinations: both copies get the recovered sectors, across a segment boundary', async (t) => {
  const bad = run(2040, 16); // straddles the 1 MiB segment boundary at LBA 2048
  const { record, source, copies } = await imageWithFaults(bad, {
    fastFirst: true,
    splitTwo: 1024 * 1024,
    flaky: new Map([
      [6000, 1],
      [14000, 2],
    ]),
  });
  t.is(copies.length, 2);
  t.true(record.image.files.length > 2);
  for (const copy of copies) checkImage(t, source, copy, new Set(bad), 0);
  t.deepEqual(
    record.badRanges.map((r) => [r.firstLba, r.lastLba]),
    [[2040, 2055]],
  );
  t.is(record.recovery?.hashesFrom, 'destination-reread');
  t.true(record.destinations.every((d) => d.verification?.match === true));
  t.is(
    record.hashes.sha256,
    createHash('sha256')
      .update(copies[1] as Buffer)
      .digest('hex'),
  );
});

test('--fast-first: a wide bad area costs a few failed reads in pass 1, not one per sector', async (t) => {
  const bad = run(4096, 8192); // 4 MiB unreadable, blocks of 1 MiB
  let pass1Tries = -1;
  const { record, source, image, reader } = await imageWithFaults(bad, {
    fastFirst: true,
    retries: 0,
    onEvent: (e, { reader }) => {
      if (e.type === 'recovery-started') pass1Tries = [...reader.attempts.values()].reduce((n, v) => n + v, 0);
    },
  });
  t.true(pass1Tries >= 1 && pass1Tries <= 3, `pass 1 tried ${pass1Tries} times in the bad area`);
  checkImage(t, source, image, new Set(bad), 0);
  t.deepEqual(
    record.badRanges.map((r) => [r.firstLba, r.lastLba]),
    [[4096, 4096 + 8192 - 1]],
  );
  t.is(reader.attempts.size, bad.length);
});

test('--fast-first: a destination that changes before the re-hash fails verification', async (t) => {
  let flipped = false;
  const { record, events } = await imageWithFaults([], {
    fastFirst: true,
    flaky: new Map([[9000, 1]]),
    onEvent: (e, { imagePath }) => {
      if (e.type !== 'recovery-finished') return;
      // Window 0 (first MiB) was not touched by the recovery pass.
      const img = readFileSync(imagePath);
      img[100] = (img[100] ?? 0) ^ 0xff;
      writeFileSync(imagePath, img);
      flipped = true;
    },
  });
  t.true(flipped);
  t.is(record.status, 'verify-failed');
  t.deepEqual(record.recovery?.untouchedPieces?.mismatched, [0]);
  t.true(events.some((e) => e.type === 'rehashed' && String(e.message).includes('DIFFER')));
});

test('the longest skip is 1% of the source in whole blocks, at least one block, at most 1 GiB', (t) => {
  const M = 1024 * 1024;
  t.is(maxSkip(10 * M, M), M);
  t.is(maxSkip(1000 * M, 4 * M), 8 * M);
  t.is(maxSkip(2 * 1024 ** 4, 4 * M), 1024 ** 3);
});
