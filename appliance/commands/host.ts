// `custos host`: the machine's identity as the custody record carries it.
import { hostIdentity } from '../host-identity.js';
import { humanSize } from '../format.js';
import { formatStorage } from './disks.js';

export async function hostCommand(json: boolean): Promise<number> {
  const h = await hostIdentity();
  if (json) {
    process.stdout.write(JSON.stringify({ schema: 'custos.host/1', host: h }, null, 2) + '\n');
    return 0;
  }
  const lines = [
    `system     ${h.system.manufacturer.text} ${h.system.model.text} (serial ${h.system.serial.text || '-'}, uuid ${h.system.uuid.text || '-'})`,
    `baseboard  ${h.baseboard.manufacturer.text} ${h.baseboard.model.text} (serial ${h.baseboard.serial.text || '-'})`,
    `bios       ${h.bios.vendor.text} ${h.bios.version.text} ${h.bios.releaseDate.text}`,
    `cpu        ${h.cpu.brand.text} (${h.cpu.physicalCores} cores, ${h.cpu.cores} threads)`,
    `memory     ${h.memoryBytes} (${humanSize(h.memoryBytes)})`,
    `clock      ${h.clock.rtcUtc} (timezone ${h.clock.timezone.text}, up ${Math.round(h.clock.uptimeSeconds)} s)`,
    `kernel     ${h.os.kernel.text} ${h.os.arch}`,
    formatStorage(h.storage),
  ];
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
