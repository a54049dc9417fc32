// What the UI takes from the appliance's boot (rootfs/init). init writes "step seconds-since-power-on"
// lines to boot-times in the state directory (/run/custos there); the UI adds its own steps, once per boot, so the build's and the
// tests' report says where the time to the first screen goes. init also starts the UI while USB disks
// may still be coming up, and says in disks-settled there when the list of disks stopped changing.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { stateDir } from '../appliance/state-dir.js';

/** init waits at most 10 s for the disks to settle; past this the UI goes on (its list is live anyway). */
const SETTLE_WAIT_MS = 30_000;

function uptime(): number {
  return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
}

/** A recorder of UI steps; it records nothing off the appliance or when an earlier UI of this boot drew its screen. */
export function bootStamps(appliance: boolean): (step: string) => void {
  const bootTimes = path.join(stateDir(), 'boot-times');
  let on = false;
  try {
    on = appliance && !readFileSync(bootTimes, 'utf8').includes('ui-screen ');
  } catch {
    on = false;
  }
  const stamp = (step: string, before = 0) => {
    if (!on) return;
    try {
      appendFileSync(bootTimes, `${step} ${(uptime() - before).toFixed(2)}\n`);
    } catch {
      on = false;
    }
  };
  // The process began performance.now() ago: that is when Node started, before it loaded the code.
  stamp('ui-process', performance.now() / 1000);
  return stamp;
}

/** On the appliance, until init says the disks have settled (at once when it said so earlier, or off the appliance). */
export async function disksSettled(appliance: boolean): Promise<void> {
  const end = Date.now() + SETTLE_WAIT_MS;
  const settled = path.join(stateDir(), 'disks-settled');
  while (appliance && !existsSync(settled) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
}
