// Stage: found (virtual disks). QEMU runs in a sandbox made by bubblewrap:
// the folder the examiner chose is its only view of the evidence, bound
// read-only at /vm, with no other file system than /usr (the programs), a
// /dev without disks, no network and no capabilities. Whatever a container
// names (a backing file, an extent, a data file, /dev/sda), QEMU cannot open
// anything outside that folder, and cannot write inside it: the mount itself
// is read-only.
import path from 'node:path';
import { toolPath, vmTools } from './vm-tools.js';

/** Where the chosen folder appears inside the sandbox. */
export const SANDBOX_FOLDER = '/vm';
/** Where the socket directory appears inside the sandbox. */
export const SANDBOX_RUN = '/run/custos';
/** Where libvhdi's vhdimount shows the disks inside the sandbox: vhdi1 the base alone, the last one the top over its parents. */
const VHDI_MOUNT = '/tmp/vhdi';

/** bwrap's arguments up to the command: the folder read-only at /vm, and a socket directory if the command serves one. */
export function sandboxArgs(folder: string, socketDir: string | null, usr = '/usr', fuse = false): string[] {
  return [
    '--unshare-all',
    '--die-with-parent',
    '--new-session',
    '--cap-drop',
    'ALL',
    // A FUSE reader mounts inside: CAP_SYS_ADMIN in a user namespace of its own, which gives no power
    // over anything outside it, and /dev/fuse. What reads its mount then runs with no capability.
    ...(fuse ? ['--unshare-user', '--cap-add', 'CAP_SYS_ADMIN'] : []),
    // The tools tree's libraries are found inside through /usr: no path from outside is kept.
    '--unsetenv',
    'LD_LIBRARY_PATH',
    '--ro-bind',
    usr,
    '/usr',
    '--symlink',
    'usr/lib',
    '/lib',
    '--symlink',
    'usr/lib64',
    '/lib64',
    '--symlink',
    'usr/bin',
    '/bin',
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    ...(fuse ? ['--dev-bind', '/dev/fuse', '/dev/fuse'] : []),
    '--tmpfs',
    '/tmp',
    ...(fuse ? ['--dir', VHDI_MOUNT] : []),
    '--ro-bind',
    folder,
    SANDBOX_FOLDER,
    ...(socketDir ? ['--bind', socketDir, SANDBOX_RUN] : []),
    '--chdir',
    SANDBOX_FOLDER,
  ];
}

/** A file's path inside the sandbox, from its path relative to the chosen folder. */
export function insideSandbox(relative: string): string {
  return path.posix.join(SANDBOX_FOLDER, relative);
}

/** A path QEMU printed from inside the sandbox, relative to the chosen folder; null if it is outside it. */
export function fromSandbox(p: string): string | null {
  const abs = path.posix.resolve(SANDBOX_FOLDER, p);
  if (abs === SANDBOX_FOLDER) return null;
  return abs.startsWith(`${SANDBOX_FOLDER}/`) ? abs.slice(SANDBOX_FOLDER.length + 1) : null;
}

/**
 * The command that serves a VHDX differencing chain: vhdimount (libvhdi) opens the top file and its
 * parents inside the sandbox, and qemu-nbd, with every capability dropped by a second bwrap, exports
 * the disk it shows as raw. `layers` is how many files vhdimount opens (it names them vhdi1..vhdiN).
 */
export async function sandboxedLibvhdi(
  folder: string,
  socketDir: string,
  top: string,
  layers: number,
  nbdArgs: string[],
): Promise<{ file: string; args: string[]; env: Record<string, string> }> {
  const t = await vmTools();
  const script = [
    'set -e',
    `vhdimount "$1" ${VHDI_MOUNT} >/dev/null`,
    'shift',
    'exec bwrap --bind / / --dev-bind /dev /dev --cap-drop ALL --die-with-parent --new-session qemu-nbd "$@"',
  ].join('\n');
  return {
    file: toolPath(t, 'bwrap'),
    args: [...sandboxArgs(folder, socketDir, t.usr, true), 'sh', '-c', script, 'sh', insideSandbox(top), ...nbdArgs, `${VHDI_MOUNT}/vhdi${layers}`],
    env: t.env,
  };
}

/** The command that runs `program` with `args` in the sandbox: bwrap from the tools tree, with /usr bound to it. */
export async function sandboxed(
  folder: string,
  socketDir: string | null,
  program: 'qemu-img' | 'qemu-nbd',
  args: string[],
): Promise<{ file: string; args: string[]; env: Record<string, string> }> {
  const t = await vmTools();
  return { file: toolPath(t, 'bwrap'), args: [...sandboxArgs(folder, socketDir, t.usr), program, ...args], env: t.env };
}
