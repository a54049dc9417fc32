import test from 'ava';
import { byKernelName, listDisks, type Disk } from '../../appliance/disk/inventory.js';
import { buildFixture, vpd80, type FixtureDisk } from '../helpers/sysfs-fixture.js';

const PCI = 'pci0000:00';

const sata: FixtureDisk = {
  name: 'sda',
  majMin: '8:0',
  parent: `${PCI}/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0`,
  deviceDir: `${PCI}/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0`,
  sizeSectors: 7814037168,
  logical: 512,
  physical: 4096,
  rotational: true,
  deviceAttrs: {
    vendor: 'ATA     \n',
    model: 'ST4000DM004-2CV1\n',
    rev: '0001\n',
    vpd_pg80: vpd80('            ZFN0ABCD'),
    wwid: 'naa.5000c500b1234567\n',
  },
  partitions: [
    { name: 'sda1', majMin: '8:1', start: 2048, size: 1048576 },
    { name: 'sda2', majMin: '8:2', start: 1050624, size: 7812986511 },
  ],
};

const usb: FixtureDisk = {
  name: 'sdb',
  majMin: '8:16',
  parent: `${PCI}/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0`,
  deviceDir: `${PCI}/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0`,
  sizeSectors: 1953525168,
  logical: 4096,
  physical: 4096,
  removable: false,
  deviceAttrs: { vendor: 'WD      \n', model: 'Elements 25A2   \n', rev: '1021\n' },
};

const nvme0n1: FixtureDisk = {
  name: 'nvme0n1',
  majMin: '259:0',
  parent: `${PCI}/0000:00:1d.0/0000:3d:00.0/nvme/nvme0`,
  deviceDir: `${PCI}/0000:00:1d.0/0000:3d:00.0/nvme/nvme0`,
  direct: true,
  sizeSectors: 1000215216,
  deviceAttrs: { serial: 'S4EWNX0N123456      \n', model: 'Samsung SSD 970 EVO Plus 500GB          \n', firmware_rev: '2B2QEXM7\n' },
  attrs: { wwid: 'eui.0025385b01234567\n' },
};
const nvme0n2: FixtureDisk = { ...nvme0n1, name: 'nvme0n2', majMin: '259:1', sizeSectors: 2048, attrs: { wwid: 'eui.0025385b01234568\n' } };

const virtio: FixtureDisk = {
  name: 'vda',
  majMin: '254:0',
  parent: `${PCI}/0000:00:04.0/virtio1`,
  deviceDir: `${PCI}/0000:00:04.0/virtio1`,
  sizeSectors: 41943040,
  attrs: { serial: 'QM00042\n' },
  partitions: [{ name: 'vda1', majMin: '254:1', start: 2048, size: 41940992 }],
};

const mmc: FixtureDisk = {
  name: 'mmcblk0',
  majMin: '179:0',
  parent: `${PCI}/0000:00:1e.6/mmc_host/mmc0/mmc0:aaaa`,
  deviceDir: `${PCI}/0000:00:1e.6/mmc_host/mmc0/mmc0:aaaa`,
  sizeSectors: 62333952,
  removable: true,
  deviceAttrs: { serial: '0x1234abcd\n', name: 'SC64G\n', manfid: '0x000003\n', fwrev: '0x0\n' },
};

const scsi: FixtureDisk = {
  name: 'sdc',
  majMin: '8:32',
  parent: `${PCI}/0000:00:05.0/virtio2/host2/target2:0:0/2:0:0:0`,
  deviceDir: `${PCI}/0000:00:05.0/virtio2/host2/target2:0:0/2:0:0:0`,
  sizeSectors: 204800,
  deviceAttrs: { vendor: 'QEMU    \n', model: 'QEMU HARDDISK   \n', vpd_pg80: vpd80('drive-scsi0') },
};

const mountinfo = [
  '27 1 254:1 / / rw,relatime - ext4 /dev/vda1 rw',
  '40 27 8:1 / /mnt/evidence\\040drive rw,relatime - vfat /dev/sda1 rw',
  '41 27 179:0 / /run/live/medium ro,relatime - iso9660 /dev/mmcblk0 ro',
].join('\n');

function fixture() {
  const f = buildFixture([sata, usb, nvme0n1, nvme0n2, virtio, mmc, scsi], {
    mountinfo,
    files: {
      [`devices/${PCI}/0000:00:14.0/usb2/2-1/idVendor`]: '1058\n',
      [`devices/${PCI}/0000:00:14.0/usb2/2-1/idProduct`]: '25a2\n',
      [`devices/${PCI}/0000:00:14.0/usb2/2-1/manufacturer`]: 'Western Digital\n',
      [`devices/${PCI}/0000:00:14.0/usb2/2-1/product`]: 'Elements 25A2\n',
      [`devices/${PCI}/0000:00:14.0/usb2/2-1/serial`]: '575834314141\n',
    },
  });
  const disks = listDisks({ sysfsRoot: f.sysfsRoot, procRoot: f.procRoot, devRoot: f.devRoot, probe: false });
  const by = (n: string): Disk => {
    const d = disks.find((x) => x.name === n);
    if (!d) throw new Error(`no ${n}`);
    return d;
  };
  return { disks, by };
}

test('disks are listed in the natural order of their kernel names, without ICU: the order localeCompare with numeric collation gave', (t) => {
  const names = [
    'sdb',
    'nvme10n1',
    'sda',
    'sdaa',
    'nvme2n1',
    'vda',
    'mmcblk0',
    'sr0',
    'sdz',
    'nvme2n10',
    'nvme2n2',
    'loop10',
    'loop9',
    'xvda',
    'hda',
    'vdb',
    'sdab',
  ];
  const oracle = [...names].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  t.deepEqual([...names].sort(byKernelName), oracle);
  t.deepEqual([...names].reverse().sort(byKernelName), oracle);
  t.is(byKernelName('sda', 'sda'), 0);
});

test('every transport is recognised from the sysfs device path', (t) => {
  const { disks, by } = fixture();
  t.deepEqual(
    disks.map((d) => d.name),
    ['mmcblk0', 'nvme0n1', 'nvme0n2', 'sda', 'sdb', 'sdc', 'vda'],
  );
  t.is(by('sda').transport, 'sata');
  t.is(by('sdb').transport, 'usb');
  t.is(by('nvme0n1').transport, 'nvme');
  t.is(by('vda').transport, 'virtio');
  t.is(by('mmcblk0').transport, 'mmc');
  t.is(by('sdc').transport, 'scsi', 'virtio-scsi is SCSI, not virtio-blk');
});

test('SATA: serial from VPD 0x80, WWN, sizes in bytes from 512-byte sysfs units, partitions', (t) => {
  const d = fixture().by('sda');
  t.is(d.serial?.text, 'ZFN0ABCD');
  t.is(d.serialSource, 'vpd-0x80');
  t.is(d.vendor?.text, 'ATA');
  t.is(d.model?.text, 'ST4000DM004-2CV1');
  t.is(d.firmware?.text, '0001');
  t.is(d.wwn?.text, 'naa.5000c500b1234567');
  t.is(d.stableId, 'wwn-naa.5000c500b1234567');
  t.is(d.sizeBytes, 7814037168 * 512);
  t.is(d.logicalSectorSize, 512);
  t.is(d.physicalSectorSize, 4096);
  t.true(d.rotational);
  t.deepEqual(
    d.partitions.map((p) => [p.name, p.startBytes, p.sizeBytes]),
    [
      ['sda1', 2048 * 512, 1048576 * 512],
      ['sda2', 1050624 * 512, 7812986511 * 512],
    ],
  );
  t.deepEqual(
    d.partitions[0]?.mounts.map((m) => m.mountPoint),
    ['/mnt/evidence drive'],
  );
  t.true(d.warnings.some((w) => w.code === 'mounted'));
});

test('USB: bridge VID:PID recorded; no VPD serial falls back to the bridge serial, flagged; 4K logical warned', (t) => {
  const d = fixture().by('sdb');
  t.is(d.usbBridge?.vendorId, '1058');
  t.is(d.usbBridge?.productId, '25a2');
  t.is(d.usbBridge?.product?.text, 'Elements 25A2');
  t.is(d.serial?.text, '575834314141');
  t.is(d.serialSource, 'usb-bridge');
  t.deepEqual(d.warnings.map((w) => w.code).sort(), ['serial-from-usb-bridge', 'usb-4k-logical-sector']);
});

test('NVMe: controller serial/model, EUI, and a warning for more than one namespace', (t) => {
  const { by } = fixture();
  const d = by('nvme0n1');
  t.is(d.serial?.text, 'S4EWNX0N123456');
  t.is(d.serialSource, 'nvme');
  t.is(d.model?.text, 'Samsung SSD 970 EVO Plus 500GB');
  t.is(d.firmware?.text, '2B2QEXM7');
  t.is(d.wwn?.text, 'eui.0025385b01234567');
  t.deepEqual(d.nvme, { controller: 'nvme0', namespaces: ['nvme0n1', 'nvme0n2'] });
  t.true(d.warnings.some((w) => w.code === 'nvme-multiple-namespaces'));
  t.not(by('nvme0n2').stableId, d.stableId);
});

test('virtio serial, MMC identity, running system and boot medium roles from mountinfo', (t) => {
  const { by } = fixture();
  const v = by('vda');
  t.is(v.serial?.text, 'QM00042');
  t.is(v.serialSource, 'virtio');
  t.deepEqual(v.roles, ['running-system']);
  t.true(v.warnings.some((w) => w.code === 'running-system'));
  const m = by('mmcblk0');
  t.is(m.serial?.text, '0x1234abcd');
  t.is(m.model?.text, 'SC64G');
  t.true(m.removable);
  t.deepEqual(m.roles, ['boot-medium']);
  t.true(m.warnings.some((w) => w.code === 'boot-medium'));
  t.is(by('sdc').serial?.text, 'drive-scsi0');
  t.deepEqual(by('sda').roles, []);
});

test('swap and device-mapper holders map to the physical disk underneath', (t) => {
  const f = buildFixture(
    [
      { ...sata, holders: ['dm-0'], partitions: [{ name: 'sda1', majMin: '8:1', start: 2048, size: 4096 }] },
      { name: 'dm-0', majMin: '252:0', parent: 'virtual', sizeSectors: 4096, slaves: ['sda1'] },
      {
        ...virtio,
        partitions: [
          { name: 'vda1', majMin: '254:1', start: 2048, size: 4096 },
          { name: 'vda2', majMin: '254:2', start: 8192, size: 4096 },
        ],
      },
    ],
    { mountinfo: '27 1 252:0 / / rw - ext4 /dev/mapper/root rw', swaps: '/dev/vda2\tpartition\t2048\t0\t-2\n' },
  );
  const disks = listDisks({ sysfsRoot: f.sysfsRoot, procRoot: f.procRoot, devRoot: f.devRoot, probe: false });
  t.deepEqual(disks.find((d) => d.name === 'sda')?.roles, ['running-system']);
  t.deepEqual(disks.find((d) => d.name === 'vda')?.roles, ['running-system']);
  t.deepEqual(disks.find((d) => d.name === 'sda')?.holders, ['dm-0']);
  t.is(disks.find((d) => d.name === 'dm-0')?.transport, 'virtual');
});

test('hostile identity strings: escape sequences, control bytes, invalid UTF-8 and 10 KB values', (t) => {
  const evil = Buffer.concat([Buffer.from('\x1b[2J\x1b[H\x1b]0;owned\x07', 'latin1'), Buffer.from([0xff, 0xc3, 0x00, 0x0d]), Buffer.alloc(10 * 1024, 0x58)]);
  const f = buildFixture([
    {
      ...scsi,
      deviceAttrs: { vendor: evil, model: Buffer.concat([Buffer.from('M\x1b[31m'), Buffer.alloc(10240, 0x4d)]), vpd_pg80: vpd80(evil), wwid: evil },
    },
  ]);
  const [d] = listDisks({ sysfsRoot: f.sysfsRoot, procRoot: f.procRoot, devRoot: f.devRoot, probe: false });
  t.truthy(d);
  if (!d) return;
  for (const s of [d.vendor, d.model, d.serial, d.wwn]) {
    t.truthy(s);
    if (!s) continue;

    t.false(/[\x00-\x1f\x7f-\uffff]/.test(s.text));
    t.true(s.text.length <= 64);
    t.false(/[\x00-\x1f\x7f-\uffff]/.test(s.raw));
  }
  t.true((d.serial?.bytes ?? 0) > 10 * 1024, 'record keeps the full serial');
  t.regex(d.stableId, /^[A-Za-z0-9._~@-]+$/);
  t.true(d.stableId.length < 200);
  const json = JSON.stringify(d);
  t.false(json.includes('\x1b'));
});

test('a VPD page that declares more bytes than it holds, or is not page 0x80, is handled', (t) => {
  const bad = Buffer.from([0x00, 0x80, 0xff, 0xff, 0x41, 0x42]);
  const f = buildFixture([
    { ...scsi, deviceAttrs: { vpd_pg80: bad } },
    { ...sata, name: 'sdd', majMin: '8:48', partitions: [], deviceAttrs: { vpd_pg80: Buffer.from([0, 0x83, 0, 2, 0x41, 0x42]) } },
  ]);
  const disks = listDisks({ sysfsRoot: f.sysfsRoot, procRoot: f.procRoot, devRoot: f.devRoot, probe: false });
  t.is(disks.find((d) => d.name === 'sdc')?.serial?.text, 'AB');
  const sdd = disks.find((d) => d.name === 'sdd');
  t.is(sdd?.serial, null);
  t.is(sdd?.stableIdSource, 'path');
  t.true(sdd?.warnings.some((w) => w.code === 'no-stable-id'));
});

test('twins: two USB docks whose bridges report one fixed serial are listed with distinct attachments, each naming the other; a disk with its own serial is no twin', (t) => {
  const bridge = (port: string, host: number, name: string, majMin: string, seq: number): FixtureDisk => ({
    name,
    majMin,
    parent: `${PCI}/0000:00:14.0/usb2/2-${port}/2-${port}:1.0/host${host}/target${host}:0:0/${host}:0:0:0`,
    deviceDir: `${PCI}/0000:00:14.0/usb2/2-${port}/2-${port}:1.0/host${host}/target${host}:0:0/${host}:0:0:0`,
    sizeSectors: 976773168,
    attrs: { diskseq: `${seq}\n` },
    deviceAttrs: { vendor: 'JMicron \n', model: 'Generic         \n', rev: '0508\n' },
  });
  const files: Record<string, string> = {};
  for (const port of ['1', '2']) {
    files[`devices/${PCI}/0000:00:14.0/usb2/2-${port}/idVendor`] = '152d\n';
    files[`devices/${PCI}/0000:00:14.0/usb2/2-${port}/idProduct`] = '0578\n';
    files[`devices/${PCI}/0000:00:14.0/usb2/2-${port}/serial`] = '0123456789ABCDEF\n';
  }
  const f = buildFixture([bridge('1', 6, 'sdb', '8:16', 9), bridge('2', 7, 'sdc', '8:32', 14), { ...sata, attrs: { diskseq: '1\n' } }], { files });
  const disks = listDisks({ sysfsRoot: f.sysfsRoot, procRoot: f.procRoot, devRoot: f.devRoot, probe: false });
  const by = (n: string) => disks.find((d) => d.name === n);
  t.is(by('sdb')?.stableId, by('sdc')?.stableId, 'one stable id for both: it cannot key a decision');
  t.deepEqual([by('sdb')?.attachment, by('sdc')?.attachment, by('sda')?.attachment], ['sdb#9', 'sdc#14', 'sda#1']);
  t.deepEqual(by('sdb')?.twins, ['sdc']);
  t.deepEqual(by('sdc')?.twins, ['sdb']);
  t.deepEqual(by('sda')?.twins, []);
  t.is(by('sdb')?.warnings.find((w) => w.code === 'twin')?.message, 'serial shared with sdc: identify by kernel name and size');
  // A kernel without diskseq: the device number stands in.
  const old = buildFixture([sata]);
  t.is(listDisks({ sysfsRoot: old.sysfsRoot, procRoot: old.procRoot, devRoot: old.devRoot, probe: false })[0]?.attachment, 'sda@8:0');
});
