// The NBD client reads from a qemu-nbd custos started itself, but that server
// parses attacker-made containers: if it were subverted or simply hung, what
// it sends back must end in a typed error, never a hang, a crash or a buffer
// overrun. Each case here is a unix-socket server speaking some broken or
// hostile variant of the protocol; the well-behaved one proves the client
// reads what a correct server sends.
import test from 'ava';
import { rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import path from 'node:path';
import { CustosError, DeviceIoError } from '../../appliance/errors.js';
import { NbdClient, type NbdTimeouts } from '../../appliance/vdisk/nbd-client.js';
import { tempDir } from '../helpers/loop.js';

const NBDMAGIC = Buffer.from('NBDMAGIC');
const IHAVEOPT = Buffer.from('IHAVEOPT');
const OPT_REPLY_MAGIC = 0x3e889045565a9n;
const SIMPLE_REPLY_MAGIC = 0x67446698;
const FAST: NbdTimeouts = { handshakeMs: 500, requestMs: 500 };
const DISK = Buffer.from(Array.from({ length: 64 * 1024 }, (_, i) => (i * 7 + (i >> 9)) & 0xff));

function hello(flags = 3): Buffer {
  const f = Buffer.alloc(2);
  f.writeUInt16BE(flags);
  return Buffer.concat([NBDMAGIC, IHAVEOPT, f]);
}

function optReply(type: number, body: Buffer, option = 7): Buffer {
  const h = Buffer.alloc(20);
  h.writeBigUInt64BE(OPT_REPLY_MAGIC, 0);
  h.writeUInt32BE(option, 8);
  h.writeUInt32BE(type >>> 0, 12);
  h.writeUInt32BE(body.length, 16);
  return Buffer.concat([h, body]);
}

function exportInfo(size: bigint): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(0, 0);
  b.writeBigUInt64BE(size, 2);
  b.writeUInt16BE(1, 10); // read-only
  return optReply(3, b);
}

const ACK = optReply(1, Buffer.alloc(0));

function simpleReply(handle: bigint, error = 0): Buffer {
  const r = Buffer.alloc(16);
  r.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
  r.writeUInt32BE(error, 4);
  r.writeBigUInt64BE(handle, 8);
  return r;
}

interface Request {
  handle: bigint;
  offset: number;
  length: number;
}

/** Collects the client's bytes and splits the transmission phase into read requests. */
function onRequests(s: Socket, each: (r: Request) => void): void {
  let buf = Buffer.alloc(0);
  let optionsDone = false;
  s.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    if (!optionsDone) {
      // 4 bytes of client flags, then one option: IHAVEOPT, code, length, data.
      if (buf.length < 20) return;
      const len = buf.readUInt32BE(16);
      if (buf.length < 20 + len) return;
      buf = buf.subarray(20 + len);
      optionsDone = true;
      s.emit('custos-options');
    }
    while (buf.length >= 28) {
      const type = buf.readUInt16BE(6);
      const r = { handle: buf.readBigUInt64BE(8), offset: Number(buf.readBigUInt64BE(16)), length: buf.readUInt32BE(24) };
      buf = buf.subarray(28);
      if (type === 0) each(r);
    }
  });
}

/** A server that greets correctly and offers DISK, then lets `serve` answer the reads. */
function goodHandshake(s: Socket, serve: (s: Socket, r: Request) => void, size = BigInt(DISK.length)): void {
  s.write(hello());
  s.once('custos-options', () => s.write(Buffer.concat([exportInfo(size), ACK])));
  onRequests(s, (r) => serve(s, r));
}

async function withServer<T>(behave: (s: Socket) => void, use: (sock: string) => Promise<T>): Promise<T> {
  const dir = tempDir();
  const sock = path.join(dir, 'nbd.sock');
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    behave(s);
  });
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    return await use(sock);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
}

function open(sock: string): Promise<NbdClient> {
  return NbdClient.open(sock, 'disk', 'test.vmdk', FAST);
}

test('a well-behaved server is read exactly, in pieces cut to its block size limit', async (t) => {
  await withServer(
    (s) => {
      s.write(hello());
      const block = Buffer.alloc(14);
      block.writeUInt16BE(3, 0);
      block.writeUInt32BE(512, 2);
      block.writeUInt32BE(4096, 6);
      block.writeUInt32BE(8192, 10);
      s.once('custos-options', () => s.write(Buffer.concat([exportInfo(BigInt(DISK.length)), optReply(3, block), ACK])));
      onRequests(s, (r) => {
        // One byte at a time: the client must reassemble replies split anywhere.
        const whole = Buffer.concat([simpleReply(r.handle), DISK.subarray(r.offset, r.offset + r.length)]);
        for (let i = 0; i < whole.length; i += 997) s.write(whole.subarray(i, i + 997));
      });
    },
    async (sock) => {
      const c = await open(sock);
      t.is(c.info.size, DISK.length);
      t.is(c.info.maxRequest, 8192);
      const buf = Buffer.alloc(40_000);
      t.is(await c.read(buf, 40_000, 1000), 40_000);
      t.true(buf.equals(DISK.subarray(1000, 41_000)));
      // A read past the end is cut to the export's size.
      t.is(await c.read(buf, 40_000, DISK.length - 100), 100);
      c.close();
    },
  );
});

interface Hostile {
  name: string;
  behave: (s: Socket) => void;
  /** Where the error must appear: opening, or the first read. */
  at: 'open' | 'read';
  error: RegExp;
}

const HOSTILE: Hostile[] = [
  { name: 'a silent server', behave: () => undefined, at: 'open', error: /no handshake in 0\.5 s/ },
  {
    name: 'a wrong greeting magic',
    behave: (s) => s.write(Buffer.concat([Buffer.from('NBDMAGIX'), IHAVEOPT, Buffer.from([0, 3])])),
    at: 'open',
    error: /not an NBD newstyle server/,
  },
  { name: 'no fixed newstyle', behave: (s) => s.write(hello(0)), at: 'open', error: /does not speak fixed newstyle/ },
  {
    name: 'an option reply of 16 MiB',
    behave: (s) => {
      s.write(hello());
      s.once('custos-options', () => {
        const h = optReply(3, Buffer.alloc(0));
        h.writeUInt32BE(16 * 1024 * 1024, 16);
        s.write(h);
      });
      onRequests(s, () => undefined);
    },
    at: 'open',
    error: /an option reply of 16777216 bytes/,
  },
  {
    name: 'an export larger than 2^53',
    behave: (s) => goodHandshake(s, () => undefined, 1n << 60n),
    at: 'open',
    error: /an export of 1152921504606846976 bytes/,
  },
  {
    name: 'no export size',
    behave: (s) => {
      s.write(hello());
      s.once('custos-options', () => s.write(ACK));
      onRequests(s, () => undefined);
    },
    at: 'open',
    error: /gave no export size/,
  },
  {
    name: 'a reply to another option',
    behave: (s) => {
      s.write(hello());
      s.once('custos-options', () => s.write(optReply(1, Buffer.alloc(0), 1)));
      onRequests(s, () => undefined);
    },
    at: 'open',
    error: /a reply to an option not asked/,
  },
  {
    name: 'an error reply to NBD_OPT_GO, with control bytes in its message',
    behave: (s) => {
      s.write(hello());
      s.once('custos-options', () => s.write(optReply(0x80000006, Buffer.from('no such export\x1b[2J\x07'))));
      onRequests(s, () => undefined);
    },
    at: 'open',
    error: /refused the export \(error 6\): no such export\?\[2J\?$/,
  },
  { name: 'a close in the greeting', behave: (s) => s.end(hello().subarray(0, 9)), at: 'open', error: /closed the connection/ },
  {
    name: 'a reply to a handle never asked',
    behave: (s) => goodHandshake(s, (_, r) => s.write(Buffer.concat([simpleReply(r.handle + 1000n), Buffer.alloc(r.length)]))),
    at: 'read',
    error: /a reply to handle \d+, never asked/,
  },
  {
    name: 'a bad reply magic (a structured reply, never negotiated)',
    behave: (s) =>
      goodHandshake(s, (_, r) => {
        const reply = simpleReply(r.handle);
        reply.writeUInt32BE(0x668e33ef, 0);
        s.write(reply);
      }),
    at: 'read',
    error: /without the simple reply magic/,
  },
  {
    name: 'a close in the middle of the data',
    behave: (s) => goodHandshake(s, (_, r) => s.end(Buffer.concat([simpleReply(r.handle), DISK.subarray(0, 100)]))),
    at: 'read',
    error: /closed the connection/,
  },
  { name: 'a read never answered', behave: (s) => goodHandshake(s, () => undefined), at: 'read', error: /did not answer a read at offset 4096 in 0\.5 s/ },
];

for (const h of HOSTILE) {
  test(`NBD: ${h.name} is a typed error, not a hang`, async (t) => {
    await withServer(h.behave, async (sock) => {
      const started = Date.now();
      if (h.at === 'open') {
        const e = await t.throwsAsync(open(sock), { instanceOf: CustosError, message: h.error });
        t.is(e?.code, 'ENBD');
      } else {
        const c = await open(sock);
        const e = await t.throwsAsync(c.read(Buffer.alloc(8192), 8192, 4096), { instanceOf: CustosError, message: h.error });
        t.is(e?.code, 'ENBD');
        // After a protocol failure the connection is dead: later reads fail at once, the same way.
        await t.throwsAsync(c.read(Buffer.alloc(512), 512, 0), { message: h.error });
        c.close();
      }
      t.true(Date.now() - started < 5000, 'answered within the timeouts');
    });
  });
}

test('an NBD error reply is a read error with its errno and offset, and the connection goes on', async (t) => {
  await withServer(
    (s) =>
      goodHandshake(s, (_, r) => {
        if (r.offset === 8192) s.write(simpleReply(r.handle, 5));
        else s.write(Buffer.concat([simpleReply(r.handle), DISK.subarray(r.offset, r.offset + r.length)]));
      }),
    async (sock) => {
      const c = await open(sock);
      const e = await t.throwsAsync(c.read(Buffer.alloc(512), 512, 8192), { instanceOf: DeviceIoError });
      t.is(e?.errno, 5);
      t.is(e?.offset, 8192);
      t.is(e?.device, 'test.vmdk');
      // A media error on one sector leaves the rest readable, as on a disk.
      const buf = Buffer.alloc(512);
      t.is(await c.read(buf, 512, 0), 512);
      t.true(buf.equals(DISK.subarray(0, 512)));
      c.close();
    },
  );
});
