import test from 'ava';
import type { StorageInventory } from '../../appliance/disk/storage-controllers.js';
import { execa } from 'execa';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CUSTOS, custos } from '../helpers/cli.js';
import { patternLoop, tempDir } from '../helpers/loop.js';
import { Sysfs } from '../../appliance/disk/sysfs.js';
import type { Disk } from '../../appliance/disk/inventory.js';
import type { DeviceStatus } from '../../appliance/writeblock/guardian.js';

const sysfs = new Sysfs();

async function diskJson(name: string, state: string): Promise<Disk> {
  const r = await custos(['disks', '--json'], state);
  const parsed = JSON.parse(String(r.stdout)) as { schema: string; disks: Disk[] };
  const d = parsed.disks.find((x) => x.name === name);
  if (!d) throw new Error(`${name} not listed`);
  return d;
}

function expectOneLineError(t: import('ava').ExecutionContext, r: { exitCode?: number; stderr: unknown; stdout: unknown }, pattern: RegExp): void {
  t.not(r.exitCode, 0);
  const err = String(r.stderr).trimEnd();
  t.is(err.split('\n').length, 1, `one line: ${err}`);
  t.regex(err, pattern);
  t.is(String(r.stdout), '');
}

test('disks --json: stable schema with exact sizes, sectors and partitions', async (t) => {
  const loop = await patternLoop(20481 * 512, { partitionsMiB: [4, 0] });
  t.teardown(loop.detach);
  const state = tempDir();
  const r = await custos(['disks', '--json'], state);
  t.is(r.exitCode, 0);
  const parsed = JSON.parse(String(r.stdout)) as { schema: string; disks: Disk[]; storage: StorageInventory };
  t.is(parsed.schema, 'custos.disks/1');
  // Every disk of this machine behind a PCI device is behind a listed controller, which names its driver.
  for (const disk of parsed.disks.filter((x) => /\/pci[0-9a-f]{4}:/.test(x.kernelPath)))
    t.true(
      parsed.storage.controllers.some((c) => c.disks.includes(disk.name) && c.driver !== null),
      `${disk.name} is behind a listed controller with a driver`,
    );
  t.true(Array.isArray(parsed.storage.warnings));
  const d = parsed.disks.find((x) => x.name === loop.name);
  t.is(d?.sizeBytes, 20481 * 512);
  t.is(d?.devicePath, loop.dev);
  t.deepEqual(
    d?.partitions.map((p) => p.name),
    loop.partitions,
  );
  for (const key of [
    'name',
    'devicePath',
    'stableId',
    'kernelPath',
    'transport',
    'sizeBytes',
    'logicalSectorSize',
    'physicalSectorSize',
    'rotational',
    'removable',
    'readOnly',
    'partitions',
    'holders',
    'mounts',
    'roles',
    'warnings',
  ]) {
    t.true(d !== undefined && key in d, key);
  }
});

test('disks: human output is an aligned table with partitions under their disk', async (t) => {
  const loop = await patternLoop(8 * 1024 * 1024, { partitionsMiB: [4, 0] });
  t.teardown(loop.detach);
  const r = await custos(['disks'], tempDir());
  t.is(r.exitCode, 0);
  const lines = String(r.stdout).split('\n');
  t.regex(lines[0] ?? '', /^NAME\s+TRAN\s+SIZE \(BYTES\)\s+SECTOR\s+WB\s+ROLE\s+MODEL\s+SERIAL\s+STABLE ID$/);
  const i = lines.findIndex((l) => l.startsWith(loop.name + ' '));
  t.true(i > 0);
  t.regex(lines[i] ?? '', new RegExp(`^${loop.name}\\s+loop\\s+8388608 \\(8\\.0 MiB\\)\\s+512/512\\s+rw`));
  t.regex(lines[i + 1] ?? '', new RegExp(`^  ${loop.partitions[0]}\\s+4194304 \\(4\\.0 MiB\\)\\s+@1048576\\s+rw`));
  // Columns line up: the SIZE column starts at the same place in header and rows.
  t.is(lines[i]?.indexOf('8388608'), lines[0]?.indexOf('SIZE'));
});

test('protect, status and release through the CLI, with kernel write counters as evidence', async (t) => {
  const loop = await patternLoop(8 * 1024 * 1024, { partitionsMiB: [4, 0] });
  t.teardown(loop.detach);
  const state = tempDir();
  const p = await custos(['writeblock', 'protect', loop.dev], state);
  t.is(p.exitCode, 0, String(p.stderr));
  t.regex(String(p.stdout), /protected\s+loop\d+/);
  await execa('dd', [`if=/dev/zero`, `of=${loop.dev}`, 'bs=512', 'count=1', 'oflag=direct'], { reject: false });
  const s = await custos(['writeblock', 'status', loop.dev, '--json'], state);
  const st = (JSON.parse(String(s.stdout)) as { status: DeviceStatus[] }).status[0];
  t.true(st?.readOnly);
  t.true(st?.ioctlReadOnly);
  t.true(st?.intact);
  t.is(st?.sinceProtect?.writeIos, 0);
  t.is(st?.sinceProtect?.writeSectors, 0);
  t.deepEqual(
    st?.partitions.map((x) => x.readOnly),
    [true, true],
  );
  const d = await diskJson(loop.name, state);
  const rel = await custos(['writeblock', 'release', loop.dev, '--confirm', d.stableId], state);
  t.is(rel.exitCode, 0, String(rel.stderr));
  t.is(sysfs.readText(`block/${loop.name}/ro`), '0');
  const events = readFileSync(path.join(state, 'writeblock-events.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string });
  t.deepEqual(
    events.map((e) => e.type),
    ['protected', 'released'],
  );
});

test('status flags a protected disk whose read-only flag was reset while nothing was watching', async (t) => {
  const loop = await patternLoop(4 * 1024 * 1024);
  t.teardown(loop.detach);
  const state = tempDir();
  await custos(['writeblock', 'protect', loop.dev], state);
  await execa('blockdev', ['--setrw', loop.dev]);
  const s = await custos(['writeblock', 'status', loop.dev], state);
  t.regex(String(s.stdout), /protected FLAG RESET!/);
  const j = await custos(['writeblock', 'status', loop.dev, '--json'], state);
  t.false((JSON.parse(String(j.stdout)) as { status: DeviceStatus[] }).status[0]?.intact);
});

test('bad input: one-line error, non-zero exit, nothing changed', async (t) => {
  const src = await patternLoop(4 * 1024 * 1024, { partitionsMiB: [2, 0] });
  t.teardown(src.detach);
  const state = tempDir();
  const prot = await custos(['writeblock', 'protect', '--source', src.dev], state);
  t.is(prot.exitCode, 0, String(prot.stderr));
  const stateFile = path.join(state, 'writeblock.json');
  const stateBefore = readFileSync(stateFile, 'utf8');
  const roBefore = [sysfs.readText(`block/${src.name}/ro`), ...src.partitions.map((p) => sysfs.readText(`block/${src.name}/${p}/ro`))];
  const d = await diskJson(src.name, state);

  expectOneLineError(t, await custos(['writeblock', 'protect', '/dev/custos-missing'], state), /^custos: \/dev\/custos-missing: no such device$/);
  expectOneLineError(t, await custos(['writeblock', 'status', '/dev/custos-missing'], state), /no such device/);
  expectOneLineError(
    t,
    await custos(['writeblock', 'protect', `/dev/${src.partitions[0]}`], state),
    new RegExp(`is partition ${src.partitions[0]} of disk ${src.name}; give the whole disk`),
  );
  const plain = path.join(tempDir(), 'evidence.img');
  writeFileSync(plain, Buffer.alloc(4096));
  expectOneLineError(t, await custos(['writeblock', 'protect', plain], state), /is a regular file, not a block device/);
  expectOneLineError(
    t,
    await custos(['writeblock', 'release', src.dev, '--confirm', d.stableId], state),
    /refusing to release loop\d+: loop\d+ is the acquisition source/,
  );
  expectOneLineError(t, await custos(['writeblock', 'release', src.dev], state), /needs --confirm/);
  expectOneLineError(t, await custos(['writeblock', 'frobnicate'], state), /writeblock needs one of/);
  expectOneLineError(t, await custos(['disks', '--nope'], state), /Unknown option '--nope'/);
  // A bad argument among good ones: nothing is protected.
  const other = await patternLoop(4 * 1024 * 1024, {}, 3);
  t.teardown(other.detach);
  expectOneLineError(t, await custos(['writeblock', 'protect', other.dev, '/dev/custos-missing'], state), /no such device/);
  t.is(sysfs.readText(`block/${other.name}/ro`), '0');

  t.is(readFileSync(stateFile, 'utf8'), stateBefore, 'state unchanged');
  t.deepEqual([sysfs.readText(`block/${src.name}/ro`), ...src.partitions.map((p) => sysfs.readText(`block/${src.name}/${p}/ro`))], roBefore);
  t.false(existsSync(`/dev/custos-missing`));
});

test('writeblock watch: a reset flag is set back and reported as NDJSON, and the process stops cleanly', async (t) => {
  const loop = await patternLoop(4 * 1024 * 1024);
  t.teardown(loop.detach);
  const state = tempDir();
  const child = execa(CUSTOS, ['writeblock', 'watch', loop.dev, '--json', '--interval', '100'], {
    env: { CUSTOS_STATE_DIR: state },
    reject: false,
    buffer: false,
  });
  const lines: { type: string; device: string }[] = [];
  let buf = '';
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, nl)) as { type: string; device: string });
      buf = buf.slice(nl + 1);
    }
  });
  const until = async (pred: () => boolean) => {
    for (let i = 0; i < 100 && !pred(); i++) await new Promise((r) => setTimeout(r, 50));
    return pred();
  };
  t.true(await until(() => lines.some((l) => l.type === 'protected')));
  await execa('blockdev', ['--setrw', loop.dev]);
  t.true(await until(() => lines.some((l) => l.type === 'reprotected' && l.device === loop.name)));
  t.is(sysfs.readText(`block/${loop.name}/ro`), '1');
  const killedAt = Date.now();
  child.kill('SIGTERM');
  const r = await child;
  t.is(r.exitCode, 0, `signal ${String(r.signal)} after ${Date.now() - killedAt} ms; stderr: ${String(r.stderr)}`);
  t.true(lines.some((l) => l.type === 'reset-detected'));
});

test('host: identity from systeminformation agrees with the kernel and DMI', async (t) => {
  const r = await custos(['host', '--json'], tempDir());
  t.is(r.exitCode, 0, String(r.stderr));
  const h = (
    JSON.parse(String(r.stdout)) as {
      host: { os: { kernel: { text: string } }; system: { uuid: { text: string } }; memoryBytes: number; clock: { rtcUtc: string } };
    }
  ).host;
  t.is(h.os.kernel.text, (await execa('uname', ['-r'])).stdout.trim());
  t.true(h.memoryBytes > 0);
  t.true(Math.abs(Date.parse(h.clock.rtcUtc) - Date.now()) < 60_000);
  const dmiUuid = '/sys/class/dmi/id/product_uuid';
  if (existsSync(dmiUuid)) t.is(h.system.uuid.text.toLowerCase(), readFileSync(dmiUuid, 'utf8').trim().toLowerCase());
});

test('the disk holding the running system is never write-blocked or released', async (t) => {
  const state = tempDir();
  const r = await custos(['disks', '--json'], state);
  const system = (JSON.parse(String(r.stdout)) as { disks: Disk[] }).disks.find((d) => d.roles.includes('running-system'));
  if (!system) {
    t.pass('no block device holds / here (an appliance running from RAM)');
    return;
  }
  const roBefore = sysfs.readText(`block/${system.name}/ro`);
  expectOneLineError(t, await custos(['writeblock', 'protect', system.devicePath], state), new RegExp(`${system.name} holds the running system`));
  expectOneLineError(
    t,
    await custos(['writeblock', 'release', system.devicePath, '--confirm', system.serial?.text ?? system.stableId], state),
    /refusing to release .*running system/,
  );
  t.is(sysfs.readText(`block/${system.name}/ro`), roBefore);
});
