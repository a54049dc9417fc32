// Resume inside the engine, where faults can be injected: a --fast-first
// run over bad sectors, stopped after a checkpoint, resumed from its journal
// to the image, bad ranges and hashes of an uninterrupted run.
import test from 'ava';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { CustosError } from '../../appliance/errors.js';
import { acquire } from '../../appliance/imaging/acquire.js';
import { AcquisitionAborted, type AcquireOptions } from '../../appliance/imaging/acquire-options.js';
import { readJournal, journalPath } from '../../appliance/imaging/resume/journal.js';
import { planResume } from '../../appliance/imaging/resume/resume-plan.js';
import { DeviceReader, type SectorReader } from '../../appliance/imaging/read/sector-reader.js';
import type { ImagingEvent } from '../../appliance/events.js';
import { FaultyReader } from '../helpers/faulty-reader.js';
import { loopAcquisition } from '../helpers/faulty-acquire.js';
import { patternLoop, tempDir } from '../helpers/loop.js';

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

for (const format of ['raw', 'e01'] as const)
  test(`--fast-first over bad and flaky sectors (${format}), stopped after a checkpoint and resumed: same image, bad ranges, deferred ranges and hashes as a run that was not stopped`, async (t) => {
    const loop = await patternLoop(64 * MiB, {}, 91);
    t.teardown(loop.detach);
    // Bad sectors before the stop (their deferred ranges go through the journal) and after it.
    const bad = [2000, 2001, 2002, 9000, 70_000, 70_001, 120_000];
    // Flaky sectors (fail once, then read) before the stop: the recovery pass of the resumed run writes them.
    const flaky = () =>
      new Map([
        [5000, 1],
        [30_000, 1],
        [100_000, 1],
      ]);
    const faulty = () => new FaultyReader(new DeviceReader(loop.dev), bad, { flaky: flaky() });
    const settings = (dir: string, reader: SectorReader): AcquireOptions =>
      loopAcquisition(reader, loop.name, {
        destinations: [dir],
        name: 'ff',
        format,
        hashes: format === 'e01' ? ['md5', 'sha1', 'sha256'] : ['md5', 'sha256'],
        ...(format === 'e01' ? { ewf: { compression: 'fast' as const, segmentSize: 8 * MiB } } : {}),
        fastFirst: true,
        // A checkpoint at every window.
        journalIntervalMs: 1,
      });

    const whole = tempDir();
    t.teardown(() => rmSync(whole, { recursive: true, force: true }));
    const straight = await acquire(settings(whole, faulty()));
    t.is(straight.status, 'complete-with-bad-sectors');
    t.true(straight.recovery !== null && straight.recovery.deferred.length >= 3);
    t.false(existsSync(journalPath(whole, 'ff')), 'a finished run leaves no journal');

    const dir = tempDir();
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const stop = new AbortController();
    const events: ImagingEvent[] = [];
    const first = new StoppingReader(faulty(), 40 * MiB, stop);
    const err = await t.throwsAsync(acquire({ ...settings(dir, first), signal: stop.signal, onEvent: (e) => events.push(e) }));
    t.true(err instanceof AcquisitionAborted);
    first.close();
    const journal = readJournal(journalPath(dir, 'ff'));
    t.true(journal.position >= 8 * MiB && journal.position <= 40 * MiB, `checkpoint at ${journal.position}`);
    t.true(journal.deferred.length >= 2, 'the deferred ranges before the resume point are in the journal');
    // A range going on past the checkpoint is cut there (the resumed run reads on from it rather than skipping).
    const cut = (d: { offset: number; length: number }) => ({ ...d, length: Math.min(d.length, journal.position - d.offset) });
    t.deepEqual(journal.deferred, straight.recovery?.deferred.filter((d) => d.offset < journal.position).map(cut));

    const plan = planResume([dir]);
    const again = faulty();
    const resumed = await acquire({ ...settings(dir, again), ...plan.journal.settings, resume: plan, journalIntervalMs: 1 });
    again.close();
    t.is(resumed.status, 'complete-with-bad-sectors');
    t.deepEqual(resumed.hashes, straight.hashes);
    t.deepEqual(resumed.pieces.sha256, straight.pieces.sha256);
    t.deepEqual(resumed.badRanges, straight.badRanges);
    t.deepEqual(resumed.recovery?.deferred.slice(0, journal.deferred.length), journal.deferred, 'the recovery pass covered what the stopped run deferred');
    t.is(resumed.resume?.position, journal.position);
    t.true(resumed.destinations[0]?.verification?.match);
    t.true((resumed.recovery?.recoveredSectors ?? 0) > 0, 'the recovery pass read flaky sectors');
    if (format === 'raw') {
      const image = readFileSync(path.join(dir, 'ff.raw'));
      t.true(image.equals(readFileSync(path.join(whole, 'ff.raw'))), 'byte for byte the image of the run that was not stopped');
      t.is(createHash('sha256').update(image).digest('hex'), straight.hashes.sha256 ?? '');
    } else {
      t.true(journal.ewf !== null && journal.ewf.rawChunks.length > 0, 'the chunks kept raw for the recovery pass are in the journal');
      const v = await execa('ewfverify', ['-q', '-d', 'sha1', path.join(dir, 'ff.E01')], { reject: false });
      t.is(v.exitCode, 0, v.stdout);
      t.regex(v.stdout, new RegExp(`MD5 hash calculated over data:\\s*${straight.hashes.md5}`));
    }
    t.false(existsSync(journalPath(dir, 'ff')));
  });
