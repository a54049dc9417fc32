// TCG Level 0 Discovery: QEMU emulates no self-encrypting drive, so the answers
// are built here byte by byte from the spec's layout (a 48-byte header, then
// feature descriptors), and hostile ones (truncated, lying lengths) are fuzzed.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { ataTrustedReceiveCdb, decodeLevel0, scsiSecurityProtocolInCdb } from '../../appliance/disk/tcg-discovery.js';
import { driveWarnings, type DriveReport } from '../../appliance/disk/drive-probe.js';
import { driveCoverage } from '../../appliance/disk/drive-coverage.js';
import { native } from '../../appliance/native.js';

/** A Level 0 Discovery answer with the given feature descriptors (code, data). */
function level0(features: [number, number[]][], lie = 0): Buffer {
  const body = Buffer.concat(features.map(([code, data]) => Buffer.from([code >> 8, code & 0xff, 0x10, data.length, ...data])));
  const b = Buffer.alloc(48 + body.length);
  b.writeUInt32BE(44 + body.length + lie, 0);
  b.writeUInt16BE(1, 6);
  body.copy(b, 48);
  return b;
}

const TPER: [number, number[]] = [0x0001, [0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]];
const locking = (flags: number): [number, number[]] => [0x0002, [flags, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]];
const OPAL2: [number, number[]] = [0x0203, [0, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]];

function report(tcg: ReturnType<typeof decodeLevel0>): DriveReport {
  return { ata: null, nvme: null, scsi: null, tcg, health: null, kernelBytes: 1 << 20, unreachable: null };
}

test('an Opal 2 drive: locking supported, enabled, locked, with a shadow MBR not done', (t) => {
  const d = decodeLevel0(level0([TPER, locking(0x1f), OPAL2]));
  t.deepEqual(d, {
    sscs: ['Opal 2'],
    locking: { supported: true, enabled: true, locked: true, mediaEncryption: true, mbrEnabled: true, mbrDone: false },
  });
  const w = driveWarnings(report(d));
  t.deepEqual(
    w.map((x) => x.code),
    ['sed-locked', 'sed-shadow-mbr'],
  );
  t.regex(w[0]?.message ?? '', /^self-encrypting drive \(Opal 2\) LOCKED/);
  t.is(driveCoverage(report(d)).locked, 'a locked self-encrypting drive (Opal 2)', 'a locked SED needs the confirmation as an ATA-locked one does');
});

test('unlocked with locking enabled is said; a plain SED without locking enabled, and Pyrite, Ruby, Enterprise are named', (t) => {
  const on = decodeLevel0(level0([TPER, locking(0x0b), OPAL2]));
  t.deepEqual(
    driveWarnings(report(on)).map((x) => x.code),
    ['sed-locking'],
  );
  t.is(driveCoverage(report(on)).locked, null);
  const off = decodeLevel0(level0([locking(0x09), [0x0100, [0]], [0x0303, [0]], [0x0304, [0]]]));
  t.deepEqual(off?.sscs, ['Enterprise', 'Pyrite 2', 'Ruby']);
  t.deepEqual(driveWarnings(report(off)), []);
  // The shadow MBR done (after the pre-boot unlock) shows the user data: no warning.
  t.deepEqual(driveWarnings(report(decodeLevel0(level0([locking(0x3b)])))), [
    { code: 'sed-locking', message: 'self-encrypting drive (TCG) with locking enabled, unlocked now: it locks again at power-off; image it in this session' },
  ]);
});

test('no answer, a short answer, lying lengths and random bytes: null or a bounded decode, never a throw', (t) => {
  t.is(decodeLevel0(Buffer.alloc(0)), null);
  t.is(decodeLevel0(Buffer.alloc(512)), null, 'zeros (a drive that ignores the command) are no answer');
  t.is(decodeLevel0(level0([TPER]).subarray(0, 40)), null);
  // A length past the buffer: the descriptors inside the buffer still decode, none past it.
  t.deepEqual(decodeLevel0(level0([locking(0x07)], 1_000_000))?.locking?.locked, true);
  // A descriptor length running past the end is not read.
  const cut = level0([OPAL2, locking(0x07)]);
  cut[48 + 20 + 3] = 200;
  t.deepEqual(decodeLevel0(cut), { sscs: ['Opal 2'], locking: null });
  for (let i = 0; i < 2000; i++) {
    const b = randomBytes(48 + (i % 600));
    if (i % 2) b.writeUInt32BE(b.length - 4 + (i % 7) - 3, 0);
    const d = decodeLevel0(b);
    t.true(d === null || (Array.isArray(d.sscs) && d.sscs.length <= b.length / 4));
  }
});

test('the IF-RECV command is on the allowlist; the same opcode sending data (TRUSTED SEND, 5Eh) is not', (t) => {
  const cdb = ataTrustedReceiveCdb();
  t.is(native().passThroughAllowed('scsi', cdb, 512), null);
  const send = Uint8Array.from(cdb);
  send[14] = 0x5e;
  t.regex(native().passThroughAllowed('scsi', send, 512) ?? 'allowed', /not on the read-only list|refused/);
});

test('SECURITY PROTOCOL IN for a SCSI/SAS drive asks protocol 01h ComID 0001h for 2,048 bytes and is on the allowlist; SECURITY PROTOCOL OUT (B5h) is not', (t) => {
  const cdb = scsiSecurityProtocolInCdb();
  t.deepEqual([...cdb], [0xa2, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0x08, 0x00, 0, 0]);
  t.is(native().passThroughAllowed('scsi', cdb, 2048), null);
  const out = Uint8Array.from(cdb);
  out[0] = 0xb5;
  t.regex(native().passThroughAllowed('scsi', out, 2048) ?? 'allowed', /not on the read-only list/);
});
