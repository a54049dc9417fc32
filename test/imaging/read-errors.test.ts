import { rmSync } from 'node:fs';
import test from 'ava';
import { patternLoop, tempDir } from '../helpers/loop.js';
import { FaultyReader } from '../helpers/faulty-reader.js';
import { checkImage, imageWithFaults, ranges, SECTORS, sourceInfo } from '../helpers/faulty-acquire.js';
import { DeviceReader } from '../../appliance/imaging/read/sector-reader.js';
import { acquire } from '../../appliance/imaging/acquire.js';
import { AcquisitionAborted } from '../../appliance/imaging/acquire-options.js';
import type { ImagingEvent } from '../../appliance/events.js';
import { DeviceIoError } from '../../appliance/errors.js';

const cases: [string, number[]][] = [
  ['first sector', [0]],
  ['a single sector in the middle of a block', [5000]],
  ['a run across a block boundary', Array.from({ length: 40 }, (_, i) => 2028 + i)],
  ['the last sector', [SECTORS - 1]],
  ['start, middle, run and last together', [0, 1, 7777, ...Array.from({ length: 9 }, (_, i) => 12000 + i), SECTORS - 1]],
];

for (const [label, bad] of cases) {
  for (const mode of ['short', 'whole'] as const) {
    test(`bad sectors (${label}, ${mode} failure): zero fill exactly there, error list equals injected LBAs`, async (t) => {
      const { record, source, image, events } = await imageWithFaults(bad, { mode });
      checkImage(t, source, image, new Set(bad), 0);
      t.deepEqual(
        record.badRanges.map((r) => ({ firstLba: r.firstLba, lastLba: r.lastLba })),
        ranges(bad),
      );
      t.true(record.badRanges.every((r) => r.errno === 5 && r.error === 'EIO' && r.attempts === 3));
      t.is(record.badSectors, bad.length);
      t.is(record.status, 'complete-with-bad-sectors');
      // The image hashes are of what was written, and the read-back agrees.
      t.true(record.destinations[0]?.verification?.match);
      t.true(events.some((e) => e.type === 'read-error'));
      t.is(
        events.filter((e) => e.type === 'bad-range').reduce((n, e) => n + Number(e.data?.['sectors']), 0),
        bad.length,
      );
    });
  }
}

test('configurable fill byte and no retries', async (t) => {
  const bad = [100, 101, 102];
  const { record, source, image, reader } = await imageWithFaults(bad, { fill: 0xee, retries: 0, errno: 61 /* ENODATA */ });
  checkImage(t, source, image, new Set(bad), 0xee);
  t.deepEqual(
    record.badRanges.map((r) => [r.firstLba, r.lastLba, r.error, r.attempts]),
    [[100, 102, 'ENODATA', 1]],
  );
  // One failed block read, then exactly one attempt per bad sector.
  t.deepEqual(
    [...reader.attempts.entries()].sort((a, b) => a[0] - b[0]),
    [
      [100, 2],
      [101, 1],
      [102, 1],
    ],
  );
});

test('a flaky sector read on retry is kept and logged, not filled', async (t) => {
  const { record, source, image, events } = await imageWithFaults([], { flaky: new Map([[3000, 2]]) });
  checkImage(t, source, image, new Set(), 0);
  t.deepEqual(record.badRanges, []);
  t.is(record.status, 'complete');
  const rec = events.find((e) => e.type === 'read-recovered');
  t.is(rec?.data?.['lba'], 3000);
});

test('a vanished source (ENODEV) aborts instead of filling', async (t) => {
  const loop = await patternLoop(SECTORS * 512, {}, 22);
  t.teardown(loop.detach);
  const gone = Array.from({ length: SECTORS - 8000 }, (_, i) => 8000 + i);
  const reader = new FaultyReader(new DeviceReader(loop.dev), gone, { errno: 19 });
  t.teardown(() => reader.close());
  const out = tempDir();
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const events: ImagingEvent[] = [];
  const err = await t.throwsAsync(
    acquire({
      reader,
      source: sourceInfo(reader),
      sourceDisk: loop.name,
      writeBlock: null,
      destinations: [out],
      name: 'gone',
      format: 'raw',
      splitSize: 0,
      hashes: ['sha256'],
      pieceSize: 1024 * 1024,
      blockSize: 1024 * 1024,
      buffers: 4,
      policy: { retries: 2, fill: 0 },
      fastFirst: false,
      verify: false,
      verifySource: false,
      onEvent: (e) => events.push(e),
    }),
  );
  t.true(err instanceof AcquisitionAborted);
  t.is((err as AcquisitionAborted).code, 'ENODEV');
  t.is((err as AcquisitionAborted).record.status, 'aborted');
  t.true(events.some((e) => e.type === 'aborted'));
  const rec = (err as AcquisitionAborted).record;
  t.is(rec.status, 'aborted');
  t.deepEqual(rec.hashes, {});
  t.false(err instanceof DeviceIoError);
});
