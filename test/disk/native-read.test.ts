import test from 'ava';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { BlockDevice, allocAligned, allocSharedAligned } from '../../appliance/disk/block-device.js';
import { native } from '../../appliance/native.js';
import { DeviceIoError, DeviceError } from '../../appliance/errors.js';
import { patternLoop, tempDir } from '../helpers/loop.js';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

async function ddSha256(dev: string): Promise<string> {
  const r = await execa('sh', ['-c', `dd if=${dev} bs=1M iflag=direct status=none | sha256sum`]);
  return r.stdout.split(' ')[0] ?? '';
}

/** Whole-device O_DIRECT read through the addon in blocks that do not divide the device size. */
async function nativeSha256(dev: string, block: number): Promise<{ hash: string; bytes: number }> {
  const d = BlockDevice.open(dev, { direct: true });
  try {
    const size = d.size();
    const buf = allocAligned(block);
    const h = createHash('sha256');
    let off = 0;
    while (off < size) {
      const n = await d.readFully(buf, Math.min(block, size - off), off);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      off += n;
    }
    return { hash: h.digest('hex'), bytes: off };
  } finally {
    d.close();
  }
}

for (const sectorSize of [512, 4096] as const) {
  test(`O_DIRECT reads equal dd for a whole ${sectorSize}-byte-sector device with an odd sector count`, async (t) => {
    // 20481 sectors: not a multiple of any read block size used here.
    const loop = await patternLoop(20481 * sectorSize, { sectorSize });
    t.teardown(loop.detach);
    const d = BlockDevice.open(loop.dev, { direct: true });
    t.is(d.size(), 20481 * sectorSize);
    t.is(d.logicalSectorSize(), sectorSize);
    d.close();
    const expected = await ddSha256(loop.dev);
    for (const block of [1024 * 1024, 3 * sectorSize * 7]) {
      const got = await nativeSha256(loop.dev, block);
      t.is(got.bytes, 20481 * sectorSize);
      t.is(got.hash, expected, `block ${block}`);
    }
  });
}

test('the final sector is read exactly, and a read at the end returns 0 bytes', async (t) => {
  const loop = await patternLoop(20481 * 512);
  t.teardown(loop.detach);
  const d = BlockDevice.open(loop.dev, { direct: true });
  t.teardown(() => d.close());
  const buf = allocAligned(4096);
  const n = await d.read(buf, 4096, 20480 * 512);
  t.is(n, 512);
  t.is(buf.readUInt32LE(0), 20480, 'the last sector carries its own LBA');
  t.is(await d.read(buf, 4096, 20481 * 512), 0);
});

test('a misaligned O_DIRECT read fails with a typed error carrying device, offset and errno', async (t) => {
  const loop = await patternLoop(4096 * 64, { sectorSize: 4096 });
  t.teardown(loop.detach);
  const d = BlockDevice.open(loop.dev, { direct: true });
  t.teardown(() => d.close());
  const buf = allocAligned(8192);
  const err = await t.throwsAsync(d.read(buf, 4096, 512), { instanceOf: DeviceIoError });
  t.is(err?.device, loop.dev);
  t.is(err?.offset, 512);
  t.is(err?.errno, 22);
  t.is(err?.code, 'EINVAL');
  t.is(err?.syscall, 'pread');
});

test('aligned buffers are page aligned Buffers of the asked size', (t) => {
  for (const size of [512, 4096, 1 << 20]) {
    const b = allocAligned(size);
    t.true(Buffer.isBuffer(b));
    t.is(b.length, size);
    t.is(b.byteOffset % 4096, 0);
    t.true(b.every((x) => x === 0));
  }
  t.throws(() => allocAligned(0));
  t.throws(() => allocAligned(4096, 3000));
});

test('reads run off the event loop: the call returns before the data arrives, and the loop keeps turning', async (t) => {
  const size = 64 * 1024 * 1024;
  const loop = await patternLoop(size);
  t.teardown(loop.detach);
  const d = BlockDevice.open(loop.dev, { direct: true });
  t.teardown(() => d.close());
  const buf = allocAligned(size);
  // A read that blocked the main thread would always have finished before the setImmediate
  // callback runs. An asynchronous one usually has not, but a busy host can finish it first, so
  // the test asks for in-flight once in several tries: a synchronous read can never pass.
  let seenInFlight = 0;
  for (let attempt = 0; attempt < 8 && seenInFlight === 0; attempt++) {
    buf.fill(0);
    let done = false;
    const pending = d.read(buf, size, 0).then((n) => {
      done = true;
      return n;
    });
    await new Promise((r) => setImmediate(r));
    if (!done) seenInFlight++;
    t.is(await pending, size);
  }
  t.true(seenInFlight > 0, 'a 64 MiB O_DIRECT read was seen in flight on the thread pool');
  t.is(buf.readUInt32LE(size - 512), size / 512 - 1, 'last sector carries its LBA');
});

test('open refuses a missing device and a regular file with typed errors', (t) => {
  const missing = t.throws(() => BlockDevice.open('/dev/custos-no-such-device'), { instanceOf: DeviceIoError });
  t.is(missing?.code, 'ENOENT');
  const file = path.join(tempDir(), 'plain.img');
  writeFileSync(file, Buffer.alloc(4096));
  const notBlock = t.throws(() => BlockDevice.open(file), { instanceOf: DeviceError });
  t.is(notBlock?.code, 'ENOTBLK');
  const ok = BlockDevice.open(file, { allowRegularFile: true });
  t.is(ok.size(), 4096);
  ok.close();
});

test('O_EXCL holds the device: a second exclusive open and a mount fail while we hold it', async (t) => {
  const loop = await patternLoop(8 * 1024 * 1024);
  t.teardown(loop.detach);
  const held = BlockDevice.open(loop.dev, { direct: true, exclusive: true });
  t.teardown(() => held.close());
  const err = t.throws(() => BlockDevice.open(loop.dev, { exclusive: true }), { instanceOf: DeviceIoError });
  t.is(err?.code, 'EBUSY');
  const mnt = tempDir();
  const r = await execa('mount', ['-o', 'ro', loop.dev, mnt], { reject: false });
  t.not(r.exitCode, 0);
});

test('BLKFLSBUF and fdatasync run on the thread pool and resolve', async (t) => {
  const loop = await patternLoop(1024 * 1024);
  t.teardown(loop.detach);
  const d = BlockDevice.open(loop.dev);
  t.teardown(() => d.close());
  await t.notThrowsAsync(d.flushBuffers());
  await t.notThrowsAsync(d.fdatasync());
});

test('shared aligned buffers: O_DIRECT reads land in memory a worker thread sees without a copy', async (t) => {
  const loop = await patternLoop(1024 * 1024, { sectorSize: 4096 });
  t.teardown(loop.detach);
  const buf = allocSharedAligned(1024 * 1024);
  t.true(buf.buffer instanceof SharedArrayBuffer);
  t.is(native().addressAlignment(buf, 4096), 0, 'page aligned');
  const d = BlockDevice.open(loop.dev, { direct: true });
  t.teardown(() => d.close());
  t.is(await d.readFully(buf, buf.length, 0), buf.length);
  const expected = createHash('sha256').update(buf).digest('hex');
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const { createHash } = require('node:crypto');
     const view = new Uint8Array(workerData.sab, workerData.offset, workerData.length);
     parentPort.postMessage(createHash('sha256').update(view).digest('hex'));`,
    { eval: true, workerData: { sab: buf.buffer, offset: buf.byteOffset, length: buf.length } },
  );
  const got = await new Promise<string>((resolve, reject) => worker.once('message', resolve).once('error', reject));
  await worker.terminate();
  t.is(got, expected);
});
