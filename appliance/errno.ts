// errno numbers and their names, for errors that carry device, offset and errno.
import { constants } from 'node:os';

const names = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  if (!names.has(value)) names.set(value, name);
}

/** Symbolic name of an errno value, e.g. 5 -> "EIO"; unknown values stay numeric. */
export function errnoName(errno: number): string {
  return names.get(errno) ?? `errno ${errno}`;
}
