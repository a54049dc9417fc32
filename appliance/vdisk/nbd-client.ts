// Stage: read (virtual disks). A client of the NBD protocol's fixed newstyle
// handshake and its simple replies, over a unix socket to the qemu-nbd that
// custos started in its sandbox: the one channel through which guest data
// reaches the pipeline. It only ever sends NBD_OPT_GO, NBD_CMD_READ and
// NBD_CMD_DISC; the export is read-only on the server side as well.
// Protocol: https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md
import { connect, type Socket } from 'node:net';
import { CustosError, DeviceIoError } from '../errors.js';

const NBDMAGIC = 0x4e42444d41474943n; // "NBDMAGIC"
const IHAVEOPT = 0x49484156454f5054n; // "IHAVEOPT"
const OPT_REPLY_MAGIC = 0x3e889045565a9n;
const REQUEST_MAGIC = 0x25609513;
const SIMPLE_REPLY_MAGIC = 0x67446698;
const FLAG_FIXED_NEWSTYLE = 1;
const FLAG_NO_ZEROES = 2;
const OPT_GO = 7;
const REP_ACK = 1;
const REP_INFO = 3;
const INFO_EXPORT = 0;
const INFO_BLOCK_SIZE = 3;
const CMD_READ = 0;
const CMD_DISC = 2;
/** The largest option reply custos accepts: an export name and a few infos need far less. */
const MAX_OPTION_REPLY = 64 * 1024;
/** Requests are cut to this unless the server says less (qemu-nbd takes 32 MiB). */
const DEFAULT_MAX_REQUEST = 32 * 1024 * 1024;

export interface NbdTimeouts {
  /** From connect to the end of the handshake: qemu-nbd answers in milliseconds. */
  handshakeMs: number;
  /**
   * One read request. The container files may sit on a failing drive whose
   * kernel retries take minutes before QEMU reports EIO (a read error, handled
   * as on a disk); a request that outlasts this is a hung server, and the
   * acquisition stops rather than wait forever.
   */
  requestMs: number;
}
export const NBD_TIMEOUTS: NbdTimeouts = { handshakeMs: 15_000, requestMs: 600_000 };

interface Pending {
  timer: NodeJS.Timeout;
  buffer: Buffer;
  at: number;
  length: number;
  offset: number;
  resolve: (n: number) => void;
  reject: (e: Error) => void;
}

export interface NbdExport {
  size: number;
  /** The largest request the server takes. */
  maxRequest: number;
}

/** The errno an NBD error reply carries is the protocol's own small set (EPERM, EIO, ENOMEM, EINVAL, ENOSPC, EOVERFLOW, ENOTSUP, ESHUTDOWN), numbered as Linux does. */
export class NbdClient {
  private readonly socket: Socket;
  private readonly name: string;
  private buf: Buffer = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;
  private readonly pending = new Map<bigint, Pending>();
  private nextHandle = 1n;
  private current: { p: Pending; handle: bigint; left: number } | null = null;
  /** Where the socket reads go when they cannot go straight to their place: the handshake, split replies. */
  private readonly scratch = Buffer.alloc(64 * 1024);
  private readonly header = Buffer.alloc(16);
  /** The buffer handed to the socket for its next read, when it is a reply's header or its place in the caller's buffer. */
  private direct: Buffer | null = null;
  info: NbdExport = { size: 0, maxRequest: DEFAULT_MAX_REQUEST };

  private constructor(
    socketPath: string,
    name: string,
    private readonly timeouts: NbdTimeouts,
  ) {
    this.name = name;
    // Reads land in buffers we choose (onread): a reply's data straight into the caller's buffer,
    // without a copy or an allocation per read; this is the path every byte of guest data takes.
    this.socket = connect({
      path: socketPath,
      onread: { buffer: () => this.nextReadBuffer(), callback: (n: number, b: Uint8Array) => (this.onRead(n, b), true) },
    });
    this.socket.on('error', (e) => this.fail(new CustosError('ENBD', `${name}: ${e.message}`)));
    this.socket.on('close', () => this.fail(new CustosError('ENBD', `${name}: the NBD server closed the connection`)));
  }

  /** Connects, negotiates the export with NBD_OPT_GO and returns a client ready for reads. */
  static async open(socketPath: string, exportName: string, name: string, timeouts: NbdTimeouts = NBD_TIMEOUTS): Promise<NbdClient> {
    const c = new NbdClient(socketPath, name, timeouts);
    const socket = c.socket;
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    }).catch((e: Error) => {
      throw new CustosError('ENBD', `${name}: cannot connect to the NBD server: ${e.message}`);
    });
    const timer = setTimeout(() => c.fail(c.protocol(`no handshake in ${timeouts.handshakeMs / 1000} s`)), timeouts.handshakeMs);
    try {
      await c.handshake(exportName);
    } catch (e) {
      socket.destroy();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return c;
  }

  private async handshake(exportName: string): Promise<void> {
    const hello = await this.take(18);
    if (hello.readBigUInt64BE(0) !== NBDMAGIC || hello.readBigUInt64BE(8) !== IHAVEOPT) throw this.protocol('not an NBD newstyle server');
    const flags = hello.readUInt16BE(16);
    if (!(flags & FLAG_FIXED_NEWSTYLE)) throw this.protocol('the server does not speak fixed newstyle');
    const client = Buffer.alloc(4);
    client.writeUInt32BE(FLAG_FIXED_NEWSTYLE | (flags & FLAG_NO_ZEROES));
    const nameBytes = Buffer.from(exportName, 'utf8');
    const data = Buffer.alloc(4 + nameBytes.length + 2 + 2);
    data.writeUInt32BE(nameBytes.length, 0);
    nameBytes.copy(data, 4);
    data.writeUInt16BE(1, 4 + nameBytes.length);
    data.writeUInt16BE(INFO_BLOCK_SIZE, 6 + nameBytes.length);
    const opt = Buffer.alloc(16);
    opt.writeBigUInt64BE(IHAVEOPT, 0);
    opt.writeUInt32BE(OPT_GO, 8);
    opt.writeUInt32BE(data.length, 12);
    this.socket.write(Buffer.concat([client, opt, data]));
    let size: number | null = null;
    for (;;) {
      const head = await this.take(20);
      if (head.readBigUInt64BE(0) !== OPT_REPLY_MAGIC || head.readUInt32BE(8) !== OPT_GO) throw this.protocol('a reply to an option not asked');
      const type = head.readUInt32BE(12);
      const len = head.readUInt32BE(16);
      if (len > MAX_OPTION_REPLY) throw this.protocol(`an option reply of ${len} bytes`);
      const body = await this.take(len);
      if (type === REP_ACK) break;
      if (type & 0x80000000)
        throw new CustosError(
          'ENBD',
          `${this.name}: the NBD server refused the export (error ${type & 0x7fffffff}): ${body
            .toString('latin1')
            .replace(/[^\x20-\x7e]/g, '?')
            .slice(0, 200)}`,
        );
      if (type !== REP_INFO || len < 2) continue;
      const info = body.readUInt16BE(0);
      if (info === INFO_EXPORT && len >= 12) {
        const s = body.readBigUInt64BE(2);
        if (s > BigInt(Number.MAX_SAFE_INTEGER)) throw this.protocol(`an export of ${s} bytes`);
        size = Number(s);
      } else if (info === INFO_BLOCK_SIZE && len >= 14) {
        const max = body.readUInt32BE(10);
        if (max >= 4096) this.info.maxRequest = Math.min(max, DEFAULT_MAX_REQUEST);
      }
    }
    if (size === null) throw this.protocol('the server gave no export size');
    this.info.size = size;
  }

  /** Reads length bytes at offset into buffer; an error reply rejects with its errno. */
  read(buffer: Buffer, length: number, offset: number): Promise<number> {
    if (this.failure) return Promise.reject(this.failure);
    const end = Math.min(offset + length, this.info.size);
    if (end <= offset) return Promise.resolve(0);
    const parts: Promise<number>[] = [];
    for (let at = 0; offset + at < end; at += this.info.maxRequest) {
      const n = Math.min(this.info.maxRequest, end - offset - at);
      parts.push(this.request(buffer, at, n, offset + at));
    }
    return Promise.all(parts).then((ns) => ns.reduce((a, b) => a + b, 0));
  }

  private request(buffer: Buffer, at: number, length: number, offset: number): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const handle = this.nextHandle++;
      const timer = setTimeout(
        () =>
          this.fail(new CustosError('ENBD', `${this.name}: the NBD server did not answer a read at offset ${offset} in ${this.timeouts.requestMs / 1000} s`)),
        this.timeouts.requestMs,
      );
      this.pending.set(handle, { timer, buffer, at, length, offset, resolve, reject });
      const req = Buffer.alloc(28);
      req.writeUInt32BE(REQUEST_MAGIC, 0);
      req.writeUInt16BE(0, 4);
      req.writeUInt16BE(CMD_READ, 6);
      req.writeBigUInt64BE(handle, 8);
      req.writeBigUInt64BE(BigInt(offset), 16);
      req.writeUInt32BE(length, 24);
      this.socket.write(req);
    });
  }

  /** Says goodbye (NBD_CMD_DISC) and closes the socket. */
  close(): void {
    if (!this.failure && !this.socket.destroyed) {
      const req = Buffer.alloc(28);
      req.writeUInt32BE(REQUEST_MAGIC, 0);
      req.writeUInt16BE(CMD_DISC, 6);
      this.socket.end(req);
    }
    this.fail(new CustosError('ENBD', `${this.name}: closed`));
    this.socket.destroy();
  }

  private protocol(what: string): CustosError {
    return new CustosError('ENBD', `${this.name}: NBD protocol error: ${what}`);
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    // No read may land in a caller's buffer once its request has failed.
    this.socket.destroy();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(e);
    }
    this.pending.clear();
    this.current = null;
    this.waiter?.();
  }

  /** The buffer for the socket's next read: the rest of the reply being received, a fresh header, or scratch. */
  private nextReadBuffer(): Buffer {
    this.direct = null;
    if (this.failure || this.nextHandle === 1n || this.buf.length > 0) return this.scratch;
    if (this.current) {
      const { p, left } = this.current;
      this.direct = p.buffer.subarray(p.at + p.length - left, p.at + p.length);
    } else if (this.pending.size > 0) this.direct = this.header;
    return this.direct ?? this.scratch;
  }

  private onRead(n: number, b: Uint8Array): void {
    if (this.failure) return;
    if (b !== this.direct) return this.onData(Buffer.from(b.subarray(0, n)));
    if (b === this.header) return this.onData(Buffer.from(this.header.subarray(0, n)));
    // Straight into the caller's buffer: at most what the reply still owes.
    const c = this.current;
    if (!c) return;
    c.left -= n;
    if (c.left === 0) {
      this.pending.delete(c.handle);
      this.current = null;
      clearTimeout(c.p.timer);
      c.p.resolve(c.p.length);
    }
  }

  private onData(d: Buffer): void {
    if (this.failure) return;
    // In the transmission phase, data goes straight into the caller's buffer.
    let rest = this.buf.length > 0 ? Buffer.concat([this.buf, d]) : d;
    this.buf = Buffer.alloc(0);
    if (this.nextHandle === 1n) {
      this.buf = rest;
      this.waiter?.();
      return;
    }
    while (rest.length > 0 && !this.failure) {
      if (this.current) {
        const n = Math.min(this.current.left, rest.length);
        const p = this.current.p;
        rest.copy(p.buffer, p.at + p.length - this.current.left, 0, n);
        this.current.left -= n;
        rest = rest.subarray(n);
        if (this.current.left === 0) {
          this.pending.delete(this.current.handle);
          this.current = null;
          clearTimeout(p.timer);
          p.resolve(p.length);
        }
        continue;
      }
      if (rest.length < 16) {
        this.buf = Buffer.from(rest);
        return;
      }
      if (rest.readUInt32BE(0) !== SIMPLE_REPLY_MAGIC) return this.fail(this.protocol('a reply without the simple reply magic'));
      const error = rest.readUInt32BE(4);
      const handle = rest.readBigUInt64BE(8);
      rest = rest.subarray(16);
      const p = this.pending.get(handle);
      if (!p) return this.fail(this.protocol(`a reply to handle ${handle}, never asked`));
      if (error !== 0) {
        this.pending.delete(handle);
        clearTimeout(p.timer);
        p.reject(new DeviceIoError(this.name, 'read', error, p.offset));
        continue;
      }
      this.current = { p, handle, left: p.length };
    }
  }

  /** Waits for n bytes of the handshake. */
  private async take(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.failure) throw this.failure;
      await new Promise<void>((r) => (this.waiter = r));
      this.waiter = null;
    }
    const b = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return Buffer.from(b);
  }
}
