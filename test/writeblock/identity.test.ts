// Identity you can trust, on real loop devices: every write-block decision
// belongs to one attachment (two loop devices over one file are twins with
// the same stable id), a release made by one custos process holds against a
// guardian in another, the boot medium is proven by the kernel it holds, and
// a returning source is proven by content.
import test, { type ExecutionContext } from 'ava';
import { execa, type ResultPromise } from 'execa';
import { createHash, randomFillSync } from 'node:crypto';
import { copyFileSync, readFileSync, rmSync, writeFileSync, mkdirSync, closeSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { WriteBlockGuardian, type GuardianEvent } from '../../appliance/writeblock/guardian.js';
import { listDisks, readDiskByName, type Disk } from '../../appliance/disk/inventory.js';
import { Sysfs } from '../../appliance/disk/sysfs.js';
import { DeviceReader } from '../../appliance/imaging/read/sector-reader.js';
import { compareContent, windowsToCompare, type ContentWitness } from '../../appliance/imaging/read/source-content.js';
import { CUSTOS, custos } from '../helpers/cli.js';
import { attachLoop, patternLoop, tempDir, type Loop } from '../helpers/loop.js';
import { Terminal } from '../helpers/tmux.js';

const sysfs = new Sysfs();
const ro = (name: string) => sysfs.readText(`block/${name}/ro`);
const MiB = 1024 * 1024;

/**
 * Two (or more) loop devices over one file: the same stable id, as two drives in docks that report
 * one fixed serial. The first is bound at a private loop number, so a test can detach and attach it
 * again at the same number without a parallel test's `losetup --find` taking it in between.
 */
async function twins(t: ExecutionContext, n: number, mib = 8): Promise<{ dir: string; file: string; loops: Loop[] }> {
  const dir = tempDir();
  const file = path.join(dir, 'dock.img');
  await execa('truncate', ['-s', `${mib}M`, file]);
  await execa('mkfs.ext4', ['-q', '-F', file]);
  const loops: Loop[] = [];
  for (let i = 0; i < n; i++) loops.push(await attachLoop(file, { privateNumber: i === 0 }));
  t.teardown(async () => {
    for (const l of loops) await l.detach();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, file, loops };
}

const disk = (name: string): Disk => {
  const d = readDiskByName(name);
  if (!d) throw new Error(`${name} not listed`);
  return d;
};

test('twins: listed as such with distinct attachments; a release covers the confirmed attachment only, the other twin stays protected (a reset flag set back), a new twin is protected on sight, a re-attached device is protected again', async (t) => {
  const { dir, file, loops } = await twins(t, 2);
  const [a, b] = loops as [Loop, Loop];
  const da = disk(a.name);
  const db = disk(b.name);
  t.is(da.stableId, db.stableId, 'the same stable id: a serial-derived key cannot tell them apart');
  t.not(da.attachment, db.attachment);
  t.regex(da.attachment, new RegExp(`^${a.name}#\\d+$`), 'kernel name and diskseq');
  t.deepEqual(da.twins, [b.name]);
  t.deepEqual(db.twins, [a.name]);
  t.true(da.warnings.some((w) => w.code === 'twin' && w.message === `stable id shared with ${b.name}: identify by kernel name and size`));

  const g = new WriteBlockGuardian({ include: (d) => d.loop?.backingFile.text === file, intervalMs: 50 });
  g.protectAll();
  t.is(ro(a.name), '1');
  t.is(ro(b.name), '1');
  // The stable id alone does not release a twin: its kernel name must come first.
  t.throws(() => g.release(a.dev, da.stableId), { code: 'ECONFIRM', message: new RegExp(`kernel name comes first: "${a.name} `) });
  t.is(ro(a.name), '1', 'a refused release changes nothing');
  t.is(WriteBlockGuardian.confirmationFor(da), `${a.name} ${da.stableId}`);
  g.release(a.dev, `  ${a.name}   ${da.stableId} `);
  t.is(ro(a.name), '0');
  t.is(ro(b.name), '1', 'the other twin is not released with it');
  t.true(g.isReleased(disk(a.name)));
  t.false(g.isReleased(disk(b.name)));

  // Behind the guardian's back, the other twin is made writable: it is set back, and the released twin is left alone.
  await execa('blockdev', ['--setrw', b.dev]);
  const events = g.check();
  t.deepEqual(
    events.map((e) => [e.type, e.device]),
    [
      ['reset-detected', b.name],
      ['reprotected', b.name],
    ],
  );
  t.is(ro(b.name), '1');
  t.is(ro(a.name), '0', 'the released twin stays writable');
  for (let i = 0; i < 5; i++) t.deepEqual(g.check(), [], 'and keeps so, pass after pass');

  // A third twin (no uevent rule on this host: only the guardian) is protected on sight.
  const c = await attachLoop(file);
  loops.push(c);
  const seen = g.check();
  t.deepEqual(
    seen.map((e) => [e.type, e.device]),
    [
      ['device-appeared', c.name],
      ['protected', c.name],
    ],
  );
  t.regex(seen[0]?.detail ?? '', /serial shared with|stable id|shared with/);
  t.is(ro(c.name), '1');
  t.is(ro(a.name), '0');

  // The released twin unplugged and attached again at the same number: another attachment, protected again.
  const oldAttachment = disk(a.name).attachment;
  await execa('losetup', ['-d', a.dev]);
  const gone = g.check();
  t.deepEqual(
    gone.map((e) => [e.type, e.device, e.attachment]),
    [['device-vanished', a.name, oldAttachment]],
  );
  await execa('losetup', [a.dev, file]);
  const back = disk(a.name);
  t.not(back.attachment, oldAttachment, 'diskseq is new');
  const again = g.check();
  t.deepEqual(
    again.map((e) => e.type),
    ['device-appeared', 'protected'],
  );
  t.is(ro(a.name), '1', 'its release ended with the attachment');
  t.false(g.isReleased(back));
  t.truthy(dir);
});

test('a disk swapped in under the name shown is not released or held: the decision names one attachment', async (t) => {
  // A private loop number: it is detached and attached again at the same number.
  const src = await patternLoop(4 * MiB, { privateNumber: true }, 31);
  t.teardown(src.detach);
  const g = new WriteBlockGuardian({ include: (d) => d.name === src.name });
  const shown = disk(src.name);
  g.protect(src.dev);
  await execa('losetup', ['-d', src.dev]);
  await execa('losetup', [src.dev, src.file]);
  t.throws(() => g.release(src.dev, WriteBlockGuardian.confirmationFor(shown), shown.attachment), { code: 'EATTACHMENT' });
  t.throws(() => g.holdAsSource(src.dev, shown.attachment), { code: 'EATTACHMENT' });
});

/** Reads NDJSON events from a running `custos writeblock watch --json`. */
function collect(p: ResultPromise): GuardianEvent[] {
  const events: GuardianEvent[] = [];
  let buf = '';
  p.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.startsWith('{')) events.push(JSON.parse(line) as GuardianEvent);
    }
  });
  return events;
}

async function until(what: string, pred: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('CLI: `writeblock release` while `writeblock watch` runs in another process: the release holds, the other twin is still guarded', async (t) => {
  const { loops } = await twins(t, 2);
  const [a, b] = loops as [Loop, Loop];
  const state = tempDir();
  t.teardown(() => rmSync(state, { recursive: true, force: true }));
  const watch = execa(CUSTOS, ['writeblock', 'watch', a.dev, b.dev, '--json', '--interval', '50'], { env: { CUSTOS_STATE_DIR: state }, reject: false });
  t.teardown(() => {
    watch.kill('SIGKILL');
  });
  const events = collect(watch);
  await until('both protected', () => events.filter((e) => e.type === 'protected').length >= 2);
  const id = disk(a.name).stableId;
  const refused = await custos(['writeblock', 'release', a.dev, '--confirm', id], state);
  t.is(refused.exitCode, 1, 'a twin needs its kernel name too');
  t.regex(String(refused.stderr), /kernel name/);
  const r = await custos(['writeblock', 'release', a.dev, '--confirm', `${a.name} ${id}`], state);
  t.is(r.exitCode, 0, String(r.stderr));
  // Many watch passes later, the released twin is still writable: the watch read the other process's decision.
  await new Promise((res) => setTimeout(res, 1000));
  t.is(ro(a.name), '0');
  t.false(
    events.some((e) => e.device === a.name && (e.type === 'reset-detected' || e.type === 'reprotected')),
    JSON.stringify(events),
  );
  // The other twin, reset behind its back, is set back by the same watch.
  await execa('blockdev', ['--setrw', b.dev]);
  await until('the twin set back', () => events.some((e) => e.device === b.name && e.type === 'reprotected'), 5000);
  t.is(ro(b.name), '1');
  t.is(ro(a.name), '0');
  const status = JSON.parse(String((await custos(['writeblock', 'status', a.dev, b.dev, '--json'], state)).stdout)) as {
    status: { name: string; released: boolean; attachment: string }[];
  };
  t.deepEqual(
    status.status.map((s) => [s.name, s.released]),
    [
      [a.name, true],
      [b.name, false],
    ],
  );
  t.regex(status.status[0]?.attachment ?? '', /#\d+$/);
  watch.kill('SIGINT');
  t.is((await watch).exitCode, 0);
});

/** An ISO 9660 volume made by xorriso, as build-iso.sh makes ours: volume id, BOOT/VMLINUZ holding `kernel`. */
async function isoWith(dir: string, kernel: Buffer, volume = 'CUSTOS'): Promise<string> {
  const tree = path.join(dir, `tree-${volume}`);
  mkdirSync(path.join(tree, 'boot'), { recursive: true });
  writeFileSync(path.join(tree, 'boot', 'vmlinuz'), kernel);
  writeFileSync(path.join(tree, 'boot', 'initrd.img'), Buffer.alloc(300_000, 7));
  const iso = path.join(dir, `${volume}.iso`);
  await execa('xorriso', ['-as', 'mkisofs', '-o', iso, '-V', volume, '-R', '-J', tree]);
  return iso;
}

test('the boot medium is proven by the kernel it holds: a full custos volume is the boot medium, a disk whose first MiB is a custos image is an ordinary disk (a source, and a destination only when released); two genuine media are both marked and a warning says so', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const kernel = Buffer.alloc(3 * MiB);
  randomFillSync(kernel);
  const iso = await isoWith(dir, kernel);
  const kernelFile = path.join(dir, 'boot-kernel');
  writeFileSync(kernelFile, `${createHash('sha256').update(kernel).digest('hex')} ${kernel.length}\n`);
  // The suspect: its first MiB is the custos image, the rest its own data.
  const suspect = path.join(dir, 'suspect.img');
  const head = readFileSync(iso).subarray(0, MiB);
  const rest = Buffer.alloc(7 * MiB);
  randomFillSync(rest);
  writeFileSync(suspect, Buffer.concat([head, rest]));
  const copy = path.join(dir, 'copy.iso');
  copyFileSync(iso, copy);
  const medium = await attachLoop(iso);
  const sus = await attachLoop(suspect);
  t.teardown(medium.detach);
  t.teardown(sus.detach);
  // As the appliance's inventory runs, with this kernel named by the running system.
  let bootKernelFile = kernelFile;
  const byName = () => new Map(listDisks({ bootKernelFile }).map((d) => [d.name, d]));
  let disks = byName();
  t.is(disks.get(medium.name)?.custosMedium, 'boot-medium');
  t.deepEqual(disks.get(medium.name)?.roles, ['boot-medium']);
  t.is(disks.get(sus.name)?.custosMedium, 'custos-image');
  t.deepEqual(disks.get(sus.name)?.roles, [], 'the suspect is no boot medium');
  t.true(disks.get(sus.name)?.warnings.some((w) => w.code === 'holds-custos-image' && /holds a custos image/.test(w.message)));
  const g = new WriteBlockGuardian({ include: (d) => d.name === medium.name || d.name === sus.name, bootKernelFile });
  g.protectAll();
  t.throws(() => g.release(medium.dev, WriteBlockGuardian.confirmationFor(disks.get(medium.name) as Disk)), { code: 'EBOOTMEDIUM' });
  // The suspect can be held as a source; as a destination it would need a release like any disk.
  t.notThrows(() => g.holdAsSource(sus.dev));
  t.is(ro(sus.name), '1');

  // A second genuine medium: both marked, each says there are two.
  const second = await attachLoop(copy);
  t.teardown(second.detach);
  disks = byName();
  for (const n of [medium.name, second.name]) {
    t.deepEqual(disks.get(n)?.roles, ['boot-medium'], n);
    t.true(
      disks
        .get(n)
        ?.warnings.some(
          (w) =>
            (w.code === 'boot-medium-ambiguous' && w.message.includes(`${medium.name}, ${second.name}`)) ||
            w.message.includes(`${second.name}, ${medium.name}`),
        ),
      n,
    );
  }
  // Another build's kernel: no disk is the boot medium, both are custos images.
  writeFileSync(kernelFile, `${'ab'.repeat(32)} ${kernel.length}\n`);
  t.is(byName().get(medium.name)?.custosMedium, 'custos-image');
  t.deepEqual(byName().get(medium.name)?.roles, []);
  // A workstation (the running system names no kernel): no disk is looked at for it, none is the boot medium
  // (that the inventory then reads no disk at all is the acquire test's "refusals before any byte is read").
  bootKernelFile = path.join(dir, 'absent');
  t.is(byName().get(medium.name)?.custosMedium, null);
  t.deepEqual(byName().get(medium.name)?.roles, []);
  await execa('blockdev', ['--setrw', sus.dev]);
  await execa('blockdev', ['--setrw', medium.dev]);
});

/** A file of random bytes; `same` copies a file instead, `changeAt` then flips one byte there. */
function diskFile(file: string, bytes: number, from?: { same: string; changeAt?: number }): void {
  if (from) {
    copyFileSync(from.same, file);
    if (from.changeAt !== undefined) {
      const fd = openSync(file, 'r+');
      const b = Buffer.alloc(1);
      b[0] = (readFileSync(from.same)[from.changeAt] ?? 0) ^ 0xff;
      writeSync(fd, b, 0, 1, from.changeAt);
      closeSync(fd);
    }
    return;
  }
  const data = Buffer.alloc(bytes);
  randomFillSync(data);
  writeFileSync(file, data);
}

test('a returning source is proven by content: the same bytes pass, a disk that differs in a window before the stop or in the kept bytes is refused, naming what differed', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ps = 2 * MiB;
  const f = (n: string) => path.join(dir, n);
  diskFile(f('source.img'), 8 * MiB);
  diskFile(f('same.img'), 0, { same: f('source.img') });
  diskFile(f('window.img'), 0, { same: f('source.img'), changeAt: 5 * MiB + 12345 });
  diskFile(f('sample.img'), 0, { same: f('source.img'), changeAt: 6 * MiB + 100 });
  const src = readFileSync(f('source.img'));
  const pieces = [0, 1, 2, 3].map((i) =>
    createHash('sha256')
      .update(src.subarray(i * ps, (i + 1) * ps))
      .digest('hex'),
  );
  // Reading stopped at 7 MiB: three windows done; the bytes kept from the first read and from the block read last.
  const witness: ContentWitness = { pieceSize: ps, completed: () => pieces.slice(0, 3), unreliable: () => false };
  const samples = [
    { offset: 0, bytes: Buffer.from(src.subarray(0, MiB)) },
    { offset: 6 * MiB, bytes: Buffer.from(src.subarray(6 * MiB, 6 * MiB + 64 * 1024)) },
  ];
  t.deepEqual(windowsToCompare(witness, 7 * MiB), [0, 2]);
  t.deepEqual(
    windowsToCompare({ ...witness, unreliable: (s) => s === 0 }, 7 * MiB),
    [1, 2],
    'a window holding filled sectors proves nothing and is passed over',
  );
  t.deepEqual(windowsToCompare({ ...witness, pieceSize: 0 }, 7 * MiB), []);
  const check = async (file: string) => {
    const loop = await attachLoop(file);
    try {
      const r = new DeviceReader(loop.dev);
      try {
        return await compareContent(r, { before: 7 * MiB, samples, witness });
      } finally {
        r.close();
      }
    } finally {
      await loop.detach();
    }
  };
  const same = await check(f('same.img'));
  t.is(same.mismatch, null);
  t.deepEqual(
    same.compared.map((c) => [c.what, c.offset]),
    [
      ['sample', 0],
      ['sample', 6 * MiB],
      ['window', 0],
      ['window', 2 * ps],
    ],
  );
  const window = await check(f('window.img'));
  t.like(window.mismatch, { what: 'window', index: 2, offset: 4 * MiB, length: ps, expected: pieces[2] });
  const sample = await check(f('sample.img'));
  t.like(sample.mismatch, { what: 'sample', offset: 6 * MiB, length: 64 * 1024 });
});

test('TUI: releasing a twin asks for its kernel name; once released it stays writable and mounted while the other twin stays write-blocked', async (t) => {
  const { loops } = await twins(t, 2, 64);
  const [a, b] = loops as [Loop, Loop];
  const src = await patternLoop(2 * MiB, {}, 17);
  t.teardown(src.detach);
  const state = tempDir();
  const term = await Terminal.start(`${CUSTOS} tui --only ${[src.name, a.name, b.name].join(',')}`, {
    cols: 80,
    rows: 25,
    term: 'linux',
    env: { CUSTOS_STATE_DIR: state },
  });
  t.teardown(async () => {
    await term.kill();
    await execa('sh', ['-c', `for m in ${state}/mnt/*; do umount "$m" 2>/dev/null; done; true`]);
    rmSync(state, { recursive: true, force: true });
  });
  let screen = await term.waitFor((s) => new RegExp(`RO ${a.name} +twin `).test(s) && new RegExp(`RO ${b.name} +twin `).test(s));
  t.pass('both twins are marked');
  await term.pick(src.name);
  await term.waitFor('choose destination 1');
  await term.pick(a.name);
  screen = await term.waitFor('Type its kernel name, a space and its stable id exactly to confirm');
  t.regex(screen, new RegExp(`TWIN: stable id shared with ${b.name}; this is ${a.name}`));
  const id = /stable id (\S+)/.exec(screen)?.[1] ?? '';
  await term.type(id);
  await term.waitFor('not released');
  await term.keys('Enter');
  await term.waitFor('choose destination 1');
  await term.pick(a.name);
  await term.waitFor('Type its kernel name');
  await term.type(`${a.name} ${id}`);
  screen = await term.waitFor('destination ready');
  t.regex(screen, /\(ext4\) mounted at/);
  // Seen before the fix: 190 ms after the release the guardian set the twin read-only again under its read-write mount.
  await new Promise((r) => setTimeout(r, 1500));
  t.is(ro(a.name), '0', 'the released twin is still writable');
  t.is(ro(b.name), '1', 'the other twin is still write-blocked');
  const log = readFileSync(path.join(state, 'writeblock-events.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as GuardianEvent);
  t.false(
    log.some((e) => e.device === a.name && e.type === 'reprotected'),
    'never set back',
  );
  t.true(log.some((e) => e.device === a.name && e.type === 'released' && e.attachment === disk(a.name).attachment));
});
