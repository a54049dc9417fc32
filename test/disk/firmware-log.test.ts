// Failed firmware loads from the kernel log: the records as /dev/kmsg gives them (a fixture for
// what this VM's drivers never ask for), and the real /dev/kmsg read beside them.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { FirmwareFailureFollower, firmwareFailures, readKernelLog } from '../../appliance/disk/firmware-log.js';

const RECORDS = [
  '6,512,1843000,-;qla2xxx 0000:3b:00.0: Direct firmware load for ql2500_fw.bin failed with error -2\n SUBSYSTEM=pci\n DEVICE=+pci:0000:3b:00.0\n',
  // No dictionary: the device from the message.
  '4,600,1900000,-;xhci_hcd 0000:00:14.0: Direct firmware load for renesas_usb_fw.mem failed with error -2\n',
  // A USB driver names the device, the dictionary too.
  '4,601,1900001,-;ueagle-atm 2-1:1.0: Direct firmware load for ueagle-atm/eagleI.fw failed with error -2\n SUBSYSTEM=usb\n DEVICE=+usb:2-1:1.0\n',
  // Unrelated and malformed records.
  '6,700,2000000,-;sd 0:0:0:0: [sda] 1000215216 512-byte logical blocks\n',
  'garbage without a header',
  '3,701,2000001,-;evil a b: Direct firmware load for x failed with error -2\n',
  // A hostile file name: escape sequences and control bytes, kept as escaped text.
  '4,702,2000002,-;foo 0000:00:05.0: Direct firmware load for \u001b[31mred\u0007.bin failed with error -2\n DEVICE=+pci:0000:00:05.0\n',
];

test('failed firmware loads: device from the record’s DEVICE= or the message, driver, file sanitized; other records ignored', (t) => {
  const f = firmwareFailures(RECORDS);
  t.deepEqual(
    f.map((x) => [x.device, x.driver, x.errno]),
    [
      ['0000:3b:00.0', 'qla2xxx', 2],
      ['0000:00:14.0', 'xhci_hcd', 2],
      ['2-1:1.0', 'ueagle-atm', 2],
      ['0000:00:05.0', 'foo', 2],
    ],
  );
  t.is(f[0]?.file.text, 'ql2500_fw.bin');
  const hostile = f[3]?.file.text ?? '';
  t.false(/[\u0000-\u001f\u007f]/.test(hostile), `no control byte survives: ${hostile}`);
  t.true(hostile.includes('red'));
});

test('this machine: /dev/kmsg is read to its end without blocking, every record in its format; a path that is no log gives nothing', (t) => {
  const started = Date.now();
  const records = readKernelLog();
  t.true(Date.now() - started < 5000, 'reading stops at the end of the ring');
  t.true(records.length > 0, 'the kernel log has records (root reads /dev/kmsg)');
  t.true(
    records.every((r) => /^\d+,\d+,\d+,[^;]*;/.test(r)),
    records.find((r) => !/^\d+,\d+,\d+,[^;]*;/.test(r)),
  );
  for (const x of firmwareFailures(records)) t.regex(x.device, /^[A-Za-z0-9:._+-]{1,64}$/);
  t.deepEqual(readKernelLog('/nonexistent/kmsg'), []);
});

test('this machine: the follower reads only what the kernel log gained since its last call; a failure written to /dev/kmsg shows once, kept on later calls', (t) => {
  const follower = new FirmwareFailureFollower();
  const file = `custos-test-${process.pid}-${Date.now()}.bin`;
  const before = follower.failures();
  t.false(before.some((f) => f.file.raw === file));
  // Root may write a record into the kernel log; the message names the device as a driver's would.
  writeFileSync('/dev/kmsg', `custos_test 0000:00:1f.7: Direct firmware load for ${file} failed with error -2\n`);
  const after = follower.failures();
  t.deepEqual(
    after.filter((f) => f.file.raw === file).map((f) => [f.device, f.driver, f.errno]),
    [['0000:00:1f.7', 'custos_test', 2]],
  );
  t.is(follower.failures().filter((f) => f.file.raw === file).length, 1, 'kept, not read twice');
  t.deepEqual(new FirmwareFailureFollower('/nonexistent/kmsg').failures(), []);
});
