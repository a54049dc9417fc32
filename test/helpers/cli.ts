import { execa, type Result } from 'execa';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CUSTOS = path.join(root, 'appliance/bin/custos');
export const REPO_ROOT = root;

/** Runs the real CLI (the shell launcher on the pinned runtime) with its own state directory. */
export function custos(args: string[], stateDir: string, options: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<Result> {
  return execa(CUSTOS, args, {
    reject: false,
    env: { CUSTOS_STATE_DIR: stateDir, ...options.env },
    timeout: options.timeoutMs ?? 60_000,
  });
}
