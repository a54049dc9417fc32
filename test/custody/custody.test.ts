import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CUSTOS, custos, REPO_ROOT } from '../helpers/cli.js';
import { attachLoop, patternLoop, tempDir, writePatternImage, type Loop } from '../helpers/loop.js';
import type { CustodyRecord } from '../../appliance/custody/custody-record.js';
import { checkLog } from '../../appliance/custody/log-check.js';
import { sshsigSign } from '../../appliance/custody/sshsig.js';
import { custodyProblems, eventProblems } from '../helpers/schema.js';

const PASS = { CUSTOS_PASSPHRASE: 'custody test passphrase' };

function scratch(t: ExecutionContext): string {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function protect(loop: Loop, state: string): Promise<void> {
  const r = await custos(['writeblock', 'protect', loop.dev], state);
  if (r.exitCode !== 0) throw new Error(String(r.stderr));
}

async function sshVerify(dir: string, file: string, principal: string, input?: Buffer): Promise<{ exitCode: number; out: string }> {
  const r = await execa(
    'ssh-keygen',
    ['-Y', 'verify', '-f', path.join(dir, 'allowed_signers'), '-I', principal, '-n', 'custos', '-s', path.join(dir, `${file}.sig`)],
    {
      input: input ?? readFileSync(path.join(dir, file)),
      reject: false,
    },
  );
  return { exitCode: r.exitCode ?? -1, out: `${r.stdout}${r.stderr}` };
}

const FILES = ['custody.json', 'custody.json.sig', 'events.jsonl', 'events.jsonl.sig', 'allowed_signers', 'report.txt', 'report.html'];

/** One complete, examiner-signed acquisition shared by the tamper tests (each works on its own copy). */
interface Golden {
  out: string;
  usb: string;
  state: string;
  principal: string;
  fingerprint: string;
  /** Seconds from just before the acquisition started to its end. */
  runS: number;
}
let golden: Promise<Golden> | null = null;
function goldenAcquisition(): Promise<Golden> {
  golden ??= (async () => {
    const loop = await patternLoop(3 * 1024 * 1024 + 512 * 5, {}, 41);
    const state = tempDir();
    const keys = tempDir();
    const out = tempDir();
    const usb = tempDir();
    try {
      await protect(loop, state);
      const kg = await custos(['keygen', '--out', keys, '--examiner', 'Jane Q. Examiner', '--json'], state, { env: PASS });
      if (kg.exitCode !== 0) throw new Error(String(kg.stderr));
      const made = JSON.parse(String(kg.stdout)) as { keyFile: string; fingerprint: string; principal: string };
      const startedAt = Date.now();
      const r = await custos(
        [
          'acquire',
          '--source',
          loop.dev,
          '--out',
          out,
          '--custody-copy',
          usb,
          '--format',
          'split',
          '--split-size',
          '1M',
          '--piece-size',
          '512K',
          '--key',
          made.keyFile,
          '--case',
          '2026-117',
          '--evidence',
          'E-4',
          '--examiner',
          'Jane Q. Examiner',
          '--organisation',
          'Lab',
          '--examiner-time',
          new Date(startedAt + 42_000).toISOString(),
          '--json',
        ],
        state,
        { env: PASS },
      );
      if (r.exitCode !== 0) throw new Error(String(r.stderr));
      return { out, usb, state, principal: made.principal, fingerprint: made.fingerprint, runS: (Date.now() - startedAt) / 1000 };
    } finally {
      await loop.detach();
    }
  })();
  return golden;
}

test.after.always(async () => {
  if (!golden) return;
  const g = await golden.catch(() => null);
  for (const dir of g ? [g.out, g.usb, g.state] : []) rmSync(dir, { recursive: true, force: true });
});

function copyOf(t: ExecutionContext, dir: string): string {
  const c = path.join(scratch(t), 'copy');
  cpSync(dir, c, { recursive: true });
  for (const f of ['custody.json', 'events.jsonl', 'image.001', 'image.002']) if (existsSync(path.join(c, f))) chmodSync(path.join(c, f), 0o644);
  return c;
}

/** A copy of the golden output whose events.jsonl lines went through `edit`. */
function withEditedLog(t: ExecutionContext, out: string, edit: (lines: string[]) => void): string {
  const dir = copyOf(t, out);
  const file = path.join(dir, 'events.jsonl');
  const lines = readFileSync(file, 'utf8').split('\n');
  edit(lines);
  writeFileSync(file, lines.join('\n'));
  return dir;
}

async function verifyOut(dir: string, state: string): Promise<{ code: number; text: string }> {
  const r = await custos(['verify', dir], state);
  return { code: r.exitCode ?? -1, text: String(r.stdout) };
}

test('a complete acquisition leaves every custody file in each copy; ssh-keygen and custos verify accept them', async (t) => {
  const g = await goldenAcquisition();
  for (const dir of [g.out, g.usb]) {
    for (const f of FILES) t.true(existsSync(path.join(dir, f)), `${dir}/${f}`);
    for (const f of ['custody.json', 'events.jsonl']) {
      const v = await sshVerify(dir, f, g.principal);
      t.is(v.exitCode, 0, v.out);
      t.true(v.out.includes(g.fingerprint));
    }
  }
  const v = await verifyOut(g.out, g.state);
  t.is(v.code, 0, v.text);
  t.regex(v.text, /^VERIFIED/m);
  for (const check of [
    'record signature',
    'allowed_signers',
    'log chain',
    'log signature',
    'record names log head',
    'image md5',
    'image sha256',
    'file image.001',
    'file image.004',
    'image windows',
  ])
    t.regex(v.text, new RegExp(`^ok {4}${check}`, 'm'), check);
  t.is((await custos(['verify', g.usb, '--record-only'], g.state)).exitCode, 0);
  t.is((await custos(['verify', g.usb], g.state)).exitCode, 1, 'the custody copy has no image; only --record-only passes there');

  const rec = JSON.parse(readFileSync(path.join(g.out, 'custody.json'), 'utf8')) as CustodyRecord;
  t.is(rec.signer.kind, 'examiner');
  t.is(rec.signer.fingerprint, g.fingerprint);
  t.is(rec.case.caseNumber?.value, '2026-117');
  // The offset is taken when custos reads the time typed, somewhere in the run: 42 s less up to the run's length (a loaded machine starts slowly).
  const offset = rec.clock.examinerOffsetS ?? NaN;
  t.true(offset <= 42.5 && offset >= 42 - g.runS - 0.5, `examiner offset ${offset} s, run ${g.runS} s`);
  t.regex(rec.tool.executable.sha256, /^[0-9a-f]{64}$/);
  t.is(rec.acquisition.writeBlock?.writesDuring?.writeIos, 0);
  // The drive was asked for its own view before the first byte; a loop device has none, and the record says why.
  t.regex(rec.sourceDrive?.coverage.statement ?? '', /the drive's own size is unknown: a loop disk takes no ATA or NVMe commands/);
  // Every output file carries its own SHA-256, as sha256sum computes it.
  for (const f of rec.acquisition.image.files) t.is(f.sha256, (await execa('sha256sum', [path.join(g.out, f.file)])).stdout.split(/\s+/)[0] ?? '');
  // The log: canonical, chained, sealed, with a checkpoint at the start; the record names its head.
  const log = checkLog(readFileSync(path.join(g.out, 'events.jsonl')));
  t.true(log.ok, log.problems.join('; '));
  t.is(log.entries[0]?.type, 'custody-opened');
  t.true(
    log.entries.some((e) => e.type === 'drive-probe'),
    'the drive probe is in the log',
  );
  t.true(log.entries.some((e) => e.type === 'checkpoint'));
  t.is(log.entries[log.entries.length - 1]?.type, 'seal');
  t.is(rec.log.head, log.lineHashes[log.lineHashes.length - 1] ?? '');
  // Both validate against the JSON Schemas in schema/, which do reject a bad record.
  t.deepEqual(custodyProblems(rec), []);
  for (const e of log.entries) t.deepEqual(eventProblems(e), [], `entry ${e.seq}`);
  t.true(custodyProblems({ ...rec, signer: { ...rec.signer, principal: 'two words' } }).length > 0);
  t.true(eventProblems({ ...log.entries[1], prev: 'x' }).length > 0);
  // The report shows what must be read aloud.
  const report = readFileSync(path.join(g.out, 'report.txt'), 'utf8');
  t.true(report.includes(g.fingerprint));
  t.true(report.includes(rec.acquisition.hashes.sha256 as string));
  t.true(readFileSync(path.join(g.out, 'report.html'), 'utf8').includes(g.fingerprint));
  // The examiner's private key never reaches an evidence copy or the custody copy.
  for (const dir of [g.out, g.usb]) for (const f of FILES) t.false(readFileSync(path.join(dir, f), 'utf8').includes('PRIVATE KEY'), `${dir}/${f}`);
});

test('changing one byte of custody.json is caught by custos verify and ssh-keygen', async (t) => {
  const g = await goldenAcquisition();
  const dir = copyOf(t, g.out);
  const file = path.join(dir, 'custody.json');
  writeFileSync(file, readFileSync(file, 'utf8').replace('"2026-117"', '"2026-118"'));
  const v = await verifyOut(dir, g.state);
  t.is(v.code, 1);
  t.regex(v.text, /^FAIL {2}record signature +custody\.json\.sig: signature does not match the content/m);
  t.not((await sshVerify(dir, 'custody.json', g.principal)).exitCode, 0);
});

test('changing one byte of events.jsonl names the line, breaks the chain and the signature', async (t) => {
  const g = await goldenAcquisition();
  let i = -1;
  const dir = withEditedLog(t, g.out, (lines) => {
    i = lines.findIndex((l) => l.includes('"type":"started"'));
    lines[i] = (lines[i] as string).replace('acquiring', 'acquirinG');
  });
  const v = await verifyOut(dir, g.state);
  t.is(v.code, 1);
  t.regex(v.text, new RegExp(`FAIL {2}log chain +events\\.jsonl line ${i + 2} \\(seq ${i + 1}\\): prev does not match the SHA-256 of line ${i + 1}`));
  t.regex(v.text, /FAIL {2}log signature/);
  t.not((await sshVerify(dir, 'events.jsonl', g.principal)).exitCode, 0);
});

test('deleting or reordering a log line is caught and named', async (t) => {
  const g = await goldenAcquisition();
  {
    // Cutting the log short (dropping the seal) leaves a valid chain, but no seal and a head the record does not name.
    const dir = withEditedLog(t, g.out, (lines) => lines.splice(lines.length - 2, 1));
    const v = await verifyOut(dir, g.state);
    t.is(v.code, 1);
    t.regex(v.text, /FAIL {2}log chain +events\.jsonl has no seal entry/);
    t.regex(v.text, /FAIL {2}record names log head +custody\.json says \d+ entries/);
  }
  for (const how of ['delete', 'reorder'] as const) {
    const dir = withEditedLog(t, g.out, (lines) => {
      if (how === 'delete') lines.splice(3, 1);
      else [lines[3], lines[4]] = [lines[4] as string, lines[3] as string];
    });
    const v = await verifyOut(dir, g.state);
    t.is(v.code, 1, how);
    t.regex(v.text, /FAIL {2}log chain +events\.jsonl line 4 has seq [45], expected 3/, how);
    t.not((await sshVerify(dir, 'events.jsonl', g.principal)).exitCode, 0);
  }
});

test('a changed image byte names the file and the window', async (t) => {
  const g = await goldenAcquisition();
  const dir = copyOf(t, g.out);
  const file = path.join(dir, 'image.002');
  const b = readFileSync(file);
  b[700 * 1024] = (b[700 * 1024] as number) ^ 1;
  writeFileSync(file, b);
  const v = await verifyOut(dir, g.state);
  t.is(v.code, 1);
  t.regex(v.text, /^ok {4}record signature/m);
  t.regex(v.text, /FAIL {2}file image\.002 +image\.002: SHA-256 [0-9a-f]{64}, record says/);
  t.regex(v.text, /FAIL {2}image windows +window 3: bytes 1572864-2097151/);
  t.regex(v.text, /FAIL {2}image sha256/);
});

test("another key's signature is rejected, even though it is a valid signature", async (t) => {
  const g = await goldenAcquisition();
  const dir = copyOf(t, g.out);
  const other = generateKeyPairSync('ed25519').privateKey;
  for (const f of ['custody.json', 'events.jsonl']) {
    chmodSync(path.join(dir, `${f}.sig`), 0o644);
    writeFileSync(path.join(dir, `${f}.sig`), sshsigSign(readFileSync(path.join(dir, f)), other));
  }
  const v = await verifyOut(dir, g.state);
  t.is(v.code, 1);
  t.regex(v.text, /FAIL {2}record signature +custody\.json\.sig: signed by SHA256:\S+, not by the recorded key/);
  t.regex(v.text, /FAIL {2}log signature +events\.jsonl\.sig: signed by SHA256:\S+, not by the recorded key/);
  t.not((await sshVerify(dir, 'custody.json', g.principal)).exitCode, 0);
  t.not((await sshVerify(dir, 'events.jsonl', g.principal)).exitCode, 0);
});

test('a killed acquisition leaves a log whose complete lines chain, signed up to a checkpoint', async (t) => {
  const loop = await patternLoop(512 * 1024 * 1024, {}, 43);
  t.teardown(loop.detach);
  const state = tempDir();
  await protect(loop, state);
  const out = scratch(t);
  const child = execa(
    CUSTOS,
    [
      'acquire',
      '--source',
      loop.dev,
      '--out',
      out,
      '--json-progress',
      '--block-size',
      '1M',
      '--buffers',
      '2',
      '--hash',
      'md5,sha1,sha256,sha512',
      '--checkpoint-interval',
      '1s',
    ],
    {
      reject: false,
      env: { CUSTOS_STATE_DIR: state },
    },
  );
  let killed = false;
  child.stdout?.on('data', () => {
    // Two interval checkpoints in, kill it without warning.
    if (
      !killed &&
      existsSync(path.join(out, 'events.jsonl')) &&
      (readFileSync(path.join(out, 'events.jsonl'), 'utf8').match(/"reason":"interval"/g) ?? []).length >= 2
    ) {
      killed = true;
      child.kill('SIGKILL');
    }
  });
  await child;
  t.true(killed, 'the run was killed mid-acquisition');
  t.false(existsSync(path.join(out, 'custody.json')));
  const content = readFileSync(path.join(out, 'events.jsonl'));
  const log = checkLog(content);
  t.deepEqual(
    log.problems.filter((p) => !p.includes('no seal') && !p.includes('incomplete line')),
    [],
    'every complete line chains',
  );
  // The signature covers the log up to its last checkpoint, checked by ssh-keygen on that prefix.
  const opened = log.entries[0]?.data as { signer: { principal: string; publicKey: string } };
  const cps = log.entries.map((e, i) => ({ e, i })).filter(({ e }) => e.type === 'checkpoint');
  t.true(cps.length >= 2);
  const allowed = path.join(out, 'allowed_signers.test');
  writeFileSync(allowed, `${opened.signer.principal} namespaces="custos" ${opened.signer.publicKey.split(' ').slice(0, 2).join(' ')}\n`);
  let signedPrefix = -1;
  for (const { i } of cps.reverse()) {
    const r = await execa(
      'ssh-keygen',
      ['-Y', 'verify', '-f', allowed, '-I', opened.signer.principal, '-n', 'custos', '-s', path.join(out, 'events.jsonl.sig')],
      { input: content.subarray(0, log.prefixBytes[i]), reject: false },
    );
    if (r.exitCode === 0) {
      signedPrefix = i;
      break;
    }
  }
  t.true(signedPrefix >= 1, 'ssh-keygen accepts the signature over the log up to a checkpoint');
  const v = await custos(['verify', out], state);
  t.is(v.exitCode, 1);
  t.regex(String(v.stdout), /^ok {4}log chain/m);
  t.regex(String(v.stdout), new RegExp(`^ok {4}log signature +lines 1-${signedPrefix + 1} signed at a checkpoint`, 'm'));
  t.regex(String(v.stdout), /FAIL {2}record +no custody\.json: the acquisition was interrupted/);
});

test('hostile case input and a hostile device string: escaped in the reports, verbatim in the JSON', async (t) => {
  const dir = scratch(t);
  // A loop device's backing file name is a device string custos shows and records.
  const evil = 'ev\u001b[2J\u202eil\nname.img';
  const file = path.join(dir, evil);
  writePatternImage(file, 1024 * 1024, 3);
  const loop = await attachLoop(file);
  t.teardown(loop.detach);
  const state = tempDir();
  await protect(loop, state);
  const out = path.join(dir, 'out');
  mkdirSync(out);
  const notes = 'first line\nsecond\tline \u001b]0;pwned\u0007 \u202eevil\u202c \\x41 ' + 'A'.repeat(3000);
  const r = await custos(['acquire', '--source', loop.dev, '--out', out, '--examiner', 'Mallory \u001b[31m', '--notes', notes, '--case', 'C\r\n1'], state);
  t.is(r.exitCode, 0, String(r.stderr));
  for (const f of ['report.txt', 'report.html']) {
    const text = readFileSync(path.join(out, f), 'utf8');
    t.false(/[\u0000-\u0008\u000b-\u001f\u007f\u202a-\u202e\u2066-\u2069]/.test(text), `${f} holds no control or bidi characters`);
    t.true(text.includes('\\u{1b}') || text.includes('\\x1b'), `${f} shows the escape written out`);
  }
  const report = readFileSync(path.join(out, 'report.txt'), 'utf8');
  t.true(report.includes('first line\\u{a}second\\u{9}line \\u{1b}]0;pwned\\u{7} \\u{202e}evil\\u{202c} \\\\x41'));
  t.true(report.includes('C\\u{d}\\u{a}1'));
  const rec = JSON.parse(readFileSync(path.join(out, 'custody.json'), 'utf8')) as CustodyRecord;
  t.is(rec.case.notes?.value, notes, 'verbatim in the JSON');
  t.is(rec.case.examiner?.value, 'Mallory \u001b[31m');
  t.deepEqual(custodyProblems(rec), [], 'the record still validates against the schema');
  for (const e of checkLog(readFileSync(path.join(out, 'events.jsonl'))).entries) t.deepEqual(eventProblems(e), [], `entry ${e.seq}`);
  t.true(String(rec.sourceDisk?.loop?.backingFile.raw).includes('\\x1b[2J'));
  t.false(/[\u0000-\u001f]/.test(String(rec.sourceDisk?.loop?.backingFile.text)));
  t.true(report.includes(`Loop backing file  ${rec.sourceDisk?.loop?.backingFile.text ?? '?'}`), 'the device string appears, escaped, in the report');
  t.true(String(rec.sourceDisk?.loop?.backingFile.text).includes('\\x1b[2J'));
  t.is((await custos(['verify', out], state)).exitCode, 0);
  // No examiner key was given: a one-time key signed, the record says so and the examiner was shown its fingerprint.
  t.is(rec.signer.kind, 'one-time');
  t.true(String(r.stderr).includes(`one-time key made for this acquisition, ${rec.signer.fingerprint}`));
  // Stock tools still accept it.
  t.is((await sshVerify(out, 'custody.json', rec.signer.principal)).exitCode, 0);
  t.true(statSync(path.join(out, 'custody.json')).size > 0);
});

test("the README's stock-tools check (sha256sum, jq, ssh-keygen) passes on a record and catches a changed log line", async (t) => {
  const g = await goldenAcquisition();
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('P=$(jq -r .signer.principal custody.json)');
  const end = readme.indexOf('sha256sum -c', start) + 'sha256sum -c'.length;
  t.true(start > 0 && end > start, 'the README holds the check');
  const script = readme.slice(start, end);
  const good = await execa('bash', ['-c', script], { cwd: g.out, reject: false });
  t.is(good.exitCode, 0, good.stderr);
  t.is((good.stdout.match(/Good "custos" signature/g) ?? []).length, 2);
  t.regex(good.stdout, /log head matches/);
  t.regex(good.stdout, /image\.004: OK/);
  t.notRegex(good.stdout, /BROKEN/);
  const dir = copyOf(t, g.out);
  const file = path.join(dir, 'events.jsonl');
  writeFileSync(file, readFileSync(file, 'utf8').replace('"type":"started"', '"type":"startet"'));
  const bad = await execa('bash', ['-c', script], { cwd: dir, reject: false });
  t.regex(bad.stdout, /BROKEN at line \d+/);
  t.is((bad.stdout.match(/Good "custos" signature/g) ?? []).length, 1, 'the log signature fails, the record signature holds');
});

test("the executable's SHA-256 is sha256sum's; later runs this boot take it (and the host's firmware facts) from the cache", async (t) => {
  const loop = await patternLoop(1024 * 1024, {}, 47);
  t.teardown(loop.detach);
  const state = tempDir();
  await protect(loop, state);
  const runs: CustodyRecord[] = [];
  for (let i = 0; i < 2; i++) {
    const out = path.join(scratch(t), 'out');
    mkdirSync(out);
    const r = await custos(['acquire', '--source', loop.dev, '--out', out], state);
    t.is(r.exitCode, 0, String(r.stderr));
    runs.push(JSON.parse(readFileSync(path.join(out, 'custody.json'), 'utf8')) as CustodyRecord);
  }
  const [first, second] = runs as [CustodyRecord, CustodyRecord];
  t.is(first.tool.executable.from, 'computed');
  t.is(second.tool.executable.from, 'cache');
  t.is(second.tool.executable.sha256, first.tool.executable.sha256);
  // The host's firmware facts likewise, per boot; the clock never.
  t.is(first.host?.from, 'computed');
  t.is(second.host?.from, 'cache');
  t.deepEqual(second.host?.system, first.host?.system);
  t.not(second.host?.clock.rtcUtc, first.host?.clock.rtcUtc);
  t.is(first.tool.executable.sha256, (await execa('sha256sum', [first.tool.executable.path])).stdout.split(/\s+/)[0] ?? '');
  // A cache entry for another file identity is not used.
  const cache = path.join(state, 'executable-sha256.json');
  const entry = JSON.parse(readFileSync(cache, 'utf8')) as { key: string; sha256: string };
  writeFileSync(cache, JSON.stringify({ ...entry, key: entry.key.replace(/:\d+$/, ':1'), sha256: 'f'.repeat(64) }));
  const out = path.join(scratch(t), 'out');
  mkdirSync(out);
  t.is((await custos(['acquire', '--source', loop.dev, '--out', out], state)).exitCode, 0);
  const third = JSON.parse(readFileSync(path.join(out, 'custody.json'), 'utf8')) as CustodyRecord;
  t.is(third.tool.executable.from, 'computed');
  t.is(third.tool.executable.sha256, first.tool.executable.sha256);
});
