// execa, loaded at its first use rather than at start: it and the Node built-ins it pulls in (child
// processes, streams) held the appliance's first screen back by about 0.7 s on a slow CPU (TCG), and
// no program runs before that screen is up.
import type { execa as Execa } from 'execa';

let loading: Promise<typeof import('execa')> | undefined;

/** execa itself, once loaded (the module system keeps it: later calls cost nothing). */
export async function loadExeca(): Promise<typeof Execa> {
  loading ??= import('execa');
  return (await loading).execa;
}
