// Resume: acquisitions killed (SIGKILL, SIGINT) at random points and resumed
// until they finish, each to the exact hashes of the source, checked by
// sha256sum and libewf; and what a resume refuses.
import test, { type ExecutionContext } from 'ava';
import { execa, type ResultPromise } from 'execa';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CUSTOS, custos } from '../helpers/cli.js';
import { attachLoop, patternLoop, tempDir, type Loop } from '../helpers/loop.js';
import { writeMixedImage, xorshift } from '../helpers/mixed-content.js';
import type { CustodyRecord } from '../../appliance/custody/custody-record.js';
import type { AcquisitionJournal } from '../../appliance/imaging/resume/journal.js';
import { custodyProblems, eventProblems } from '../helpers/schema.js';

const SOURCE_BYTES = 1536 * 1024 * 1024;
// tmpfs: a source fast enough that a run takes seconds, and no disk space used.
const shm = (prefix: string) => {
  const d = path.join('/dev/shm', `${prefix}-${process.pid}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(d);
  return d;
};

interface Source {
  loop: Loop;
  md5: string;
  sha256: string;
  state: string;
}

let source: Source | null = null;

test.before(async () => {
  const dir = shm('custos-resume-src');
  const file = path.join(dir, 'source.img');
  writeMixedImage(file, SOURCE_BYTES, 17);
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 4 * 1024 * 1024 })) {
    md5.update(chunk as Buffer);
    sha256.update(chunk as Buffer);
  }
  const loop = await attachLoop(file);
  const state = tempDir();
  const p = await custos(['writeblock', 'protect', loop.dev], state);
  if (p.exitCode !== 0) throw new Error(String(p.stderr));
  source = {
    loop: {
      ...loop,
      detach: async () => {
        await loop.detach();
        rmSync(dir, { recursive: true, force: true });
      },
    },
    md5: md5.digest('hex'),
    sha256: sha256.digest('hex'),
    state,
  };
});

test.after.always(async () => {
  await source?.loop.detach();
});

function src(): Source {
  if (!source) throw new Error('no source');
  return source;
}

function start(args: string[]): ResultPromise {
  return execa(CUSTOS, ['acquire', '--source', src().loop.dev, '--journal-interval', '1s', ...args], {
    reject: false,
    env: { CUSTOS_STATE_DIR: src().state },
    timeout: 300_000,
  });
}

function journalOf(dir: string): AcquisitionJournal | null {
  try {
    return JSON.parse(readFileSync(path.join(dir, 'image.journal.json'), 'utf8')) as AcquisitionJournal;
  } catch {
    return null;
  }
}

/**
 * Lets `run` pass a checkpoint beyond `after`, waits `delayMs` more, then
 * sends `signal`. True when the run was interrupted, false when it finished
 * first (then there is nothing to resume).
 */
async function interrupt(run: ResultPromise, dir: string, after: number, delayMs: number, signal: 'SIGKILL' | 'SIGINT'): Promise<boolean> {
  let exited = false;
  void run.finally(() => (exited = true));
  while (!exited && (journalOf(dir)?.checkpoint ?? 0) <= after) await new Promise((r) => setTimeout(r, 20));
  if (exited) return false;
  await new Promise((r) => setTimeout(r, delayMs));
  if (exited) return false;
  run.kill(signal);
  const r = await run;
  return signal === 'SIGKILL' ? r.signal === 'SIGKILL' : r.exitCode === 1 && /interrupted by SIGINT/.test(String(r.stderr));
}

const FORMATS = {
  raw: [] as string[],
  split: ['--format', 'split', '--split-size', '256M'],
  e01: ['--format', 'e01', '--segment-size', '200M'],
};
type Format = keyof typeof FORMATS;

/** The image in `dir` read by tools custos did not write: sha256sum over the raw files, ewfverify over the E01. */
async function independentHashes(t: ExecutionContext, dir: string, format: Format): Promise<{ md5?: string; sha256?: string }> {
  if (format === 'e01') {
    const v = await execa('ewfverify', ['-q', '-d', 'sha1', path.join(dir, 'image.E01')], { reject: false });
    t.is(v.exitCode, 0, `ewfverify ${dir}: ${v.stdout}${v.stderr}`);
    return { md5: /MD5 hash calculated over data:\s*([0-9a-f]{32})/.exec(v.stdout)?.[1] ?? '' };
  }
  const files = readdirSync(dir)
    .filter((f) => /^image\.(raw|\d{3})$/.test(f))
    .sort()
    .map((f) => path.join(dir, f));
  const out = await execa('sh', ['-c', 'cat "$@" | sha256sum', 'sh', ...files]);
  return { sha256: out.stdout.split(' ')[0] ?? '' };
}

test.serial(
  'acquisitions killed at random points (SIGKILL, some SIGINT, some twice) and resumed: raw, split and E01 all end with the exact hashes of the source',
  async (t) => {
    t.timeout(40 * 60_000);
    const rng = xorshift(20261121);
    const tally = {
      attempts: 0,
      resumedRuns: 0,
      interruptions: 0,
      sigkill: 0,
      sigint: 0,
      ranThrough: 0,
      byFormat: { raw: 0, split: 0, e01: 0 } as Record<Format, number>,
      discardedBytes: 0,
    };
    for (let i = 0; tally.resumedRuns < 21 && i < 45; i++) {
      tally.attempts++;
      const format = (['raw', 'split', 'e01'] as const)[i % 3] as Format;
      const twoCopies = i % 4 === 1;
      const dirs = twoCopies ? [shm('custos-resume-a'), shm('custos-resume-b')] : [shm('custos-resume-a')];
      try {
        const first = dirs[0] as string;
        const signal = i % 7 === 3 ? 'SIGINT' : 'SIGKILL';
        const run = start([...dirs.flatMap((d) => ['--out', d]), ...FORMATS[format], '--case', `resume-${i}`]);
        const interrupted = await interrupt(run, first, 0, rng() % 1200, signal);
        if (!interrupted) {
          tally.ranThrough++;
          continue;
        }
        tally.interruptions++;
        tally[signal === 'SIGKILL' ? 'sigkill' : 'sigint']++;
        const resumeArgs = dirs.flatMap((d) => ['--resume', d]);
        // Every fifth run is interrupted again while resuming: a resume of a resume.
        if (i % 5 === 2) {
          const at = journalOf(first)?.checkpoint ?? 0;
          if (await interrupt(start(resumeArgs), first, at, rng() % 800, 'SIGKILL')) {
            tally.interruptions++;
            tally.sigkill++;
          }
        }
        const done = await start(resumeArgs);
        t.is(done.exitCode, 0, `run ${i} (${format}): ${String(done.stderr)}`);
        tally.resumedRuns++;
        tally.byFormat[format]++;
        for (const dir of dirs) {
          const rec = JSON.parse(readFileSync(path.join(dir, 'custody.json'), 'utf8')) as CustodyRecord;
          t.is(rec.status, 'complete', `run ${i} ${dir}`);
          t.deepEqual(custodyProblems(rec), [], `run ${i}: the record validates against the schema`);
          t.is(rec.acquisition.hashes.md5, src().md5, `run ${i} ${format}: md5`);
          t.is(rec.acquisition.hashes.sha256, src().sha256, `run ${i} ${format}: sha256`);
          t.truthy(rec.acquisition.resume, `run ${i}: the record says it was resumed`);
          t.true((rec.acquisition.resume?.position ?? 0) > 0);
          t.is(rec.case.caseNumber?.value, `resume-${i}`, 'the case details are the journal’s');
          const independent = await independentHashes(t, dir, format);
          if (independent.md5 !== undefined) t.is(independent.md5, src().md5, `run ${i} ${format}: ewfverify md5`);
          if (independent.sha256 !== undefined) t.is(independent.sha256, src().sha256, `run ${i} ${format}: sha256sum`);
          t.false(existsSync(path.join(dir, 'image.journal.json')), 'the journal goes once the record is written');
          // The log: one chain, one custody-resumed entry per resume, the record's signature over all of it.
          const log = readFileSync(path.join(dir, 'events.jsonl'), 'utf8')
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l) as { type: string; data: { data?: { bytes?: number } } });
          for (const e of log) t.deepEqual(eventProblems(e), [], `run ${i}: ${e.type}`);
          t.is(log.filter((e) => e.type === 'custody-resumed').length, rec.acquisition.resume?.resumes ?? -1, `run ${i}`);
          tally.discardedBytes += log.filter((e) => e.type === 'resume-discard').reduce((n, e) => n + (e.data.data?.bytes ?? 0), 0);
          if (signal === 'SIGINT') t.true(existsSync(path.join(dir, 'interrupted-1', 'custody.json')), 'the aborted run’s record is kept aside');
          const v = await custos(['verify', '--record-only', dir], src().state);
          t.is(v.exitCode, 0, `run ${i}: ${String(v.stdout)}`);
        }
      } finally {
        for (const d of dirs) rmSync(d, { recursive: true, force: true });
      }
    }
    t.log(JSON.stringify(tally));
    t.true(tally.resumedRuns >= 20, `only ${tally.resumedRuns} runs were interrupted and resumed`);
    for (const f of ['raw', 'split', 'e01'] as const) t.true(tally.byFormat[f] >= 5, `${f}: ${tally.byFormat[f]} resumed runs`);
  },
);

test.serial('a destination lost mid-run: the acquisition resumes from the other copy, moved onto a new drive, to the exact hashes', async (t) => {
  const [a, b, c] = [shm('custos-lost-a'), shm('custos-lost-b'), shm('custos-new-c')];
  t.teardown(() => [a, b, c].forEach((d) => rmSync(d, { recursive: true, force: true })));
  t.true(await interrupt(start(['--out', a, '--out', b, '--format', 'e01']), a, 0, 200, 'SIGKILL'), 'interrupted mid-run');
  // Drive a died; what b holds is copied to a new drive c, and the acquisition goes on there.
  rmSync(a, { recursive: true, force: true });
  cpSync(b, c, { recursive: true });
  const done = await start(['--resume', c]);
  t.is(done.exitCode, 0, String(done.stderr));
  const rec = JSON.parse(readFileSync(path.join(c, 'custody.json'), 'utf8')) as CustodyRecord;
  t.is(rec.acquisition.hashes.md5, src().md5);
  t.is(rec.acquisition.hashes.sha256, src().sha256);
  t.is((await independentHashes(t, c, 'e01')).md5, src().md5);
  t.deepEqual(
    rec.acquisition.destinations.map((d) => d.dir),
    [c],
  );
});

test.serial(
  'what a resume refuses: another disk, a damaged or hostile journal, changed image bytes, settings given again; a refusal changes nothing',
  async (t) => {
    const dir = shm('custos-refuse');
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    t.true(await interrupt(start(['--out', dir]), dir, 0, 0, 'SIGKILL'));
    const listing = () =>
      readdirSync(dir)
        .sort()
        .map((f) => `${f}:${statSync(path.join(dir, f)).size}`);
    const before = listing();
    const journalFile = path.join(dir, 'image.journal.json');
    const journalBytes = readFileSync(journalFile);
    const state = src().state;

    // Settings belong to the journal.
    const usage = await custos(['acquire', '--resume', dir, '--source', src().loop.dev, '--format', 'e01'], state);
    t.is(usage.exitCode, 2);
    t.regex(String(usage.stderr), /--format does not go with --resume/);

    // Another disk (a different size) is refused before anything is opened for writing.
    const other = await patternLoop(8 * 1024 * 1024, {}, 3);
    t.teardown(other.detach);
    await custos(['writeblock', 'protect', other.dev], state);
    const wrong = await custos(['acquire', '--resume', dir, '--source', other.dev], state);
    t.is(wrong.exitCode, 1);
    t.regex(String(wrong.stderr), /ERESUMESOURCE|interrupted acquisition's source had/);
    t.deepEqual(listing(), before);

    // Hostile journals: clear errors, no crash, nothing changed.
    for (const bad of [
      'not json at all \u001b[2J',
      JSON.stringify({ ...JSON.parse(journalBytes.toString('utf8')), position: -5 }),
      JSON.stringify({ ...JSON.parse(journalBytes.toString('utf8')), pieces: ['zz'] }),
      JSON.stringify({ ...JSON.parse(journalBytes.toString('utf8')), settings: { name: 'image', format: 'raw\u0007' } }),
    ]) {
      writeFileSync(journalFile, bad);
      const r = await custos(['acquire', '--resume', dir, '--source', src().loop.dev], state);
      t.is(r.exitCode, 1, bad.slice(0, 40));
      t.regex(String(r.stderr), /image\.journal\.json: /);
      t.false(String(r.stderr).includes('\u001b'), 'no escape sequence reaches the terminal');
      t.false(String(r.stderr).includes('    at '), 'no stack trace');
    }
    writeFileSync(journalFile, journalBytes);
    t.deepEqual(listing(), before);

    // One byte of the image before the resume point changed: the resumed run stops at that window, nothing complete.
    const image = path.join(dir, 'image.raw');
    const flip = Buffer.alloc(1);
    const h = await import('node:fs/promises').then((m) => m.open(image, 'r+'));
    await h.read(flip, 0, 1, 70_000_000);
    flip[0] = (flip[0] as number) ^ 0xff;
    await h.write(flip, 0, 1, 70_000_000);
    await h.close();
    const changed = await custos(['acquire', '--resume', dir, '--source', src().loop.dev], state);
    t.is(changed.exitCode, 1);
    t.regex(String(changed.stderr), /window 1 of the image written before the resume point no longer matches the journal/);
    const rec = JSON.parse(readFileSync(path.join(dir, 'custody.json'), 'utf8')) as CustodyRecord;
    t.is(rec.status, 'aborted');
    t.deepEqual(custodyProblems(rec), []);
    t.is(rec.acquisition.error?.code, 'ERESUMEMISMATCH');
    t.is(Object.keys(rec.acquisition.hashes).length, 0, 'no hash is claimed');

    // A finished acquisition is not resumed.
    const finished = shm('custos-finished');
    t.teardown(() => rmSync(finished, { recursive: true, force: true }));
    copyFileSync(journalFile, path.join(finished, 'image.journal.json'));
    writeFileSync(path.join(finished, 'custody.json'), JSON.stringify({ status: 'complete' }));
    const again = await custos(['acquire', '--resume', finished, '--source', src().loop.dev], state);
    t.is(again.exitCode, 1);
    t.regex(String(again.stderr), /status complete: that acquisition finished/);
  },
);
