// Generated hostile input for everything custos parses: device strings,
// case text, command-line values, procfs/sysfs text, key files, custody
// logs and signatures, E01 files given to verification, and the ISO 9660
// volumes a disk presents when custos looks for its own boot medium. Every target
// must answer with a result or a CustosError (a clear message), never
// crash, hang or let a control byte through to what an examiner sees.
// Deterministic (seeded), and bounded: each target has a case count and a
// time budget.
import test, { type ExecutionContext } from 'ava';
import { readFileSync, rmSync, writeFileSync, readdirSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { CustosError } from '../../appliance/errors.js';
import { deviceString, unescapeBytes } from '../../appliance/sanitize.js';
import { caseText } from '../../appliance/custody/case-data.js';
import { fieldValue, header2Text, headerText } from '../../appliance/imaging/ewf/ewf-header.js';
import { parseVpdUnitSerial } from '../../appliance/disk/vpd.js';
import { parseMountinfo } from '../../appliance/disk/mountinfo.js';
import { parseStat } from '../../appliance/disk/kernel-stat.js';
import { parseSize } from '../../appliance/imaging/sizes.js';
import { parseHashList } from '../../appliance/imaging/hash/hash-algorithms.js';
import { parseDurationMs } from '../../appliance/commands/acquire.js';
import { parseExaminerTime } from '../../appliance/custody/clock.js';
import { checkLog } from '../../appliance/custody/log-check.js';
import { sshsigVerify } from '../../appliance/custody/sshsig.js';
import { keygen, loadKey } from '../../appliance/custody/keys.js';
import { readCustody } from '../../appliance/custody/custody-record.js';
import { verifyCustody } from '../../appliance/custody/verify-custody.js';
import { EwfImageReader } from '../../appliance/imaging/ewf/ewf-reader.js';
import { journalCase, readJournal, JOURNAL_SCHEMA } from '../../appliance/imaging/resume/journal.js';
import { custos } from '../helpers/cli.js';
import { patternLoop, tempDir } from '../helpers/loop.js';
import { xorshift } from '../helpers/mixed-content.js';
import { mediumVerdict } from '../../appliance/disk/custos-medium.js';
import { miniIso } from '../helpers/iso9660.js';
import { createHash } from 'node:crypto';

/** Seeded, so the same cases come on every run. */
function rng(seed: number) {
  const next = xorshift(seed);
  return { next, below: (n: number) => next() % Math.max(1, n), chance: (p: number) => next() / 2 ** 32 < p };
}
type Rng = ReturnType<typeof rng>;

const HOSTILE = [
  '\x1b[2J\x1b[H',
  '\x1b]0;pwned\x07',
  '\x1b[31m',
  '\x9b31m',
  '\u202e',
  '\u2066',
  '\u200b',
  '\ufeff',
  '\u0000',
  '\t',
  '\r\n',
  '\n',
  '\\',
  '"',
  "'",
  '{',
  '}',
  '[',
  ']',
  ':',
  ',',
  '%s%n',
  '../../',
  '\ud800',
  '\udfff',
  'é',
  '€',
  '😀',
  'A'.repeat(10_000),
];
const HOSTILE_BYTES = [
  Buffer.from([0xff, 0xfe]),
  Buffer.from([0xc3]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0x1b, 0x5b, 0x32, 0x4a]),
  Buffer.from([0x00]),
  Buffer.from([0x9b]),
];

function randomBytes(r: Rng, max: number): Buffer {
  const n = r.chance(0.05) ? 10_000 + r.below(1000) : r.below(max);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = r.chance(0.7) ? 0x20 + r.below(95) : r.below(256);
  return b;
}

function hostileBytes(r: Rng, max = 256): Buffer {
  const parts: Buffer[] = [];
  const k = 1 + r.below(6);
  for (let i = 0; i < k; i++) {
    const pick = r.below(3);
    parts.push(
      pick === 0
        ? randomBytes(r, max)
        : pick === 1
          ? Buffer.from(HOSTILE[r.below(HOSTILE.length)] as string, 'utf8')
          : (HOSTILE_BYTES[r.below(HOSTILE_BYTES.length)] as Buffer),
    );
  }
  return Buffer.concat(parts);
}

function hostileString(r: Rng, max = 256): string {
  const parts: string[] = [];
  const k = 1 + r.below(6);
  for (let i = 0; i < k; i++) parts.push(r.chance(0.5) ? (HOSTILE[r.below(HOSTILE.length)] as string) : randomBytes(r, max).toString('latin1'));
  return parts.join('');
}

/** Flips, overwrites, truncates, duplicates or splices bytes of a valid input. */
function mutate(r: Rng, valid: Buffer): Buffer {
  const b = Buffer.from(valid);
  switch (r.below(5)) {
    case 0:
      for (let i = 0, n = 1 + r.below(8); i < n && b.length > 0; i++) {
        const at = r.below(b.length);
        b[at] = (b[at] as number) ^ (1 << r.below(8));
      }
      return b;
    case 1:
      return b.subarray(0, r.below(b.length + 1));
    case 2: {
      const at = r.below(b.length + 1);
      return Buffer.concat([b.subarray(0, at), hostileBytes(r, 64), b.subarray(at)]);
    }
    case 3: {
      const at = r.below(b.length + 1);
      return Buffer.concat([b.subarray(0, at), b.subarray(r.below(b.length + 1))]);
    }
    default: {
      const at = r.below(b.length + 1);
      const n = r.below(64);
      for (let i = at; i < Math.min(b.length, at + n); i++) b[i] = r.below(256);
      return b;
    }
  }
}

const counts: Record<string, number> = {};

/**
 * Runs `one` on `cases` generated cases. A thrown error must be a CustosError;
 * anything else fails the test and names the case. So does a case that runs
 * past HANG_MS: a busy machine slows every case by a factor, never one case
 * into seconds, so the bound catches hangs without timing the machine.
 */
function fuzz(t: ExecutionContext, name: string, cases: number, one: (r: Rng, i: number) => void): number {
  const r = rng(0xc057 + name.length * 7919);
  let i = 0;
  for (; i < cases; i++) {
    const t0 = performance.now();
    try {
      one(r, i);
    } catch (e) {
      if (!(e instanceof CustosError)) {
        t.fail(`${name}, case ${i}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
        return i;
      }
    }
    const took = performance.now() - t0;
    if (took > HANG_MS) {
      t.fail(`${name}, case ${i}: ran ${Math.round(took)} ms, a hang`);
      return i;
    }
  }
  counts[name] = i;
  return i;
}

const HANG_MS = 10_000;
/** Each test's own bound: every case of it, on a machine busy with the rest of the suite. */
const LIMIT_MS = 6 * 60_000;

const VISIBLE = /^[\x20-\x7e]*$/;

const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]/u;

test('device strings, case text and E01 header fields: nothing invisible or controlling reaches a display form', (t) => {
  t.timeout(LIMIT_MS);
  const n1 = fuzz(t, 'deviceString', 30_000, (r) => {
    const bytes = hostileBytes(r);
    const d = deviceString(bytes);
    if (!VISIBLE.test(d.text) || d.text.length > 64 * 4 + 3) throw new Error(`display form not clean: ${JSON.stringify(d.text)}`);
    if (!VISIBLE.test(d.raw) || !unescapeBytes(d.raw).equals(bytes) || d.bytes !== bytes.length) throw new Error('raw form does not give the bytes back');
  });
  const n2 = fuzz(t, 'caseText', 20_000, (r) => {
    const c = caseText(hostileString(r, 128), '--notes');
    if (INVISIBLE.test(c.text)) throw new Error(`case display form holds ${JSON.stringify(c.text)}`);
    const f = fieldValue(c.text);
    if (/[\t\r\n]/.test(f)) throw new Error('a field value keeps a tab or line break');
  });
  const n3 = fuzz(t, 'e01Header', 5_000, (r) => {
    const s = () => hostileString(r, 64);
    const info = {
      caseNumber: s(),
      evidenceNumber: s(),
      description: s(),
      examiner: s(),
      notes: s(),
      model: s(),
      serial: s(),
      acquired: new Date(r.next() * 1000),
      systemTime: new Date(),
      softwareVersion: s(),
      os: s(),
    };
    const h2 = header2Text(info).split('\n');
    if (h2.length !== 18 || (h2[3] as string).split('\t').length !== 13) throw new Error('header2 lost its shape');
    const h = headerText(info).split('\r\n');
    if (h.length !== 6 || (h[3] as string).split('\t').length !== 10 || !/^[\x20-\x7e\t]*$/.test(h[3] as string)) throw new Error('header lost its shape');
  });
  t.is(n1 + n2 + n3, 55_000, `${n1} + ${n2} + ${n3} cases`);
});

test('sysfs, procfs and command-line values: a result or a usage error, never a crash', (t) => {
  t.timeout(LIMIT_MS);
  const n = [
    fuzz(t, 'vpd', 20_000, (r) => {
      const page = r.chance(0.5) ? hostileBytes(r, 300) : mutate(r, Buffer.concat([Buffer.from([0, 0x80, 0, 8]), Buffer.from('SERIAL01')]));
      const s = parseVpdUnitSerial(page);
      if (s && s.length > page.length) throw new Error('serial longer than the page');
    }),
    fuzz(t, 'mountinfo', 10_000, (r) => {
      const valid = Buffer.from('36 35 98:0 / /mnt1 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n');
      parseMountinfo((r.chance(0.5) ? mutate(r, valid) : hostileBytes(r, 300)).toString('utf8'));
    }),
    fuzz(t, 'stat', 10_000, (r) => {
      const c = parseStat((r.chance(0.5) ? mutate(r, Buffer.from('  100 0 2000 10 5 0 40 3 0 20 13 0 0 0 0 1 2\n')) : hostileBytes(r, 100)).toString('latin1'));
      if (c && !Object.values(c).every((v) => Number.isFinite(v))) throw new Error('non-finite counter');
    }),
    fuzz(t, 'cli values', 20_000, (r) => {
      const s = r.chance(0.5)
        ? hostileString(r, 16)
        : mutate(r, Buffer.from(['4M', 'md5,sha256', '90s', '2026-11-21T10:00:00Z'][r.below(4)] as string)).toString('utf8');
      const size = (() => {
        try {
          return parseSize(s, '--split-size');
        } catch (e) {
          if (e instanceof CustosError) return 1;
          throw e;
        }
      })();
      if (!Number.isSafeInteger(size) || size <= 0) throw new Error(`parseSize(${JSON.stringify(s)}) = ${size}`);
      for (const f of [() => parseHashList(s), () => parseDurationMs(s, '--checkpoint-interval'), () => parseExaminerTime(s)]) {
        try {
          f();
        } catch (e) {
          if (!(e instanceof CustosError)) throw e;
        }
      }
    }),
  ];
  t.is(
    n.reduce((a, b) => a + b, 0),
    60_000,
    n.join(' + '),
  );
});

/** One real acquisition whose record, log, signature and key the remaining targets mutate. */
async function realRecord(t: ExecutionContext): Promise<{ dir: string; keyDir: string; state: string }> {
  const loop = await patternLoop(1024 * 1024, {}, 77);
  t.teardown(loop.detach);
  const state = tempDir();
  const dir = tempDir();
  const keyDir = tempDir();
  t.teardown(() => {
    for (const d of [state, dir, keyDir]) rmSync(d, { recursive: true, force: true });
  });
  await custos(['writeblock', 'protect', loop.dev], state);
  keygen(keyDir, 'Fuzz Examiner', 'fuzz passphrase');
  const r = await custos(
    ['acquire', '--source', loop.dev, '--out', dir, '--format', 'e01', '--segment-size', '1M', '--key', path.join(keyDir, 'Fuzz_Examiner.key')],
    state,
    { env: { CUSTOS_PASSPHRASE: 'fuzz passphrase' } },
  );
  if (r.exitCode !== 0) throw new Error(String(r.stderr));
  return { dir, keyDir, state };
}

test('custody record, log, signature, key file and E01 files, mutated: verdicts or clear errors, never a crash or a hang', async (t) => {
  t.timeout(LIMIT_MS);
  const { dir, keyDir } = await realRecord(t);
  const log = readFileSync(path.join(dir, 'events.jsonl'));
  const record = readFileSync(path.join(dir, 'custody.json'));
  const sig = readFileSync(path.join(dir, 'custody.json.sig'), 'utf8');
  const key = readFileSync(path.join(keyDir, 'Fuzz_Examiner.key'));
  const segments = readdirSync(dir)
    .filter((f) => /^image\.E\d\d$/.test(f))
    .sort();
  const work = tempDir();
  t.teardown(() => rmSync(work, { recursive: true, force: true }));

  const n = [
    fuzz(t, 'events.jsonl', 3_000, (r) => {
      const c = checkLog(mutate(r, log));
      if (!Array.isArray(c.problems)) throw new Error('no problem list');
    }),
    fuzz(t, 'sshsig', 5_000, (r) => {
      const s = mutate(r, Buffer.from(sig)).toString('latin1');
      const v = sshsigVerify(record, s);
      if (v.ok && s !== sig) {
        // Only whitespace changes may still verify.
        if (s.replace(/\s+/g, '') !== sig.replace(/\s+/g, '')) throw new Error('a changed signature verified');
      }
    }),
    fuzz(t, 'custody.json', 1_500, (r) => {
      const d = path.join(work, 'rec');
      mkdirSync(d, { recursive: true });
      for (const f of readdirSync(dir)) if (!f.startsWith('image.')) writeFileSync(path.join(d, f), readFileSync(path.join(dir, f)));
      const bytes = mutate(r, record);
      writeFileSync(path.join(d, 'custody.json'), bytes);
      const { record: rec } = readCustody(d);
      const verdicts = verifyCustody(d, bytes, rec);
      if (!bytes.equals(record) && verdicts.every((v) => v.ok)) throw new Error('a changed record passed every check');
    }),
    fuzz(t, 'key file', 1_500, (r) => {
      const f = path.join(work, `k${r.below(4)}.key`);
      writeFileSync(f, r.chance(0.8) ? mutate(r, key) : hostileBytes(r, 600));
      loadKey(f, r.chance(0.5) ? 'fuzz passphrase' : hostileString(r, 16), null);
    }),
    fuzz(t, 'E01 files', 1_500, (r) => {
      const d = path.join(work, 'e01');
      rmSync(d, { recursive: true, force: true });
      mkdirSync(d);
      const victim = r.below(segments.length);
      const paths = segments.map((s, i) => {
        const bytes = readFileSync(path.join(dir, s));
        writeFileSync(path.join(d, s), i === victim ? mutate(r, bytes) : bytes);
        return path.join(d, s);
      });
      const reader = new EwfImageReader(paths);
      try {
        if (reader.size > 64 * 1024 * 1024) return;
        const buf = Buffer.alloc(reader.size);
        void reader.read(buf, reader.size, 0);
      } finally {
        reader.close();
      }
    }),
  ];
  t.is(
    n.reduce((a, b) => a + b, 0),
    12_500,
    n.join(' + '),
  );
});

/** A journal as an interrupted E01 acquisition leaves it. */
function validJournal(): Record<string, unknown> {
  const entries = Buffer.alloc(4 * 40);
  for (let i = 0; i < 40; i++) entries.writeUInt32LE((0x80000000 | (76 + i * 900)) >>> 0, i * 4);
  return {
    schema: JOURNAL_SCHEMA,
    acquisitionId: 'a'.repeat(32),
    written: '2026-11-21T10:00:00.000Z',
    checkpoint: 3,
    position: 3 * 1024 * 1024,
    started: '2026-11-21T09:59:00.000Z',
    resumes: 0,
    source: { path: '/dev/sdb', stableId: 'serial-X', serialRaw: 'X\\x1b', sizeBytes: 8 * 1024 * 1024, sectorSize: 512 },
    settings: {
      name: 'image',
      format: 'e01',
      splitSize: 2 ** 31,
      hashes: ['md5', 'sha1', 'sha256'],
      pieceSize: 1024 * 1024,
      blockSize: 1024 * 1024,
      buffers: 12,
      policy: { retries: 2, fill: 0 },
      fastFirst: false,
      verify: false,
      verifySource: false,
      ewf: { compression: 'fast', segmentSize: 1024 * 1024 * 1024 },
    },
    case: { caseNumber: 'C-1', evidenceNumber: null, examiner: 'Jane', organisation: null, description: 'd', notes: null, location: null },
    destinations: ['/mnt/a'],
    pieces: ['0'.repeat(64), '1'.repeat(64), '2'.repeat(64)],
    badRanges: [{ firstLba: 10, lastLba: 12, sectors: 3, sectorSize: 512, errno: 5, error: 'EIO', attempts: 3 }],
    deferred: [],
    ewf: {
      setIdentifier: 'b'.repeat(32),
      segment: 1,
      pos: 200_000,
      groupBase: 1000,
      entries: entries.toString('base64'),
      segmentChunks: 96,
      files: [{ file: 'image.E01', size: 200_000 }],
      rawChunks: [],
    },
  };
}

/** Replaces one value somewhere in `o` with something hostile. */
function poison(r: Rng, o: unknown): unknown {
  const hostile = () =>
    [hostileString(r, 64), -1, 2 ** 60, 0.5, null, true, [], {}, [hostileString(r, 8)], 'A'.repeat(100_000), { __proto__: { x: 1 } }][r.below(11)];
  if (typeof o !== 'object' || o === null) return hostile();
  const keys = Object.keys(o);
  if (keys.length === 0 || r.chance(0.1)) return hostile();
  const k = keys[r.below(keys.length)] as string;
  const copy: Record<string, unknown> = Array.isArray(o)
    ? ([...(o as unknown[])] as unknown as Record<string, unknown>)
    : { ...(o as Record<string, unknown>) };
  copy[k] = r.chance(0.6) ? poison(r, copy[k]) : hostile();
  return copy;
}

test('ISO 9660 volumes, mutated: the boot medium only where the kernel really is, never a crash or a hang', (t) => {
  t.timeout(LIMIT_MS);
  const kernelBytes = Buffer.alloc(20_000);
  for (let i = 0; i < kernelBytes.length; i++) kernelBytes[i] = (i * 31 + 7) & 0xff;
  const kernel = { sha256: createHash('sha256').update(kernelBytes).digest('hex'), size: kernelBytes.length };
  const valid = miniIso(kernelBytes);
  const over = (img: Buffer) => (offset: number, length: number) => img.subarray(offset, offset + length);
  t.is(mediumVerdict(over(valid), kernel), 'boot-medium', 'the valid volume is the boot medium');
  t.is(mediumVerdict(over(miniIso(kernelBytes, 'OTHER')), kernel), null, 'another label is no custos volume');
  const n = fuzz(t, 'iso9660', 20_000, (r) => {
    const img = r.chance(0.9) ? mutate(r, valid) : hostileBytes(r, 64 * 1024);
    const v = mediumVerdict(over(img), kernel);
    if (v !== null && v !== 'custos-image' && v !== 'boot-medium') throw new Error(`verdict ${String(v)}`);
    // A proven medium holds the kernel's exact bytes somewhere: the hash is the proof, whatever the records say.
    if (v === 'boot-medium' && !img.includes(kernelBytes)) throw new Error('boot medium without the kernel in it');
  });
  t.is(n, 20_000, `${n} cases`);
});

test('resume journals, mutated and poisoned: a checked journal or a clear error, never a crash', (t) => {
  t.timeout(LIMIT_MS);
  const work = tempDir();
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const file = path.join(work, 'image.journal.json');
  const valid = validJournal();
  writeFileSync(file, JSON.stringify(valid));
  t.is(readJournal(file).position, 3 * 1024 * 1024, 'the valid journal reads');
  const text = Buffer.from(JSON.stringify(valid));
  const n = fuzz(t, 'journal', 20_000, (r) => {
    writeFileSync(file, r.chance(0.5) ? mutate(r, text) : JSON.stringify(poison(r, valid)));
    const j = readJournal(file);
    // What passes the checks is shown and recorded: its case details get display forms with nothing invisible in them.
    for (const v of Object.values(journalCase(j))) if (v && INVISIBLE.test(v.text)) throw new Error(`invisible character in ${JSON.stringify(v.text)}`);
    if (!Number.isSafeInteger(j.position) || j.position > j.source.sizeBytes) throw new Error('position passed unchecked');
  });
  t.is(n, 20_000, `${n} cases`);
});

test('custos verify on a mutated evidence directory: a verdict, exit 1, no stack trace', async (t) => {
  const { dir, state } = await realRecord(t);
  const r = rng(99);
  const work = tempDir();
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const files = readdirSync(dir);
  for (let i = 0; i < 12; i++) {
    const d = path.join(work, String(i));
    mkdirSync(d);
    const victim = files[r.below(files.length)] as string;
    for (const f of files) {
      const bytes = readFileSync(path.join(dir, f));
      writeFileSync(path.join(d, f), f === victim ? mutate(r, bytes) : bytes);
    }
    const v = await custos(['verify', d], state);
    const out = `${String(v.stdout)}${String(v.stderr)}`;
    t.not(v.exitCode, 70, `${victim}: internal error\n${out}`);
    t.false(/\n\s+at /.test(out), `${victim}: a stack trace\n${out}`);
    if (v.exitCode === 0)
      t.true(
        readFileSync(path.join(d, victim)).equals(readFileSync(path.join(dir, victim))) || victim.endsWith('.html') || victim.endsWith('.txt'),
        `${victim} changed and verify passed`,
      );
  }
  counts['custos verify'] = 12;
});

test.after('fuzz totals', () => {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  process.stdout.write(
    `fuzz: ${total} generated cases: ${Object.entries(counts)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}\n`,
  );
});
