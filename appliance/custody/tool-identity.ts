// Which custos made the record: its version, the runtime, and hashes of the
// running executable and of the code it loaded, so a later reader can tell
// exactly which build acquired the evidence.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { custosVersion } from '../version.js';

export interface ToolIdentity {
  name: 'custos';
  version: string;
  node: string;
  executable: { path: string; sha256: string };
  /** For a non-bundled run: SHA-256 over the `sha256  relative-path` lines, sorted by path, of the compiled code and addon. */
  code: { root: string; files: number; sha256: string } | null;
}

function fileSha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function walk(dir: string, out: string[]): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile() && (p.endsWith('.js') || p.endsWith('.node'))) out.push(p);
  }
}

let cached: ToolIdentity | null = null;

export function toolIdentity(): ToolIdentity {
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
    code = { root, files: files.length, sha256: createHash('sha256').update(lines.join('\n') + '\n').digest('hex') };
  }
  cached = { name: 'custos', version: custosVersion(), node: process.version, executable: { path: process.execPath, sha256: fileSha256(process.execPath) }, code };
  return cached;
}
