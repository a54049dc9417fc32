// Stage: read (virtual disks). The guest's disk as the guest saw it, read
// through QEMU's block layer: qemu-nbd, in the sandbox, opened read-only
// (shared locks: a VM still writing the files makes it refuse) with the chain
// given node by node, so QEMU opens no backing file of its own choosing, and
// exported on a unix socket in a private directory that only custos reads.
// qemu-nbd rather than qemu-storage-daemon: it alone loads a qcow2 internal
// snapshot read-only (--load-snapshot), and both are QEMU's same block layer.
import type { ResultPromise } from 'execa';
import { loadExeca } from '../load-execa.js';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CustosError } from '../errors.js';
import { safeText } from '../sanitize.js';
import type { SectorReader } from '../imaging/read/sector-reader.js';
import type { VirtualDiskChain } from './container-chain.js';
import { NbdClient } from './nbd-client.js';
import { FORMAT_OPTIONS, optValue } from './qemu-info.js';
import { insideSandbox, sandboxed, sandboxedLibvhdi, SANDBOX_RUN } from './qemu-sandbox.js';

const EXPORT = 'disk';
const SOCKET = 'nbd.sock';
const START_TIMEOUT_MS = 15_000;
/** Formats whose QEMU driver takes a backing node. */
const HAS_BACKING = new Set(['qcow2', 'vmdk']);

type BlockNode = { [key: string]: string | boolean | null | BlockNode };

/** The chain as one QEMU block node tree, top first; the base gets backing: null so that QEMU opens nothing it names. */
export function chainNode(chain: VirtualDiskChain): BlockNode {
  let below: BlockNode | null = null;
  for (const layer of [...chain.layers].reverse()) {
    const node: BlockNode = {
      driver: layer.info.format,
      'read-only': true,
      ...FORMAT_OPTIONS[layer.info.format],
      file: { driver: 'file', filename: insideSandbox(layer.file), locking: 'on' },
    };
    if (HAS_BACKING.has(layer.info.format)) node['backing'] = below;
    below = node;
  }
  if (!below) throw new CustosError('EVDISK', 'an empty chain');
  return below;
}

export interface VirtualReaderOptions {
  /** The id of a qcow2 internal snapshot of the top file: imaged instead of the current state. */
  snapshotId?: string | null;
}

export class VirtualDiskReader implements SectorReader {
  readonly name: string;
  readonly size: number;
  readonly sectorSize = 512;
  private closed = false;

  private constructor(
    name: string,
    private readonly nbd: NbdClient,
    private readonly server: ResultPromise,
    private readonly dir: string,
  ) {
    this.name = name;
    this.size = nbd.info.size;
  }

  /** Starts qemu-nbd on the chain in the sandbox and connects to it; the size must be the chain's virtual size. */
  static async open(chain: VirtualDiskChain, o: VirtualReaderOptions = {}): Promise<VirtualDiskReader> {
    const top = chain.layers[0];
    if (!top) throw new CustosError('EVDISK', 'an empty chain');
    const dir = mkdtempSync(path.join(tmpdir(), 'custos-nbd-'));
    const args = ['--read-only', '--persistent', '--shared=4', `--socket=${SANDBOX_RUN}/${SOCKET}`, `--export-name=${EXPORT}`];
    // A VHDX differencing chain: libvhdi shows the disk over its parents as one raw file, QEMU serves it.
    const cmd =
      chain.reader === 'libvhdi'
        ? await sandboxedLibvhdi(chain.folder, dir, top.file, chain.layers.length, [...args, '--format=raw'])
        : await sandboxed(chain.folder, dir, 'qemu-nbd', [
            ...args,
            ...(o.snapshotId ? [`--load-snapshot=snapshot.id=${optValue(o.snapshotId)}`] : []),
            `json:${JSON.stringify(chainNode(chain))}`,
          ]);
    const execa = await loadExeca();
    const server = execa(cmd.file, cmd.args, {
      env: cmd.env,
      reject: false,
      stdin: 'ignore',
      stdout: 'ignore',
      stderr: 'pipe',
    });
    const name = `${top.file} (virtual disk)`;
    try {
      const nbd = await connectWhenReady(server, path.join(dir, SOCKET), name, top.file);
      if (nbd.info.size !== chain.virtualSize) {
        nbd.close();
        throw new CustosError('EVDISK', `${top.file}: QEMU serves ${nbd.info.size} bytes, the container says ${chain.virtualSize}`);
      }
      return new VirtualDiskReader(name, nbd, server, dir);
    } catch (e) {
      server.kill('SIGKILL');
      await server.catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  read(buffer: Buffer, length: number, offset: number): Promise<number> {
    return this.nbd.read(buffer, length, offset);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.nbd.close();
    this.server.kill('SIGTERM');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Connects once qemu-nbd listens (its socket file exists a moment before it accepts); its own error if it exits first. */
async function connectWhenReady(server: ResultPromise, socket: string, name: string, file: string): Promise<NbdClient> {
  let exited = false;
  const done = server.then((r) => {
    exited = true;
    return r;
  });
  const until = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exited) {
      const r = await done;
      const why = safeText(String(r.stderr ?? '').split('\n')[0] ?? '', 300).replace(/^qemu-nbd: /, '');
      throw new CustosError('EVDISK', `${file}: QEMU cannot serve it: ${why || `exit ${r.exitCode ?? r.signal ?? '?'}`}`);
    }
    if (existsSync(socket)) {
      try {
        return await NbdClient.open(socket, EXPORT, name);
      } catch (e) {
        if (Date.now() > until) throw e;
      }
    }
    if (Date.now() > until) throw new CustosError('EVDISK', `${file}: qemu-nbd did not start in ${START_TIMEOUT_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
