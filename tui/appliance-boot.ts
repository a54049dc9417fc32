// What the UI takes from the appliance's boot (rootfs/init). init writes "step seconds-since-power-on"
// lines to /run/custos/boot-times; the UI adds its own steps, once per boot, so the build's and the
// tests' report says where the time to the first screen goes. init also starts the UI while USB disks
// may still be coming up, and says in /run/custos/disks-settled when the list of disks stopped changing.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';

const BOOT_TIMES = '/run/custos/boot-times';
const DISKS_SETTLED = '/run/custos/disks-settled';
/** init waits at most 10 s for the disks to settle; past this the UI goes on (its list is live anyway). */
const SETTLE_WAIT_MS = 30_000;

function uptime(): number {
  return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
}

/** A recorder of UI steps; it records nothing off the appliance or when an earlier UI of this boot drew its screen. */
export function bootStamps(appliance: boolean): (step: string) => void {
  let on = false;
  try {
    on = appliance && !readFileSync(BOOT_TIMES, 'utf8').includes('ui-screen ');
  } catch {
    on = false;
  }
  const stamp = (step: string, at = uptime()) => {
    if (!on) return;
    try {
      appendFileSync(BOOT_TIMES, `${step} ${at.toFixed(2)}\n`);
    } catch {
      on = false;
    }
  };
  // The process began performance.now() ago: that is when Node started, before it loaded the code.
  stamp('ui-process', uptime() - performance.now() / 1000);
  return stamp;
}

/** On the appliance, until init says the disks have settled (at once when it said so earlier, or off the appliance). */
export async function disksSettled(appliance: boolean): Promise<void> {
  const end = Date.now() + SETTLE_WAIT_MS;
  while (appliance && !existsSync(DISKS_SETTLED) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
}
