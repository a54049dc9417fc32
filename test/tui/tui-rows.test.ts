import test from 'ava';
import { listDisks } from '../../appliance/disk/inventory.js';
import { DISK_HEADER, diskDetail, diskRow } from '../../tui/disk-rows.js';
import { writeRefusal } from '../../tui/choose-disks.js';
import { buildFixture, vpd80 } from '../helpers/sysfs-fixture.js';

// A SCSI disk whose vendor, model and serial are hostile: escape sequences, control bytes, invalid UTF-8, 10 KB.
const PCI = '/sys/devices/pci0000:00';
const evil = Buffer.concat([Buffer.from('\x1b[2J\x1b[H\x1b]0;owned\x07', 'latin1'), Buffer.from([0xff, 0xc3, 0x00, 0x0d]), Buffer.alloc(10 * 1024, 0x58)]);

test('a disk row keeps its columns and a detail panel holds no control byte, whatever the device says', (t) => {
  const f = buildFixture([
    {
      name: 'sdc',
      majMin: '8:32',
      parent: `${PCI}/0000:00:05.0/virtio2/host2/target2:0:0/2:0:0:0`,
      deviceDir: `${PCI}/0000:00:05.0/virtio2/host2/target2:0:0/2:0:0:0`,
      sizeSectors: 204800,
      deviceAttrs: { vendor: evil, model: Buffer.concat([Buffer.from('M\x1b[31m\u202e'), Buffer.alloc(10240, 0x4d)]), vpd_pg80: vpd80(evil) },
    },
    {
      name: 'sdd',
      majMin: '8:48',
      parent: `${PCI}/0000:00:05.0/virtio2/host2/target2:0:1/2:0:1:0`,
      deviceDir: `${PCI}/0000:00:05.0/virtio2/host2/target2:0:1/2:0:1:0`,
      sizeSectors: 204800,
      deviceAttrs: { vendor: 'ATA', model: 'Plain disk', vpd_pg80: vpd80('S123') },
    },
  ]);
  const disks = listDisks({ sysfsRoot: f.sysfsRoot, procRoot: f.procRoot, devRoot: f.devRoot, probe: false });
  t.is(disks.length, 2);
  const [hostile, plain] = disks.map((d) => diskRow(d));
  t.is(hostile?.length, plain?.length, 'same width as a plain row');
  t.true((hostile?.length ?? 99) <= 78, 'fits an 80-column console inside the frame');
  t.is(DISK_HEADER.split(/\s+/).length, 9);
  // Columns start at the same places: the serial column begins where the plain row's does.
  t.is(hostile?.indexOf(' ', 66), plain?.indexOf(' ', 66));
  for (const d of disks) {
    t.false(/[\x00-\x1f\x7f-\u009f\u202a-\u202e]/.test(diskRow(d)));

    t.false(/[\x00-\x09\x0b-\x1f\x7f-\u009f\u202a-\u202e]/.test(diskDetail(d)));
  }
  t.true(diskDetail(disks[0] as never).includes('\\x1b[2J'));
});

test('a disk to write to: never the source, the boot medium or the running system, nor one already chosen (by exact name)', (t) => {
  const f = buildFixture([
    {
      name: 'sdc',
      majMin: '8:32',
      parent: `${PCI}/0000:00:05.0/virtio2/host2/target2:0:0/2:0:0:0`,
      deviceDir: `${PCI}/0000:00:05.0/virtio2/host2/target2:0:0/2:0:0:0`,
      sizeSectors: 2048,
      deviceAttrs: { vendor: 'ATA', model: 'A', vpd_pg80: vpd80('A1') },
    },
  ]);
  const [base] = listDisks({ sysfsRoot: f.sysfsRoot, procRoot: f.procRoot, devRoot: f.devRoot, probe: false });
  if (!base) return t.fail('no fixture disk');
  const disk = (name: string, extra: Partial<typeof base> = {}) => ({ ...base, name, devicePath: `/dev/${name}`, partitions: [], roles: [], ...extra });
  const src = disk('sda');
  t.regex(writeRefusal(src, src, []) ?? '', /is the source/);
  t.regex(writeRefusal(disk('sdb', { roles: ['boot-medium'] }), src, []) ?? '', /boot medium/);
  t.regex(writeRefusal(disk('vda', { roles: ['running-system'] }), src, []) ?? '', /running system/);
  const loop1 = disk('loop1');
  t.is(writeRefusal(loop1, src, [{ device: '/dev/loop10' }]), null, 'loop1 is not loop10');
  t.regex(writeRefusal(loop1, src, [{ device: '/dev/loop1' }]) ?? '', /already in use/);
  const withPart = disk('sdd', { partitions: [{ ...({} as (typeof base)['partitions'][number]), name: 'sdd1', devicePath: '/dev/sdd1' }] });
  t.regex(writeRefusal(withPart, src, [{ device: '/dev/sdd1' }]) ?? '', /already in use/);
});
