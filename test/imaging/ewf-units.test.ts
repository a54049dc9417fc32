// The E01 building blocks on their own: checksum, names, header text, how
// chunks are stored in each mode and the limits of the error2 section.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { deflateSync, inflateSync } from 'node:zlib';
import { adler32 } from '../../appliance/imaging/ewf/adler32.js';
import { storeChunks, EWF_COMPRESSIONS } from '../../appliance/imaging/ewf/chunk-store.js';
import { asciiValue, fieldValue, header2Text, headerText, type EwfCaseInfo } from '../../appliance/imaging/ewf/ewf-header.js';
import { MAX_SEGMENTS, segmentExtension } from '../../appliance/imaging/ewf/ewf-names.js';
import { ewfErrorRuns } from '../../appliance/imaging/ewf/ewf-acquisition.js';
import { e01WorstCase, EWF_CHUNK_SIZE } from '../../appliance/imaging/ewf/ewf-plan.js';
import { descriptor, parseDescriptor, parseTableBody, tableBody } from '../../appliance/imaging/ewf/ewf-sections.js';
import type { ImagingEvent } from '../../appliance/events.js';

/** zlib's own Adler-32: the trailer of a zlib stream, big-endian. */
function zlibAdler(b: Buffer): number {
  const z = deflateSync(b, { level: 0 });
  return z.readUInt32BE(z.length - 4);
}

test('adler32 equals zlib at every alignment and length, including sums that need the modulo', (t) => {
  const data = randomBytes(70000);
  const ones = Buffer.alloc(70000, 0xff);
  for (const src of [data, ones]) {
    for (const start of [0, 1, 2, 3, 5]) {
      for (const len of [0, 1, 3, 4, 7, 5551, 5552, 5553, 32768, 65536]) {
        const slice = src.subarray(start, start + len);
        t.is(adler32(slice), zlibAdler(Buffer.from(slice)), `start ${start} length ${len}`);
      }
    }
  }
});

test('segment names follow libewf: E01..E99, EAA..EZZ, FAA..ZZZ, and refuse beyond', (t) => {
  t.is(segmentExtension(1), 'E01');
  t.is(segmentExtension(99), 'E99');
  t.is(segmentExtension(100), 'EAA');
  t.is(segmentExtension(101), 'EAB');
  t.is(segmentExtension(125), 'EAZ');
  t.is(segmentExtension(126), 'EBA');
  t.is(segmentExtension(775), 'EZZ');
  t.is(segmentExtension(776), 'FAA');
  t.is(segmentExtension(MAX_SEGMENTS), 'ZZZ');
  t.throws(() => segmentExtension(MAX_SEGMENTS + 1), { message: /at most 14971 segment files/ });
  t.throws(() => segmentExtension(0));
});

test('a 20 TB source at the default segment size fits the names; the worst case plans every chunk raw', (t) => {
  const plan = e01WorstCase('big', 20e12, Math.floor((1.4 * 1024 ** 3) / 4096) * 4096);
  t.true(plan.length < MAX_SEGMENTS, `${plan.length} segments`);
  t.is(plan[plan.length - 1]?.file.startsWith('big.'), true);
  const small = e01WorstCase('s', 3 * 1024 * 1024, 1024 * 1024);
  t.true(small.reduce((n, s) => n + s.size, 0) > 3 * 1024 * 1024, 'room for checksums, tables and sections');
  t.true(small.every((s) => s.size <= 1024 * 1024));
  t.is(Math.ceil(20e12 / EWF_CHUNK_SIZE) < 2 ** 32, true, 'the chunk count fits the volume section');
});

const info: EwfCaseInfo = {
  caseNumber: 'C\t1',
  evidenceNumber: 'E\r\n2',
  description: 'Jürgen’s “disk” €',
  examiner: 'x'.repeat(5000),
  notes: '\u001b[31mred\u0007',
  model: 'M',
  serial: 'S',
  acquired: new Date('2026-11-21T10:00:00Z'),
  systemTime: new Date('2026-11-21T10:00:05Z'),
  softwareVersion: '0.1.0-very-long-version',
  os: 'linux 6.1.0-40-amd64 with a long tail',
};

test('header texts: one line per record, no tab or line break inside a value, EnCase lengths', (t) => {
  const h2 = header2Text(info).split('\n');
  t.is(h2[0], '3');
  t.is(h2[1], 'main');
  const keys = (h2[2] as string).split('\t');
  const vals = (h2[3] as string).split('\t');
  t.is(vals.length, keys.length, 'a tab in a value would add a field');
  const v = (k: string) => vals[keys.indexOf(k)];
  t.is(v('c'), 'C 1');
  t.is(v('n'), 'E  2');
  t.is(v('a'), 'Jürgen’s “disk” €', 'header2 keeps Unicode');
  t.is(v('e')?.length, 2999);
  t.false((v('t') ?? '').includes('\u001b'));
  t.is(v('av'), '0.1.0-very-');
  t.is(v('ov')?.length, 23);
  t.is(v('m'), String(Date.parse('2026-11-21T10:00:00Z') / 1000));
  t.is(v('u'), String(Date.parse('2026-11-21T10:00:05Z') / 1000));
  const h = headerText(info).split('\r\n');
  const hk = (h[2] as string).split('\t');
  const hv = (h[3] as string).split('\t');
  t.is(hv.length, hk.length);
  t.is(hv[hk.indexOf('a')], 'Jurgen?s ?disk? ?', 'header is ASCII');
  t.true(/^[\x20-\x7e\t]*$/.test(h[3] as string));
  t.is(fieldValue('a\u2028b'), 'a b');
  t.is(asciiValue('Ærø'), '?r?');
});

test('stored chunks: each mode keeps what it should raw, its streams are node:zlib’s byte for byte and read back, forced-raw chunks stay raw, random data is not tried in fast mode', async (t) => {
  const cs = EWF_CHUNK_SIZE;
  const text = Buffer.from('the quick brown fox jumps over the lazy dog '.repeat(800)).subarray(0, cs);
  const half = Buffer.concat([randomBytes(cs / 2), Buffer.alloc(cs / 2)]);
  // Random, zeros, text, one byte 0xee, half random half zeros, text again (forced raw), and a short last chunk of 0x11.
  const chunks = [randomBytes(cs), Buffer.alloc(cs), text, Buffer.alloc(cs, 0xee), half, text, Buffer.alloc(512, 0x11)];
  const block = Buffer.concat(chunks);
  const forced = 5;
  for (const mode of EWF_COMPRESSIONS) {
    const r = await storeChunks(block, block.length, cs, mode, [forced]);
    t.is(r.sizes.length, chunks.length);
    let at = 0;
    const zipped: number[] = [];
    for (const [i, chunk] of chunks.entries()) {
      const size = r.sizes[i] as number;
      if (size === 0) {
        t.is(r.adlers[i], zlibAdler(chunk), `${mode} chunk ${i}: raw with its Adler-32`);
        continue;
      }
      zipped.push(i);
      const z = r.packed.subarray(at, at + size);
      at += size;
      t.true(size < chunk.length);
      t.deepEqual(z, deflateSync(chunk, { level: mode === 'best' ? 9 : 1 }), `${mode} chunk ${i}: node:zlib's stream`);
      t.deepEqual(inflateSync(z), chunk);
    }
    t.is(at, r.packed.length);
    const expected = { none: [], empty: [1, 3, 6], fast: [1, 2, 3, 4, 6], best: [1, 2, 3, 4, 6] }[mode];
    t.deepEqual(zipped, expected, `${mode}: the chunks stored as streams`);
  }
  // Bad input is refused before any work is queued.
  await t.throwsAsync(() => storeChunks(block, block.length + 1, cs, 'fast'), { message: /out of range/ });
});

test('bad sectors past sector 2^32 cannot go into error2: said in an event, kept for the record', (t) => {
  const events: ImagingEvent[] = [];
  const base = { lastLba: 0, sectorSize: 512, errno: 5, error: 'EIO', attempts: 1 };
  const runs = ewfErrorRuns(
    [
      { ...base, firstLba: 10, sectors: 2 },
      { ...base, firstLba: 2 ** 32 + 5, sectors: 1 },
    ],
    (e) => events.push(e),
  );
  t.deepEqual(runs, [{ first: 10, count: 2 }]);
  t.is(events.length, 1);
  t.regex(events[0]?.message ?? '', /past sector 2\^32/);
});

test('section descriptors and tables carry checksums that catch a changed byte', (t) => {
  const d = descriptor('sectors', 1000, 5000);
  t.deepEqual(parseDescriptor(d), { type: 'sectors', next: 6000, size: 5000, checksumOk: true });
  d[20] = (d[20] as number) ^ 1;
  t.false(parseDescriptor(d).checksumOk);
  const tb = tableBody(76, Uint32Array.from([76, (0x80000000 | 200) >>> 0, 400]));
  t.deepEqual([...parseTableBody(tb).entries], [76, (0x80000000 | 200) >>> 0, 400]);
  tb[30] = (tb[30] as number) ^ 1;
  t.false(parseTableBody(tb).checksumOk);
});
