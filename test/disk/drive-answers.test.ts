// Decoding what drives answer where QEMU cannot make the case: ATA registers in
// both sense formats, a DCO factory size, an HPA, NVMe answers with hostile or
// lying fields. The real answers are read in the QEMU controllers test.
import test from 'ava';
import { ataRegisters } from '../../appliance/disk/ata-sense.js';
import { dcoSectorsOf, type AtaProbe } from '../../appliance/disk/ata-probe.js';
import { decodeIdentify } from '../../appliance/disk/ata-identify.js';
import { driveWarnings } from '../../appliance/disk/drive-probe.js';
import { decodeController, decodeNamespace, decodeNamespaceList } from '../../appliance/disk/nvme-identify.js';
import { decodeInquiry, decodeReadCapacity16 } from '../../appliance/disk/scsi-probe.js';
import { identifyBytes } from '../helpers/ata-identify-fixture.js';

test('ATA registers: descriptor sense (72h, descriptor 09h) gives all 48 LBA bits; fixed sense (70h) gives 24, and none when the upper bits are set', (t) => {
  const lba = 0x0123_4567_89ab;
  const d = Buffer.alloc(8 + 14);
  d[0] = 0x72;
  d[1] = 0x01;
  d[2] = 0x00;
  d[3] = 0x1d;
  d[7] = 14;
  d.set(
    [
      0x09,
      0x0c,
      0x01,
      0x00,
      0,
      0,
      (lba / 2 ** 24) & 0xff,
      lba & 0xff,
      (lba / 2 ** 32) & 0xff,
      (lba >> 8) & 0xff,
      (lba / 2 ** 40) & 0xff,
      (lba >> 16) & 0xff,
      0x40,
      0x50,
    ],
    8,
  );
  t.deepEqual(ataRegisters(d), { error: 0, device: 0x40, status: 0x50, lba });
  const fixed = Buffer.alloc(18);
  fixed[0] = 0x70;
  fixed[4] = 0x50;
  fixed.set([0xab, 0x89, 0x67], 9);
  t.is(ataRegisters(fixed)?.lba, 0x6789ab);
  fixed[8] = 0xa0; // EXTEND, LBA upper non-zero
  t.is(ataRegisters(fixed)?.lba, null, 'a 48-bit address the fixed format cannot hold is unknown, not cut');
  t.is(ataRegisters(Buffer.from([0x72, 5, 0x20, 0, 0, 0, 0, 0])), null, 'ILLEGAL REQUEST without ATA registers');
  t.is(ataRegisters(Buffer.alloc(0)), null);
  // A descriptor length that runs past the buffer is not read past it.
  const lying = Buffer.from([0x72, 1, 0, 0x1d, 0, 0, 0, 200, 0x09, 0x0c, 0, 0]);
  t.is(ataRegisters(lying), null);
});

test('DCO: the factory maximum from DEVICE CONFIGURATION IDENTIFY, and an answer that is not one', (t) => {
  const dco = Buffer.alloc(512);
  dco.writeUInt16LE(0x0002, 0);
  dco.writeUInt16LE(0xffff, 6);
  dco.writeUInt16LE(0x0001, 8);
  t.is(dcoSectorsOf(dco), 0x1ffff + 1);
  t.is(dcoSectorsOf(Buffer.alloc(512)), null);
  t.is(dcoSectorsOf(Buffer.alloc(100)), null);
});

test('warnings from the drive: an HPA in sectors as the examiner reads them, DCO-hidden sectors, a locked drive, a damaged IDENTIFY', (t) => {
  const identify = decodeIdentify(identifyBytes({ lba48: 1_000_000, hpa: 'enabled', dco: true, security: { enabled: true, locked: true }, checksum: 'bad' }));
  const ata: AtaProbe = {
    identify,
    identifyHex: '',
    nativeSectors: 1_012_288,
    nativeFrom: 'READ NATIVE MAX ADDRESS EXT',
    hpaSectors: 12_288,
    dcoSectors: 1_050_000,
    dcoHiddenSectors: 37_712,
    notes: [],
  };
  const w = driveWarnings({ ata, nvme: null, scsi: null, tcg: null, health: null, kernelBytes: 512_000_000, unreachable: null });
  t.deepEqual(
    w.map((x) => x.code),
    ['hpa', 'dco-hidden', 'ata-locked', 'identify-damaged'],
  );
  t.regex(w[0]?.message ?? '', /^HPA 12,288 sectors/);
  t.regex(w[1]?.message ?? '', /37,712 sectors/);
  t.deepEqual(
    driveWarnings({
      ata: { ...ata, hpaSectors: 0, dcoHiddenSectors: 0, identify: decodeIdentify(identifyBytes({ lba48: 5 })) },
      nvme: null,
      scsi: null,
      tcg: null,
      health: null,
      kernelBytes: 0,
      unreachable: null,
    }),
    [],
  );
});

test('NVMe Identify: controller strings sanitized, 128-bit capacity exact, namespace block size from its format (a lying one not believed), lists end at zero', (t) => {
  const c = Buffer.alloc(4096);
  c.write('SER\x1b[31mX', 4, 'latin1');
  c.write('QEMU NVMe Ctrl', 24, 'latin1');
  c.write('1.0', 64, 'latin1');
  c.writeUInt16LE(0x0009, 256);
  c.writeBigUInt64LE(2n ** 64n - 1n, 280);
  c.writeBigUInt64LE(1n, 288);
  c.writeUInt32LE(256, 516);
  const ctrl = decodeController(c);
  t.is(ctrl.serial.text, 'SER\\x1b[31mX');
  t.is(ctrl.model.text, 'QEMU NVMe Ctrl');
  t.true(ctrl.namespaceManagement);
  t.true(ctrl.securityCommands);
  t.is(ctrl.totalCapacity, (2n ** 65n - 1n).toString());
  t.is(ctrl.namespaces, 256);
  const ns = Buffer.alloc(4096);
  ns.writeBigUInt64LE(1000n, 0);
  ns[26] = 1;
  ns[128 + 4 + 2] = 12;
  t.like(decodeNamespace(ns), { sizeBlocks: 1000, blockBytes: 4096 });
  ns[128 + 4 + 2] = 40;
  t.is(decodeNamespace(ns).blockBytes, 512);
  const list = Buffer.alloc(4096);
  list.writeUInt32LE(1, 0);
  list.writeUInt32LE(3, 4);
  list.writeUInt32LE(7, 12);
  t.deepEqual(decodeNamespaceList(list), [1, 3]);
  t.throws(() => decodeController(Buffer.alloc(10)), { instanceOf: RangeError });
});

test('SCSI: INQUIRY identity sanitized; READ CAPACITY(16) sectors, block and physical size, provisioning; lying lengths refused; a size that differs from what the kernel shows is a warning', (t) => {
  const inq = Buffer.alloc(36, 0x20);
  inq[0] = 0x00;
  inq.write('ACME\x1b[2J', 8, 'latin1');
  inq.write('BIG DISK', 16, 'latin1');
  inq.write('0001', 32, 'latin1');
  t.like(decodeInquiry(inq), { deviceType: 0, product: { text: 'BIG DISK' }, revision: { text: '0001' } });
  t.is(decodeInquiry(inq)?.vendor.text, 'ACME\\x1b[2J');
  t.is(decodeInquiry(Buffer.alloc(10)), null);
  const cap = Buffer.alloc(32);
  cap.writeBigUInt64BE(999n, 0);
  cap.writeUInt32BE(4096, 8);
  cap[13] = 0x03;
  cap[14] = 0x80;
  t.deepEqual(decodeReadCapacity16(cap), { sectors: 1000, blockBytes: 4096, physicalExponent: 3, provisioning: true });
  cap.writeUInt32BE(7, 8);
  t.is(decodeReadCapacity16(cap), null, 'a 7-byte block is no answer');
  cap.writeUInt32BE(512, 8);
  cap.writeBigUInt64BE(2n ** 64n - 1n, 0);
  t.is(decodeReadCapacity16(cap), null, 'nor a count no number holds');
  const capacity = { sectors: 1000, blockBytes: 512, physicalExponent: 0, provisioning: false };
  const inquiry = decodeInquiry(inq);
  if (!inquiry) return t.fail();
  const report = { ata: null, nvme: null, scsi: { inquiry, capacity }, tcg: null, health: null, unreachable: null };
  t.deepEqual(driveWarnings({ ...report, kernelBytes: 512_000 }), []);
  t.deepEqual(
    driveWarnings({ ...report, kernelBytes: 500_000 }).map((w) => w.code),
    ['capacity-mismatch'],
  );
});
