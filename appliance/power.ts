// Powering the appliance off after the destinations are unmounted.
import { loadExeca } from './load-execa.js';

/**
 * Powers the appliance off at once after flushing every buffer. Callers unmount
 * destinations first. `-f`: the live system's init is a shell, not an init
 * system that would act on a poweroff request.
 */
export async function powerOffNow(): Promise<void> {
  const execa = await loadExeca();
  await execa('sync');
  await execa('poweroff', ['-f'], { reject: false });
}
