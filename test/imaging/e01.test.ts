// E01 output, checked by tools we did not write: libewf (ewfverify, ewfinfo,
// ewfexport, ewfacquire as the layout reference) and sleuthkit (img_stat).
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeSync, closeSync, truncateSync } from 'node:fs';
import path from 'node:path';
import { custos } from '../helpers/cli.js';
import { attachLoop, tempDir, type Loop } from '../helpers/loop.js';
import { writeMixedImage } from '../helpers/mixed-content.js';
import { Sysfs } from '../../appliance/disk/sysfs.js';
import { readCounters } from '../../appliance/disk/kernel-stat.js';
import { EwfImageReader } from '../../appliance/imaging/ewf/ewf-reader.js';
import type { ImageRecord } from '../../appliance/imaging/image-record.js';
import { acquire } from '../../appliance/imaging/acquire.js';
import { DeviceReader } from '../../appliance/imaging/read/sector-reader.js';
import { FaultyReader } from '../helpers/faulty-reader.js';
import { loopAcquisition } from '../helpers/faulty-acquire.js';
import { custodyProblems, eventProblems } from '../helpers/schema.js';

const sysfs = new Sysfs();
const MiB = 1024 * 1024;

function scratch(t: ExecutionContext): string {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A protected loop device over a file written by `fill`. */
async function source(
  t: ExecutionContext,
  bytes: number,
  fill: (file: string) => void,
  sectorSize: 512 | 4096 = 512,
): Promise<{ loop: Loop; state: string; file: string }> {
  const dir = scratch(t);
  const file = path.join(dir, 'source.img');
  fill(file);
  truncateSync(file, bytes);
  const loop = await attachLoop(file, { sectorSize });
  t.teardown(loop.detach);
  const state = scratch(t);
  const r = await custos(['writeblock', 'protect', loop.dev], state);
  if (r.exitCode !== 0) throw new Error(String(r.stderr));
  return { loop, state, file };
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function summary(stdout: unknown): ImageRecord {
  return JSON.parse(String(stdout)) as ImageRecord;
}

const CASE = ['--case', 'CASE-7', '--evidence', 'EV-3', '--examiner', 'Jürgen Müller', '--description', 'USB stick\tfrom desk', '--notes', 'sealed bag 12'];

async function acquireE01(
  t: ExecutionContext,
  src: { loop: Loop; state: string },
  extra: string[],
): Promise<{ out: string; rec: ImageRecord; stdout: string }> {
  const out = scratch(t);
  const before = readCounters(sysfs, src.loop.name);
  const r = await custos(
    ['acquire', '--source', src.loop.dev, '--out', out, '--name', 'ev', '--format', 'e01', '--verify', '--json', ...CASE, ...extra],
    src.state,
    { timeoutMs: 240_000 },
  );
  t.is(r.exitCode, 0, String(r.stderr).slice(-2000));
  const after = readCounters(sysfs, src.loop.name);
  t.truthy(before && after);
  t.is(after?.writeIos, before?.writeIos, 'the source was not written');
  t.is(after?.writeSectors, before?.writeSectors);
  return { out, rec: summary(r.stdout), stdout: String(r.stdout) };
}

async function ewfverify(first: string): Promise<{ ok: boolean; text: string }> {
  const r = await execa('ewfverify', ['-q', '-d', 'sha1', first], { reject: false });
  return { ok: r.exitCode === 0 && /ewfverify: SUCCESS/.test(r.stdout), text: `${r.stdout}\n${r.stderr}` };
}

/** ewfexport to a raw file (never to stdout: it appends its own status line there). */
async function exported(t: ExecutionContext, first: string): Promise<string> {
  const dir = scratch(t);
  await execa('ewfexport', ['-u', '-q', '-f', 'raw', '-t', path.join(dir, 'x'), first]);
  return sha256(path.join(dir, 'x.raw'));
}

function info(field: string, text: string): string | null {
  const m = new RegExp(`^\\s*${field}:\\s*(.*)$`, 'm').exec(text);
  return m ? (m[1] as string).trim() : null;
}

/** Every acceptance check a finished E01 must pass. */
async function checkWithStockTools(
  t: ExecutionContext,
  o: { out: string; rec: ImageRecord; file: string; bytes: number; sectorSize: number; compression: string },
): Promise<void> {
  const first = path.join(o.out, 'ev.E01');
  const v = await ewfverify(first);
  t.true(v.ok, v.text);
  t.regex(v.text, new RegExp(`MD5 hash stored in file:\\s+${o.rec.hashes.md5}`));
  t.regex(v.text, new RegExp(`SHA1 hash stored in file:\\s+${o.rec.hashes.sha1}`));
  const text = (await execa('ewfinfo', [first])).stdout;
  t.is(info('Case number', text), 'CASE-7');
  t.is(info('Evidence number', text), 'EV-3');
  t.is(info('Examiner name', text), 'Jürgen Müller');
  // A tab would shift every later field; it is written out instead.
  t.is(info('Description', text), 'USB stick\\u{9}from desk');
  t.is(info('Notes', text), 'sealed bag 12');
  t.is(info('File format', text), 'EnCase 6');
  t.is(info('Bytes per sector', text), String(o.sectorSize));
  t.is(info('Number of sectors', text), String(o.bytes / o.sectorSize));
  t.regex(text, new RegExp(`Media size:.*\\(${o.bytes} bytes\\)`));
  t.is(info('MD5', text), o.rec.hashes.md5 ?? null);
  t.is(info('SHA1', text), o.rec.hashes.sha1 ?? null);
  t.regex(info('Compression level', text) ?? '', { none: /no compression/, empty: /no compression/, fast: /fast/, best: /best/ }[o.compression] as RegExp);
  t.is(await exported(t, first), sha256(o.file), 'ewfexport gives back exactly the source bytes');
  const stat = (await execa('img_stat', [first])).stdout;
  t.regex(stat, /Image Type:\s+ewf/);
  t.regex(stat, new RegExp(`Size of data in bytes:\\s+${o.bytes}`));
  // Every segment file: present, and with the SHA-256 the record gives it.
  const names = readdirSync(o.out)
    .filter((f) => /^ev\.[E-Z][0-9A-Z]{2}$/.test(f))
    .sort();
  t.deepEqual(o.rec.image.files.map((f) => f.file).sort(), names);
  for (const f of o.rec.image.files) t.is(f.sha256, sha256(path.join(o.out, f.file)), f.file);
  t.is(o.rec.destinations[0]?.verification?.match, true);
  t.deepEqual(o.rec.destinations[0]?.verification?.container?.problems, []);
  // The signed record describes the E01 and validates against the schema.
  const custody = JSON.parse(readFileSync(path.join(o.out, 'custody.json'), 'utf8')) as { acquisition: ImageRecord };
  t.deepEqual(custodyProblems(custody), []);
  for (const line of readFileSync(path.join(o.out, 'events.jsonl'), 'utf8').trim().split('\n')) t.deepEqual(eventProblems(JSON.parse(line)), []);
  t.is(custody.acquisition.image.format, 'e01');
  t.deepEqual(custody.acquisition.image.ewf?.storedHashes, { md5: o.rec.hashes.md5, sha1: o.rec.hashes.sha1 });
  t.truthy(custody.acquisition.hashes.sha256, 'SHA-256 lives in the custody record');
}

const MIXED = 24 * MiB + 3 * 512;

for (const compression of ['none', 'empty', 'fast', 'best'] as const) {
  test(`E01 ${compression}, one segment, odd size: ewfverify, ewfinfo, ewfexport, img_stat and custos verify accept it`, async (t) => {
    const src = await source(t, MIXED, (f) => writeMixedImage(f, MIXED));
    const { out, rec } = await acquireE01(t, src, ['--compression', compression]);
    t.is(rec.image.files.length, 1);
    t.is(rec.image.ewf?.compression, compression);
    await checkWithStockTools(t, { out, rec, file: src.file, bytes: MIXED, sectorSize: 512, compression });
    const v = await custos(['verify', out], src.state);
    t.is(v.exitCode, 0, String(v.stdout));
    t.regex(String(v.stdout), /E01 container/);
    if (compression === 'none') t.true(statSync(path.join(out, 'ev.E01')).size > MIXED);
    if (compression === 'fast' || compression === 'best') t.true(statSync(path.join(out, 'ev.E01')).size < MIXED * 0.75, 'zeros and text compress');
  });
}

test('E01 in many 1 MiB segments with 4096-byte sectors, into two destinations: every tool accepts it, the copies are identical', async (t) => {
  const bytes = 12 * MiB + 3 * 4096;
  const src = await source(t, bytes, (f) => writeMixedImage(f, bytes, 11), 4096);
  const second = scratch(t);
  const { out, rec } = await acquireE01(t, src, ['--compression', 'fast', '--segment-size', '1M', '--out', second]);
  // Each block is compressed once for both copies: the same bytes, file for file.
  for (const f of rec.image.files) t.is(sha256(path.join(second, f.file)), f.sha256 ?? '', f.file);
  t.is(rec.destinations[1]?.verification?.match, true);
  t.true(rec.image.files.length >= 5, `${rec.image.files.length} segments`);
  for (const f of rec.image.files) t.true(f.size <= MiB, `${f.file} is ${f.size} bytes`);
  await checkWithStockTools(t, { out, rec, file: src.file, bytes, sectorSize: 4096, compression: 'fast' });
});

test('past .E99 segments are named .EAA, .EAB ... as libewf names them, and libewf reads them all', async (t) => {
  const bytes = 104 * MiB;
  const src = await source(t, bytes, (f) => {
    // Random only: every chunk stored raw, so the segment count is predictable.
    const fd = openSync(f, 'w');
    const b = Buffer.alloc(MiB);
    for (let i = 0; i < 104; i++) writeSync(fd, fillRandom(b, i));
    closeSync(fd);
  });
  const { out, rec } = await acquireE01(t, src, ['--compression', 'none', '--segment-size', '1M']);
  const names = rec.image.files.map((f) => f.file);
  t.true(names.length > 100, `${names.length} segments`);
  t.is(names[98], 'ev.E99');
  t.is(names[99], 'ev.EAA');
  t.is(names[100], 'ev.EAB');
  const v = await ewfverify(path.join(out, 'ev.E01'));
  t.true(v.ok, v.text);
  t.is(await exported(t, path.join(out, 'ev.E01')), sha256(src.file));
});

function fillRandom(b: Buffer, seed: number): Buffer {
  let h = createHash('sha512').update(`seed ${seed}`).digest();
  for (let at = 0; at < b.length; at += h.length) {
    h.copy(b, at);
    h = createHash('sha512').update(h).digest();
  }
  return b;
}

/** The section types of each segment of the E01 starting at `first`, with the volume's geometry. */
function layoutOf(dir: string, name: string): { sections: string[][]; chunks: number; sectorsPerChunk: number; level: number } {
  const files = readdirSync(dir)
    .filter((f) => f.startsWith(`${name}.E`))
    .sort()
    .map((f) => path.join(dir, f));
  const r = new EwfImageReader(files);
  try {
    return { sections: r.layout, chunks: r.volume.chunkCount, sectorsPerChunk: r.volume.sectorsPerChunk, level: r.volume.compressionLevel };
  } finally {
    r.close();
  }
}

test('the section sequence is the one ewfacquire -f encase6 writes for the same source, in one and in several segments', async (t) => {
  const bytes = 6 * MiB + 512;
  const src = await source(t, bytes, (f) => writeMixedImage(f, bytes, 5));
  for (const segment of [null, '1M']) {
    const seg = segment ? ['--segment-size', segment] : [];
    const { out } = await acquireE01(t, src, ['--compression', 'fast', ...seg]);
    const ref = scratch(t);
    // ewfacquire reads the same protected loop device (read-only) as the reference.
    const r = await execa(
      'ewfacquire',
      [
        '-u',
        '-q',
        '-t',
        path.join(ref, 'ref'),
        '-c',
        'deflate:fast',
        '-d',
        'sha1',
        '-f',
        'encase6',
        ...(segment ? ['-S', String(MiB)] : []),
        '-C',
        'C',
        '-E',
        'E',
        '-e',
        'X',
        '-D',
        'D',
        '-N',
        'N',
        '-m',
        'fixed',
        '-M',
        'physical',
        src.loop.dev,
      ],
      { reject: false },
    );
    t.is(r.exitCode, 0, r.stderr + r.stdout);
    const ours = layoutOf(out, 'ev');
    const theirs = layoutOf(ref, 'ref');
    t.deepEqual(ours.sections, theirs.sections, `segments: ${segment ?? 'one'}`);
    t.is(ours.chunks, theirs.chunks);
    t.is(ours.sectorsPerChunk, theirs.sectorsPerChunk);
    t.is(ours.level, theirs.level);
  }
});

test('a corrupted chunk or a missing segment makes ewfverify and custos verify fail', async (t) => {
  const bytes = 8 * MiB;
  const src = await source(t, bytes, (f) => writeMixedImage(f, bytes, 9));
  const { out } = await acquireE01(t, src, ['--compression', 'fast', '--segment-size', '1M']);
  // Copies of the evidence directory, one per kind of damage.
  const copy = (): string => {
    const d = scratch(t);
    for (const f of readdirSync(out)) copyFileSync(path.join(out, f), path.join(d, f));
    for (const f of readdirSync(d)) chmodSync(path.join(d, f), 0o644);
    return d;
  };
  // One byte inside the first chunk of the second segment (just after its data and sectors descriptors).
  const flipped = copy();
  const e02 = path.join(flipped, 'ev.E02');
  const bytesOf = readFileSync(e02);
  const at = 13 + 76 + 1052 + 76 + 100;
  bytesOf[at] = (bytesOf[at] as number) ^ 0x01;
  const fd = openSync(e02, 'r+');
  writeSync(fd, bytesOf, at, 1, at);
  closeSync(fd);
  const v1 = await ewfverify(path.join(flipped, 'ev.E01'));
  t.false(v1.ok, 'ewfverify must fail on a flipped byte');
  const c1 = await custos(['verify', flipped], src.state);
  t.is(c1.exitCode, 1);
  t.regex(String(c1.stdout), /FAIL.*E01 container.*chunk \d+/);
  t.regex(String(c1.stdout), /FAIL.*ev\.E02/);

  const missing = copy();
  rmSync(path.join(missing, 'ev.E02'));
  const v2 = await ewfverify(path.join(missing, 'ev.E01'));
  t.false(v2.ok, 'ewfverify must fail without .E02');
  const c2 = await custos(['verify', missing], src.state);
  t.is(c2.exitCode, 1);
  t.regex(String(c2.stdout), /ev\.E02 is missing/);

  // Our own reader refuses a set with a gap, naming the segment.
  const files = readdirSync(missing)
    .filter((f) => f.startsWith('ev.E'))
    .sort()
    .map((f) => path.join(missing, f));
  t.throws(() => new EwfImageReader(files), { message: /segment number 3, expected 2/ });
});

test('a 4.1 GiB sparse source: tables past 65534 chunks and several groups per segment, accepted by ewfverify', async (t) => {
  const bytes = 4.1 * 1024 * MiB - ((4.1 * 1024 * MiB) % 4096);
  const src = await source(t, bytes, (f) => {
    // Mostly holes (zeros), with data at the start, across the 2 GiB line and at the end.
    const fd = openSync(f, 'w');
    const b = fillRandom(Buffer.alloc(MiB), 3);
    for (const off of [0, 2 * 1024 * MiB - 512 * 1024, bytes - MiB]) writeSync(fd, b, 0, MiB, off);
    closeSync(fd);
  });
  // A zero chunk stores in about 170 bytes with its table entries: 16 MiB segments hold about 98000 chunks.
  const { out, rec } = await acquireE01(t, src, ['--compression', 'fast', '--segment-size', '16M']);
  const layout = layoutOf(out, 'ev');
  const tables = layout.sections.flat().filter((s) => s === 'table').length;
  t.true(tables >= 3, `${tables} tables for ${layout.chunks} chunks`);
  t.true(
    layout.sections.some((s) => s.filter((x) => x === 'table').length >= 2),
    'a segment holds more than one sectors/table group',
  );
  t.true(rec.image.files.length >= 2);
  const v = await ewfverify(path.join(out, 'ev.E01'));
  t.true(v.ok, v.text);
});

test('E01 usage errors change nothing: compression without e01, tiny segments, hashes added', async (t) => {
  const out = scratch(t);
  mkdirSync(path.join(out, 'x'));
  const cases: [string[], RegExp][] = [
    [['--format', 'raw', '--compression', 'fast'], /--compression and --segment-size go with --format e01/],
    [['--format', 'e01', '--compression', 'huge'], /--compression must be one of none, empty, fast, best/],
    [['--format', 'e01', '--segment-size', '100K'], /--segment-size must be at least 1M/],
    [['--format', 'e01', '--block-size', '12K'], /multiple of the E01 chunk size/],
  ];
  const src = await source(t, 2 * MiB, (f) => writeMixedImage(f, 2 * MiB));
  for (const [args, msg] of cases) {
    const r = await custos(['acquire', '--source', src.loop.dev, '--out', out, ...args], src.state);
    t.is(r.exitCode, 2, `${args.join(' ')}: ${String(r.stderr)}`);
    t.regex(String(r.stderr), msg);
  }
  t.deepEqual(readdirSync(out), ['x'], 'nothing was written');
});

test('bad sectors go into the error2 section: ewfinfo lists them as acquisition errors, ewfverify passes, the data reads as the fill', async (t) => {
  const bytes = 8 * MiB;
  const dir = scratch(t);
  const file = path.join(dir, 'source.img');
  writeMixedImage(file, bytes, 13);
  const loop = await attachLoop(file);
  t.teardown(loop.detach);
  const bad = [100, 101, 102, 5000, 16383];
  const reader = new FaultyReader(new DeviceReader(loop.dev), bad);
  const out = scratch(t);
  let rec: ImageRecord;
  try {
    rec = await acquire(
      loopAcquisition(reader, loop.name, {
        destinations: [out],
        name: 'ev',
        format: 'e01',
        hashes: ['md5', 'sha1', 'sha256'],
        ewf: { compression: 'fast', segmentSize: 2 * MiB },
      }),
    );
  } finally {
    reader.close();
  }
  t.is(rec.status, 'complete-with-bad-sectors');
  t.deepEqual(
    rec.badRanges.map((r) => [r.firstLba, r.sectors]),
    [
      [100, 3],
      [5000, 1],
      [16383, 1],
    ],
  );
  t.is(rec.image.ewf?.error2Runs, 3);
  const first = path.join(out, 'ev.E01');
  const errors = (await execa('ewfinfo', ['-e', first])).stdout;
  t.regex(errors, /Read errors during acquiry\s+total number: 3/, errors);
  t.regex(errors, /at sector\(s\):\s*100 - 102/, errors);
  t.regex(errors, /at sector\(s\):\s*5000 - 5000/, errors);
  t.regex(errors, /at sector\(s\):\s*16383 - 16383/, errors);
  const v = await ewfverify(first);
  t.true(v.ok, v.text);
  // What the image holds: the source with the unreadable sectors as the fill.
  const expected = readFileSync(file);
  for (const lba of bad) expected.fill(0, lba * 512, lba * 512 + 512);
  t.is(await exported(t, first), createHash('sha256').update(expected).digest('hex'));
  t.is(rec.hashes.sha256, createHash('sha256').update(expected).digest('hex'));
});

test('--fast-first into E01 over bad and flaky sectors, two copies in small segments: deferred chunks kept raw and written again in place; ewfverify, ewfexport and the stored hashes agree', async (t) => {
  const bytes = 12 * MiB;
  const dir = scratch(t);
  const file = path.join(dir, 'source.img');
  writeMixedImage(file, bytes, 29);
  const loop = await attachLoop(file);
  t.teardown(loop.detach);
  const bad = [300, 301, 9000, 20000];
  // Flaky sectors fail once: pass 1 defers them, the recovery pass reads them.
  const flaky = new Map([
    [4100, 1],
    [4101, 1],
    [15000, 1],
  ]);
  const reader = new FaultyReader(new DeviceReader(loop.dev), bad, { flaky });
  const [a, b] = [scratch(t), scratch(t)];
  let rec: ImageRecord;
  try {
    rec = await acquire(
      loopAcquisition(reader, loop.name, {
        destinations: [a, b],
        name: 'ff',
        format: 'e01',
        hashes: ['md5', 'sha1', 'sha256'],
        fastFirst: true,
        ewf: { compression: 'fast', segmentSize: 2 * MiB },
      }),
    );
  } finally {
    reader.close();
  }
  t.is(rec.status, 'complete-with-bad-sectors');
  t.deepEqual(
    rec.badRanges.map((r) => [r.firstLba, r.sectors]),
    [
      [300, 2],
      [9000, 1],
      [20000, 1],
    ],
  );
  t.true((rec.recovery?.recoveredSectors ?? 0) > 0, 'the recovery pass read sectors back');
  t.is(rec.recovery?.hashesFrom, 'destination-reread');
  t.deepEqual(rec.recovery?.untouchedPieces?.mismatched, []);
  const expected = readFileSync(file);
  for (const lba of bad) expected.fill(0, lba * 512, lba * 512 + 512);
  const want = createHash('sha256').update(expected).digest('hex');
  t.is(rec.hashes.sha256, want);
  t.is(rec.hashes.md5, createHash('md5').update(expected).digest('hex'));
  t.true(rec.image.files.length > 3, 'several segments: some were closed before the recovery pass wrote into them');
  for (const out of [a, b]) {
    const first = path.join(out, 'ff.E01');
    const v = await ewfverify(first);
    t.true(v.ok, v.text);
    t.is(await exported(t, first), want);
    const stored = (await execa('ewfinfo', ['-d', 'dm', first])).stdout;
    t.regex(stored, new RegExp(`MD5:\\s*${rec.hashes.md5}`), stored);
    t.regex((await execa('ewfinfo', ['-e', first])).stdout, /at sector\(s\):\s*300 - 301/);
  }
  for (const f of rec.image.files) {
    t.is(sha256(path.join(a, f.file)), f.sha256 ?? '', `${f.file}: the record has the file's SHA-256 after the rewrite`);
    t.true(readFileSync(path.join(a, f.file)).equals(readFileSync(path.join(b, f.file))), `${f.file}: both copies the same`);
  }
  t.true(
    rec.destinations.every((d) => d.verification?.match),
    'both copies verify',
  );
});
