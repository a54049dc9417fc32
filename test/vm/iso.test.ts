// End to end on the real image: build the ISO, boot it in QEMU (TCG, 512 MiB,
// BIOS from CD), drive the appliance's UI over its serial console, power it
// off, and check on the host what the examiner would.
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { custos, REPO_ROOT } from '../helpers/cli.js';
import { mountNtfsReadOnly, mountReadOnly, sha256File, tempDir } from '../helpers/loop.js';
import { writeMixedImage } from '../helpers/mixed-content.js';
import { snapshotChain } from '../helpers/vm-chain.js';
import { expectedDisk, writeDifferencingVhdx } from '../helpers/vhdx-differencing.js';
import { qmp } from '../helpers/qmp.js';
import { GuestShell } from '../helpers/guest-shell.js';
import { caseFieldsToSigningKey, oneTimeKeyAndStart } from '../helpers/ui-script.js';
import { Terminal } from '../helpers/tmux.js';
import type { CustodyRecord } from '../../appliance/custody/custody-record.js';
import type { Disk } from '../../appliance/disk/disk.js';
import type { DriveReport } from '../../appliance/disk/drive-probe.js';

const MiB = 1024 * 1024;
let iso = '';

test.before('build the ISO', async (t) => {
  t.timeout(10 * 60_000);
  const r = await execa(path.join(REPO_ROOT, 'build-iso.sh'), [], { cwd: REPO_ROOT, all: true });
  const m = /(dist\/custos-[\d.]+\.iso): (\d+) bytes, \d+ MiB .* built in (\d+) s/.exec(r.stdout);
  if (!m) throw new Error(`build-iso.sh said:\n${r.all ?? ''}`);
  iso = path.join(REPO_ROOT, m[1] as string);
  const bytes = Number(m[2]);
  t.log(`ISO ${bytes} bytes (${(bytes / MiB).toFixed(1)} MiB), built in ${m[3]} s`);
  if (bytes > 64 * MiB || statSync(iso).size !== bytes) throw new Error(`the ISO is ${bytes} bytes: over the 64 MiB budget, or not the file built`);
});

/** SHA-256 of every file inside an ISO, by path. */
async function filesOf(image: string): Promise<Record<string, string>> {
  const tree = tempDir();
  try {
    await execa('xorriso', ['-osirrox', 'on', '-indev', image, '-extract', '/', tree]);
    const sums = await execa('sh', ['-c', 'find . -type f | sort | xargs sha256sum'], { cwd: tree });
    return Object.fromEntries(sums.stdout.split('\n').map((l) => [l.slice(66).replace(/^\.\//, ''), l.slice(0, 64)]));
  } finally {
    await execa('chmod', ['-R', 'u+w', tree]);
    rmSync(tree, { recursive: true, force: true });
  }
}

// Serial: it runs before the boot tests, so no VM shares the cores with a build.
test.serial('two builds from the same commit hold the same files, byte for byte', async (t) => {
  t.timeout(10 * 60_000);
  const second = path.join(tempDir(), 'again.iso');
  t.teardown(() => rmSync(path.dirname(second), { recursive: true, force: true }));
  await execa(path.join(REPO_ROOT, 'build-iso.sh'), [], { cwd: REPO_ROOT, env: { CUSTOS_ISO_OUT: second } });
  const [a, b] = [await filesOf(iso), await filesOf(second)];
  // What every boot path reads must be there, so an extraction that failed cannot pass as equal.
  for (const f of ['boot/vmlinuz', 'boot/initrd.img', 'boot/vmtools.txz', 'boot/grub/grub.cfg', 'boot/grub/i386-pc/eltorito.img', 'efi.img', '.disk/info']) {
    t.truthy(a[f], `${f} is in the ISO`);
  }
  t.deepEqual(b, a);
  // And the images themselves, layout and dates included.
  t.is(await sha256File(second), await sha256File(iso));
});

/** Devices QEMU cannot emulate, by a real modalias of each, and the module that must claim it from the initramfs. */
const UNEMULATED: [string, string, string][] = [
  ['Intel VMD (Tiger Lake)', 'pci:v00008086d00009A0Bsv00001028sd00000A5Fbc01sc04i00', 'vmd'],
  ['Intel SATA in RAID mode', 'pci:v00008086d0000A0D3sv00001028sd00000A2Dbc01sc06i01', 'ahci'],
  ['Hyper-V SCSI (storvsc)', 'vmbus:d96361baa104294db60572e2ffb1dc7f', 'hv_storvsc'],
  ['Xen virtual disk', 'xen:vbd', 'xen_blkfront'],
  ['HPE Smart Array P420', 'pci:v0000103Cd0000323Asv0000103Csd00003351bc01sc04i00', 'hpsa'],
  ['Microchip SmartPQI', 'pci:v00009005d0000028Fsv00009005sd00001100bc01sc07i00', 'smartpqi'],
  ['Broadcom SAS3008', 'pci:v00001000d00000097sv00001000sd00003090bc01sc07i00', 'mpt3sas'],
  ['MegaRAID SAS 3108', 'pci:v00001000d00000016sv00001000sd00009361bc01sc04i00', 'megaraid_sas'],
  ['Adaptec RAID', 'pci:v00009005d00000285sv00009005sd000002A4bc01sc04i00', 'aacraid'],
  ['VMware LSI Logic parallel', 'pci:v00001000d00000030sv000015ADsd00001976bc01sc00i00', 'mptspi'],
  ['VMware PVSCSI', 'pci:v000015ADd000007C0sv000015ADsd000007C0bc01sc00i00', 'vmw_pvscsi'],
  ['Intel UFS', 'pci:v00008086d00007E47sv00008086sd00007270bc01sc09i00', 'ufshcd_pci'],
  ['Realtek PCI card reader', 'pci:v000010ECd0000525Asv00001028sd00000A2DbcFFsc00i00', 'rtsx_pci'],
  ['Realtek USB card reader', 'usb:v0BDAp0129d3960dc00dsc00dp00icFFisc00ip00in00', 'rtsx_usb'],
  ['SD host on ACPI', 'acpi:PNP0D40:', 'sdhci_acpi'],
  ['Thunderbolt 4 (Tiger Lake)', 'pci:v00008086d00009A1Bsv00008086sd00000000bc0Csc03i40', 'thunderbolt'],
  ['FireWire OHCI', 'pci:v0000104Cd00008023sv00001043sd0000808Bbc0Csc00i10', 'firewire_ohci'],
  ['FireWire SBP-2 disk', 'ieee1394:ven00000000mo00000000sp0000609Ever00010483', 'firewire_sbp2'],
  ['I2C HID laptop keyboard', 'acpi:PNP0C50:', 'i2c_hid_acpi'],
  ['Intel LPSS I2C', 'pci:v00008086d0000A0E8sv00001028sd00000A2DbcFFsc80i00', 'intel_lpss_pci'],
  ['Apple keyboard', 'hid:b0003g0001v000005ACp0000024F', 'hid_apple'],
  ['Logitech Unifying receiver', 'hid:b0003g0001v0000046Dp0000C52B', 'hid_logitech_dj'],
];

test.serial(
  'the initramfs holds every storage and keyboard driver: the aliases of hardware QEMU cannot emulate resolve to a module inside it; nothing that needs the network',
  async (t) => {
    const root = tempDir();
    t.teardown(() => rmSync(root, { recursive: true, force: true }));
    await execa('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/boot/initrd.img', path.join(root, 'initrd.img')]);
    await execa('sh', ['-c', 'mkdir tree && cd tree && zstd -dc ../initrd.img | cpio -idm --quiet'], { cwd: root });
    const tree = path.join(root, 'tree');
    const [kver] = readdirSync(path.join(tree, 'lib/modules'));
    const modules = (await execa('find', [path.join(tree, 'lib/modules'), '-name', '*.ko*'])).stdout.split('\n');
    t.log(`${modules.length} kernel modules in the initramfs`);
    t.true(modules.length > 500, `${modules.length} modules`);
    for (const [what, alias, module] of UNEMULATED) {
      const r = await execa('modprobe', ['-d', tree, '-S', kver ?? '', '-R', alias], { reject: false });
      t.true(r.stdout.split('\n').includes(module), `${what}: ${alias} resolves to ${module} (got ${r.stdout || r.stderr})`);
    }
    for (const net of ['e1000e', 'iscsi_tcp', 'nbd', 'fcoe', 'dm_mod', 'scsi_debug', 'null_blk', 'floppy'])
      t.false(
        modules.some((m) => path.basename(m).replace(/\.ko.*$/, '') === net),
        `${net} is not in the initramfs`,
      );
    // Firmware a driver inside names and Debian main ships goes in with it: isci (Intel C600 SAS) asks for isci/isci_firmware.bin.
    const isci = await execa('modinfo', ['-F', 'firmware', modules.find((m) => path.basename(m).startsWith('isci.ko')) ?? 'isci'], { reject: false });
    t.is(isci.stdout.trim(), 'isci/isci_firmware.bin');
    t.true(existsSync(path.join(tree, 'lib/firmware/isci/isci_firmware.bin')), 'the isci firmware is in the initramfs');
  },
);

function randomDisk(file: string, bytes: number): void {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(MiB);
  for (let at = 0; at < bytes; at += chunk.length) {
    randomFillSync(chunk);
    writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - at), at);
  }
  closeSync(fd);
}

async function ext4Disk(file: string, mib: number): Promise<void> {
  await execa('truncate', ['-s', `${mib}M`, file]);
  await execa('mkfs.ext4', ['-q', '-F', '-L', 'EVIDENCE', file]);
}

/**
 * Picks GRUB's serial-console entry: Down until GRUB marks that entry as
 * highlighted, then Enter. A key GRUB missed (an escape sequence read in
 * pieces) would otherwise boot the default entry, silent on the serial line.
 */
async function selectSerialEntry(term: Terminal, timeoutMs: number): Promise<void> {
  await term.waitFor('custos (serial console', timeoutMs);
  for (let i = 0; i < 20; i++) {
    await term.keys('Down');
    await new Promise((r) => setTimeout(r, 300));
    // GRUB marks the highlighted entry with '*' (BIOS and UEFI alike).
    if ((await term.screen()).includes('*custos (serial console')) {
      await term.keys('Enter');
      return;
    }
  }
  throw new Error('GRUB never highlighted the serial-console entry');
}

/** A scratch directory for one boot's disk images, removed after the test. */
function scratchDir(t: ExecutionContext): (name: string) => string {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return (n: string) => path.join(dir, n);
}

/** Boots the ISO from CD in QEMU (TCG, 512 MiB, QMP on `sock`) with `disks`, and picks GRUB's serial-console entry. */
async function bootSerial(t: ExecutionContext, sock: string, disks: string[]): Promise<Terminal> {
  const qemu = ['qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot', `-cdrom ${iso} -boot d -qmp unix:${sock},server=on,wait=off`, ...disks].join(' ');
  const term = await Terminal.start(qemu, { cols: 80, rows: 24, term: 'vt100' });
  t.teardown(() => term.kill());
  await selectSerialEntry(term, 60_000);
  return term;
}

/**
 * Boots the ISO's own kernel and initramfs directly (its CD still attached, as the boot medium) with
 * `extra` kernel arguments after the serial console ones GRUB's serial entry gives, and a second
 * serial port on `shellSock` for custos.shell=ttyS1.
 */
async function bootDirect(t: ExecutionContext, sock: string, shellSock: string, extra: string, disks: string[], f: (n: string) => string): Promise<Terminal> {
  await execa('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/boot/vmlinuz', f('vmlinuz'), '-extract', '/boot/initrd.img', f('initrd.img')]);
  const append = `quiet loglevel=1 noresume raid=noautodetect panic=10 console=tty0 console=ttyS0,115200 ${extra}`;
  const qemu = [
    'qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot',
    `-kernel ${f('vmlinuz')} -initrd ${f('initrd.img')} -append '${append}'`,
    `-cdrom ${iso} -qmp unix:${sock},server=on,wait=off`,
    // Both serial ports named: ttyS0 the console on stdio, ttyS1 the shell's socket.
    `-chardev socket,id=shell,path=${shellSock},server=on,wait=off -serial mon:stdio -serial chardev:shell`,
    ...disks,
  ].join(' ');
  const term = await Terminal.start(qemu, { cols: 80, rows: 24, term: 'vt100' });
  t.teardown(() => term.kill());
  return term;
}

/** The whole result screen, down to the fingerprint box (a serial line draws it slowly). */
const RESULT = /result: (complete|aborted|verify-failed)[\s\S]*unreadable sector[\s\S]*SHA256: (?:\S{4} ){10}\S{3}/;

/** One acquisition through the UI: source, destination released by its serial, case, one-time key, defaults. */
async function acquireThroughUi(term: Terminal, source: string, dest: string, serial: string, caseNo: string, during?: () => Promise<void>): Promise<string> {
  await startThroughUi(term, source, dest, serial, caseNo);
  await during?.();
  return term.waitFor(RESULT, 5 * 60_000);
}

/** Up to the start of an acquisition through the UI. */
async function startThroughUi(term: Terminal, source: string, dest: string, serial: string, caseNo: string): Promise<void> {
  // GRUB reads the 42 MB initrd through the BIOS from the emulated CD: under TCG the UI can take two minutes.
  await term.waitFor('choose the SOURCE disk', 180_000);
  await term.pick(source);
  await term.waitFor('choose destination 1');
  await term.pick(dest);
  await term.waitFor('Type its serial number exactly to confirm');
  await term.type(serial);
  await caseAndStart(term, caseNo);
}

/** From "destination ready" to the start: the case fields, the shown time confirmed, a one-time key, the default options. */
async function caseAndStart(term: Terminal, caseNo: string): Promise<void> {
  await term.waitFor('destination ready', 60_000);
  await term.keys('Enter');
  await caseFieldsToSigningKey(term, [caseNo, 'E-1', 'Jane Examiner', 'QEMU test', 'booted from the ISO']);
  await oneTimeKeyAndStart(term);
}

/** From the disk list: `source` onto `dest` (released by its serial if asked), the unfinished acquisition offered there resumed; returns the result screen. */
async function resumeThroughUi(t: ExecutionContext, term: Terminal, source: string, dest: string, serial: string, caseNo: string): Promise<string> {
  await term.waitFor('choose the SOURCE disk', 180_000);
  await term.pick(source);
  await term.waitFor('choose destination 1');
  await term.pick(dest);
  const asked = await term.waitFor((s) => s.includes('Type its serial number exactly to confirm') || s.includes('destination ready'), 60_000);
  if (asked.includes('Type its serial number')) {
    await term.type(serial);
    await term.waitFor('destination ready', 60_000);
  }
  t.regex(await term.screen(), /holds an unfinished acquisition of this disk/);
  await term.keys('Enter');
  t.regex(await term.waitFor('Enter: resume it', 60_000), new RegExp(`case +${caseNo}`));
  await term.keys('Enter');
  await term.waitFor('clock check', 60_000);
  await term.type('');
  await term.waitFor('signing key');
  await term.keys('Enter');
  return term.waitFor(RESULT, 10 * 60_000);
}

/** What the host finds on the evidence drive after a resumed acquisition: the exact image, one log, a record that verifies. */
async function checkResumed(t: ExecutionContext, evidence: string, sourceHash: string): Promise<void> {
  const ev = await mountReadOnly(t, evidence);
  t.is(await sha256File(path.join(ev, 'image.raw')), sourceHash, 'the resumed image is the source, byte for byte');
  const rec = JSON.parse(readFileSync(path.join(ev, 'custody.json'), 'utf8')) as CustodyRecord;
  t.is(rec.status, 'complete');
  t.is(rec.acquisition.hashes.sha256, sourceHash);
  t.true((rec.acquisition.resume?.position ?? 0) > 0, 'the record says where it resumed');
  const types = readFileSync(path.join(ev, 'events.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { type: string }).type);
  // One log: the first run's entries up to the interruption, then the resume.
  t.is(types[0], 'custody-opened');
  t.is(types.filter((x) => x === 'custody-resumed').length, 1);
  t.is(types[types.length - 1], 'seal');
  const v = await custos(['verify', ev], tempDir());
  t.is(v.exitCode, 0, String(v.stdout));
}

test('booted from the ISO (BIOS, CD, 512 MiB): every disk read-only, a hot-plugged USB disk too; an acquisition and one over bad sectors through the serial UI; power off; the host checks everything', async (t) => {
  t.timeout(15 * 60_000);
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = (n: string) => path.join(dir, n);
  randomDisk(f('suspect.img'), 24 * MiB);
  randomDisk(f('suspect2.img'), 8 * MiB);
  randomDisk(f('nvme.img'), 8 * MiB);
  randomDisk(f('usb.img'), 8 * MiB);
  randomDisk(f('hotplug.img'), 8 * MiB);
  await ext4Disk(f('evidence.img'), 64);
  await ext4Disk(f('evidence2.img'), 64);
  const before: Record<string, string> = {};
  for (const n of ['suspect.img', 'suspect2.img', 'nvme.img', 'usb.img', 'hotplug.img']) before[n] = await sha256File(f(n));
  // The second suspect sits behind blkdebug: reads of these sectors fail with EIO, every time.
  const bad = [100, 101, 102, 5000, 16383];
  writeFileSync(f('blkdebug.cfg'), bad.map((s) => `[inject-error]\nevent = "read_aio"\nerrno = "5"\nsector = "${s}"\nonce = "off"\n`).join('\n'));
  const sock = f('qmp.sock');
  const qemu = [
    'qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot',
    `-cdrom ${iso} -boot d -qmp unix:${sock},server=on,wait=off`,
    `-drive file=${f('suspect.img')},if=virtio,format=raw`,
    `-drive driver=raw,if=virtio,file.driver=blkdebug,file.config=${f('blkdebug.cfg')},file.image.driver=file,file.image.filename=${f('suspect2.img')}`,
    '-device ahci,id=ahci0',
    `-drive if=none,id=ev,file=${f('evidence.img')},format=raw -device ide-hd,drive=ev,bus=ahci0.0,model=EVIDENCE-DISK,serial=EV0001`,
    `-drive if=none,id=ev2,file=${f('evidence2.img')},format=raw -device ide-hd,drive=ev2,bus=ahci0.1,model=EVIDENCE-DISK,serial=EV0002`,
    `-drive if=none,id=nv,file=${f('nvme.img')},format=raw -device nvme,drive=nv,serial=NVME0001`,
    '-device qemu-xhci,id=xhci',
    `-drive if=none,id=us,file=${f('usb.img')},format=raw -device usb-storage,drive=us,bus=xhci.0,serial=USB0001`,
  ].join(' ');
  const poweredOn = Date.now();
  const term = await Terminal.start(qemu, { cols: 80, rows: 24, term: 'vt100' });
  t.teardown(() => term.kill());

  // GRUB: the second entry puts the UI on the serial port.
  await selectSerialEntry(term, 60_000);
  const grubDone = Date.now();
  await term.waitFor('choose the SOURCE disk', 180_000);
  t.log(
    `UI up ${((Date.now() - poweredOn) / 1000).toFixed(1)} s after power-on through GRUB (its menu left ${((grubDone - poweredOn) / 1000).toFixed(1)} s in)`,
  );
  // Every disk, each on its bus, read-only (the serial line draws the list a row at a time: wait for all of it).
  const expected = [
    ['vda', 'virtio'],
    ['vdb', 'virtio'],
    ['sda', 'sata'],
    ['sdb', 'sata'],
    ['nvme0n1', 'nvme'],
  ] as const;
  let screen = await term.waitFor((s) => expected.every(([name, tran]) => new RegExp(`RO ${name} +\\S+ +${tran} `).test(s)), 60_000);
  t.notRegex(screen, /RW /);
  // The USB disk (it comes up late), and the CD it booted from marked as the boot medium.
  screen = await term.waitFor((s) => /RO sd[c-z] +\S+ +usb /.test(s) && /RO sr0 +boot /.test(s), 60_000);

  // A USB disk plugged in after boot comes up read-only.
  await qmp(sock, [
    { execute: 'blockdev-add', arguments: { 'node-name': 'hp', driver: 'raw', file: { driver: 'file', filename: f('hotplug.img') } } },
    { execute: 'device_add', arguments: { driver: 'usb-storage', id: 'hpdev', drive: 'hp', bus: 'xhci.0', serial: 'HOTPLUG1' } },
  ]);
  screen = await term.waitFor((s) => (s.match(/RO sd[c-z] +\S+ +usb /g) ?? []).length >= 2, 30_000);
  t.notRegex(screen, /RW /, 'nothing is writable');

  screen = await acquireThroughUi(term, 'vda', 'sda', 'EV0001', '2026-401');
  t.regex(screen, /result: complete/);
  t.regex(screen, /copy .*: verified/);
  await term.keys('n');
  screen = await acquireThroughUi(term, 'vdb', 'sdb', 'EV0002', '2026-402');
  t.regex(screen, /result: complete-with-bad-sectors/);
  t.regex(screen, new RegExp(`bad +${bad.length} unreadable sector`));
  await term.keys('p');
  await term.waitFor('[exit 0]', 60_000);

  // On the host: the suspects are unchanged.
  for (const [n, h] of Object.entries(before)) t.is(await sha256File(f(n)), h, `${n} unchanged`);

  // The first evidence disk: a bit-identical image and a record that verifies with custos and ssh-keygen.
  const ev = await mountReadOnly(t, f('evidence.img'));
  t.is(await sha256File(path.join(ev, 'image.raw')), before['suspect.img'] ?? '');
  const rec = JSON.parse(readFileSync(path.join(ev, 'custody.json'), 'utf8')) as CustodyRecord;
  t.is(rec.status, 'complete');
  t.is(rec.acquisition.writeBlock?.writesDuring?.writeIos, 0, 'the kernel counted no write to the source');
  t.is(rec.tool.executable.path, '/bin/custos');
  const v = await custos(['verify', ev], tempDir());
  t.is(v.exitCode, 0, String(v.stdout));
  const ssh = await execa(
    'ssh-keygen',
    ['-Y', 'verify', '-f', path.join(ev, 'allowed_signers'), '-I', rec.signer.principal, '-n', 'custos', '-s', path.join(ev, 'custody.json.sig')],
    { input: readFileSync(path.join(ev, 'custody.json')), reject: false },
  );
  t.is(ssh.exitCode, 0, ssh.stderr);
  // Inside the appliance, nothing from a disk was mounted but the destination, and that read-write.
  const opened = JSON.parse(readFileSync(path.join(ev, 'events.jsonl'), 'utf8').split('\n')[0] ?? '{}') as { data: { mounts: string[] } };
  const fromDisks = opened.data.mounts.filter((m) => m.startsWith('/dev/'));
  t.deepEqual(
    fromDisks.map((m) => m.split(' ').slice(0, 2).join(' ')),
    ['/dev/sda /run/custos/mnt/sda'],
  );
  t.regex(fromDisks[0] ?? '', / rw,/);

  // The second: zeros exactly at the injected sectors, source bytes everywhere else, and exactly those sectors listed.
  const ev2 = await mountReadOnly(t, f('evidence2.img'));
  const image = readFileSync(path.join(ev2, 'image.raw'));
  const source = readFileSync(f('suspect2.img'));
  t.is(image.length, source.length);
  let wrong = 0;
  for (let lba = 0; lba < source.length / 512; lba++) {
    const img = image.subarray(lba * 512, lba * 512 + 512);
    if (!(bad.includes(lba) ? img.every((b) => b === 0) : img.equals(source.subarray(lba * 512, lba * 512 + 512)))) wrong++;
  }
  t.is(wrong, 0);
  const rec2 = JSON.parse(readFileSync(path.join(ev2, 'custody.json'), 'utf8')) as CustodyRecord;
  t.deepEqual(
    rec2.acquisition.badRanges.map((r) => [r.firstLba, r.lastLba, r.error]),
    [
      [100, 102, 'EIO'],
      [5000, 5000, 'EIO'],
      [16383, 16383, 'EIO'],
    ],
  );
  t.is(rec2.acquisition.hashes.sha256, createHash('sha256').update(image).digest('hex'));
  t.true(readdirSync(ev2).includes('report.txt'));
});

/** QEMU's own write counters (query-blockstats), by device id: what the guest's kernel sent to each disk. */
async function writeOps(sock: string, nodes = false): Promise<Record<string, number>> {
  type Entry = { device?: string; qdev?: string; 'node-name'?: string; stats: { wr_operations: number; failed_wr_operations?: number } };
  const [stats] = (await qmp(sock, [{ execute: 'query-blockstats', ...(nodes ? { arguments: { 'query-nodes': true } } : {}) }])) as [Entry[]];
  // Writes done and writes tried and failed (a read-only backend refuses them): both must be zero on a suspect.
  return Object.fromEntries(
    stats.map((s) => [(nodes ? s['node-name'] : s.device || s.qdev) || '?', s.stats.wr_operations + (s.stats.failed_wr_operations ?? 0)]),
  );
}

test("identity in QEMU: twins (three USB disks with one fixed serial) held per attachment, the evidence twin released by kernel name while the other twin is the source (its flag cleared behind custos's back is set back, and so is the third twin's, protected on sight with the uevent rule off); a suspect whose first MiB is a custos ISO is a source; the real CD and a full copy of the ISO are both the boot medium, with a warning; no suspect written", async (t) => {
  t.timeout(20 * 60_000);
  const f = scratchDir(t);
  const isoBytes = readFileSync(iso);
  // The suspect was once a custos stick: its first MiB is the ISO, the rest its own data.
  const rest = Buffer.alloc(15 * MiB);
  randomFillSync(rest);
  writeFileSync(f('suspect.img'), Buffer.concat([isoBytes.subarray(0, MiB), rest]));
  writeFileSync(f('copy.iso'), isoBytes);
  randomDisk(f('twin-src.img'), 24 * MiB);
  randomDisk(f('twin3.img'), 8 * MiB);
  await ext4Disk(f('twin-ev.img'), 64);
  await ext4Disk(f('evidence.img'), 64);
  const suspects = ['suspect.img', 'copy.iso', 'twin-src.img', 'twin3.img'];
  const before: Record<string, string> = {};
  for (const n of suspects) before[n] = await sha256File(f(n));
  const serial = '0123456789ABCDEF';
  const sock = f('qmp.sock');
  // No uevent rule: a disk plugged in later is write-blocked by custos's guardian alone. A root shell on ttyS1 acts behind its back.
  const term = await bootDirect(
    t,
    sock,
    f('shell.sock'),
    'custos.uevent=off custos.shell=ttyS1',
    [
      `-drive if=none,id=sus,file=${f('suspect.img')},format=raw -device virtio-blk-pci,drive=sus`,
      `-drive if=none,id=copy,file=${f('copy.iso')},format=raw -device virtio-blk-pci,drive=copy`,
      '-device ahci,id=ahci0',
      `-drive if=none,id=ev,file=${f('evidence.img')},format=raw -device ide-hd,drive=ev,bus=ahci0.0,model=EVIDENCE-DISK,serial=EV0001`,
      '-device qemu-xhci,id=xhci',
      // Read at 2 MiB/s, so the acquisition lasts long enough to tamper with the source's flag while it runs.
      `-drive if=none,id=twsrc,file=${f('twin-src.img')},format=raw,throttling.bps-read=${2 * MiB} -device usb-storage,drive=twsrc,bus=xhci.0,serial=${serial}`,
      `-drive if=none,id=twev,file=${f('twin-ev.img')},format=raw -device usb-storage,drive=twev,bus=xhci.0,serial=${serial}`,
    ],
    f,
  );
  const shell = await GuestShell.connect(f('shell.sock'));
  t.teardown(() => shell.close());
  const twinRow = /RO (sd[a-z]) +twin +usb +(\S+)/g;
  let screen = await term.waitFor(
    (s) => [...s.matchAll(twinRow)].length === 2 && /RO sr0 +boot /.test(s) && /RO vdb +boot /.test(s) && /RO vda +(src|\?) +virtio /.test(s),
    120_000,
  );
  t.notRegex(screen, /RW /);
  t.notRegex(screen, /vda +boot/, 'the suspect holding a custos image is no boot medium');
  // Which twin is which: by size (24 MiB source, 64 MiB evidence drive), as the details tell the examiner to.
  const rows = [...screen.matchAll(twinRow)].map((m) => ({ name: m[1] as string, size: m[2] as string }));
  const src = rows.find((r) => r.size.startsWith('24'))?.name ?? '';
  const ev = rows.find((r) => r.size.startsWith('64'))?.name ?? '';
  t.truthy(src && ev, JSON.stringify(rows));
  screen = await term.select(src, 'shared with');
  t.regex(screen, new RegExp(`serial shared with ${ev}: identify by kernel name and size`));
  screen = await term.select('vda', 'holds a custos image');
  t.regex(screen, /holds a custos image \(not the medium this system booted from\)/);
  screen = await term.select('vdb', 'disks hold this very custos build');
  t.regex(screen, /2 disks hold this very custos build \(sr0, vdb\)/);

  // Twin to twin: the evidence twin needs its kernel name; a third twin plugged in meanwhile is protected on sight.
  await term.pick(src);
  await term.waitFor('choose destination 1');
  await qmp(sock, [
    { execute: 'blockdev-add', arguments: { 'node-name': 'tw3', driver: 'raw', file: { driver: 'file', filename: f('twin3.img') } } },
    { execute: 'device_add', arguments: { driver: 'usb-storage', id: 'tw3dev', drive: 'tw3', bus: 'xhci.0', serial } },
  ]);
  screen = await term.waitFor((s) => [...s.matchAll(/RO (sd[a-z]) +(twin|source) +usb /g)].length === 3, 60_000);
  const third = [...screen.matchAll(/RO (sd[a-z]) +(?:twin|source) +usb /g)].map((m) => m[1] as string).find((n) => n !== src && n !== ev) ?? '';
  await shell.ready();
  const roIn = async (name: string) => shell.run(`cat /sys/block/${name}/ro`);
  t.is(await roIn(third), '1', 'the third twin is write-blocked on sight, by the guardian alone');
  t.regex(term.transcript(), /custos\.uevent=off: new disks are write-blocked by the guardian alone/);
  // Its flag cleared behind custos's back: set back within the guardian's next passes.
  await shell.run(`blockdev --setrw /dev/${third}`);
  const setBack = async (name: string) => {
    for (let i = 0; i < 40 && (await roIn(name)) !== '1'; i++) await new Promise((r) => setTimeout(r, 250));
    return roIn(name);
  };
  t.is(await setBack(third), '1', 'a twin reset behind the guardian is set back');
  await term.pick(ev);
  screen = await term.waitFor('Type its kernel name, a space and its serial number exactly to confirm', 30_000);
  t.regex(screen, new RegExp(`TWIN: serial shared with .*; this is ${ev}`));
  await term.type(serial);
  await term.waitFor('not released', 30_000);
  await term.keys('Enter');
  await term.waitFor('choose destination 1', 30_000);
  await term.pick(ev);
  await term.waitFor('Type its kernel name', 30_000);
  await term.type(`${ev} ${serial}`);
  await caseAndStart(term, '2026-901');
  // Under way: the released twin stays writable; the source twin's flag, cleared behind custos's back, is set back and logged.
  await term.waitFor(/ (?:[1-9]\d?)\.\d%/, 120_000);
  t.is(await roIn(ev), '0', 'the released evidence twin stays writable while attached');
  await shell.run(`blockdev --setrw /dev/${src}`);
  t.is(await setBack(src), '1', 'the source twin is set back');
  screen = await term.waitFor(RESULT, 5 * 60_000);
  t.regex(screen, /result: complete/);
  t.regex(screen, /copy .*: verified/);
  await term.keys('n');
  // The suspect that holds a custos image is imaged like any disk.
  screen = await acquireThroughUi(term, 'vda', 'sda', 'EV0001', '2026-902');
  t.regex(screen, /result: complete/);
  const writes = await writeOps(sock);
  await term.keys('p');
  await term.waitFor('[exit 0]', 60_000);

  const wrote = (id: string) => Object.entries(writes).find(([k]) => k === id || k.includes(`/${id}/`) || k.endsWith(`/${id}`))?.[1];
  for (const id of ['sus', 'copy', 'twsrc', 'tw3dev', 'ide1-cd0']) t.is(wrote(id), 0, `QEMU counted no write to ${id} (${JSON.stringify(writes)})`);
  t.true((wrote('twev') ?? 0) > 0 && (wrote('ev') ?? 0) > 0, 'the evidence drives were written');
  for (const [n, h] of Object.entries(before)) t.is(await sha256File(f(n)), h, `${n} unchanged`);
  const twinEv = await mountReadOnly(t, f('twin-ev.img'));
  t.is(await sha256File(path.join(twinEv, 'image.raw')), before['twin-src.img'] ?? '');
  const rec = JSON.parse(readFileSync(path.join(twinEv, 'custody.json'), 'utf8')) as CustodyRecord & { sourceDisk: { twins: string[]; attachment: string } };
  t.is(rec.status, 'complete');
  t.true(rec.sourceDisk.twins.includes(ev), 'the record says the source had a twin attached');
  t.regex(rec.sourceDisk.attachment, new RegExp(`^${src}#\\d+$`));
  t.true(readFileSync(path.join(twinEv, 'events.jsonl'), 'utf8').includes('"type":"source-twin"'));
  t.true((rec.acquisition.writeBlock?.resets ?? 0) >= 1, 'the reset flag is in the record');
  t.is(rec.acquisition.writeBlock?.writesDuring?.writeIos, 0);
  const susEv = await mountReadOnly(t, f('evidence.img'));
  t.is(await sha256File(path.join(susEv, 'image.raw')), before['suspect.img'] ?? '');
  const v = await custos(['verify', twinEv], tempDir());
  t.is(v.exitCode, 0, String(v.stdout));
});

/** One disk behind each storage controller family QEMU emulates: [QEMU device(s), the disk's device, the Linux driver expected]. */
/** An ext2 image holding smartctl and nvme-cli with the libraries they need, each run by a short wrapper (a serial shell redraws long lines). */
async function toolsDisk(file: string): Promise<void> {
  const dir = `${file}.d`;
  mkdirSync(dir, { recursive: true });
  for (const [bin, wrapper] of [
    ['/usr/sbin/smartctl', 's'],
    ['/usr/sbin/nvme', 'n'],
  ] as const) {
    copyFileSync(bin, path.join(dir, path.basename(bin)));
    const libs = (await execa('ldd', [bin])).stdout.match(/=> (\/\S+)/g) ?? [];
    for (const l of libs) copyFileSync(l.slice(3), path.join(dir, path.basename(l.slice(3))));
    writeFileSync(path.join(dir, wrapper), `#!/bin/sh\nLD_LIBRARY_PATH=/tmp/t exec /tmp/t/${path.basename(bin)} "$@"\n`, { mode: 0o755 });
  }
  await execa('mke2fs', ['-q', '-F', '-t', 'ext2', '-d', dir, file, '64M']);
}

const CONTROLLER_DISKS: { id: string; controller: string; disk: (drive: string, serial: string) => string; driver: string }[] = [
  { id: 'lsi', controller: '-device lsi53c895a,id=lsi', disk: (d, s) => `-device scsi-hd,drive=${d},bus=lsi.0,serial=${s}`, driver: 'sym53c8xx' },
  { id: 'mega', controller: '-device megasas,id=mega', disk: (d, s) => `-device scsi-hd,drive=${d},bus=mega.0,serial=${s}`, driver: 'megaraid_sas' },
  { id: 'mega2', controller: '-device megasas-gen2,id=mega2', disk: (d, s) => `-device scsi-hd,drive=${d},bus=mega2.0,serial=${s}`, driver: 'megaraid_sas' },
  // QEMU's SAS 1068 reports a disk's WWN as its SAS address; Linux's mptsas attaches no end device at address 0.
  {
    id: 'sas',
    controller: '-device mptsas1068,id=sas',
    disk: (d, s) => `-device scsi-hd,drive=${d},bus=sas.0,scsi-id=0,serial=${s},wwn=0x5000c50015ea71ac`,
    driver: 'mptsas',
  },
  { id: 'vscsi', controller: '-device virtio-scsi-pci,id=vscsi', disk: (d, s) => `-device scsi-hd,drive=${d},bus=vscsi.0,serial=${s}`, driver: 'virtio-pci' },
  { id: 'ahci', controller: '-device ich9-ahci,id=ahcx', disk: (d, s) => `-device ide-hd,drive=${d},bus=ahcx.0,serial=${s}`, driver: 'ahci' },
  { id: 'ide', controller: '', disk: (d, s) => `-device ide-hd,drive=${d},bus=ide.0,serial=${s}`, driver: 'ata_piix' },
  // An NVMe subsystem: this namespace attached, a second one allocated but detached (added in the test).
  {
    id: 'nvme',
    controller: '-device nvme-subsys,id=nvsub,nqn=custos-test -device nvme,id=nvc,serial=SER-NVME,subsys=nvsub',
    disk: (d) => `-device nvme-ns,drive=${d},nsid=1,bus=nvc`,
    driver: 'nvme',
  },
  { id: 'uhci', controller: '-device piix3-usb-uhci,id=uhci', disk: (d, s) => `-device usb-storage,drive=${d},bus=uhci.0,serial=${s}`, driver: 'usb-storage' },
  { id: 'ohci', controller: '-device pci-ohci,id=ohci', disk: (d, s) => `-device usb-storage,drive=${d},bus=ohci.0,serial=${s}`, driver: 'usb-storage' },
  { id: 'ehci', controller: '-device usb-ehci,id=ehci', disk: (d, s) => `-device usb-storage,drive=${d},bus=ehci.0,serial=${s}`, driver: 'usb-storage' },
  {
    id: 'uas',
    controller: '-device qemu-xhci,id=xhci,streams=on -device usb-uas,id=uasx,bus=xhci.0',
    disk: (d, s) => `-device scsi-hd,drive=${d},bus=uasx.0,serial=${s}`,
    driver: 'uas',
  },
  { id: 'sd', controller: '-device sdhci-pci,id=sdhci', disk: (d) => `-device sd-card,drive=${d}`, driver: 'sdhci-pci' },
];

test("storage controllers in QEMU: a disk behind each SCSI HBA, RAID and SAS controller (MegaRAID SAS 1078 and 2108, LSI SAS 1068), virtio, AHCI, IDE, NVMe, USB (UHCI, OHCI, EHCI, xHCI with UAS) and SD controller is listed read-only with its serial; ATA disks give IDENTIFY and their native max (decoded by hdparm too), SCSI-layer disks INQUIRY and READ CAPACITY(16), the NVMe controller its detached namespace; VMware's PVSCSI, its driver blacklisted, is a controller without a driver on the first screen and in the record; a SCSI HBA hot-plugged after boot gets its driver and its disk comes up read-only; a disk is acquired exactly; no suspect written", async (t) => {
  t.timeout(15 * 60_000);
  const f = scratchDir(t);
  const before: Record<string, string> = {};
  const args: string[] = [];
  for (const c of [
    ...CONTROLLER_DISKS,
    { id: 'pvscsi', controller: '-device pvscsi,id=pvs', disk: (d: string, s: string) => `-device scsi-hd,drive=${d},bus=pvs.0,serial=${s}`, driver: '' },
  ]) {
    randomDisk(f(`${c.id}.img`), 4 * MiB);
    before[c.id] = await sha256File(f(`${c.id}.img`));
    if (c.controller) args.push(c.controller);
    args.push(`-drive if=none,id=d${c.id},file=${f(`${c.id}.img`)},format=raw`, c.disk(`d${c.id}`, `SER-${c.id.toUpperCase()}`));
  }
  // smartctl and nvme-cli, the independent decoders, from the host's Debian packages on a disk of their own: never in the ISO.
  await toolsDisk(f('tools.img'));
  args.push(`-drive if=none,id=dtools,file=${f('tools.img')},format=raw,readonly=on`, '-device virtio-blk-pci,drive=dtools,serial=SER-TOOLS');
  randomDisk(f('nvhidden.img'), 6 * MiB);
  before['nvhidden'] = await sha256File(f('nvhidden.img'));
  args.push(`-drive if=none,id=dnvhidden,file=${f('nvhidden.img')},format=raw`, '-device nvme-ns,drive=dnvhidden,nsid=2,detached=on,bus=nvc');
  const sock = f('qmp.sock');
  const term = await bootDirect(t, sock, f('shell.sock'), 'custos.shell=ttyS1 modprobe.blacklist=vmw_pvscsi', args, f);
  const shell = await GuestShell.connect(f('shell.sock'));
  t.teardown(() => shell.close());
  // The first screen says what it cannot see, in red between the list and the details.
  // The whole warning line: a serial line draws the screen slowly, a part of it may be all there is yet.
  const screen = await term.waitFor(
    (s) => s.includes('choose the SOURCE disk') && s.includes('15ad:07c0 SCSI controller: NO DRIVER, disks behind it are not listed'),
    180_000,
  );
  t.regex(screen, /! 15ad:07c0 SCSI controller: NO DRIVER, disks behind it are not listed/);
  t.notRegex(screen, /RW /);
  await shell.ready();
  // Every disk is there, read-only, with its serial; the one behind the driverless controller is not (and is said to be missing).
  const wanted = CONTROLLER_DISKS.length + 1;
  let listing = '';
  for (let i = 0; i < 60; i++) {
    listing = await shell.run('custos disks');
    if ((listing.match(/^\S+ .* RO /gm) ?? []).length >= wanted) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  t.log(`custos disks in the guest:\n${listing}`);
  const row = (serial: string) => listing.split('\n').find((l) => l.includes(serial)) ?? '';
  for (const c of CONTROLLER_DISKS) {
    if (c.id === 'sd') continue;
    t.regex(row(`SER-${c.id.toUpperCase()}`), / RO /, `the disk behind ${c.id} is listed read-only with its serial:\n${listing}`);
  }
  t.regex(listing, /^mmcblk0 +mmc .* RO /m, 'the SD card is listed read-only');
  t.false(listing.includes('SER-PVSCSI'), 'no disk behind the driverless controller');
  t.regex(
    listing,
    /! storage controller 15ad:07c0 \(SCSI controller\) at pci \S+ has no driver \(its driver vmw_pvscsi is not loaded\): disks behind it are not listed/,
  );
  // Each controller's driver is bound, found in sysfs by the guest's custos.
  const controllers = listing.split('\n').find((l) => l.startsWith('controllers: ')) ?? '';
  for (const d of new Set(CONTROLLER_DISKS.map((c) => c.driver))) t.true(controllers.includes(`[${d}]`), `${d} drives its controller: ${controllers}`);
  // The drives' own answers (read-only pass-through): QEMU's ATA disks answer IDENTIFY and READ NATIVE MAX ADDRESS EXT
  // (no HPA: native equals user size, said so), hdparm on the host decodes the same IDENTIFY bytes; the NVMe controller
  // lists its detached namespace, which is a warning; SCSI, USB and SD disks are said to be out of reach (QEMU's scsi-hd
  // answers ATA PASS-THROUGH with GOOD and a block of zeros, which is no answer).
  const json = JSON.parse(await shell.run('custos disks --json', 120_000)) as { disks: (Disk & { drive: DriveReport })[] };
  const bySerial = (serial: string) => json.disks.find((d) => d.serial?.text === serial);
  for (const id of ['ide', 'ahci']) {
    const a = bySerial(`SER-${id.toUpperCase()}`)?.drive.ata;
    t.is(a?.identify.serial.text, `SER-${id.toUpperCase()}`, `${id}: IDENTIFY through ATA PASS-THROUGH`);
    t.is(a?.identify.userSectors, (4 * MiB) / 512);
    t.is(a?.nativeFrom, 'READ NATIVE MAX ADDRESS EXT');
    t.is(a?.nativeSectors, (4 * MiB) / 512, `${id}: native max from the drive`);
    t.is(a?.hpaSectors, 0);
    const hex = (a?.identifyHex ?? '').match(/.{4}/g) ?? [];
    const words = hex.map((w) => w.slice(2) + w.slice(0, 2));
    const lines = [];
    for (let i = 0; i < words.length; i += 8) lines.push(words.slice(i, i + 8).join(' '));
    const hd = (await execa('hdparm', ['--Istdin'], { input: lines.join('\n') + '\n' })).stdout;
    t.regex(hd, new RegExp(`Serial Number:\\s+SER-${id.toUpperCase()}`), 'hdparm decodes the same serial');
    t.regex(hd, new RegExp(`LBA48 {2}user addressable sectors:\\s+${(4 * MiB) / 512}\\b`), 'and the same size');
  }
  // SMART from QEMU's IDE emulation (behind both libata drivers): attributes, a passing status, nothing flagged.
  for (const id of ['ide', 'ahci']) {
    const h = bySerial(`SER-${id.toUpperCase()}`)?.drive.health;
    t.is(h?.from, 'ATA SMART', `${id}: SMART READ DATA`);
    t.is(h?.passed, true, `${id}: SMART RETURN STATUS`);
    t.true(
      h?.attributes.some((a) => a.id === 5 && a.raw === 0),
      `${id}: reallocated sectors attribute (${JSON.stringify(h?.attributes)})`,
    );
    t.deepEqual(h?.flags, [], id);
  }
  const nv = bySerial('SER-NVME');
  // The same answers as smartctl and nvme-cli read from the same emulated drives.
  await shell.run(`mkdir -p /tmp/t && mount -o ro /dev/${/^(\S+) /.exec(row('SER-TOOLS'))?.[1] ?? ''} /tmp/t`);
  for (const id of ['ide', 'ahci']) {
    const dev = /^(\S+) /.exec(row(`SER-${id.toUpperCase()}`))?.[1] ?? '';
    const sc = JSON.parse(await shell.run(`/tmp/t/s -j -A -H /dev/${dev}`, 60_000)) as {
      smart_status?: { passed: boolean };
      ata_smart_attributes?: { table: { id: number; value: number; worst: number; raw: { value: number } }[] };
    };
    const ours = bySerial(`SER-${id.toUpperCase()}`)?.drive.health;
    t.deepEqual(
      ours?.attributes.map((a) => [a.id, a.value, a.worst, a.raw]),
      sc.ata_smart_attributes?.table.map((a) => [a.id, a.value, a.worst, a.raw.value]),
      `${id}: the attributes smartctl reads`,
    );
    t.is(ours?.passed, sc.smart_status?.passed, `${id}: the status smartctl reads`);
  }
  const idc = JSON.parse(await shell.run('/tmp/t/n id-ctrl /dev/nvme0 -o json', 60_000)) as { sn: string; mn: string; fr: string };
  t.deepEqual(
    [nv?.drive.nvme?.controller.serial.text, nv?.drive.nvme?.controller.model.text, nv?.drive.nvme?.controller.firmware.text],
    [idc.sn.trim(), idc.mn.trim(), idc.fr.trim()],
    'nvme id-ctrl reads the same identity',
  );
  const sl = JSON.parse(await shell.run('/tmp/t/n smart-log /dev/nvme0 -o json', 60_000)) as {
    critical_warning: number;
    media_errors: number;
    temperature: number;
  };
  t.deepEqual(
    [nv?.drive.health?.nvme?.criticalWarning, nv?.drive.health?.nvme?.mediaErrors],
    // nvme-cli prints 128-bit counters as strings.
    [sl.critical_warning, Number(sl.media_errors)],
    'nvme smart-log reads the same log',
  );
  t.true([sl.temperature, sl.temperature + 273].includes(nv?.drive.health?.nvme?.temperatureK ?? -1), `the same temperature (${sl.temperature})`);
  t.is(nv?.drive.health?.from, 'NVMe SMART / Health log');
  t.true((nv?.drive.health?.nvme?.temperatureK ?? 0) > 273, `NVMe temperature (${JSON.stringify(nv?.drive.health?.nvme)})`);
  t.is(nv?.drive.health?.nvme?.mediaErrors, 0);
  t.is(nv?.drive.health?.passed, true);
  t.deepEqual(
    nv?.drive.nvme?.namespaces,
    [
      { nsid: 1, attached: true, bytes: 4 * MiB },
      { nsid: 2, attached: false, bytes: 6 * MiB },
    ],
    'the controller lists both namespaces, the second detached',
  );
  t.is(nv?.drive.nvme?.detachedBytes, 6 * MiB);
  t.true(nv?.warnings.some((w) => w.code === 'nvme-detached'));
  t.is(await shell.run('custos disks | grep -c "not attached: 6291456 bytes"'), '1', 'the list says so');
  for (const id of ['lsi', 'mega', 'mega2', 'sas', 'vscsi', 'uas', 'ehci'])
    t.regex(bySerial(`SER-${id.toUpperCase()}`)?.drive.unreachable ?? '', /ATA IDENTIFY/, id);
  t.regex(json.disks.find((d) => d.name === 'mmcblk0')?.drive.unreachable ?? '', /mmc disk takes no ATA or NVMe/);
  // Every disk behind the kernel's SCSI layer answers INQUIRY and READ CAPACITY(16), with the size the kernel shows.
  for (const id of ['ide', 'ahci', 'lsi', 'mega', 'mega2', 'sas', 'vscsi', 'uas', 'ehci']) {
    const d = bySerial(`SER-${id.toUpperCase()}`);
    t.like(d?.drive.scsi?.capacity, { sectors: (4 * MiB) / 512, blockBytes: 512 }, `${id}: READ CAPACITY(16)`);
    t.regex(d?.drive.scsi?.inquiry.product.text ?? '', /^QEMU (HARDDISK|DVD-ROM)$/, `${id}: INQUIRY`);
    t.false(d?.warnings.some((w) => w.code === 'capacity-mismatch'));
  }
  // A SCSI HBA plugged in after boot (its driver not loaded so far): the uevent rule loads am53c974 from its modalias, its disk comes up read-only.
  randomDisk(f('am.img'), 4 * MiB);
  before['am'] = await sha256File(f('am.img'));
  t.is(await shell.run('ls /sys/module | grep -c am53c974'), '0', 'no Am53c974 at boot, so its driver is not loaded');
  await qmp(sock, [
    { execute: 'blockdev-add', arguments: { 'node-name': 'dam', driver: 'raw', file: { driver: 'file', filename: f('am.img') } } },
    { execute: 'device_add', arguments: { driver: 'am53c974', id: 'amhba' } },
    { execute: 'device_add', arguments: { driver: 'scsi-hd', id: 'amdisk', drive: 'dam', bus: 'amhba.0', serial: 'SER-AM' } },
  ]);
  let hot = '';
  for (let i = 0; i < 90 && !/ RO /.test(hot); i++) {
    await new Promise((r) => setTimeout(r, 1000));
    hot = (await shell.run('custos disks')).split('\n').find((l) => l.includes('SER-AM')) ?? '';
  }
  t.regex(hot, / RO /, 'the disk behind the hot-plugged HBA is listed read-only');
  t.is(await shell.run('ls /sys/module | grep -c am53c974'), '1', 'its driver came from its modalias');
  // One of them acquired, behind the MegaRAID: the image hashes as the host's file; the record's host section names the missing driver.
  const mega = /^(\S+) /.exec(row('SER-MEGA'))?.[1] ?? '';
  const out = await shell.run(
    `custos acquire --source /dev/${mega} --out /tmp --hash sha256 --piece-size 0 --examiner QEMU 2>&1 | grep -E '^(status|sha256) '`,
    5 * 60_000,
  );
  t.regex(out, /^status +complete/m, out);
  t.regex(out, new RegExp(`^sha256 +${before['mega']}`, 'm'), out);
  // Short commands: a line longer than the serial terminal is redrawn by the shell's line editor. custody.json is one line of canonical JSON.
  t.is(await shell.run('grep -c controller-no-driver /tmp/custody.json'), '1', 'the record says which controller had no driver');
  t.is(await shell.run("grep -c 'covers all 8,192 sec' /tmp/custody.json"), '1', 'the record says what the image covers, from READ CAPACITY(16)');
  // An AHCI disk acquired too: its record states, from the drive's native max, that no sector is hidden.
  const ahci = /^(\S+) /.exec(row('SER-AHCI'))?.[1] ?? '';
  const outAhci = await shell.run(
    `mkdir -p /tmp/ahci && custos acquire --source /dev/${ahci} --out /tmp/ahci --hash sha256 --piece-size 0 2>&1 | grep -E '^status '`,
    5 * 60_000,
  );
  t.regex(outAhci, /^status +complete/m, outAhci);
  t.is(await shell.run('grep -c "no hidden area" /tmp/ahci/custody.json'), '1', 'no hidden area, said so');
  t.is(await shell.run('grep -c "Not imaged  *0 bytes" /tmp/ahci/report.txt'), '1', 'the report says so');
  t.is(await shell.run('grep -c "after  *ATA SMART: pa" /tmp/ahci/report.txt'), '1', 'SMART read again at the end');
  const writes = await writeOps(sock);
  for (const c of [...CONTROLLER_DISKS, { id: 'pvscsi' }, { id: 'nvhidden' }])
    t.is(writes[`d${c.id}`] ?? 0, 0, `QEMU counted no write to the disk behind ${c.id} (${JSON.stringify(writes)})`);
  const hotWrites = Object.entries(writes).filter(([k]) => k.includes('amdisk'));
  t.true(hotWrites.length > 0 && hotWrites.every(([, n]) => n === 0), `QEMU counted no write to the hot-plugged disk (${JSON.stringify(writes)})`);
  for (const [n, h] of Object.entries(before)) t.is(await sha256File(f(`${n}.img`)), h, `${n}.img unchanged`);
});

test('512 MiB: E01 at best compression into two evidence drives, ext4 and NTFS, with verify through the UI; the memory plan fits what the appliance has left, the kernel logs no OOM, and the host reads both images back (ntfs-3g for NTFS) to the source', async (t) => {
  t.timeout(15 * 60_000);
  const f = scratchDir(t);
  writeMixedImage(f('suspect.img'), 48 * MiB, 29);
  const sourceHash = await sha256File(f('suspect.img'));
  await execa('truncate', ['-s', '160M', f('ext4.img')]);
  await execa('mkfs.ext4', ['-q', '-F', '-m', '0', f('ext4.img')]);
  await execa('truncate', ['-s', '160M', f('ntfs.img')]);
  await execa('mkntfs', ['-Q', '-F', '-q', '-L', 'EVIDENCE', f('ntfs.img')]);
  const disks = [
    ['suspect', 'SRC512'],
    ['ext4', 'EVEXT4'],
    ['ntfs', 'EVNTFS'],
  ].flatMap(([n, serial]) => [`-drive if=none,id=${n},file=${f(`${n}.img`)},format=raw`, `-device virtio-blk-pci,drive=${n},serial=${serial}`]);
  const sock = f('qmp.sock');
  const poweredOn = Date.now();
  const term = await bootDirect(t, sock, f('shell.sock'), 'custos.shell=ttyS1', disks, f);
  const shell = await GuestShell.connect(f('shell.sock'));
  t.teardown(() => shell.close());

  await term.waitFor('choose the SOURCE disk', 180_000);
  t.log(`UI up ${((Date.now() - poweredOn) / 1000).toFixed(1)} s after power-on (kernel and initramfs loaded by QEMU)`);
  await term.waitFor((s) => s.includes('choose the SOURCE disk') && /RO vdc /.test(s), 60_000);
  await shell.ready();
  const steps = await shell.run('tr "\\n" " " < /run/custos/boot-times');
  t.log(`boot steps, seconds since power-on: ${steps}`);
  // The UI starts while the disks settle, and lists them only after init said they had (tui/appliance-boot.ts).
  const at: Record<string, number> = Object.fromEntries([...steps.matchAll(/(\S+) (\d+\.\d+)/g)].map((m) => [m[1] ?? '', Number(m[2])]));
  const order = ['coldplug', 'ui-start', 'disks', 'ui-settled', 'ui-disks', 'ui-screen'];
  t.deepEqual(
    order.filter((k) => at[k] === undefined),
    [],
    steps,
  );
  order.slice(1).forEach((k, i) => {
    const prev = order[i] ?? '';
    t.true((at[prev] ?? NaN) <= (at[k] ?? NaN), `${prev} before ${k}: ${steps}`);
  });
  await term.pick('vda');
  await term.waitFor('choose destination 1');
  await term.pick('vdb');
  await term.waitFor('Type its serial number exactly to confirm');
  await term.type('EVEXT4');
  await term.waitFor('destination ready', 60_000);
  await term.keys('a');
  await term.waitFor('choose destination 2');
  await term.pick('vdc');
  await term.waitFor('Type its serial number exactly to confirm');
  await term.type('EVNTFS');
  const ready = await term.waitFor((s) => s.includes('destination ready') && s.includes('(ntfs) mounted at'), 60_000);
  t.regex(ready, /\(ext4\) mounted at/);
  await term.keys('Enter');
  await caseFieldsToSigningKey(term, ['2026-512', 'E-512', 'Jane Examiner', 'E01 best, two drives', '512 MiB']);
  await term.keys('Enter');
  await term.waitFor('options');
  await term.keys('Down', 'Space');
  await term.waitFor('[x] E01 at best');
  await term.keys('Enter');
  t.regex(await term.waitFor('check and start'), /e01 \(best compression/);
  await term.keys('Enter');
  const screen = await term.waitFor(RESULT, 10 * 60_000);
  t.regex(screen, /result: complete/);
  t.is((screen.match(/copy .*: verified/g) ?? []).length, 2, screen);
  await shell.ready();
  t.is(await shell.run('dmesg | grep -ciE "out of memory|oom-kill"'), '0', 'no OOM line in the kernel log');
  await term.keys('p');
  await term.waitFor('[exit 0]', 60_000);

  // On the host: each drive holds an E01 libewf verifies, whose stream is the source.
  const ext4 = await mountReadOnly(t, f('ext4.img'));
  const rec = JSON.parse(readFileSync(path.join(ext4, 'custody.json'), 'utf8')) as CustodyRecord;
  t.is(rec.status, 'complete');
  t.is(rec.acquisition.hashes.sha256, sourceHash);
  t.is(rec.acquisition.settings.ewf?.compression, 'best');
  const plan = rec.acquisition.settings.memory;
  t.true(plan !== undefined && !plan.short && plan.estimatedNeedBytes <= plan.budgetBytes, JSON.stringify(plan));
  t.true((plan?.availableBytes ?? Infinity) < 512 * MiB, 'planned for what the appliance has left');
  const ntfsLoopDev = (await execa('losetup', ['-f', '--show', '-r', f('ntfs.img')])).stdout.trim();
  t.teardown(() => execa('losetup', ['-d', ntfsLoopDev], { reject: false }).then(() => undefined));
  const ntfs = await mountNtfsReadOnly(t, ntfsLoopDev);
  for (const dir of [ext4, ntfs]) {
    const v = await execa('ewfverify', ['-q', path.join(dir, 'image.E01')], { reject: false });
    t.is(v.exitCode, 0, v.stdout + v.stderr);
    // To a file: on stdout ewfexport ends with a line of its own.
    const target = f(`export-${path.basename(path.dirname(dir))}`);
    const x = await execa('ewfexport', ['-q', '-u', '-f', 'raw', '-t', target, path.join(dir, 'image.E01')], { reject: false });
    t.is(x.exitCode, 0, x.stderr);
    t.is(await sha256File(`${target}.raw`), sourceHash, `the image on ${dir} is the source`);
  }
  t.is(await sha256File(f('suspect.img')), sourceHash, 'the source unchanged');
  t.is(rec.acquisition.writeBlock?.writesDuring?.writeIos, 0, 'the kernel counted no write to the source');
});

/** A VMDK base and one snapshot delta in `dir`/`folder`, made with qemu-img; returns the guest disk's SHA-256 as qemu-img reads it. */
async function vmdkChainIn(dir: string, folder: string, seed: number, scratch: string): Promise<string> {
  const vm = path.join(dir, folder);
  mkdirSync(vm);
  const write = { pattern: seed & 0xff, offset: '3M', length: '768k' };
  return snapshotChain(vm, { format: 'vmdk', base: 'disk.vmdk', top: 'disk-000001.vmdk', guestBytes: 12 * MiB, seed, write, scratch });
}

/** A Hyper-V folder in `dir`: a dynamic VHDX made by qemu-img and a checkpoint (.avhdx) over it built to [MS-VHDX]; returns the guest disk's SHA-256. */
function hyperVChainIn(dir: string, scratch: string): string {
  const vm = path.join(dir, 'Hyper-V', 'Virtual Hard Disks');
  mkdirSync(vm, { recursive: true });
  const base = randomFillSync(Buffer.alloc(12 * MiB));
  writeFileSync(path.join(scratch, 'hyperv-base.raw'), base);
  execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'vhdx', path.join(scratch, 'hyperv-base.raw'), path.join(vm, 'web01.vhdx')]);
  const writes = [
    { offset: 1 * MiB, data: randomFillSync(Buffer.alloc(MiB)) },
    { offset: 5 * MiB + 3 * 512, data: randomFillSync(Buffer.alloc(5 * 512)) },
    { offset: 12 * MiB - 4096, data: randomFillSync(Buffer.alloc(4096)) },
  ];
  writeDifferencingVhdx(path.join(vm, 'web01.vhdx'), path.join(vm, 'web01_3F2504E0-4F89-11D3-9A0C-0305E82C3301.avhdx'), writes);
  return createHash('sha256').update(expectedDisk(base, writes)).digest('hex');
}

/** From the disk list: `drive` opened with v, the file `down` rows from the top of its list picked and its chain checked, imaged onto `dest` (released by `serial`). */
async function vmDiskThroughUi(
  t: ExecutionContext,
  term: Terminal,
  vm: { drive: string; file: RegExp; down: number; chain: RegExp },
  dest: string,
  serial: string,
  caseNo: string,
): Promise<string> {
  await term.waitFor('choose the SOURCE disk', 60_000);
  await term.pick(vm.drive, 'v');
  // The list is drawn after its title: wait for the file itself.
  const files = await term.waitFor((s) => s.includes('choose the VM disk file') && vm.file.test(s), 120_000);
  t.regex(files, vm.file);
  for (let i = 0; i < vm.down; i++) await term.keys('Down');
  await term.keys('Enter');
  const chain = await term.waitFor('the chain of ', 120_000);
  t.regex(chain, vm.chain);
  await term.keys('Enter');
  await term.waitFor('choose destination 1');
  await term.pick(dest);
  await term.waitFor('Type its serial number exactly to confirm');
  await term.type(serial);
  await caseAndStart(term, caseNo);
  const screen = await term.waitFor(RESULT, 5 * 60_000);
  t.regex(screen, /result: complete/);
  return screen;
}

test('VM disk files on write-blocked drives, opened in the TUI: a VMDK chain on an ext4 whose journal needs recovery and one on NTFS, imaged through qemu-nbd, and a Hyper-V checkpoint (.avhdx over .vhdx) beside it on the NTFS drive, imaged through libvhdi under qemu-nbd, each exactly, in the appliance; QEMU counts no write to either drive', async (t) => {
  t.timeout(15 * 60_000);
  const f = scratchDir(t);
  // ext4: a copy taken while it was mounted, so its journal needs recovery.
  await execa('truncate', ['-s', '96M', f('live.img')]);
  await execa('mkfs.ext4', ['-q', '-F', f('live.img')]);
  mkdirSync(f('mnt'));
  await execa('mount', ['-o', 'loop', f('live.img'), f('mnt')]);
  let ext4Hash = '';
  try {
    ext4Hash = await vmdkChainIn(f('mnt'), 'vms', 0x41, f(''));
    await execa('sync');
    copyFileSync(f('live.img'), f('vmext4.img'));
  } finally {
    await execa('umount', [f('mnt')]);
  }
  rmSync(f('live.img'));
  t.regex((await execa('dumpe2fs', ['-h', f('vmext4.img')], { stderr: 'ignore' })).stdout, /features:.*needs_recovery/);
  await execa('truncate', ['-s', '80M', f('vmntfs.img')]);
  await execa('mkntfs', ['-Q', '-F', '-q', '-L', 'VMSTORE', f('vmntfs.img')]);
  await execa('ntfs-3g', [f('vmntfs.img'), f('mnt')]);
  let ntfsHash = '';
  let hyperVHash = '';
  try {
    ntfsHash = await vmdkChainIn(f('mnt'), 'VMs', 0x4e, f(''));
    hyperVHash = hyperVChainIn(f('mnt'), f(''));
  } finally {
    await execa('umount', [f('mnt')]);
  }
  await ext4Disk(f('ev1.img'), 64);
  await ext4Disk(f('ev2.img'), 72);
  await ext4Disk(f('ev3.img'), 64);
  const drives = { vmext4: await sha256File(f('vmext4.img')), vmntfs: await sha256File(f('vmntfs.img')) };
  const disks = [
    ['vmext4', 'VMEXT4'],
    ['vmntfs', 'VMNTFS'],
    ['ev1', 'EV1'],
    ['ev2', 'EV2'],
    ['ev3', 'EV3'],
  ].flatMap(([n, serial]) => [`-drive if=none,id=${n},file=${f(`${n}.img`)},format=raw`, `-device virtio-blk-pci,drive=${n},serial=${serial}`]);
  const sock = f('qmp.sock');
  const term = await bootDirect(t, sock, f('shell.sock'), '', disks, f);
  await term.waitFor((s) => s.includes('choose the SOURCE disk') && /RO vde /.test(s), 180_000);

  // Sorted by path: disk-000001.vmdk before disk.vmdk; on NTFS Hyper-V/ (web01.vhdx, then web01_<guid>.avhdx) before VMs/.
  await vmDiskThroughUi(
    t,
    term,
    { drive: 'vda', file: /disk-000001\.vmdk/, down: 0, chain: /names "disk\.vmdk" as its backing file/ },
    'vdc',
    'EV1',
    'VM-EXT4',
  );
  await term.keys('n');
  await vmDiskThroughUi(
    t,
    term,
    { drive: 'vdb', file: /disk-000001\.vmdk/, down: 2, chain: /names "disk\.vmdk" as its backing file/ },
    'vdd',
    'EV2',
    'VM-NTFS',
  );
  await term.keys('n');
  await vmDiskThroughUi(t, term, { drive: 'vdb', file: /web01_3F2504E0/, down: 1, chain: /names "web01\.vhdx" as its parent/ }, 'vde', 'EV3', 'VM-HYPERV');
  const writes = await writeOps(sock);
  t.is(writes['vmext4'], 0, 'QEMU counted no write to the ext4 drive');
  t.is(writes['vmntfs'], 0, 'QEMU counted no write to the NTFS drive');
  await term.keys('p');
  await term.waitFor('[exit 0]', 60_000);

  // Relative to the folder, which is the chosen file's own.
  const hyperV = ['web01_3F2504E0-4F89-11D3-9A0C-0305E82C3301.avhdx', 'web01.vhdx'];
  for (const [ev, hash, fsType, option, files, reader] of [
    ['ev1', ext4Hash, 'ext4', 'norecovery', ['disk-000001.vmdk', 'disk.vmdk'], /^qemu-nbd \d/],
    ['ev2', ntfsHash, 'fuseblk', 'ro', ['disk-000001.vmdk', 'disk.vmdk'], /^qemu-nbd \d/],
    ['ev3', hyperVHash, 'fuseblk', 'ro', hyperV, /^vhdimount \d+ \(libvhdi\) reading the child over its parents, under qemu-nbd \d/],
  ] as const) {
    const mnt = await mountReadOnly(t, f(`${ev}.img`));
    t.is(await sha256File(path.join(mnt, 'image.raw')), hash, `${ev}: the VM disk as qemu-img reads it on the host`);
    const rec = JSON.parse(readFileSync(path.join(mnt, 'custody.json'), 'utf8')) as CustodyRecord;
    t.is(rec.status, 'complete');
    t.deepEqual(
      rec.virtualDisk?.files.map((x) => [x.file, x.unchanged]),
      files.map((x) => [x, true]),
    );
    const fs = rec.virtualDisk?.fileSystem;
    t.is(fs?.fsType, fsType);
    t.true(fs?.mountOptions.includes(option), fs?.mountOptions.join(','));
    t.is(fs?.deviceReadOnly, true);
    t.is(fs?.writes?.writeIos, 0);
    t.regex(rec.virtualDisk?.reader.program ?? '', reader);
    const v = await custos(['verify', mnt], tempDir());
    t.is(v.exitCode, 0, String(v.stdout));
  }
  t.is(await sha256File(f('vmext4.img')), drives.vmext4, 'the ext4 drive unchanged, byte for byte');
  t.is(await sha256File(f('vmntfs.img')), drives.vmntfs, 'the NTFS drive unchanged, byte for byte');
});

test('a USB source unplugged mid-acquisition: paused and said so, another disk refused, the same disk back under a new name protected and continued; the image is exact', async (t) => {
  t.timeout(15 * 60_000);
  const f = scratchDir(t);
  randomDisk(f('source.img'), 96 * MiB);
  randomDisk(f('other.img'), 8 * MiB);
  randomDisk(f('twin.img'), 96 * MiB);
  await ext4Disk(f('evidence.img'), 256);
  const sourceHash = await sha256File(f('source.img'));
  const twinHash = await sha256File(f('twin.img'));
  const sock = f('qmp.sock');
  // Read-only backends: the same file is attached again later, and QEMU locks files it may write.
  const term = await bootSerial(t, sock, [
    '-device ahci,id=ahci0',
    `-drive if=none,id=ev,file=${f('evidence.img')},format=raw -device ide-hd,drive=ev,bus=ahci0.0,model=EVIDENCE-DISK,serial=EV0001`,
    '-device qemu-xhci,id=xhci',
    `-blockdev driver=file,node-name=srcfile,filename=${f('source.img')},read-only=on -blockdev driver=raw,node-name=src,file=srcfile,read-only=on`,
    '-device usb-storage,id=srcdev,drive=src,bus=xhci.0,serial=SRC0001',
  ]);
  let screen = await term.waitFor((s) => /RO sd[a-z] +\S+ +usb /.test(s) && /RO sda +\S+ +sata /.test(s), 120_000);
  const usbName = /RO (sd[a-z]) +\S+ +usb /.exec(screen)?.[1] ?? '';
  screen = await acquireThroughUi(term, usbName, 'sda', 'EV0001', '2026-501', async () => {
    // Under way: unplug the source.
    await term.waitFor(/ (?:[1-9]\d?)\.\d%/, 120_000);
    await qmp(sock, [{ execute: 'device_del', arguments: { id: 'srcdev' } }]);
    await term.waitFor('SOURCE UNPLUGGED', 60_000);
    // Another disk is not taken for it; its serial (a QEMU device property) tries to clear the screen and ring the bell.
    await qmp(sock, [
      { execute: 'blockdev-add', arguments: { 'node-name': 'otherfile', driver: 'file', filename: f('other.img'), 'read-only': true } },
      { execute: 'blockdev-add', arguments: { 'node-name': 'other', driver: 'raw', file: 'otherfile', 'read-only': true } },
      { execute: 'device_add', arguments: { driver: 'usb-storage', id: 'otherdev', drive: 'other', bus: 'xhci.0', serial: 'OTH\u001b[2J\u0007ER' } },
    ]);
    const refused = await term.waitFor('source-refused', 60_000);
    // Shown escaped, and the screen around it intact.
    t.regex(refused, /source-refused: sd[a-z] appeared \(serial OTH\\+x1b\[2J\\+x07ER/);
    t.regex(refused, /SOURCE UNPLUGGED/);
    // A twin: another disk of the same model, serial and size (an identical dock), with other content. Refused by content.
    await qmp(sock, [
      { execute: 'blockdev-add', arguments: { 'node-name': 'twinfile', driver: 'file', filename: f('twin.img'), 'read-only': true } },
      { execute: 'blockdev-add', arguments: { 'node-name': 'twin', driver: 'raw', file: 'twinfile', 'read-only': true } },
      { execute: 'device_add', arguments: { driver: 'usb-storage', id: 'twindev', drive: 'twin', bus: 'xhci.0', serial: 'SRC0001' } },
    ]);
    const byContent = await term.waitFor(/source-refused: sd[a-z] appeared with the source's serial, size/, 120_000);
    t.regex(byContent, /SOURCE UNPLUGGED/);
    // The same disk again: it comes back under another kernel name.
    await qmp(sock, [
      { execute: 'blockdev-add', arguments: { 'node-name': 'srcfile2', driver: 'file', filename: f('source.img'), 'read-only': true } },
      { execute: 'blockdev-add', arguments: { 'node-name': 'src2', driver: 'raw', file: 'srcfile2', 'read-only': true } },
      { execute: 'device_add', arguments: { driver: 'usb-storage', id: 'srcdev2', drive: 'src2', bus: 'xhci.0', serial: 'SRC0001' } },
    ]);
  });
  t.regex(screen, /result: complete/);
  // QEMU's own counters on every node behind a suspect: the source (both attachments), the intruder and the twin.
  const nodeWrites = await writeOps(sock, true);
  for (const n of ['srcfile', 'src', 'otherfile', 'other', 'twinfile', 'twin', 'srcfile2', 'src2'])
    t.is(nodeWrites[n], 0, `no write reached ${n} (${JSON.stringify(nodeWrites)})`);
  await term.keys('p');
  await term.waitFor('[exit 0]', 60_000);

  const ev = await mountReadOnly(t, f('evidence.img'));
  t.is(await sha256File(path.join(ev, 'image.raw')), sourceHash, 'the image is the source, byte for byte');
  const rec = JSON.parse(readFileSync(path.join(ev, 'custody.json'), 'utf8')) as CustodyRecord;
  t.is(rec.status, 'complete');
  t.is(rec.acquisition.hashes.sha256, sourceHash);
  const events = readFileSync(path.join(ev, 'events.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; data: Record<string, unknown> });
  const types = events.map((e) => e.type);
  for (const ty of ['source-lost', 'source-refused', 'source-returned']) t.true(types.includes(ty), `${ty} is in the log`);
  t.true(types.indexOf('source-lost') < types.indexOf('source-returned'));
  const refusals = events.filter((e) => e.type === 'source-refused').map((e) => (e.data['data'] as Record<string, unknown> | undefined) ?? {});
  t.deepEqual(
    refusals.map((r) => r['reason']),
    ['identity', 'content'],
    'the other disk by identity, the twin by content',
  );
  t.is((refusals[1]?.['mismatch'] as { what?: string } | undefined)?.what, 'sample', 'the twin differs in the bytes read first');
  const returned = events.find((e) => e.type === 'source-returned')?.data['data'] as { compared?: unknown[] } | undefined;
  t.true((returned?.compared?.length ?? 0) >= 1, 'the real disk was compared before reading on');
  t.is(await sha256File(f('twin.img')), twinHash, 'the twin is untouched');
  const intruder = events.find((e) => e.type === 'source-refused');
  t.is((intruder?.data['data'] as Record<string, unknown> | undefined)?.['serial'], 'OTH\\x1b[2J\\x07ER', 'the record keeps the exact bytes, escaped');
  const back = events.find((e) => e.type === 'source-returned');
  t.not((back?.data['data'] as Record<string, unknown> | undefined)?.['disk'], usbName, 'it came back under another name');
  t.is(rec.acquisition.writeBlock?.attachments.length, 2);
  t.is(rec.acquisition.writeBlock?.writesDuring?.writeIos, 0);
  const v = await custos(['verify', ev], tempDir());
  t.is(v.exitCode, 0, String(v.stdout));
});

/** A USB evidence drive, unplugged during an acquisition through the UI and plugged in again in the same boot. */
interface UnpluggedDrive {
  serial: string;
  caseNo: string;
  /** The throttle group its reads go through (QEMU object id). */
  group: string;
  /** When to unplug it, from the screen: once a resume point is on it, or once the flushed image is being read back. */
  when: 'written' | 'verified';
}

/**
 * One acquisition of vda onto `drive` through the UI, the drive unplugged at its moment: a clear error naming it, nothing
 * claimed complete; then the drive plugged in again (the kernel may give it the same name or another) and the unfinished
 * acquisition offered on it resumed to the end. Leaves the UI at its result screen.
 */
async function unplugAndResume(t: ExecutionContext, term: Terminal, sock: string, drive: UnpluggedDrive, n: number): Promise<void> {
  const row = new RegExp(`R[OW] (sd[a-z]) +\\S+ +usb .*${drive.serial}`);
  const evName = row.exec(await term.waitFor((s) => row.test(s) && /RO vda /.test(s), 120_000))?.[1] ?? '';
  const screen = await acquireThroughUi(term, 'vda', evName, drive.serial, drive.caseNo, async () => {
    await term.waitFor(drive.when === 'written' ? /resume point: \d+\.\d% \(#\d/ : new RegExp(`verify ${evName}  \\[`), 5 * 60_000);
    await qmp(sock, [{ execute: 'device_del', arguments: { id: `${drive.serial}-${n}` } }]);
  });
  const when = `(unplugged while ${drive.when})`;
  t.regex(screen, /result: aborted/, when);
  t.regex(screen, new RegExp(`ABORTED: acquisition aborted: destination /run/custos/mnt/${evName}: its +x?\\s*x?\\s*disk ${evName} was unplugged`), when);
  t.regex(screen, /record +NOT WRITTEN in \/run\/custos\/mnt\/sd[a-z]: its drive failed/, when);
  t.notRegex(screen, /result: complete/, when);
  t.notRegex(screen, /bad +[1-9]\d* unreadable sector/, `the vanished drive's EIO was not counted as unreadable sectors ${when}`);

  await term.keys('n');
  await term.waitFor((s) => s.includes('choose the SOURCE disk') && !s.includes(drive.serial), 60_000);
  await qmp(sock, [
    { execute: 'qom-set', arguments: { path: drive.group, property: 'limits', value: { 'bps-read': 0 } } },
    { execute: 'device_add', arguments: { driver: 'usb-storage', id: `${drive.serial}-${n + 1}`, drive: drive.serial, bus: 'xhci.0', serial: drive.serial } },
  ]);
  const evName2 = row.exec(await term.waitFor((s) => row.test(s), 120_000))?.[1] ?? '';
  t.regex(await resumeThroughUi(t, term, 'vda', evName2, drive.serial, drive.caseNo), /result: complete/, when);
}

// Two moments, on two drives in one boot: while the image is written, and once it is flushed and being verified (seen in
// CI: an unplug meant for the first came after the last write; verify then retried and filled the vanished drive's EIO for minutes).
test('the evidence drive unplugged while the image is written, and another while it is verified: a clear error naming it, nothing claimed complete, the source untouched; each plugged back in (same boot), the TUI resumes to an exact image', async (t) => {
  t.timeout(25 * 60_000);
  const f = scratchDir(t);
  // Three 64 MiB windows, so a checkpoint (every 10 s, at a window end) comes before the end.
  randomDisk(f('source.img'), 192 * MiB);
  const drives: UnpluggedDrive[] = [
    { serial: 'EVUSB001', caseNo: '2026-601', group: 'tg1', when: 'written' },
    { serial: 'EVUSB002', caseNo: '2026-602', group: 'tg2', when: 'verified' },
  ];
  for (const d of drives) await ext4Disk(f(`${d.serial}.img`), 320);
  const sourceHash = await sha256File(f('source.img'));
  const sock = f('qmp.sock');
  // USB evidence drives (a removal is immediate; a SCSI disk's in-flight writes wait out the guest's error handling for minutes).
  // -blockdev: unplugging a device keeps its backend, so the same drive can be plugged in again. The source is read at 4 MiB/s,
  // so a checkpoint comes at 64 MiB and the unplug well before the end on any host; the drive unplugged in verify is read back at
  // 4 MiB/s too (a throttle group, lifted before it returns), so the unplug lands inside the verify.
  const term = await bootSerial(t, sock, [
    `-drive file=${f('source.img')},if=virtio,format=raw,throttling.bps-read=${4 * MiB}`,
    '-device qemu-xhci,id=xhci',
    ...drives.flatMap((d) => [
      `-object throttle-group,id=${d.group},x-bps-read=${d.when === 'verified' ? 4 * MiB : 0}`,
      `-blockdev driver=file,node-name=${d.serial}-file,filename=${f(`${d.serial}.img`)} -blockdev driver=raw,node-name=${d.serial}-raw,file=${d.serial}-file`,
      `-blockdev driver=throttle,node-name=${d.serial},throttle-group=${d.group},file=${d.serial}-raw`,
      `-device usb-storage,id=${d.serial}-1,drive=${d.serial},bus=xhci.0,serial=${d.serial}`,
    ]),
  ]);
  for (const [i, d] of drives.entries()) {
    if (i > 0) await term.keys('n');
    await unplugAndResume(t, term, sock, d, 1);
  }
  await term.keys('p');
  await term.waitFor('[exit 0]', 60_000);
  t.is(await sha256File(f('source.img')), sourceHash, 'the source is untouched');
  for (const d of drives) await checkResumed(t, f(`${d.serial}.img`), sourceHash);
});

// One test, two boots: the second also carries an evidence drive that fails writes, so a boot serves both.
test('the power cut mid-acquisition (QEMU quits at once): booted again, the UI resumes from the drive to an exact image; then an evidence drive that fails writes (blkdebug EIO): a clear error, nothing claimed complete, the source untouched', async (t) => {
  t.timeout(25 * 60_000);
  const f = scratchDir(t);
  randomDisk(f('source.img'), 256 * MiB);
  await ext4Disk(f('evidence.img'), 400);
  // No ext4 journal: the failing sectors then hold only the image's data, and the drive still mounts.
  await execa('truncate', ['-s', '400M', f('failing.img')]);
  await execa('mkfs.ext4', ['-q', '-F', '-O', '^has_journal', '-L', 'EVIDENCE', f('failing.img')]);
  const failing = [90_000, 100_000, 110_000, 120_000, 130_000];
  writeFileSync(f('blkdebug.cfg'), failing.map((s) => `[inject-error]\nevent = "write_aio"\nerrno = "5"\nsector = "${s}"\nonce = "off"\n`).join('\n'));
  const sourceHash = await sha256File(f('source.img'));
  const disks = [
    `-drive file=${f('source.img')},if=virtio,format=raw`,
    '-device ahci,id=ahci0',
    `-drive if=none,id=ev,file=${f('evidence.img')},format=raw -device ide-hd,drive=ev,bus=ahci0.0,model=EVIDENCE-DISK,serial=EV0001`,
  ];
  const first = await bootSerial(t, f('qmp1.sock'), disks);
  await startThroughUi(first, 'vda', 'sda', 'EV0001', '2026-801');
  await first.waitFor(/resume point: \d+\.\d% \(#\d/, 5 * 60_000);
  // The power goes: whatever sat in the guest's page cache is lost; only what reached the disks stays.
  await qmp(f('qmp1.sock'), [{ execute: 'quit' }]);
  await first.kill();

  const term = await bootSerial(t, f('qmp2.sock'), [
    ...disks,
    `-drive driver=raw,if=none,id=bad,file.driver=blkdebug,file.config=${f('blkdebug.cfg')},file.image.driver=file,file.image.filename=${f('failing.img')} -device ide-hd,drive=bad,bus=ahci0.1,model=EVIDENCE-DISK,serial=EV0002`,
  ]);
  const done = await resumeThroughUi(t, term, 'vda', 'sda', 'EV0001', '2026-801');
  t.regex(done, /result: complete/);
  await term.keys('n');
  const screen = await acquireThroughUi(term, 'vda', 'sdb', 'EV0002', '2026-701');
  t.regex(screen, /result: aborted/);
  // The error surfaces when the data is forced to the medium, naming the file.
  // The status may wrap inside its box (a space, the box edge, the indent).
  t.regex(screen, /ABORTED: acquisition aborted: fdatasync[\sx]+\/run\/custos\/mnt\/sdb\/image\.raw[\s\S]{0,6}: EIO/);
  t.notRegex(screen, /result: complete/);
  await term.keys('p');
  await term.waitFor('[exit 0]', 60_000);
  t.is(await sha256File(f('source.img')), sourceHash, 'the source is untouched');
  await checkResumed(t, f('evidence.img'), sourceHash);
});

test('booted from the ISO written to a USB stick, under UEFI: the UI comes up on the serial console with every disk read-only', async (t) => {
  t.timeout(5 * 60_000);
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = (n: string) => path.join(dir, n);
  randomDisk(f('suspect.img'), 8 * MiB);
  const before = await sha256File(f('suspect.img'));
  // The stick is the ISO as `dd` writes it; the firmware's variables are a fresh copy.
  await execa('cp', [iso, f('stick.img')]);
  await execa('cp', ['/usr/share/OVMF/OVMF_VARS_4M.fd', f('vars.fd')]);
  const qemu = [
    'qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot',
    '-drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
    `-drive if=pflash,format=raw,file=${f('vars.fd')}`,
    '-device qemu-xhci,id=xhci',
    `-drive if=none,id=stick,file=${f('stick.img')},format=raw,readonly=on -device usb-storage,drive=stick,bus=xhci.0,bootindex=0`,
    `-drive file=${f('suspect.img')},if=virtio,format=raw`,
  ].join(' ');
  const poweredOn = Date.now();
  const term = await Terminal.start(qemu, { cols: 80, rows: 24, term: 'vt100' });
  t.teardown(() => term.kill());
  await selectSerialEntry(term, 90_000);
  const grubDone = Date.now();
  await term.waitFor(/choose the SOURCE disk[\s\S]*RO vda +\S+ +virtio /, 150_000);
  t.log(
    `UI up ${((Date.now() - poweredOn) / 1000).toFixed(1)} s after power-on from the USB stick under UEFI (GRUB's menu left ${((grubDone - poweredOn) / 1000).toFixed(1)} s in)`,
  );
  // The stick itself is listed as the boot medium (once it has come up), held read-only like every other disk.
  const screen = await term.waitFor(/RO sd[a-z] +boot +usb /, 60_000);
  t.notRegex(screen, /RW /);
  await term.kill();
  t.is(await sha256File(f('suspect.img')), before);
});

// The rest of the firmware matrix, Secure Boot included: about 30 s each under TCG, so on a flag
// (CUSTOS_ISO_MATRIX=1 npm test). BIOS from CD and UEFI from a stick run always, above.
const matrix: { name: string; args: (f: (n: string) => string) => Promise<string[]> }[] = [
  {
    name: 'BIOS from a USB stick',
    args: async (f) => {
      await execa('cp', [iso, f('stick.img')]);
      return [
        '-device qemu-xhci,id=xhci',
        `-drive if=none,id=stick,file=${f('stick.img')},format=raw,readonly=on -device usb-storage,drive=stick,bus=xhci.0,bootindex=0`,
      ];
    },
  },
  {
    name: 'UEFI from CD',
    args: async (f) => {
      await execa('cp', ['/usr/share/OVMF/OVMF_VARS_4M.fd', f('vars.fd')]);
      return [
        '-drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
        `-drive if=pflash,format=raw,file=${f('vars.fd')}`,
        `-cdrom ${iso}`,
      ];
    },
  },
  {
    name: 'UEFI with Secure Boot on (Microsoft keys) from CD',
    args: async (f) => {
      await execa('cp', ['/usr/share/OVMF/OVMF_VARS_4M.ms.fd', f('vars.fd')]);
      return [
        '-machine q35,smm=on -global driver=cfi.pflash01,property=secure,value=on',
        '-drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd',
        `-drive if=pflash,format=raw,file=${f('vars.fd')}`,
        `-cdrom ${iso}`,
      ];
    },
  },
];
if (process.env['CUSTOS_ISO_MATRIX'] === '1') {
  for (const m of matrix) {
    // One at a time, before the concurrent boot tests: five VMs on two cores would starve each other.
    test.serial(`firmware matrix: ${m.name} boots to the UI with every disk read-only and the boot medium marked`, async (t) => {
      t.timeout(5 * 60_000);
      const dir = tempDir();
      t.teardown(() => rmSync(dir, { recursive: true, force: true }));
      const f = (n: string) => path.join(dir, n);
      randomDisk(f('suspect.img'), 4 * MiB);
      const qemu = [
        'qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot',
        ...(await m.args(f)),
        `-drive file=${f('suspect.img')},if=virtio,format=raw`,
      ].join(' ');
      const term = await Terminal.start(qemu, { cols: 80, rows: 24, term: 'vt100' });
      t.teardown(() => term.kill());
      await selectSerialEntry(term, 120_000);
      await term.waitFor(/choose the SOURCE disk[\s\S]*RO vda +\S+ +virtio /, 150_000);
      const screen = await term.waitFor(/RO (sr0|sd[a-z]) +boot /, 60_000);
      t.notRegex(screen, /RW /);
    });
  }
}
