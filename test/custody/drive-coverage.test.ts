// The drive's own view in the record: what the image covers, and a locked drive
// that is refused without the examiner's confirmation. A loop device is the
// real source; the drive's answers are canned IDENTIFY blocks (QEMU emulates
// neither an HPA nor ATA security), decoded by the same code as on hardware.
import test, { type ExecutionContext } from 'ava';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { patternLoop, sha256File, tempDir } from '../helpers/loop.js';
import { identifyBytes, type IdentifyFixture } from '../helpers/ata-identify-fixture.js';
import { decodeIdentify } from '../../appliance/disk/ata-identify.js';
import type { DriveReport } from '../../appliance/disk/drive-probe.js';
import type { TcgDiscovery } from '../../appliance/disk/tcg-discovery.js';
import { readDiskByName, type Disk } from '../../appliance/disk/inventory.js';
import { WriteBlockGuardian } from '../../appliance/writeblock/guardian.js';
import { runAcquisition } from '../../appliance/run-acquisition.js';
import { caseData } from '../../appliance/custody/case-data.js';
import { oneTimeKey } from '../../appliance/custody/keys.js';
import { acquireSettings } from '../../appliance/imaging/settings.js';
import { CustosError } from '../../appliance/errors.js';
import type { CustodyRecord } from '../../appliance/custody/custody-record.js';
import { reportText } from '../../appliance/custody/report.js';
import { custodyProblems } from '../helpers/schema.js';
import type { ImagingEvent } from '../../appliance/events.js';

/** What an ATA drive described by `f` would answer, with its native max `native` sectors. */
function ataReport(f: IdentifyFixture, kernelBytes: number, native: number | null, tcg: TcgDiscovery | null = null): DriveReport {
  const identify = decodeIdentify(identifyBytes(f));
  const user = identify.userSectors;
  return {
    ata: {
      identify,
      identifyHex: identifyBytes(f).toString('hex'),
      nativeSectors: native,
      nativeFrom: native === null ? null : 'READ NATIVE MAX ADDRESS EXT',
      hpaSectors: native === null ? null : native - user,
      dcoSectors: null,
      dcoHiddenSectors: null,
      notes: [],
    },
    nvme: null,
    scsi: null,
    tcg,
    health: null,
    kernelBytes,
    unreachable: null,
  };
}

function scratch(t: ExecutionContext): string {
  const d = tempDir();
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function acquireLoop(t: ExecutionContext, report: ((d: Disk) => DriveReport) | null, confirmLocked: boolean) {
  const loop = await patternLoop(2 * 1024 * 1024, {}, 7);
  t.teardown(() => loop.detach());
  process.env['CUSTOS_STATE_DIR'] = scratch(t);
  const name = path.basename(loop.dev);
  const guardian = new WriteBlockGuardian({ include: (d) => d.name === name });
  guardian.protect(loop.dev);
  const disk = readDiskByName(name);
  if (!disk) throw new Error('no loop disk');
  const out = scratch(t);
  const events: ImagingEvent[] = [];
  try {
    const outcome = await runAcquisition({
      disk,
      guardian,
      destinations: [out],
      settings: acquireSettings({ format: 'raw', hashes: ['sha256'], verify: false }),
      case: caseData({ caseNumber: '2026-17' }),
      examinerTime: null,
      signer: oneTimeKey(null),
      host: Promise.resolve(null),
      custodyCopy: null,
      onEvent: (e) => events.push(e),
      ...(report ? { probe: (d: Disk) => Promise.resolve(report(d)) } : {}),
      confirmLocked,
    });
    return { out, events, outcome, loop, disk, error: null };
  } catch (e) {
    return { out, events, outcome: null, loop, disk, error: e };
  } finally {
    guardian.stop();
  }
}

test.serial('a locked drive is refused without the confirmation, nothing written; with it the record and the report say LOCKED', async (t) => {
  const locked: IdentifyFixture = { lba48: 4096, security: { enabled: true, locked: true }, serial: 'LOCKED-1' };
  const refused = await acquireLoop(t, (d) => ataReport(locked, d.sizeBytes, 4096), false);
  t.true(refused.error instanceof CustosError && refused.error.code === 'ELOCKED', String(refused.error));
  t.regex(String((refused.error as Error).message), /ATA security locked.*--image-locked-drive.*nothing changed/);
  t.deepEqual(readdirSync(refused.out), [], 'nothing is written before the confirmation');

  const done = await acquireLoop(t, (d) => ataReport(locked, d.sizeBytes, 4096), true);
  t.is(done.error, null, String(done.error));
  const rec = JSON.parse(readFileSync(path.join(done.out, 'custody.json'), 'utf8')) as CustodyRecord;
  t.deepEqual(custodyProblems(rec), []);
  t.is(rec.sourceDrive?.coverage.locked, 'ATA security locked');
  t.true(rec.sourceDrive?.lockedConfirmed);
  t.true(rec.sourceDisk?.warnings.some((w) => w.code === 'ata-locked'));
  t.true(done.events.some((e) => e.type === 'drive-locked-confirmed'));
  t.is(rec.acquisition.hashes.sha256, await sha256File(done.loop.file));
  const report = readFileSync(path.join(done.out, 'report.txt'), 'utf8');
  t.regex(report, /ATA security +LOCKED/);
  t.regex(report, /Locked sectors +0 \(the drive is locked/);
  t.notRegex(report, /Unreadable sectors/);
  // Ranges the drive refused are printed as locked, not with the errno of a bad sector.
  const withRanges: CustodyRecord = {
    ...rec,
    acquisition: {
      ...rec.acquisition,
      badSectors: 8,
      badRanges: [{ firstLba: 0, lastLba: 7, sectors: 8, sectorSize: 512, errno: 5, error: 'EIO', attempts: 3 }],
    },
  };
  t.regex(reportText(withRanges), /Locked sectors +8 \(the drive is locked: they could not be read, not bad media\); LBA 0-7 locked/);
});

test.serial('an HPA is stated in the record and the report as sectors not imaged; no HPA is said as every sector up to the native max', async (t) => {
  const hpa = await acquireLoop(t, (d) => ataReport({ lba48: d.sizeBytes / 512 }, d.sizeBytes, d.sizeBytes / 512 + 12_288), false);
  t.is(hpa.error, null, String(hpa.error));
  const rec = JSON.parse(readFileSync(path.join(hpa.out, 'custody.json'), 'utf8')) as CustodyRecord;
  t.deepEqual(custodyProblems(rec), []);
  t.is(rec.sourceDrive?.coverage.hiddenBytes, 12_288 * 512);
  t.regex(
    rec.sourceDrive?.coverage.statement ?? '',
    /^the image covers LBA 0-4,095 of the drive's 16,384 sectors: an HPA of 12,288 sectors \(LBA 4,096-16,383\) NOT imaged$/,
  );
  t.true(rec.sourceDisk?.warnings.some((w) => w.code === 'hpa' && w.message.startsWith('HPA 12,288 sectors')));
  t.true(hpa.events.some((e) => e.type === 'drive-probe' && /HPA of 12,288 sectors/.test(e.message)));
  t.regex(readFileSync(path.join(hpa.out, 'report.txt'), 'utf8'), /Not imaged +6291456 bytes/);

  const whole = await acquireLoop(t, (d) => ataReport({ lba48: d.sizeBytes / 512 }, d.sizeBytes, d.sizeBytes / 512), false);
  const rec2 = JSON.parse(readFileSync(path.join(whole.out, 'custody.json'), 'utf8')) as CustodyRecord;
  t.is(rec2.sourceDrive?.coverage.hiddenBytes, 0);
  t.regex(rec2.sourceDrive?.coverage.statement ?? '', /every sector up to the drive's native max \(READ NATIVE MAX ADDRESS EXT\): no hidden area/);
});

test.serial('a loop source, asked for real: the record says its native size cannot be asked, and why', async (t) => {
  const real = await acquireLoop(t, null, false);
  t.is(real.error, null, String(real.error));
  const rec = JSON.parse(readFileSync(path.join(real.out, 'custody.json'), 'utf8')) as CustodyRecord;
  t.deepEqual(custodyProblems(rec), []);
  t.regex(rec.sourceDrive?.report.unreachable ?? '', /a loop disk takes no ATA or NVMe commands/);
  t.is(rec.sourceDrive?.coverage.hiddenBytes, null);
  t.regex(rec.sourceDrive?.coverage.statement ?? '', /^the image covers the 2,097,152 bytes the kernel shows; the drive's own size is unknown: a loop disk/);
  t.regex(readFileSync(path.join(real.out, 'report.txt'), 'utf8'), /Drive size +unknown/);
});

test.serial(
  "the drive's health before and after: both snapshots in the record, the log and the report; a flagged drive gets --fast-first proposed",
  async (t) => {
    let reads = 0;
    const ailing = (d: Disk): DriveReport => {
      reads++;
      const attributes = [{ id: 5, name: 'Reallocated_Sector_Ct', value: 90, worst: 90, raw: 8 * reads }];
      const flags = [`${8 * reads} reallocated sector(s)`];
      return {
        ...ataReport({ lba48: d.sizeBytes / 512 }, d.sizeBytes, d.sizeBytes / 512),
        health: { from: 'ATA SMART', passed: true, attributes, selfTests: [], nvme: null, flags, rawHex: '0'.repeat(1024) },
      };
    };
    const run = await acquireLoop(t, ailing, false);
    t.is(run.error, null, String(run.error));
    t.is(reads, 2, 'asked once before the first byte and once at the end');
    const rec = JSON.parse(readFileSync(path.join(run.out, 'custody.json'), 'utf8')) as CustodyRecord;
    t.deepEqual(custodyProblems(rec), []);
    t.deepEqual(rec.sourceDrive?.report.health?.flags, ['8 reallocated sector(s)']);
    t.deepEqual(rec.sourceDrive?.healthAfter?.flags, ['16 reallocated sector(s)']);
    t.true(rec.sourceDisk?.warnings.some((w) => w.code === 'drive-health' && /consider --fast-first/.test(w.message)));
    const health = run.events.filter((e) => e.type === 'drive-health').map((e) => e.message);
    t.is(health.length, 1, 'the before snapshot reaches the caller; the after one is in the log');
    t.regex(health[0] ?? '', /^drive health before the acquisition \(ATA SMART\): 8 reallocated sector\(s\); --fast-first reads the good areas first$/);
    const log = readFileSync(path.join(run.out, 'events.jsonl'), 'utf8');
    t.regex(log, /drive health after the acquisition \(ATA SMART\): 16 reallocated sector\(s\)/);
    const report = readFileSync(path.join(run.out, 'report.txt'), 'utf8');
    t.regex(report, /Health before +ATA SMART: passed; 8 reallocated sector\(s\)/);
    t.regex(report, /Health after +ATA SMART: passed; 16 reallocated sector\(s\)/);
  },
);
