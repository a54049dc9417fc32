import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { CUSTOS, custos } from '../helpers/cli.js';
import {
  attachLoop,
  ext4Loop,
  mountReadOnly,
  patternLoop,
  privateLoopName,
  sha256File,
  tempDir,
  writeCounters,
  writePatternImage,
  type Loop,
} from '../helpers/loop.js';
import { snapshotChain } from '../helpers/vm-chain.js';
import { Terminal } from '../helpers/tmux.js';
import { caseFieldsToSigningKey, oneTimeKeyAndStart } from '../helpers/ui-script.js';
import type { CustodyRecord } from '../../appliance/custody/custody-record.js';

// The TUI guards and lists only the disks named with --only, so parallel tests and the host's disks are never touched.

async function startTui(
  t: ExecutionContext,
  names: string[],
  size: { cols: number; rows: number; term: string },
  o: { state?: string; args?: string } = {},
): Promise<{ term: Terminal; state: string }> {
  const state = o.state ?? tempDir();
  const term = await Terminal.start(`${CUSTOS} tui --only ${names.join(',')}${o.args ? ` ${o.args}` : ''}`, { ...size, env: { CUSTOS_STATE_DIR: state } });
  t.teardown(async () => {
    await term.kill();
    // Whatever the test did, leave no mount behind.
    await execa('sh', ['-c', `for m in ${state}/mnt/*; do umount "$m" 2>/dev/null; done; true`]);
  });
  return { term, state };
}

for (const size of [
  { cols: 80, rows: 25, term: 'linux' },
  { cols: 132, rows: 43, term: 'xterm-256color' },
  // A serial console.
  { cols: 80, rows: 24, term: 'vt100' },
]) {
  test(`${size.cols}x${size.rows} ${size.term}: a whole acquisition from the disk list to the signed record, refusing the source as destination and a wrong confirmation`, async (t) => {
    const src = await patternLoop(6 * 1024 * 1024 + 512 * 3, {}, 61);
    t.teardown(src.detach);
    const dst = await ext4Loop(t, 64);
    const { term, state } = await startTui(t, [src.name, dst.name], size);
    t.deepEqual(await term.size(), { cols: size.cols, rows: size.rows });

    let screen = await term.waitFor('choose the SOURCE disk');
    t.regex(screen, new RegExp(`RO ${src.name} `), 'every disk is shown write-blocked');
    t.regex(screen, new RegExp(`RO ${dst.name} `));
    // Roles: the ext4 evidence drive is a candidate destination; the source holds no file system.
    screen = await term.waitFor(new RegExp(`RO ${dst.name} +src/dst `));
    t.regex(screen, new RegExp(`RO ${src.name} +src `));
    await term.pick(src.name);

    // The source is offered as a destination only to be refused.
    await term.waitFor('choose destination 1');
    await term.pick(src.name);
    screen = await term.waitFor('refused');
    t.true(screen.includes('is the source'));
    await term.keys('Enter');

    await term.pick(dst.name);
    screen = await term.waitFor('Type its stable id exactly to confirm');
    const stableId = /stable id (\S+)/.exec(screen)?.[1] ?? '';
    await term.type('not-the-id');
    await term.waitFor('not released');
    await term.keys('Enter');
    await term.pick(dst.name);
    await term.waitFor('Type its stable id exactly to confirm');
    await term.type(stableId);
    screen = await term.waitFor('destination ready');
    t.regex(screen, /\(ext4\) mounted at/);
    t.regex(screen, /fits/);
    await term.keys('Enter');

    await caseFieldsToSigningKey(term, ['2026-200', 'E-7', 'Jane Examiner', 'tui test disk', 'typed in the TUI']);
    screen = await oneTimeKeyAndStart(term);
    t.regex(screen, /one-time key SHA256:/);
    await term.waitFor('result: complete', 60_000);
    // The fingerprint in groups of four: 43 base64 characters.
    screen = await term.waitFor(/SHA256: (?:[A-Za-z0-9+/]{4} ){10}[A-Za-z0-9+/]{3}(?![A-Za-z0-9+/])/);
    t.regex(screen, /copy .*: verified/);
    const fingerprint = /SHA256: ((?:[A-Za-z0-9+/]{4} ){10}[A-Za-z0-9+/]{3})/.exec(screen)?.[1]?.replace(/\s+/g, '') ?? '';
    await term.keys('q');
    await term.waitFor('[exit 0]');

    // The evidence drive, mounted again read-only: the image and record verify with custos and stock tools.
    const mnt = await mountReadOnly(t, dst.dev);
    t.is(await sha256File(path.join(mnt, 'image.raw')), await sha256File(src.file));
    const rec = JSON.parse(readFileSync(path.join(mnt, 'custody.json'), 'utf8')) as CustodyRecord;
    t.is(rec.status, 'complete');
    t.is(rec.case.caseNumber?.value, '2026-200');
    t.is(rec.signer.fingerprint.replace(/^SHA256:/, ''), fingerprint);
    const v = await custos(['verify', mnt], state);
    t.is(v.exitCode, 0, String(v.stdout));
    const ssh = await execa(
      'ssh-keygen',
      ['-Y', 'verify', '-f', path.join(mnt, 'allowed_signers'), '-I', rec.signer.principal, '-n', 'custos', '-s', path.join(mnt, 'custody.json.sig')],
      { input: readFileSync(path.join(mnt, 'custody.json')), reject: false },
    );
    t.is(ssh.exitCode, 0, ssh.stderr);
    // The source was never written.
    t.is(readFileSync(`/sys/block/${src.name}/ro`, 'utf8').trim(), '1');
  });
}

/** Picks `name` from a list of disks to write to and types its stable id to make it writable. */
async function release(term: Terminal, name: string): Promise<void> {
  await term.pick(name);
  const screen = await term.waitFor('Type its stable id exactly to confirm');
  await term.type(/stable id (\S+)/.exec(screen)?.[1] ?? '');
}

/** From the disk list to the signing key step: `src` onto `dst`, the case fields, the shown time confirmed. */
async function upToSigningKey(term: Terminal, src: Loop, dst: Loop, examiner = 'field 2'): Promise<void> {
  await term.waitFor('choose the SOURCE disk');
  await term.pick(src.name);
  await term.waitFor('choose destination 1');
  await release(term, dst.name);
  await term.waitFor('destination ready');
  await term.keys('Enter');
  await caseFieldsToSigningKey(term, ['field 0', 'field 1', examiner, 'field 3', 'field 4']);
}

/** ... then a one-time key, default options, and start. */
async function startAcquisition(term: Terminal, src: Loop, dst: Loop): Promise<void> {
  await upToSigningKey(term, src, dst);
  await oneTimeKeyAndStart(term);
}

test('abort needs a confirmation, and leaves a signed record marked aborted', async (t) => {
  // Big enough that the run is still going after the keys below, also on a loaded machine.
  const src = await patternLoop(1024 * 1024 * 1024, {}, 62);
  t.teardown(src.detach);
  const dst = await ext4Loop(t, 1200);
  const { term, state } = await startTui(t, [src.name, dst.name], { cols: 80, rows: 25, term: 'linux' });
  await startAcquisition(term, src, dst);
  await term.waitFor(/acquire +\[#*\.+\]/, 30_000);
  await term.keys('a');
  await term.waitFor('Stop the acquisition?');
  await term.keys('n');
  await term.waitFor(/acquire +\[/);
  t.notRegex(await term.screen(), /result:/, 'answering no goes on');
  await term.keys('a');
  await term.waitFor('Stop the acquisition?');
  await term.keys('y');
  const screen = await term.waitFor('result: aborted', 30_000);
  t.regex(screen, /aborted by the examiner/);
  await term.keys('q');
  await term.waitFor('[exit 0]');
  const mnt = await mountReadOnly(t, dst.dev);
  const rec = JSON.parse(readFileSync(path.join(mnt, 'custody.json'), 'utf8')) as CustodyRecord;
  t.is(rec.status, 'aborted');
  t.is(rec.acquisition.error?.code, 'EABORTED');
  const v = await custos(['verify', mnt], state);
  t.is(v.exitCode, 1);
  t.regex(String(v.stdout), /^ok {4}record signature/m);
  t.regex(String(v.stdout), /the acquisition was aborted/);
});

test("an acquisition stopped in the TUI is offered for resume on the evidence drive and finishes with the source's hashes", async (t) => {
  const src = await patternLoop(1024 * 1024 * 1024, {}, 65);
  t.teardown(src.detach);
  const dst = await ext4Loop(t, 1200);
  const first = await startTui(t, [src.name, dst.name], { cols: 80, rows: 25, term: 'linux' }, { args: '--journal-interval 1s' });
  await startAcquisition(first.term, src, dst);
  // Stopped once a checkpoint is on the drive (the TUI mounts it under the state directory).
  const journal = () => readdirSync(path.join(first.state, 'mnt')).some((m) => existsSync(path.join(first.state, 'mnt', m, 'image.journal.json')));
  for (let i = 0; i < 600 && !journal(); i++) await new Promise((r) => setTimeout(r, 50));
  t.true(journal(), 'a journal was written');
  await first.term.keys('a');
  await first.term.waitFor('Stop the acquisition?');
  await first.term.keys('y');
  await first.term.waitFor('result: aborted', 30_000);
  await first.term.keys('q');
  await first.term.waitFor('[exit 0]');

  const { term, state } = await startTui(t, [src.name, dst.name], { cols: 80, rows: 25, term: 'linux' }, { state: first.state });
  await term.waitFor('choose the SOURCE disk');
  await term.pick(src.name);
  await term.waitFor('choose destination 1');
  // Released in the first run: the guardian's state remembers it.
  await term.pick(dst.name);
  let screen = await term.waitFor('destination ready');
  t.regex(screen, /holds an unfinished acquisition of this disk, \d+\.\d% done: +│\n│ +it will be offered for resume/);
  t.regex(screen, /fits/);
  await term.keys('Enter');
  screen = await term.waitFor('Enter: resume it');
  t.regex(screen, /case +field 0/);
  await term.keys('Enter');
  // The case details are the journal's: straight to the clock and the key.
  await term.waitFor('clock check');
  await term.type('');
  await term.waitFor('signing key');
  await term.keys('Enter');
  await term.waitFor('result: complete', 120_000);
  await term.keys('q');
  await term.waitFor('[exit 0]');

  const mnt = await mountReadOnly(t, dst.dev);
  t.is(await sha256File(path.join(mnt, 'image.raw')), await sha256File(src.file));
  const rec = JSON.parse(readFileSync(path.join(mnt, 'custody.json'), 'utf8')) as CustodyRecord;
  t.is(rec.status, 'complete');
  t.is(rec.case.caseNumber?.value, 'field 0');
  t.true((rec.acquisition.resume?.position ?? 0) > 0);
  t.true(existsSync(path.join(mnt, 'interrupted-1', 'custody.json')), "the stopped run's record is kept aside");
  const v = await custos(['verify', mnt], state);
  t.is(v.exitCode, 0, String(v.stdout));
});

test('a disk vanishing from the list, a hostile backing-file name and resizes: the screen keeps its layout and the TUI keeps going', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const hostileName = `\u001b[31mRED\u001b[2J\u001b]0;pwned\u0007${'W'.repeat(150)}.img`;
  const hostile = path.join(dir, hostileName);
  await execa('truncate', ['-s', '4M', hostile]);
  const a = await attachLoop(hostile);
  t.teardown(a.detach);
  // b is detached below while the TUI watches its name: a private number, so no parallel test's disk takes that name first.
  const b = await patternLoop(4 * 1024 * 1024, { privateNumber: true }, 63);
  t.teardown(b.detach);
  const { term } = await startTui(t, [a.name, b.name], { cols: 80, rows: 25, term: 'linux' });
  let screen = await term.waitFor('choose the SOURCE disk');
  await term.pick(a.name);
  await term.waitFor('choose destination 1');
  await term.keys('Escape');
  screen = await term.waitFor('choose the SOURCE disk');
  // The list starts at its first row, which is the other disk when its loop number sorts first: move to the hostile one.
  for (let i = 0; i < 4 && !screen.includes('\\x1b[31mRED'); i++) {
    await term.keys('Down');
    await new Promise((r) => setTimeout(r, 300));
    screen = await term.screen();
  }
  // The details of the hostile disk show its name escaped; no colour or clear-screen reached the terminal.
  const lines = screen.split('\n');
  t.is(lines.length, 25);
  t.regex(lines[0] ?? '', /^ custos {2}choose the SOURCE disk/);
  t.true(screen.includes('\\x1b[31mRED\\x1b[2J\\x1b]0;pwned\\x07'), screen);
  const attrs = await term.screen(true);
  t.false(/\u001b\[(3[0-7]|9[0-7]|38;)/.test(attrs), 'no foreground colour anywhere on the screen');
  t.regex(lines[lines.length - 1] ?? '', /Up\/Down: move/);

  // b vanishes while the list is shown.
  await b.detach();
  await term.waitFor((s: string) => !s.includes(` ${b.name} `));
  // Resizes re-render and the list still answers keys.
  await term.resize(132, 43);
  await term.waitFor('choose the SOURCE disk');
  await term.resize(80, 25);
  await term.keys('q');
  await term.waitFor('[exit 0]');
});

test('a custody USB: its examiner key is offered and opened with a passphrase, and it gets a copy of the signed record', async (t) => {
  const src = await patternLoop(2 * 1024 * 1024, {}, 64);
  t.teardown(src.detach);
  const dst = await ext4Loop(t, 32);
  // The custody USB: an ext4 file system holding a key made by custos keygen.
  const usbDir = tempDir();
  t.teardown(() => rmSync(usbDir, { recursive: true, force: true }));
  const usbFile = path.join(usbDir, 'custody-usb.img');
  await execa('truncate', ['-s', '32M', usbFile]);
  await execa('mkfs.ext4', ['-q', '-F', usbFile]);
  const prep = path.join(usbDir, 'mnt');
  mkdirSync(prep);
  await execa('mount', ['-o', 'loop', usbFile, prep]);
  const kg = await custos(['keygen', '--out', prep, '--examiner', 'Jane Examiner', '--json'], tempDir(), { env: { CUSTOS_PASSPHRASE: 'usb key passphrase' } });
  await execa('umount', [prep]);
  t.is(kg.exitCode, 0, String(kg.stderr));
  const made = JSON.parse(String(kg.stdout)) as { fingerprint: string };
  const usb = await attachLoop(usbFile);
  t.teardown(usb.detach);

  const { term, state } = await startTui(t, [src.name, dst.name, usb.name], { cols: 80, rows: 25, term: 'linux' });
  await upToSigningKey(term, src, dst, 'Jane Examiner');
  await term.waitFor('u: use a custody USB');
  await term.keys('u');
  await term.waitFor('choose the custody USB');
  await release(term, usb.name);
  let screen = await term.waitFor('1: Jane_Examiner.key');
  await term.keys('1');
  await term.waitFor('passphrase for Jane_Examiner.key');
  await term.type('wrong passphrase');
  screen = await term.waitFor('not accepted');
  t.regex(screen, /wrong/);
  await term.keys('Enter');
  await term.waitFor('1: Jane_Examiner.key');
  await term.keys('1');
  await term.waitFor('passphrase for Jane_Examiner.key');
  await term.type('usb key passphrase');
  await term.waitFor('options');
  await term.keys('Enter');
  screen = await term.waitFor('check and start');
  t.true(screen.includes(`Jane_Examiner ${made.fingerprint}`), screen);
  t.regex(screen, /custody USB +\/dev\//);
  await term.keys('Enter');
  screen = await term.waitFor('result: complete', 60_000);
  t.regex(screen, /copy on the custody USB/);
  await term.keys('q');
  await term.waitFor('[exit 0]');

  const mnt = await mountReadOnly(t, usb.dev);
  const folders = (await execa('ls', [path.join(mnt, 'custos-records')])).stdout.trim().split('\n');
  t.is(folders.length, 1);
  const copy = path.join(mnt, 'custos-records', folders[0] ?? '');
  const rec = JSON.parse(readFileSync(path.join(copy, 'custody.json'), 'utf8')) as CustodyRecord;
  t.is(rec.signer.kind, 'examiner');
  t.is(rec.signer.fingerprint, made.fingerprint);
  t.is((await custos(['verify', copy, '--record-only'], state)).exitCode, 0);
});

test.serial('a disk plugged in while the list is shown appears within a second, already write-blocked', async (t) => {
  const src = await patternLoop(2 * 1024 * 1024, {}, 65);
  t.teardown(src.detach);
  // Bound after the TUI starts, at a number no parallel test's `losetup --find` takes first.
  const dir = tempDir();
  const file = path.join(dir, 'plugged.img');
  writePatternImage(file, 4 * 1024 * 1024, 66);
  const name = await privateLoopName();
  t.teardown(async () => {
    await execa('blockdev', ['--setrw', `/dev/${name}`], { reject: false });
    await execa('losetup', ['-d', `/dev/${name}`], { reject: false });
    rmSync(dir, { recursive: true, force: true });
  });
  const { term } = await startTui(t, [src.name, name], { cols: 80, rows: 25, term: 'linux' });
  const before = await term.waitFor('choose the SOURCE disk');
  t.false(before.includes(` ${name} `));
  await execa('losetup', [`/dev/${name}`, file]);
  const plugged = Date.now();
  const screen = await term.waitFor(new RegExp(`RO ${name} `), 5000);
  // The guardian checks every 250 ms and the list redraws on its event; reading the screen back adds up to 150 ms.
  t.true(Date.now() - plugged < 1200, `shown after ${Date.now() - plugged} ms`);
  t.regex(screen, /choose the SOURCE disk/);
  t.is(readFileSync(`/sys/block/${name}/ro`, 'utf8').trim(), '1');
  await term.keys('q');
  await term.waitFor('[exit 0]');
});

test('from the result screen, the record is copied to a custody USB chosen then', async (t) => {
  const src = await patternLoop(2 * 1024 * 1024, {}, 67);
  t.teardown(src.detach);
  const dst = await ext4Loop(t, 32);
  const usb = await ext4Loop(t, 32);
  const { term, state } = await startTui(t, [src.name, dst.name, usb.name], { cols: 80, rows: 25, term: 'linux' });
  await startAcquisition(term, src, dst);
  await term.waitFor('result: complete', 60_000);
  await term.keys('c');
  await term.waitFor('choose the custody USB for a copy of the record');
  await release(term, usb.name);
  await term.waitFor('copy on the custody USB');
  await term.keys('q');
  await term.waitFor('[exit 0]');
  const mnt = await mountReadOnly(t, usb.dev);
  const folder = (await execa('ls', [path.join(mnt, 'custos-records')])).stdout.trim();
  const copy = path.join(mnt, 'custos-records', folder);
  const v = await custos(['verify', copy, '--record-only'], state);
  t.is(v.exitCode, 0, String(v.stdout));
});

test('E01 and fast-first chosen in the options: the summary says so, the evidence drive gets an E01 that libewf verifies', async (t) => {
  const src = await patternLoop(5 * 1024 * 1024 + 512 * 5, {}, 63);
  t.teardown(src.detach);
  const dst = await ext4Loop(t, 64);
  const { term, state } = await startTui(t, [src.name, dst.name], { cols: 80, rows: 25, term: 'linux' });
  await upToSigningKey(term, src, dst);
  await term.keys('Enter');
  let screen = await term.waitFor('options');
  t.regex(screen, /\[ \] E01 \(EnCase 6\)/);
  // The first row is E01; fast-first goes with it too.
  await term.keys('Space');
  await term.waitFor('[x] E01');
  for (let i = 0; i < 8; i++) await term.keys('Down');
  await term.keys('Space');
  await term.waitFor(/\[x\] fast-first/);
  await term.keys('Enter');
  screen = await term.waitFor('check and start');
  t.regex(screen, /image +e01 \(fast compression, 1\.4 GiB segments\), md5 \+ sha1 \+ sha256,[\s│]*verify after, fast-first/);
  await term.keys('Enter');
  await term.waitFor('result: complete', 60_000);
  await term.keys('q');
  await term.waitFor('[exit 0]');
  const mnt = await mountReadOnly(t, dst.dev);
  const v = await execa('ewfverify', ['-q', '-d', 'sha1', path.join(mnt, 'image.E01')], { reject: false });
  t.is(v.exitCode, 0, v.stdout + v.stderr);
  t.regex((await execa('ewfinfo', [path.join(mnt, 'image.E01')])).stdout, /Case number:\s+field 0/);
  const c = await custos(['verify', mnt], state);
  t.is(c.exitCode, 0, String(c.stdout));
});

test('a VM disk file on a write-blocked drive: opened read-only with v, the file picked, its chain shown, the virtual disk imaged; the drive unwritten and closed again', async (t) => {
  // The drive: ext4 holding a qcow2 base and a snapshot in vms/, as exported from a hypervisor.
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const driveFile = path.join(dir, 'vm-drive.img');
  await execa('truncate', ['-s', '64M', driveFile]);
  await execa('mkfs.ext4', ['-q', '-F', driveFile]);
  const prep = path.join(dir, 'mnt');
  mkdirSync(prep);
  await execa('mount', ['-o', 'loop', driveFile, prep]);
  const vms = path.join(prep, 'vms');
  mkdirSync(vms);
  const write = { pattern: 0x7a, offset: '1M', length: '256k' };
  const expected = await snapshotChain(vms, { format: 'qcow2', base: 'base.qcow2', top: 'snap.qcow2', guestBytes: 8 * 1024 * 1024, seed: 71, write });
  await execa('umount', [prep]);
  const drive = await attachLoop(driveFile);
  t.teardown(drive.detach);
  const dst = await ext4Loop(t, 64);
  const writes = () => writeCounters(drive.name);

  const { term, state } = await startTui(t, [drive.name, dst.name], { cols: 80, rows: 25, term: 'linux' });
  let screen = await term.waitFor('v: a VM disk file on it');
  await term.waitFor(new RegExp(`RO ${drive.name} `));
  const before = writes();
  await term.pick(drive.name, 'v');
  screen = await term.waitFor('choose the VM disk file');
  t.regex(screen, /vms\/base\.qcow2/);
  t.regex(screen, /vms\/snap\.qcow2/);
  t.true(readFileSync('/proc/self/mountinfo', 'utf8').includes(`${state}/evidence/${drive.name} `), 'mounted where custos keeps it');
  await term.keys('Down');
  await term.keys('Enter');
  screen = await term.waitFor('the chain of snap.qcow2');
  t.regex(screen, /top: snap\.qcow2 \(QCOW2, 8388608 bytes\), names "base\.qcow2" as its backing file/);
  t.regex(screen, /base: base\.qcow2/);
  await term.keys('Enter');
  await term.waitFor('choose destination 1');
  // The drive holding the VM files is the source: never a destination.
  await term.pick(drive.name);
  screen = await term.waitFor('refused');
  t.true(screen.includes('is the source'));
  await term.keys('Enter');
  await release(term, dst.name);
  await term.waitFor('destination ready');
  await term.keys('Enter');
  await caseFieldsToSigningKey(term, ['VM-1', 'E-VM', 'Jane Examiner', 'VM disk from a drive', 'picked in the TUI']);
  screen = await oneTimeKeyAndStart(term);
  t.regex(screen, /source +VM disk snap\.qcow2: virtual disk of 8388608 bytes/);
  t.regex(screen, new RegExp(`on ${drive.name} .*read-only, write-blocked`));
  await term.waitFor('result: complete', 60_000);
  await term.keys('q');
  await term.waitFor('[exit 0]');

  t.false(readFileSync('/proc/self/mountinfo', 'utf8').includes(`${drive.dev} `), 'the drive is closed again');
  t.deepEqual(writes(), before, 'the kernel counted no write on the drive');
  const mnt = await mountReadOnly(t, dst.dev);
  t.is(await sha256File(path.join(mnt, 'image.raw')), expected, 'the image is the disk qemu-img reads');
  const rec = JSON.parse(readFileSync(path.join(mnt, 'custody.json'), 'utf8')) as CustodyRecord;
  t.is(rec.status, 'complete');
  t.deepEqual(
    rec.virtualDisk?.files.map((f) => [f.file, f.unchanged]),
    [
      ['snap.qcow2', true],
      ['base.qcow2', true],
    ],
  );
  t.is(rec.virtualDisk?.fileSystem?.device, drive.dev);
  t.is(rec.virtualDisk?.fileSystem?.deviceReadOnly, true);
  t.true(rec.virtualDisk?.fileSystem?.mountOptions.includes('norecovery'));
  t.deepEqual(rec.virtualDisk?.fileSystem?.writes?.writeIos, 0);
  t.is((await custos(['verify', mnt], state)).exitCode, 0);
});
