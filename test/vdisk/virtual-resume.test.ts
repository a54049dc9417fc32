// Resume of a virtual disk acquisition: a run on a qcow2 snapshot chain is
// killed (SIGKILL) after its first resume point and resumed with the same
// chain, to the disk qemu-img convert reads; raw, then E01 to two copies.
// Another chain of the same size is refused by content before anything is
// written, and the interrupted copy is left as it was.
import test, { type ExecutionContext } from 'ava';
import { execa, type ResultPromise } from 'execa';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { CUSTOS, custos } from '../helpers/cli.js';
import { sha256File, tempDir } from '../helpers/loop.js';
import { snapshotChain } from '../helpers/vm-chain.js';
import { custodyProblems } from '../helpers/schema.js';
import type { CustodyRecord } from '../../appliance/custody/custody-record.js';
import type { AcquisitionJournal } from '../../appliance/imaging/resume/journal.js';

const GUEST_BYTES = 1024 * 1024 * 1024;

/** tmpfs: reads fast enough that a run takes seconds, and no disk space used. */
function shm(t: ExecutionContext, prefix: string): string {
  const d = path.join('/dev/shm', `${prefix}-${process.pid}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(d);
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function checkpoint(dir: string): number {
  try {
    return (JSON.parse(readFileSync(path.join(dir, 'image.journal.json'), 'utf8')) as AcquisitionJournal).checkpoint;
  } catch {
    return 0;
  }
}

/**
 * SIGKILLs `run` once the journal of every copy in `dirs` holds the same resume point (the copies'
 * journals are written one after the other: a kill between two would leave one copy without); false
 * if it finished first.
 */
async function killAfterCheckpoint(run: ResultPromise, dirs: string[]): Promise<boolean> {
  let exited = false;
  void run.finally(() => (exited = true));
  const same = () => {
    const at = dirs.map(checkpoint);
    return (at[0] ?? 0) > 0 && at.every((c) => c === at[0]);
  };
  while (!exited && !same()) await new Promise((r) => setTimeout(r, 20));
  if (exited) return false;
  run.kill('SIGKILL');
  return (await run).signal === 'SIGKILL';
}

test('a virtual disk acquisition killed mid-run resumes to the disk qemu-img reads: raw, then E01 to two copies; another chain is refused by content', async (t) => {
  t.timeout(10 * 60_000);
  const vm = shm(t, 'custos-vresume-vm');
  const state = tempDir();
  t.teardown(() => rmSync(state, { recursive: true, force: true }));
  const write = { pattern: 0x5e, offset: '300M', length: '8M' };
  const expected = await snapshotChain(vm, {
    format: 'qcow2',
    base: 'base.qcow2',
    top: 'snap.qcow2',
    guestBytes: GUEST_BYTES,
    seed: 23,
    write,
    scratch: '/dev/shm',
  });
  const containers = { 'snap.qcow2': await sha256File(path.join(vm, 'snap.qcow2')), 'base.qcow2': await sha256File(path.join(vm, 'base.qcow2')) };
  const source = path.join(vm, 'snap.qcow2');
  const acquire = (args: string[]) =>
    execa(CUSTOS, ['acquire', '--journal-interval', '1s', ...args], { reject: false, env: { CUSTOS_STATE_DIR: state }, timeout: 300_000 });

  // Another chain of the same virtual size: the journal's windows tell it apart.
  const other = shm(t, 'custos-vresume-other');
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', 'other.qcow2', String(GUEST_BYTES)], { cwd: other });

  for (const format of ['raw', 'e01'] as const) {
    const dirs = format === 'raw' ? [shm(t, 'custos-vresume-a')] : [shm(t, 'custos-vresume-a'), shm(t, 'custos-vresume-b')];
    const first = dirs[0] ?? '';
    const opts = format === 'e01' ? ['--format', 'e01', '--segment-size', '300M'] : [];
    t.true(
      await killAfterCheckpoint(acquire(['--source', source, ...dirs.flatMap((d) => ['--out', d]), ...opts, '--case', `vm-${format}`]), dirs),
      `${format}: killed mid-run`,
    );
    const at = checkpoint(first);
    t.true(at > 0 && at < GUEST_BYTES, `${format}: a resume point inside the disk (${at})`);

    if (format === 'raw') {
      // Refused once the journal's windows are read again: the attempt is on the record (aborted, no
      // hash claimed), the image and the journal are as they were, and the right chain resumes.
      const kept = () => Promise.all(['image.raw', 'image.journal.json'].map((f) => sha256File(path.join(first, f))));
      const before = await kept();
      const wrong = await acquire(['--resume', first, '--source', path.join(other, 'other.qcow2')]);
      t.is(wrong.exitCode, 1);
      t.regex(String(wrong.stderr), /not the disk \(or not the content\) this acquisition started from/);
      t.deepEqual(await kept(), before, 'image and journal unchanged');
      const refused = JSON.parse(readFileSync(path.join(first, 'custody.json'), 'utf8')) as CustodyRecord;
      t.is(refused.status, 'aborted');
      t.is(refused.acquisition.hashes.sha256, undefined);
    }

    const done = await acquire([...dirs.flatMap((d) => ['--resume', d]), '--source', source]);
    t.is(done.exitCode, 0, String(done.stderr));
    for (const dir of dirs) {
      const rec = JSON.parse(readFileSync(path.join(dir, 'custody.json'), 'utf8')) as CustodyRecord;
      t.deepEqual(custodyProblems(rec), []);
      t.is(rec.status, 'complete');
      t.is(rec.acquisition.hashes.sha256, expected, `${format}: the guest disk's SHA-256 is qemu-img's`);
      t.is(rec.acquisition.resume?.resumes, 1);
      t.is(rec.case.caseNumber?.value, `vm-${format}`);
      t.deepEqual(
        rec.virtualDisk?.files.map((f) => [f.file, f.sha256, f.unchanged]),
        Object.entries(containers).map(([f, h]) => [f, h, true]),
      );
      if (format === 'raw') t.is(await sha256File(path.join(dir, 'image.raw')), expected, 'sha256sum of the image');
      else {
        const v = await execa('ewfverify', ['-q', '-d', 'sha256', path.join(dir, 'image.E01')], { reject: false });
        t.is(v.exitCode, 0, v.stdout);
        t.regex(v.stdout, new RegExp(`SHA256 hash calculated over data:\\s+${expected}`));
      }
      const log = readFileSync(path.join(dir, 'events.jsonl'), 'utf8');
      t.regex(log, /"type":"custody-resumed"/);
      t.regex(log, /"type":"resume-source-checked"/);
      const v = await custos(['verify', dir], state);
      t.is(v.exitCode, 0, String(v.stdout));
    }
  }
  for (const [f, h] of Object.entries(containers)) t.is(await sha256File(path.join(vm, f)), h, `${f} unchanged`);
});
