// `custos disks`: the inventory (disk/inventory.ts) as a table or JSON.
import { listDisks, type Disk } from '../disk/inventory.js';
import { driveWarnings, probeDrive } from '../disk/drive-probe.js';
import { findEncryptedVolumes, volumeWarnings } from '../disk/encrypted-volumes.js';
import { listStorageControllers, type StorageInventory } from '../disk/storage-controllers.js';
import { humanSize, table } from '../format.js';

export const DISKS_SCHEMA = 'custos.disks/1';

function roleText(d: Disk): string {
  if (d.roles.includes('running-system')) return 'system';
  if (d.roles.includes('boot-medium')) return 'boot';
  if (d.twins.length > 0) return 'twin';
  return '-';
}

/** Human form: one row per disk, partitions indented under it, warnings after. */
export function formatDisks(disks: Disk[]): string {
  const rows: string[][] = [];
  for (const d of disks) {
    rows.push([
      d.name,
      d.transport,
      `${d.sizeBytes} (${humanSize(d.sizeBytes)})`,
      `${d.logicalSectorSize}/${d.physicalSectorSize}`,
      d.readOnly ? 'RO' : 'rw',
      roleText(d),
      d.model?.text ?? '-',
      d.serial?.text ?? '-',
      d.stableId,
    ]);
    for (const p of d.partitions) {
      rows.push([
        `  ${p.name}`,
        '',
        `${p.sizeBytes} (${humanSize(p.sizeBytes)})`,
        `@${p.startBytes}`,
        p.readOnly ? 'RO' : 'rw',
        p.mounts.length ? 'mounted' : '',
        '',
        '',
        '',
      ]);
    }
    for (const w of d.warnings) rows.push([`  ! ${w.message}`]);
  }
  // Warning rows span the whole line, so lay out only the real rows as a table.
  const header = ['NAME', 'TRAN', 'SIZE (BYTES)', 'SECTOR', 'WB', 'ROLE', 'MODEL', 'SERIAL', 'STABLE ID'];
  const tableRows = rows.filter((r) => r.length > 1);
  const laid = table(header, tableRows).split('\n');
  const out: string[] = [laid[0] ?? ''];
  let i = 1;
  for (const r of rows) out.push(r.length > 1 ? (laid[i++] ?? '') : (r[0] ?? ''));
  if (disks.length === 0) out.push('(no block devices)');
  return out.join('\n');
}

/** The controllers behind the disks, and first what hides disks: a controller without a driver shows none of them. */
export function formatStorage(s: StorageInventory): string {
  const lines = s.warnings.map((w) => `! ${w.message}`);
  lines.push(
    'controllers: ' +
      (s.controllers.length
        ? s.controllers
            .map((c) =>
              `${c.bus} ${c.address} ${c.id ?? ''} ${c.kind} [${c.driver ?? 'NO DRIVER'}]${c.disks.length ? ` ${c.disks.join(' ')}` : ''}`.replace(
                / {2,}/g,
                ' ',
              ),
            )
            .join('; ')
        : 'none found'),
  );
  return lines.join('\n');
}

/** Lists the disks, each with its drive's own answers (drive-probe.ts) and the warnings they raise. */
export async function disksCommand(json: boolean): Promise<number> {
  const disks = listDisks();
  const drives = await Promise.all(disks.map((d) => probeDrive(d)));
  const volumes = await Promise.all(disks.map((d) => findEncryptedVolumes(d)));
  disks.forEach((d, i) => d.warnings.push(...driveWarnings(drives[i] as Awaited<ReturnType<typeof probeDrive>>), ...volumeWarnings(volumes[i] ?? [])));
  const storage = listStorageControllers(disks.map((d) => d.name));
  if (json)
    process.stdout.write(
      JSON.stringify({ schema: DISKS_SCHEMA, disks: disks.map((d, i) => ({ ...d, drive: drives[i], encryptedVolumes: volumes[i] })), storage }, null, 2) + '\n',
    );
  else process.stdout.write(formatDisks(disks) + '\n' + formatStorage(storage) + '\n');
  return 0;
}
