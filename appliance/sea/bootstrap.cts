// The entry point of the custos single executable. The executable carries
// the compiled code, its runtime dependencies and the native addon as one
// tar asset; it unpacks them once into a root-only directory on a tmpfs
// (named by the asset's SHA-256, so a different build never reuses it) and
// runs the code a checkout runs, bundled into one file (scripts/bundle.mjs):
// loading about 300 modules one by one held the appliance's first screen back.
// One file to ship and to hash; inside, the same files the tests exercise.
import { createRequire, enableCompileCache } from 'node:module';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as sea from 'node:sea';

interface Entry {
  name: string;
  type: 'file' | 'dir';
  mode: number;
  data: Buffer;
}

function field(h: Buffer, at: number, len: number): string {
  const raw = h.subarray(at, at + len);
  const end = raw.indexOf(0);
  return raw.subarray(0, end < 0 ? len : end).toString('utf8');
}

/** Reads a ustar archive (regular files and directories only; nothing else is packed). */
function untar(buf: Buffer): Entry[] {
  const out: Entry[] = [];
  for (let at = 0; at + 512 <= buf.length;) {
    const h = buf.subarray(at, at + 512);
    if (h.every((b) => b === 0)) break;
    const prefix = field(h, 345, 155);
    const name = (prefix ? `${prefix}/` : '') + field(h, 0, 100);
    const size = parseInt(field(h, 124, 12).trim() || '0', 8);
    const mode = parseInt(field(h, 100, 8).trim() || '644', 8);
    const flag = String.fromCharCode(h[156] ?? 0);
    at += 512;
    if (flag === '0' || flag === '\0') out.push({ name, type: 'file', mode, data: buf.subarray(at, at + size) });
    else if (flag === '5') out.push({ name, type: 'dir', mode, data: Buffer.alloc(0) });
    else throw new Error(`custos executable: unexpected entry ${name} (type ${flag}) in its code archive`);
    at += Math.ceil(size / 512) * 512;
  }
  return out;
}

/** The name a fully unpacked tree carries in its .complete file, or '' when there is none. */
function completeName(tree: string): string {
  try {
    return readFileSync(path.join(tree, '.complete'), 'utf8');
  } catch {
    return '';
  }
}

function unpack(): string {
  // The archive's SHA-256, computed when the executable was built (both travel inside it).
  const id = sea.getAsset('app.id', 'utf8').trim();
  if (!/^[0-9a-f]{16}$/.test(id)) throw new Error('custos executable: its code archive has no valid name');
  // The appliance's initramfs carries the tree unpacked at build time (build-iso.sh): root's, read-only.
  const prebuilt = path.join('/usr/lib/custos/app', id);
  if (process.getuid?.() === 0 && completeName(prebuilt) === id) return prebuilt;
  const base = process.getuid?.() === 0 ? '/run/custos/app' : path.join(os.tmpdir(), `custos-app-${process.getuid?.() ?? 'u'}`);
  const root = path.join(base, id);
  if (existsSync(path.join(root, '.complete'))) return root;
  mkdirSync(base, { recursive: true, mode: 0o700 });
  chmodSync(base, 0o700);
  // Unpack beside, then rename: a crash never leaves a half tree that looks complete.
  const tmp = `${root}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  for (const e of untar(Buffer.from(sea.getAsset('app.tar')))) {
    if (e.name.includes('..') || path.isAbsolute(e.name)) throw new Error(`custos executable: unsafe path ${e.name}`);
    const target = path.join(tmp, e.name);
    if (e.type === 'dir') mkdirSync(target, { recursive: true, mode: 0o755 });
    else {
      mkdirSync(path.dirname(target), { recursive: true, mode: 0o755 });
      writeFileSync(target, e.data, { mode: e.mode & 0o755 });
    }
  }
  writeFileSync(path.join(tmp, '.complete'), id);
  try {
    renameSync(tmp, root);
  } catch {
    // Another custos unpacked the same build first.
    rmSync(tmp, { recursive: true, force: true });
  }
  return root;
}

const root = unpack();
process.env['CUSTOS_NATIVE'] ??= path.join(root, 'native/build/Release/custos_native.node');
const bundle = path.join(root, 'out/custos.cjs');
// V8's code for the bundle, kept beside it: compiling 2 MB of JavaScript took 0.4 s of the appliance's
// first screen under TCG. The ISO's tree carries it made at build time (build-sea.sh); elsewhere the
// first run writes it. V8 checks it against the source and ignores it when they differ.
enableCompileCache({ directory: path.join(root, '.compile-cache'), portable: true });
try {
  // The executable's own require loads built-in modules only; this one loads files.
  createRequire(bundle)(bundle);
} catch (e) {
  process.stderr.write(`custos: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(70);
}
