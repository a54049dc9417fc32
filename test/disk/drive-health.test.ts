// SMART and the NVMe health log decoded from answers laid out as the specs (and
// QEMU's emulation) lay them out; the QEMU test reads the real ones from
// emulated IDE, AHCI and NVMe drives. Hostile answers never throw.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { decodeNvmeSmart, decodeSelfTestLog, decodeSmartData, healthFlags } from '../../appliance/disk/drive-health.js';
import { driveWarnings } from '../../appliance/disk/drive-probe.js';

/** A SMART READ DATA answer: revision, then 12-byte entries (id, flags 2, value, worst, raw 6, reserved). */
function smartData(entries: [number, number, number, number][]): Buffer {
  const b = Buffer.alloc(512);
  b.writeUInt16LE(0x10, 0);
  entries.forEach(([id, value, worst, raw], i) => {
    const at = 2 + 12 * i;
    b[at] = id;
    b.writeUInt16LE(0x0003, at + 1);
    b[at + 3] = value;
    b[at + 4] = worst;
    b.writeUIntLE(raw, at + 5, 6);
  });
  return b;
}

test('ATA SMART: attributes by id with their raw counts; reallocated, pending and uncorrectable sectors are flagged', (t) => {
  const ok = decodeSmartData(
    smartData([
      [1, 100, 100, 0],
      [5, 100, 100, 0],
      [9, 99, 99, 12_345],
      [194, 64, 55, 36],
    ]),
  );
  t.deepEqual(
    ok?.map((a) => [a.id, a.name, a.raw]),
    [
      [1, 'Raw_Read_Error_Rate', 0],
      [5, 'Reallocated_Sector_Ct', 0],
      [9, 'Power_On_Hours', 12_345],
      [194, 'Temperature_Celsius', 36],
    ],
  );
  t.deepEqual(healthFlags({ passed: true, attributes: ok ?? [], nvme: null }), []);
  const bad =
    decodeSmartData(
      smartData([
        [5, 90, 90, 8],
        [197, 100, 100, 2],
        [198, 100, 100, 2 ** 40],
      ]),
    ) ?? [];
  const flags = healthFlags({ passed: false, attributes: bad, nvme: null });
  t.deepEqual(flags, [
    'the drive reports a FAILING health status',
    '8 reallocated sector(s)',
    '2 pending sector(s)',
    `${2 ** 40} offline uncorrectable sector(s)`,
  ]);
  const w = driveWarnings({
    ata: null,
    nvme: null,
    scsi: null,
    tcg: null,
    kernelBytes: 0,
    unreachable: null,
    health: { from: 'ATA SMART', passed: false, attributes: bad, selfTests: [], nvme: null, flags, rawHex: '' },
  });
  t.deepEqual(
    w.map((x) => x.code),
    ['drive-health'],
  );
  t.regex(w[0]?.message ?? '', /8 reallocated sector\(s\).*consider --fast-first/);
});

test('NVMe SMART / Health log: critical warning, temperature, spare, wear, media errors', (t) => {
  const b = Buffer.alloc(512);
  b[0] = 0x04;
  b.writeUInt16LE(310, 1);
  b[3] = 100;
  b[5] = 7;
  b.writeBigUInt64LE(1234n, 128);
  b.writeBigUInt64LE(3n, 144);
  b.writeBigUInt64LE(5n, 160);
  const n = decodeNvmeSmart(b);
  t.deepEqual(n, { criticalWarning: 4, temperatureK: 310, availableSparePct: 100, percentUsed: 7, powerOnHours: 1234, unsafeShutdowns: 3, mediaErrors: 5 });
  t.deepEqual(healthFlags({ passed: false, attributes: [], nvme: n }), [
    'the drive reports a FAILING health status',
    '5 media error(s)',
    'NVMe reliability degraded (critical warning)',
  ]);
});

test('no answer, a short answer and random bytes: null or a bounded decode, never a throw', (t) => {
  t.is(decodeSmartData(Buffer.alloc(512)), null, 'zeros (a target that ignores the command) are no answer');
  t.is(decodeSmartData(Buffer.alloc(100)), null);
  t.is(decodeNvmeSmart(Buffer.alloc(64)), null);
  for (let i = 0; i < 1000; i++) {
    const a = decodeSmartData(randomBytes(512)) ?? [];
    t.true(a.length <= 30 && a.every((x) => x.id > 0 && x.raw < 2 ** 48));
    t.notThrows(() => healthFlags({ passed: null, attributes: a, nvme: decodeNvmeSmart(randomBytes(512)) }));
  }
});

test('the ATA self-test log: newest first from its index; a failed last test is flagged with its LBA', (t) => {
  const b = Buffer.alloc(512);
  b.writeUInt16LE(1, 0);
  const entry = (i: number, sub: number, status: number, hours: number, lba: number) => {
    const at = 2 + 24 * i;
    b[at] = sub;
    b[at + 1] = status << 4;
    b.writeUInt16LE(hours, at + 2);
    b.writeUInt32LE(lba, at + 5);
  };
  entry(0, 0x01, 0, 100, 0xffffffff);
  entry(1, 0x02, 7, 180, 123_456);
  b[508] = 2;
  const log = decodeSelfTestLog(b);
  t.deepEqual(log, [
    { type: 'extended', status: 7, failed: true, lifetimeHours: 180, firstErrorLba: 123_456 },
    { type: 'short', status: 0, failed: false, lifetimeHours: 100, firstErrorLba: null },
  ]);
  t.deepEqual(healthFlags({ passed: true, attributes: [], nvme: null, selfTests: log }), ['its last self-test (extended) failed at LBA 123456']);
  b[508] = 0;
  t.deepEqual(decodeSelfTestLog(b), [], 'index 0: no test was run');
  b[508] = 200;
  t.deepEqual(decodeSelfTestLog(b), [], 'an index out of range is no log');
  for (let i = 0; i < 500; i++) t.true(decodeSelfTestLog(randomBytes(512)).length <= 21);
});
