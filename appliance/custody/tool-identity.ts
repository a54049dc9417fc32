// Which custos made the record: its version, the runtime, and hashes of the
// running executable and of the code it loaded, so a later reader can tell
// exactly which build acquired the evidence.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { custosVersion } from '../version.js';

export interface ToolIdentity {
  name: 'custos';
  version: string;
  node: string;
  /** `from`: hashed by this run, or taken from this boot's cache for the same file (same device, inode, size, mtime and ctime). */
  executable: { path: string; sha256: string; from: 'computed' | 'cache' };
  /** For a non-bundled run: SHA-256 over the `sha256  relative-path` lines, sorted by path, of the compiled code and addon. */
  code: { root: string; files: number; sha256: string } | null;
}

// One reused buffer: reading a 120 MB executable whole would first have to allocate (and fault in) 120 MB.
const chunk = Buffer.allocUnsafe(4 * 1024 * 1024);

function fileSha256(file: string): string {
  const h = createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    for (let n = readSync(fd, chunk, 0, chunk.length, null); n > 0; n = readSync(fd, chunk, 0, chunk.length, null)) h.update(chunk.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

function walk(dir: string, out: string[]): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile() && (p.endsWith('.js') || p.endsWith('.node'))) out.push(p);
  }
}

let cached: ToolIdentity | null = null;

const CACHE_FILE = 'executable-sha256.json';

/**
 * Hashing the 120 MB executable costs about 0.1 s, at the start of every
 * acquisition. The result is kept in the state directory (a tmpfs, so per
 * boot, root only) under the file's identity: any change to the file changes
 * its ctime, and then it is hashed again.
 */
function executableSha256(file: string, cacheDir: string | null): { sha256: string; from: 'computed' | 'cache' } {
  const st = statSync(file, { bigint: true });
  const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  const cacheFile = cacheDir ? path.join(cacheDir, CACHE_FILE) : null;
  if (cacheFile) {
    try {
      const c = JSON.parse(readFileSync(cacheFile, 'utf8')) as { path?: string; key?: string; sha256?: string };
      if (c.path === file && c.key === key && typeof c.sha256 === 'string' && /^[0-9a-f]{64}$/.test(c.sha256)) return { sha256: c.sha256, from: 'cache' };
    } catch {
      // No cache yet, or unreadable: hash the file.
    }
  }
  const sha256 = fileSha256(file);
  if (cacheFile) {
    try {
      writeFileSync(cacheFile, JSON.stringify({ path: file, key, sha256 }), { mode: 0o600 });
    } catch {
      // A cache that cannot be written only costs time.
    }
  }
  return { sha256, from: 'computed' };
}

export function toolIdentity(cacheDir: string | null = null): ToolIdentity {
  if (cached) return cached;
  // out/appliance/custody -> repository root
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
  let code: ToolIdentity['code'] = null;
  const files: string[] = [];
  for (const d of [path.join(root, 'out/appliance'), path.join(root, 'native/build/Release')]) {
    try {
      if (statSync(d).isDirectory()) walk(d, files);
    } catch {
      // Not a development tree (the single executable carries its code inside).
    }
  }
  if (files.length > 0) {
    const lines = files.sort().map((f) => `${fileSha256(f)}  ${path.relative(root, f)}`);
    code = {
      root,
      files: files.length,
      sha256: createHash('sha256')
        .update(lines.join('\n') + '\n')
        .digest('hex'),
    };
  }
  cached = {
    name: 'custos',
    version: custosVersion(),
    node: process.version,
    executable: { path: process.execPath, ...executableSha256(process.execPath, cacheDir) },
    code,
  };
  return cached;
}
