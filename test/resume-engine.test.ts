// Resume inside the engine, where faults can be injected: a --fast-first
// run over bad sectors, stopped after a checkpoint, resumed from its journal
// to the image, bad ranges and hashes of an uninterrupted run.
import test from 'ava';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { CustosError } from '../appliance/errors.js';
import { acquire, AcquisitionAborted, type AcquireOptions } from '../appliance/imaging/acquire.js';
import { readJournal, journalPath } from '../appliance/imaging/journal.js';
import { planResume } from '../appliance/imaging/resume-plan.js';
import { DeviceReader, type SectorReader } from '../appliance/imaging/sector-reader.js';
import type { ImagingEvent } from '../appliance/imaging/events.js';
import { FaultyReader } from './helpers/faulty-reader.js';
import { sourceInfo } from './helpers/faulty-acquire.js';
import { patternLoop, tempDir } from './helpers/loop.js';

const MiB = 1024 * 1024;

/** Stops the run (as a pulled plug would) once reading passes `at`. */
class StoppingReader implements SectorReader {
  readonly name: string;
  readonly size: number;
  readonly sectorSize: number;
  constructor(
    private readonly inner: SectorReader,
    private readonly at: number,
    private readonly stop: AbortController,
  ) {
    this.name = inner.name;
    this.size = inner.size;
    this.sectorSize = inner.sectorSize;
  }
  read(buffer: Buffer, length: number, offset: number): Promise<number> {
    if (offset >= this.at && !this.stop.signal.aborted) this.stop.abort(new CustosError('EINTR', 'stopped by the test'));
    return this.inner.read(buffer, length, offset);
  }
  close(): void {
    this.inner.close();
  }
}

test('--fast-first over bad sectors, stopped after a checkpoint and resumed: same image, bad ranges, deferred ranges and hashes as a run that was not stopped', async (t) => {
  const loop = await patternLoop(64 * MiB, {}, 91);
  t.teardown(loop.detach);
  // Bad sectors before the stop (their deferred ranges go through the journal) and after it.
  const bad = [2000, 2001, 2002, 9000, 70_000, 70_001, 120_000];
  const settings = (dir: string, reader: SectorReader): AcquireOptions => ({
    reader,
    source: sourceInfo(reader),
    sourceDisk: loop.name,
    writeBlock: null,
    destinations: [dir],
    name: 'ff',
    format: 'raw',
    splitSize: 0,
    hashes: ['md5', 'sha256'],
    pieceSize: MiB,
    blockSize: MiB,
    buffers: 4,
    policy: { retries: 1, fill: 0 },
    fastFirst: true,
    verify: true,
    verifySource: false,
    // A checkpoint at every window.
    journalIntervalMs: 1,
  });

  const whole = tempDir();
  t.teardown(() => rmSync(whole, { recursive: true, force: true }));
  const straight = await acquire(settings(whole, new FaultyReader(new DeviceReader(loop.dev), bad)));
  t.is(straight.status, 'complete-with-bad-sectors');
  t.true(straight.recovery !== null && straight.recovery.deferred.length >= 3);
  t.false(existsSync(journalPath(whole, 'ff')), 'a finished run leaves no journal');

  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const stop = new AbortController();
  const events: ImagingEvent[] = [];
  const first = new StoppingReader(new FaultyReader(new DeviceReader(loop.dev), bad), 40 * MiB, stop);
  const err = await t.throwsAsync(acquire({ ...settings(dir, first), signal: stop.signal, onEvent: (e) => events.push(e) }));
  t.true(err instanceof AcquisitionAborted);
  first.close();
  const journal = readJournal(journalPath(dir, 'ff'));
  t.true(journal.position >= 8 * MiB && journal.position <= 40 * MiB, `checkpoint at ${journal.position}`);
  t.true(journal.deferred.length >= 2, 'the deferred ranges before the checkpoint are in the journal');
  t.deepEqual(journal.deferred, straight.recovery?.deferred.filter((d) => d.offset < journal.position));

  const plan = planResume([dir]);
  const again = new FaultyReader(new DeviceReader(loop.dev), bad);
  const resumed = await acquire({ ...settings(dir, again), ...plan.journal.settings, resume: plan, journalIntervalMs: 1 });
  again.close();
  t.is(resumed.status, 'complete-with-bad-sectors');
  t.deepEqual(resumed.hashes, straight.hashes);
  t.deepEqual(resumed.pieces.sha256, straight.pieces.sha256);
  t.deepEqual(resumed.badRanges, straight.badRanges);
  t.deepEqual(resumed.recovery?.deferred, straight.recovery?.deferred);
  t.is(resumed.resume?.position, journal.position);
  t.true(resumed.destinations[0]?.verification?.match);
  const image = readFileSync(path.join(dir, 'ff.raw'));
  t.true(image.equals(readFileSync(path.join(whole, 'ff.raw'))), 'byte for byte the image of the run that was not stopped');
  t.is(createHash('sha256').update(image).digest('hex'), straight.hashes.sha256 ?? '');
  t.false(existsSync(journalPath(dir, 'ff')));
});
