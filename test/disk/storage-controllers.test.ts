// No invisible disk: storage controllers from sysfs, the driver of each, the
// disks behind it, and a warning for a controller that hides its disks. A
// sysfs fixture stands in for controllers this machine does not have (VMD,
// RAID, Hyper-V); the real host's controllers are read beside it.
import test from 'ava';
import { mkdirSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { listStorageControllers } from '../../appliance/disk/storage-controllers.js';
import { sanitizeText } from '../../appliance/sanitize.js';
import { buildFixture, type FixtureDisk } from '../helpers/sysfs-fixture.js';
import { tempDir } from '../helpers/loop.js';

const PCI = 'pci0000:00';

function pci(
  addr: string,
  parent: string,
  cls: string,
  vendor: string,
  device: string,
  driver: string | null,
): { files: Record<string, string>; links: Record<string, string> } {
  const dir = `devices/${parent}/${addr}`;
  const v = vendor.toUpperCase();
  const d = device.toUpperCase();
  const files: Record<string, string> = {
    [`${dir}/class`]: `${cls}\n`,
    [`${dir}/vendor`]: `0x${vendor}\n`,
    [`${dir}/device`]: `0x${device}\n`,
    [`${dir}/modalias`]: `pci:v0000${v}d0000${d}sv00001028sd00000A5Fbc${cls.slice(2, 4)}sc${cls.slice(4, 6)}i${cls.slice(6, 8)}\n`,
  };
  const links: Record<string, string> = { [`bus/pci/devices/${addr}`]: dir };
  if (driver) links[`${dir}/driver`] = `bus/pci/drivers/${driver}`;
  return { files, links };
}

const sata: FixtureDisk = {
  name: 'sda',
  majMin: '8:0',
  parent: `${PCI}/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0`,
  deviceDir: `${PCI}/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0`,
  sizeSectors: 1000215216,
};
const usbDisk: FixtureDisk = {
  name: 'sdb',
  majMin: '8:16',
  parent: `${PCI}/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0`,
  deviceDir: `${PCI}/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0`,
  sizeSectors: 1953525168,
};

function machine(o: { vmdDriver: string | null; vmdLoaded?: boolean; raidDriver: string | null }) {
  const parts = [
    pci('0000:00:17.0', PCI, '0x010601', '8086', 'a352', 'ahci'),
    // Intel VMD with an NVMe drive behind it, hidden without the vmd driver.
    pci('0000:00:0e.0', PCI, '0x010400', '8086', '9a0b', o.vmdDriver),
    // A MegaRAID in a server whose driver is bound but shows no disk.
    pci('0000:3b:00.0', `${PCI}/0000:00:01.0`, '0x010400', '1000', '10e2', o.raidDriver),
  ];
  const files: Record<string, string> = Object.assign({}, ...parts.map((p) => p.files)) as Record<string, string>;
  const links: Record<string, string> = Object.assign({}, ...parts.map((p) => p.links)) as Record<string, string>;
  // The USB stick's interface: class 08 (mass storage), protocol 50 (bulk only), driven by usb-storage.
  const intf = `devices/${PCI}/0000:00:14.0/usb2/2-1/2-1:1.0`;
  Object.assign(files, {
    [`devices/${PCI}/0000:00:14.0/usb2/2-1/idVendor`]: '0781\n',
    [`devices/${PCI}/0000:00:14.0/usb2/2-1/idProduct`]: '5583\n',
    [`${intf}/bInterfaceClass`]: '08\n',
    [`${intf}/bInterfaceSubClass`]: '06\n',
    [`${intf}/bInterfaceProtocol`]: '50\n',
    [`${intf}/modalias`]: 'usb:v0781p5583d0100dc00dsc00dp00ic08isc06ip50in00\n',
    // Not storage: an xHCI controller (class 0c03) is not listed.
    [`devices/${PCI}/0000:00:14.0/class`]: '0x0c0330\n',
  });
  Object.assign(links, {
    'bus/usb/devices/2-1': `devices/${PCI}/0000:00:14.0/usb2/2-1`,
    'bus/usb/devices/2-1:1.0': intf,
    [`${intf}/driver`]: 'bus/usb/drivers/usb-storage',
    'bus/pci/devices/0000:00:14.0': `devices/${PCI}/0000:00:14.0`,
  });
  if (o.vmdLoaded) files['module/vmd/initstate'] = 'live\n';
  return buildFixture([sata, usbDisk], { files, links });
}

function moduleDir(): string {
  const dir = tempDir('custos-modules-');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, 'modules.alias'),
    [
      'alias pci:v00008086d00009A0Bsv*sd*bc*sc*i* vmd',
      'alias pci:v00001000d000010E2sv*sd*bc*sc*i* megaraid_sas',
      'alias pci:v*d*sv*sd*bc01sc06i01* ahci',
      'alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb_storage',
    ].join('\n') + '\n',
  );
  writeFileSync(path.join(dir, 'modules.builtin'), 'kernel/drivers/ata/libata.ko\n');
  return dir;
}

test('every storage controller with its driver and the disks behind it; xHCI and the like are not storage', (t) => {
  const f = machine({ vmdDriver: 'vmd', raidDriver: 'megaraid_sas' });
  const r = listStorageControllers(['sda', 'sdb'], { sysfsRoot: f.sysfsRoot, moduleDir: moduleDir() });
  const by = (a: string) => r.controllers.find((c) => c.address === a);
  t.deepEqual(
    r.controllers.map((c) => c.address),
    ['0000:00:0e.0', '0000:00:17.0', '0000:3b:00.0', '2-1:1.0'],
  );
  t.like(by('0000:00:17.0'), { bus: 'pci', id: '8086:a352', classCode: '0x010601', kind: 'SATA controller', driver: 'ahci', disks: ['sda'] });
  t.like(by('0000:00:0e.0'), { id: '8086:9a0b', kind: 'Intel VMD', driver: 'vmd' });
  t.like(by('2-1:1.0'), { bus: 'usb', id: '0781:5583', kind: 'USB mass storage', driver: 'usb-storage', disks: ['sdb'] });
  t.deepEqual(by('0000:00:17.0')?.modules, ['ahci'], 'the module that claims it, from modules.alias');
  // The VMD shows no disk although its driver is bound, and so does the RAID controller: both may hide drives.
  t.deepEqual(
    r.warnings.map((w) => [w.code, w.controller]),
    [
      ['controller-hides-disks', 'pci 0000:00:0e.0'],
      ['controller-hides-disks', 'pci 0000:3b:00.0'],
    ],
  );
  t.regex(r.warnings[0]?.message ?? '', /^storage controller 8086:9a0b \(Intel VMD\) at pci 0000:00:0e\.0 \(driver vmd\) shows no disks: in RAID or VMD mode/);
});

test('a controller without a driver is a warning that says why: no module knows it, its module is not loaded, or it is loaded and did not bind', (t) => {
  const mods = moduleDir();
  const notLoaded = listStorageControllers(['sda', 'sdb'], { sysfsRoot: machine({ vmdDriver: null, raidDriver: 'megaraid_sas' }).sysfsRoot, moduleDir: mods });
  const vmd = notLoaded.warnings.find((w) => w.controller === 'pci 0000:00:0e.0');
  t.is(vmd?.code, 'controller-no-driver');
  t.is(
    vmd?.message,
    'storage controller 8086:9a0b (Intel VMD) at pci 0000:00:0e.0 has no driver (its driver vmd is not loaded): disks behind it are not listed',
  );
  const loaded = listStorageControllers(['sda', 'sdb'], {
    sysfsRoot: machine({ vmdDriver: null, vmdLoaded: true, raidDriver: null }).sysfsRoot,
    moduleDir: mods,
  });
  t.regex(loaded.warnings.find((w) => w.controller === 'pci 0000:00:0e.0')?.message ?? '', /its driver vmd is loaded but did not take it/);
  t.regex(loaded.warnings.find((w) => w.controller === 'pci 0000:3b:00.0')?.message ?? '', /its driver megaraid_sas is not loaded/);
  const noIndex = listStorageControllers(['sda', 'sdb'], {
    sysfsRoot: machine({ vmdDriver: null, raidDriver: null }).sysfsRoot,
    moduleDir: tempDir('custos-nomods-'),
  });
  t.regex(noIndex.warnings[0]?.message ?? '', /has no driver \(no driver in this system knows it\)/);
});

test('a controller whose driver asked for firmware the system lacks is a warning besides any other, matched by PCI address or by its USB device', (t) => {
  const f = machine({ vmdDriver: 'vmd', raidDriver: 'megaraid_sas' });
  const file = (text: string) => sanitizeText(text, 128);
  const r = listStorageControllers(['sda', 'sdb'], {
    sysfsRoot: f.sysfsRoot,
    moduleDir: moduleDir(),
    firmwareFailures: [
      { device: '0000:3b:00.0', driver: 'megaraid_sas', file: file('megaraid/fw.bin'), errno: 2 },
      { device: '2-1', driver: 'usb-storage', file: file('bridge.fw'), errno: 2 },
      { device: '0000:00:99.0', driver: 'other', file: file('not-storage.fw'), errno: 2 },
    ],
  });
  t.deepEqual(
    r.controllers.find((c) => c.address === '0000:3b:00.0')?.firmwareMissing.map((x) => x.text),
    ['megaraid/fw.bin'],
  );
  t.deepEqual(
    r.controllers.find((c) => c.address === '2-1:1.0')?.firmwareMissing.map((x) => x.text),
    ['bridge.fw'],
  );
  t.deepEqual(r.controllers.find((c) => c.address === '0000:00:17.0')?.firmwareMissing, []);
  const fw = r.warnings.filter((w) => w.code === 'controller-firmware-missing');
  t.deepEqual(
    fw.map((w) => w.controller),
    ['pci 0000:3b:00.0', 'usb 2-1:1.0'],
  );
  t.regex(
    fw[0]?.message ?? '',
    /^storage controller 1000:10e2 \(RAID controller\) at pci 0000:3b:00\.0: its driver megaraid_sas asked for firmware this system does not have \(megaraid\/fw\.bin\): disks behind it may be missing$/,
  );
  t.true(fw.every((w) => w.short.length <= 76 && /FIRMWARE MISSING/.test(w.short)));
  // The RAID controller still also shows no disks: both are said.
  t.true(r.warnings.some((w) => w.code === 'controller-hides-disks' && w.controller === 'pci 0000:3b:00.0'));
});

test('hostile sysfs strings: addresses and drivers that are not plain names are not repeated, the modalias is escaped', (t) => {
  const f = machine({ vmdDriver: 'vmd', raidDriver: 'megaraid_sas' });
  writeFileSync(path.join(f.sysfsRoot, `devices/${PCI}/0000:00:17.0/modalias`), `pci:\x1b[31mRED\x1b]0;pwned\x07${'A'.repeat(100_000)}\n`);
  // The RAID controller's driver link points at a name with an escape sequence in it.
  const raidDriver = path.join(f.sysfsRoot, `devices/${PCI}/0000:00:01.0/0000:3b:00.0/driver`);
  rmSync(raidDriver);
  mkdirSync(path.join(f.sysfsRoot, 'bus/pci/drivers/\x1b[2Jevil'), { recursive: true });
  symlinkSync(path.join(f.sysfsRoot, 'bus/pci/drivers/\x1b[2Jevil'), raidDriver);
  const r = listStorageControllers(['sda'], { sysfsRoot: f.sysfsRoot, moduleDir: moduleDir() });
  const ahci = r.controllers.find((c) => c.address === '0000:00:17.0');
  t.is(r.controllers.find((c) => c.address === '0000:3b:00.0')?.driver, null, 'a driver name that is not plainly one is not repeated');
  t.false(
    r.warnings.some((w) => w.message.includes('\x1b')),
    'nor does it reach a warning',
  );
  t.false(/[\x00-\x1f\x7f]/.test(ahci?.modalias?.text ?? ''), 'no control byte in what is shown');
  t.true((ahci?.modalias?.text.length ?? 0) <= 256 * 4, 'bounded');
});

test('this machine: its controllers are found and every disk of /sys/block that sits behind a PCI controller is under one', (t) => {
  const disks = readdirSync('/sys/block').filter((d) => !/^(loop|ram|zram)/.test(d));
  const r = listStorageControllers(disks);
  t.true(r.controllers.length > 0, 'this VM has at least its virtio controller');
  for (const d of disks) {
    const behindPci = /\/pci[0-9a-f:]+\//.test(realpathSync(path.join('/sys/block', d)));
    if (behindPci)
      t.true(
        r.controllers.some((c) => c.disks.includes(d)),
        `${d} is behind a listed controller`,
      );
  }
  for (const c of r.controllers) if (c.driver === null) t.true(r.warnings.some((w) => w.code === 'controller-no-driver'));
});
