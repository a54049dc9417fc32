// The pass-through allowlist (native/src/passthrough.cc): every SCSI opcode, every
// ATA command inside ATA PASS-THROUGH(16) with every protocol, every NVMe admin
// opcode; only the read-only ones named in docs/passthrough.md get through, and a
// refused command never reaches the ioctl (on a loop device, which has no SG_IO,
// an allowed one fails in the kernel, a refused one before it).
import test from 'ava';
import { execa } from 'execa';
import { closeSync, openSync } from 'node:fs';
import { native } from '../../appliance/native.js';
import { attachLoop, tempDir } from '../helpers/loop.js';
import path from 'node:path';

const CDB_LENGTH = (op: number) => [6, 10, 10, -1, 16, 12, -1, -1][op >> 5] ?? -1;

/** The read-only SCSI commands, as [opcode, byte 1 or null for any]. */
const SCSI_ALLOWED = new Map<number, string>([
  [0x00, 'TEST UNIT READY'],
  [0x03, 'REQUEST SENSE'],
  [0x12, 'INQUIRY'],
  [0x1a, 'MODE SENSE(6)'],
  [0x25, 'READ CAPACITY(10)'],
  [0x4d, 'LOG SENSE'],
  [0x5a, 'MODE SENSE(10)'],
  [0x9e, 'SERVICE ACTION IN(16)'],
  [0xa0, 'REPORT LUNS'],
  [0xa2, 'SECURITY PROTOCOL IN'],
  [0x85, 'ATA PASS-THROUGH(16)'],
]);

/** [command, feature or -1 for any, protocol, data in]. */
const ATA_ALLOWED: [number, number, number][] = [
  [0xec, -1, 4],
  [0xa1, -1, 4],
  [0xf8, -1, 3],
  [0x27, -1, 3],
  [0x78, 0x00, 3],
  [0xb1, 0xc2, 4],
  [0xb0, 0xd0, 4],
  [0xb0, 0xd1, 4],
  [0xb0, 0xd5, 4],
  [0xb0, 0xda, 3],
  [0x2f, -1, 4],
  [0x5c, -1, 4],
  [0xe5, -1, 3],
];

function ata16(command: number, feature: number, protocol: number, fromDevice: boolean): Uint8Array {
  const cdb = new Uint8Array(16);
  cdb[0] = 0x85;
  cdb[1] = (protocol << 1) | (feature > 0xff ? 1 : 0);
  cdb[2] = (fromDevice ? 0x08 : 0) | (protocol === 4 ? 0x06 : 0); // T_DIR, BYT_BLOK and T_LENGTH in the count field
  cdb[3] = feature >> 8;
  cdb[4] = feature & 0xff;
  cdb[6] = 1;
  cdb[14] = command;
  return cdb;
}

test('the SCSI allowlist: of all 256 opcodes, only the read-only ones get through, and only at their CDB length; LOG SENSE with SP, SERVICE ACTION IN other than READ CAPACITY(16) / GET LBA STATUS, and ATA PASS-THROUGH(12) (BLANK on an optical drive) are refused', (t) => {
  const n = native();
  const passed: number[] = [];
  for (let op = 0; op < 256; op++) {
    for (const len of [6, 10, 12, 16]) {
      const cdb = new Uint8Array(len);
      cdb[0] = op;
      if (op === 0x9e) cdb[1] = 0x10;
      if (op === 0x85) Object.assign(cdb, ata16(0xec, 0, 4, true));
      const why = n.passThroughAllowed('scsi', cdb, op === 0x00 ? 0 : 512);
      if (why === null) passed.push(op);
      if (len !== CDB_LENGTH(op)) t.not(why, null, `opcode ${op.toString(16)} at ${len} bytes`);
      if (!SCSI_ALLOWED.has(op)) t.regex(why ?? '', /not on the read-only list/, `opcode ${op.toString(16)}`);
    }
  }
  t.deepEqual(
    passed.sort((a, b) => a - b),
    [...SCSI_ALLOWED.keys()].sort((a, b) => a - b),
  );
  // The write-class neighbours of the allowed ones.
  for (const [cdb, why] of [
    [[0x4d, 0x01, 0, 0, 0, 0, 0, 0, 0, 0], /SP set/],
    [[0x9e, 0x11, ...new Array<number>(14).fill(0)], /not on the read-only list/],
    [[0xa1, ...new Array<number>(11).fill(0)], /not on the read-only list/],
    [[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], /WRITE|not on the read-only list/],
    [[0x00, 0, 0, 0, 0, 0], /not on the read-only list/],
  ] as [number[], RegExp][]) {
    t.regex(n.passThroughAllowed('scsi', Uint8Array.from(cdb), cdb[0] === 0 ? 512 : 512) ?? 'allowed', why, cdb.map((x) => x.toString(16)).join(' '));
  }
  t.regex(n.passThroughAllowed('scsi', new Uint8Array(0), 0) ?? '', /1 to 16 bytes/);
  t.regex(n.passThroughAllowed('scsi', new Uint8Array(17), 0) ?? '', /1 to 16 bytes/);
});

test('the ATA allowlist inside ATA PASS-THROUGH(16): of 256 commands x 16 protocols, only the read-only commands with their own protocol; SET MAX, DCO SET/RESTORE/FREEZE, SMART self-test and WRITE LOG, security and every write refused; data-in only from the device', (t) => {
  const n = native();
  const features = [0x00, 0x01, 0x02, 0xc0, 0xc1, 0xc2, 0xc3, 0xd0, 0xd1, 0xd4, 0xd5, 0xd6, 0xd8, 0xd9, 0xda, 0xdb, 0x1234];
  let allowed = 0;
  for (let command = 0; command < 256; command++) {
    for (let protocol = 0; protocol < 16; protocol++) {
      for (const feature of features) {
        const dataIn = protocol === 4 ? 512 : 0;
        const why = n.passThroughAllowed('scsi', ata16(command, feature, protocol, protocol === 4), dataIn);
        const rule = ATA_ALLOWED.find(([c, f, p]) => c === command && (f === -1 || f === feature) && p === protocol);
        t.is(why === null, rule !== undefined, `ATA ${command.toString(16)} feature ${feature.toString(16)} protocol ${protocol}: ${why}`);
        if (why === null) allowed++;
      }
    }
  }
  t.true(allowed > 0);
  // IDENTIFY with data towards the device, or with no data buffer, is refused; a non-data command with a buffer too.
  t.regex(n.passThroughAllowed('scsi', ata16(0xec, 0, 4, false), 512) ?? '', /T_DIR/);
  t.regex(n.passThroughAllowed('scsi', ata16(0xec, 0, 4, true), 0) ?? '', /T_DIR/);
  t.regex(n.passThroughAllowed('scsi', ata16(0x27, 0, 3, false), 512) ?? '', /no data/);
  // Named write-class commands: SET MAX ADDRESS (EXT), SECURITY UNLOCK / ERASE / SET PASSWORD, WRITE SECTORS (EXT), DOWNLOAD MICROCODE, TRUSTED SEND.
  for (const c of [0xf9, 0x37, 0xf2, 0xf4, 0xf1, 0xf6, 0x30, 0x34, 0x92, 0x5e, 0x06, 0xc5, 0xca, 0x3f])
    for (const p of [3, 4, 5, 6]) t.not(n.passThroughAllowed('scsi', ata16(c, 0, p, p === 4), p === 4 ? 512 : 0), null, `ATA ${c.toString(16)}`);
});

test('the NVMe admin allowlist: of 256 opcodes only Get Log Page, Identify, Get Features and Security Receive', (t) => {
  const n = native();
  const passed: number[] = [];
  for (let op = 0; op < 256; op++) if (n.passThroughAllowed('nvme-admin', Uint8Array.of(op), 4096) === null) passed.push(op);
  t.deepEqual(passed, [0x02, 0x06, 0x0a, 0x82]);
});

test('a refused command never reaches the kernel, an allowed one does: on a loop device (no SG_IO) INQUIRY fails in the ioctl, WRITE(10) and Format NVM are refused before it; no byte of the device changes', async (t) => {
  const dir = tempDir();
  const img = path.join(dir, 'disk.img');
  await execa('dd', ['if=/dev/urandom', `of=${img}`, 'bs=1M', 'count=4', 'status=none']);
  const before = (await execa('sha256sum', [img])).stdout.slice(0, 64);
  const loop = await attachLoop(img);
  t.teardown(loop.detach);
  const n = native();
  const fd = openSync(loop.dev, 'r');
  t.teardown(() => closeSync(fd));
  const inquiry = await n.scsiRead(fd, Uint8Array.of(0x12, 0, 0, 0, 96, 0), 96, 5000).then(
    () => null,
    (e: unknown) => e as Error & { code?: string; syscall?: string; errno?: number },
  );
  t.is(inquiry?.syscall, 'SG_IO', 'INQUIRY went to the kernel, which has no SG_IO for a loop device');
  t.not(inquiry?.code, 'PASSTHROUGH_REFUSED');
  const write10 = () => n.scsiRead(fd, Uint8Array.of(0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0), 512, 5000);
  t.throws(write10, { code: 'PASSTHROUGH_REFUSED', message: /opcode 2Ah/ }, 'refused at the call, before the thread pool');
  t.throws(() => n.nvmeAdminRead(fd, 0x80, 1, new Uint32Array(6), 0, 5000), { code: 'PASSTHROUGH_REFUSED', message: /admin opcode 80h/ });
  t.throws(() => n.scsiRead(fd, ata16(0xf9, 0, 3, false), 0, 5000), { code: 'PASSTHROUGH_REFUSED', message: /ATA command F9h/ });
  t.throws(() => n.scsiRead(fd, Uint8Array.of(0x12, 0, 0, 0, 96, 0), 70000, 5000), { instanceOf: RangeError });
  t.is((await execa('sha256sum', [img])).stdout.slice(0, 64), before);
});
