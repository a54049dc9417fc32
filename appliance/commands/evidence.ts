// `custos evidence mount DEV` / `custos evidence unmount DEV`: opens the file
// system of a write-blocked drive read-only, replaying nothing, so that the VM
// files on it can be given to `custos acquire --source FILE`; and closes it.
// The acquisition records the mount and the drive's write counters itself.
import path from 'node:path';
import { CustosError, UsageError } from '../errors.js';
import { resolveDevice } from '../disk/resolve-device.js';
import { blkidFields } from '../disk/volume-signatures.js';
import { evidenceMountRoot, mountEvidenceReadOnly, unmountEvidence } from '../vdisk/evidence-mount.js';
import { safeText } from '../sanitize.js';

export async function evidenceCommand(a: { action: string | undefined; device: string | undefined; json: boolean }): Promise<number> {
  if (a.action !== 'mount' && a.action !== 'unmount') throw new UsageError('evidence takes mount DEV or unmount DEV');
  if (!a.device) throw new UsageError(`evidence ${a.action} needs DEV`);
  const r = resolveDevice(a.device);
  const device = `/dev/${r.partition ?? r.disk}`;
  if (a.action === 'unmount') {
    await unmountEvidence({ dir: path.join(evidenceMountRoot(), path.basename(device)) });
    process.stdout.write(a.json ? JSON.stringify({ schema: 'custos.evidence/1', device, mounted: false }) + '\n' : `unmounted ${device}\n`);
    return 0;
  }
  const fields = await blkidFields(device);
  if (!fields?.['TYPE'] || fields['USAGE'] !== 'filesystem') throw new CustosError('EMOUNT', `${device}: no file system found (blkid)`);
  const m = await mountEvidenceReadOnly({ device, fsType: fields['TYPE'], label: fields['LABEL'] ?? null });
  if (a.json) process.stdout.write(JSON.stringify({ schema: 'custos.evidence/1', ...m, mounted: true }) + '\n');
  else process.stdout.write(`${device} (${safeText(m.fsType, 20)}) mounted read-only at ${m.dir} with ${m.options.join(',')}; still write-blocked\n`);
  return 0;
}
