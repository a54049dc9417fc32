/**
 * Where custos keeps what lasts between its invocations within one boot: the
 * write-block state, destination mounts, the tool hash cache. /run is a tmpfs:
 * like the kernel's read-only flags, it lasts until reboot.
 */
export function stateDir(): string {
  return process.env['CUSTOS_STATE_DIR'] ?? '/run/custos';
}
