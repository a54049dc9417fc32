// The typed errors of every stage: a stable code, and where it applies the
// device, offset, errno and syscall.
import { errnoName } from './errno.js';

/**
 * Base of every error custos reports to a user. The message is one line that
 * names the problem; `code` is stable for scripts and tests.
 */
export class CustosError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The command line or an API call was given something it cannot act on. */
export class UsageError extends CustosError {
  constructor(message: string) {
    super('EUSAGE', message);
  }
}

/** A device was named that is missing, of the wrong kind, or may not be used this way. */
export class DeviceError extends CustosError {
  readonly device: string;
  constructor(code: string, device: string, message: string) {
    super(code, message);
    this.device = device;
  }
}

/** A system call on a device failed; carries device, offset and errno. */
export class DeviceIoError extends CustosError {
  readonly device: string;
  readonly offset: number | null;
  readonly errno: number;
  readonly syscall: string;
  constructor(device: string, syscall: string, errno: number, offset: number | null = null) {
    const at = offset === null ? '' : ` at offset ${offset}`;
    super(errnoName(errno), `${syscall} ${device}${at}: ${errnoName(errno)}`);
    this.device = device;
    this.offset = offset;
    this.errno = errno;
    this.syscall = syscall;
  }
}

/** Write-block could not be applied, confirmed or lifted as asked. */
export class WriteBlockError extends DeviceError {}

/** A check that failed before any byte was read; nothing was changed. */
export class PreflightError extends CustosError {}

/** The shape the native addon gives its errors: an Error with errno and syscall. */
export interface NativeErrorShape {
  errno: number;
  syscall: string;
}

export function isNativeError(e: unknown): e is Error & NativeErrorShape {
  return e instanceof Error && typeof (e as Partial<NativeErrorShape>).errno === 'number' && typeof (e as Partial<NativeErrorShape>).syscall === 'string';
}

/** Node's own fs errors (ENOENT and friends) also carry errno as a negative number. */
export function errnoOf(e: unknown): number | null {
  const n = e instanceof Error ? (e as Error & { errno?: unknown }).errno : undefined;
  return typeof n === 'number' ? Math.abs(n) : null;
}
