// Encrypted volumes found by libblkid per partition, read-only: LUKS made by
// cryptsetup itself, a BitLocker volume header (blkid's own signature check
// accepts it; no Windows here to make a real one), random data without any
// signature, and an ext4 partition that is not flagged. Then the same through
// `custos disks --json` and into a signed record and its report.
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { attachLoop, sha256File, tempDir } from '../helpers/loop.js';
import { custos } from '../helpers/cli.js';
import { findEncryptedVolumes } from '../../appliance/disk/encrypted-volumes.js';
import { readDiskByName } from '../../appliance/disk/inventory.js';
import type { CustodyRecord } from '../../appliance/custody/custody-record.js';
import { custodyProblems } from '../helpers/schema.js';

const MiB = 1024 * 1024;

function scratch(t: ExecutionContext): string {
  const d = tempDir();
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A BitLocker (Windows 7 and later) volume header: boot sector signature, and the FVE metadata block it points to. */
function bitlockerHeader(): Buffer {
  const b = Buffer.alloc(2 * MiB);
  Buffer.from([0xeb, 0x58, 0x90]).copy(b, 0);
  b.write('-FVE-FS-', 3, 'latin1');
  b.writeUInt16LE(0xaa55, 510);
  // The BitLocker GUID 4967d63b-2e29-4ad8-8399-f6a339e3d001, little-endian fields first.
  Buffer.from('3bd66749292ed84a8399f6a339e3d001', 'hex').copy(b, 0xa0);
  const metadata = 1 * MiB;
  b.writeBigUInt64LE(BigInt(metadata), 0xb0);
  b.write('-FVE-FS-', metadata, 'latin1');
  b.writeUInt16LE(0x40, metadata + 8);
  b.writeUInt16LE(2, metadata + 10);
  return b;
}

function writeAt(dev: string, data: Buffer, offset = 0): void {
  const fd = openSync(dev, 'r+');
  try {
    writeSync(fd, data, 0, data.length, offset);
  } finally {
    closeSync(fd);
  }
}

async function luksFormat(dev: string, type: 'luks1' | 'luks2'): Promise<void> {
  // PBKDF2 with few iterations: the header is the same kind, made in milliseconds.
  await execa('cryptsetup', ['luksFormat', '-q', '--type', type, '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', dev, '-'], {
    input: 'test passphrase',
  });
}

test.serial(
  'LUKS2, BitLocker and a random partition are found per partition with their advice; ext4 is not; LUKS1 on a disk without partitions too; all in the record',
  async (t) => {
    const dir = scratch(t);
    const file = path.join(dir, 'suspect.img');
    await execa('truncate', ['-s', `${40 * MiB}`, file]);
    const loop = await attachLoop(file, { partitionsMiB: [8, 8, 8, 8] });
    t.teardown(() => loop.detach());
    const [p1, p2, p3, p4] = loop.partitions.map((p) => `/dev/${p}`) as [string, string, string, string];
    await luksFormat(p1, 'luks2');
    writeAt(p2, bitlockerHeader());
    writeAt(p3, randomBytes(8 * MiB));
    await execa('mkfs.ext4', ['-q', '-F', p4]);
    const luksUuid = (await execa('cryptsetup', ['luksUUID', p1])).stdout.trim();

    const disk = readDiskByName(loop.name);
    if (!disk) throw new Error('no loop disk');
    const found = await findEncryptedVolumes(disk);
    t.deepEqual(
      found.map((v) => [v.device, v.kind, v.type, v.version]),
      [
        [p1, 'luks2', 'crypto_LUKS', '2'],
        [p2, 'bitlocker', 'BitLocker', '2'],
        [p3, 'high-entropy', null, null],
      ],
    );
    t.is(found[0]?.uuid, luksUuid, "the LUKS UUID is cryptsetup's");
    t.regex(found[1]?.advice ?? '', /^BitLocker: without the recovery key this image cannot be read; record the key/);
    t.regex(found[2]?.advice ?? '', /possibly an encrypted container \(VeraCrypt/);

    const whole = path.join(dir, 'whole.img');
    await execa('truncate', ['-s', `${16 * MiB}`, whole]);
    const wloop = await attachLoop(whole);
    t.teardown(() => wloop.detach());
    await luksFormat(wloop.dev, 'luks1');
    const wdisk = readDiskByName(wloop.name);
    t.deepEqual(
      (await findEncryptedVolumes(wdisk ?? disk)).map((v) => [v.device, v.kind]),
      [[wloop.dev, 'luks1']],
    );

    // The CLI: the list and the record say the same, and the source is not changed by any of it.
    const state = scratch(t);
    t.is((await custos(['writeblock', 'protect', loop.dev], state)).exitCode, 0);
    const before = await sha256File(file);
    const listed = JSON.parse(String((await custos(['disks', '--json'], state)).stdout)) as {
      disks: { name: string; encryptedVolumes: { kind: string }[]; warnings: { code: string }[] }[];
    };
    const entry = listed.disks.find((d) => d.name === loop.name);
    t.deepEqual(
      entry?.encryptedVolumes.map((v) => v.kind),
      ['luks2', 'bitlocker', 'high-entropy'],
    );
    t.is(entry?.warnings.filter((w) => w.code === 'encrypted-volume').length, 3);
    const out = scratch(t);
    const r = await custos(['acquire', '--source', loop.dev, '--out', out, '--hash', 'sha256', '--piece-size', '0'], state);
    t.is(r.exitCode, 0, String(r.stderr));
    const rec = JSON.parse(readFileSync(path.join(out, 'custody.json'), 'utf8')) as CustodyRecord;
    t.deepEqual(custodyProblems(rec), []);
    t.deepEqual(
      rec.sourceDrive?.encryptedVolumes?.map((v) => v.kind),
      ['luks2', 'bitlocker', 'high-entropy'],
    );
    const report = readFileSync(path.join(out, 'report.txt'), 'utf8');
    t.regex(report, new RegExp(`Encrypted ${p2} +BitLocker: without the recovery key`));
    t.is(await sha256File(file), before, 'probing and imaging changed nothing on the source');
    t.is(rec.acquisition.hashes.sha256, before);
  },
);

// GPT partition types of Apple's Core Storage (FileVault 2 before APFS) and of an APFS container.
const CORE_STORAGE = '53746F72-6167-11AA-AA11-00306543ECAC';
const APFS = '7C3457EF-0000-11AA-AA11-00306543ECAC';
const APFS_UUID = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';

/** An APFS container superblock (NX_SUPERBLOCK: object header, 'NXSB', 4 KiB blocks, UUID) with its Fletcher-64 checksum; mkfs.apfs is not in Debian. */
function apfsContainerSuperblock(): Buffer {
  const b = Buffer.alloc(4096);
  b.writeBigUInt64LE(1n, 8); // oid
  b.writeBigUInt64LE(1n, 16); // xid
  b.writeUInt16LE(1, 24); // OBJECT_TYPE_NX_SUPERBLOCK
  b.writeUInt16LE(0x8000, 26); // OBJ_EPHEMERAL
  b.write('NXSB', 32, 'latin1');
  b.writeUInt32LE(4096, 36);
  b.writeBigUInt64LE(2048n, 40); // block count
  Buffer.from(APFS_UUID.replaceAll('-', ''), 'hex').copy(b, 72);
  let lo = 0n;
  let hi = 0n;
  for (let i = 8; i < 4096; i += 4) {
    lo += BigInt(b.readUInt32LE(i));
    hi += lo;
  }
  const m = 0xffffffffn;
  const cl = ~((lo + hi) % m) & m;
  const ch = ~((lo + cl) % m) & m;
  b.writeBigUInt64LE((ch << 32n) | cl, 0);
  return b;
}

test.serial('a FileVault 2 (Core Storage) partition by its GPT type and an APFS container by its superblock are found with their advice', async (t) => {
  const dir = scratch(t);
  const file = path.join(dir, 'mac.img');
  await execa('truncate', ['-s', `${24 * MiB}`, file]);
  const loop = await attachLoop(file, { partitionsMiB: [8, 8], gptTypes: [CORE_STORAGE, APFS] });
  t.teardown(() => loop.detach());
  const [p1, p2] = loop.partitions.map((p) => `/dev/${p}`) as [string, string];
  writeAt(p2, apfsContainerSuperblock());
  const disk = readDiskByName(loop.name);
  if (!disk) throw new Error('no loop disk');
  const found = await findEncryptedVolumes(disk);
  t.deepEqual(
    found.map((v) => [v.device, v.kind, v.type, v.uuid]),
    [
      [p1, 'filevault-corestorage', null, null],
      [p2, 'apfs', 'apfs', APFS_UUID],
    ],
  );
  t.regex(found[0]?.advice ?? '', /^FileVault 2 \(Core Storage\): without the password or recovery key/);
  t.regex(found[1]?.advice ?? '', /^APFS: its volumes may be encrypted \(FileVault\)/);
});
