// The IDENTIFY DEVICE decoder against hdparm's (--Istdin) on the same bytes, for
// what QEMU's drives cannot show: HPA, DCO, AMA, locked and frozen security, 4Kn,
// 48-bit sizes, hostile strings and a damaged answer.
import test from 'ava';
import { execa } from 'execa';
import { decodeIdentify } from '../../appliance/disk/ata-identify.js';
import { escapeBytes } from '../../appliance/sanitize.js';
import { identifyBytes, identifyHex, type IdentifyFixture } from '../helpers/ata-identify-fixture.js';

interface HdparmView {
  model: string;
  serial: string;
  firmware: string;
  lba28: number;
  lba48: number | null;
  logical: number;
  physical: number;
  hpa: 'none' | 'supported' | 'enabled';
  dco: boolean;
  security: { supported: boolean; enabled: boolean; locked: boolean; frozen: boolean; expired: boolean };
  wwn: string | null;
  ssd: boolean;
  checksum: 'valid' | 'bad' | 'absent';
}

async function hdparm(f: IdentifyFixture): Promise<{ text: string; view: HdparmView }> {
  const r = await execa('hdparm', ['--Istdin'], { input: identifyHex(f), encoding: 'latin1' });
  const text = r.stdout;
  const field = (name: string) => new RegExp(`^\\t${name}:\\s*(.*?)\\s*$`, 'm').exec(text)?.[1] ?? '';
  const num = (re: RegExp) => {
    const m = re.exec(text);
    return m ? Number(m[1]) : null;
  };
  const feature = (name: string) => new RegExp(`^\\t   (.)\\t${name}`, 'm').exec(text)?.[1];
  const hpaMark = feature('Host Protected Area feature set');
  const sec = /^Security:[^\n]*\n((?:\t[^\n]*\n)*)/m.exec(text + '\n')?.[1] ?? '';
  const secLine = (word: string) => new RegExp(`^\\t\\t${word}$`, 'm').test(sec);
  const single = num(/Logical\/Physical Sector size:\s+(\d+) bytes/);
  return {
    text,
    view: {
      model: field('Model Number'),
      serial: field('Serial Number'),
      firmware: field('Firmware Revision'),
      lba28: num(/LBA {4}user addressable sectors:\s+(\d+)/) ?? -1,
      lba48: num(/LBA48 {2}user addressable sectors:\s+(\d+)/),
      logical: single ?? num(/Logical {2}Sector size:\s+(\d+) bytes/) ?? -1,
      physical: single ?? num(/Physical Sector size:\s+(\d+) bytes/) ?? -1,
      hpa: hpaMark === undefined ? 'none' : hpaMark === '*' ? 'enabled' : 'supported',
      dco: feature('Device Configuration Overlay feature set') !== undefined,
      security: {
        supported: secLine('supported'),
        enabled: secLine('enabled'),
        locked: secLine('locked'),
        frozen: secLine('frozen'),
        expired: secLine('expired: security count'),
      },
      wwn: /^Logical Unit WWN Device Identifier: ([0-9a-f]+)/m.exec(text)?.[1] ?? null,
      ssd: /Nominal Media Rotation Rate: Solid State Device/.test(text),
      checksum: /^Checksum: correct/m.test(text) ? 'valid' : /Integrity word not set/.test(text) ? 'absent' : 'bad',
    },
  };
}

const CASES: [string, IdentifyFixture][] = [
  [
    'an SSD with 48-bit sizes past 2^32 sectors, an enabled HPA, DCO, 4 KiB physical sectors, a WWN, security locked and frozen',
    {
      lba48: 2 ** 33 + 5,
      hpa: 'enabled',
      dco: true,
      physicalExponent: 3,
      wwn: '5000c50015ea71ac',
      ssd: true,
      security: { enabled: true, locked: true, frozen: true },
    },
  ],
  ['an old 28-bit drive with HPA supported but off, no security', { lba28: 0x0ffffff0, hpa: 'supported' }],
  [
    'a 4Kn drive (4096-byte logical sectors) with AMA and TCG, security enabled but unlocked, attempts run out',
    { lba48: 244_190_646, logicalBytes: 4096, ama: true, tcg: true, security: { enabled: true, expired: true } },
  ],
  ['a damaged answer (checksum wrong)', { lba48: 1_000_000, checksum: 'bad' }],
  ['no integrity word', { lba48: 1_000_000, checksum: 'absent' }],
  [
    'hostile strings: an escape sequence and control bytes in the model, high bytes in the serial',
    { lba48: 1_000_000, model: Buffer.from('EVIL\x1b[2J\x07DISK\x00\xff', 'latin1'), serial: 'S\x7f\x9b1' },
  ],
];

for (const [name, f] of CASES) {
  test(`IDENTIFY DEVICE, as hdparm decodes it: ${name}`, async (t) => {
    const id = decodeIdentify(identifyBytes(f));
    const { text, view } = await hdparm(f);
    t.log(text.split('\n').slice(0, 4).join(' | '));
    // hdparm prints the strings as the drive sent them but for NUL bytes, which it leaves out; custos escapes what
    // is not printable ASCII (NUL as \x00, kept: the record holds what the drive said).
    const shown = (s: string) => escapeBytes(Buffer.from(s.trim(), 'latin1'));
    const noNul = (s: string) => s.replaceAll('\\x00', '');
    t.is(noNul(id.model.text), shown(view.model));
    t.is(noNul(id.serial.text), shown(view.serial));
    t.is(noNul(id.firmware.text), shown(view.firmware));
    t.notRegex(id.model.text + id.serial.text, /[\x00-\x1f\x7f-\xff]/, 'nothing unprintable reaches the screen');
    t.is(id.lba48, view.lba48 !== null && view.lba48 > 0);
    t.is(id.userSectors, id.lba48 ? (view.lba48 ?? -1) : view.lba28);
    t.is(id.logicalSectorBytes, view.logical);
    t.is(id.physicalSectorBytes, view.physical);
    t.is(id.hpa.supported ? (id.hpa.enabled ? 'enabled' : 'supported') : 'none', view.hpa);
    t.is(id.dcoSupported, view.dco);
    t.deepEqual(
      {
        supported: id.security.supported,
        enabled: id.security.enabled,
        locked: id.security.locked,
        frozen: id.security.frozen,
        expired: id.security.countExpired,
      },
      view.security,
    );
    t.is(id.wwn, view.wwn);
    t.is(id.rotationRate === 1, view.ssd);
    t.is(id.integrity, view.checksum);
    t.is(id.amaSupported, f.ama === true);
    t.is(id.trustedComputing, f.tcg === true);
  });
}

test('IDENTIFY DEVICE: an answer that is not 512 bytes is refused; one of zeros says nothing it does not know', (t) => {
  t.throws(() => decodeIdentify(Buffer.alloc(100)), { instanceOf: RangeError });
  const zero = decodeIdentify(Buffer.alloc(512));
  t.is(zero.userSectors, 0);
  t.false(zero.hpa.supported);
  t.false(zero.security.locked);
  t.is(zero.wwn, null);
  t.is(zero.rotationRate, null);
  t.is(zero.integrity, 'absent');
  // A lying logical sector size (word 106 bit 12 with 1 word per sector) is not believed.
  const lie = Buffer.alloc(512);
  lie.writeUInt16LE(0x5000, 212);
  lie.writeUInt16LE(1, 234);
  t.is(decodeIdentify(lie).logicalSectorBytes, 512);
});
