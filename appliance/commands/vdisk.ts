// `custos vdisk FILE`: the chain behind a virtual disk file as custos would
// read it, before any acquisition: each layer, every container file with its
// size and mtime, the identifiers and the top layer's internal snapshots. It
// asks QEMU about the headers only (in the sandbox); no guest data is read and
// nothing is hashed, so it is quick on a large chain.
import { humanSize } from '../format.js';
import { safeText } from '../sanitize.js';
import { chainLines } from '../vdisk/chain-text.js';
import { resolveChain } from '../vdisk/container-chain.js';
import { virtualFormatOption } from '../vdisk/qemu-info.js';
import { ContainerWatch, readerIdentity } from '../vdisk/virtual-disk-record.js';
import { UsageError } from '../errors.js';

export const VDISK_SCHEMA = 'custos.vdisk/1';

export async function vdiskCommand(a: { file: string | undefined; folder: string | undefined; format: string | undefined; json: boolean }): Promise<number> {
  if (!a.file) throw new UsageError('vdisk needs FILE');
  const format = virtualFormatOption(a.format);
  const chain = await resolveChain(a.file, { ...(a.folder !== undefined ? { folder: a.folder } : {}), ...(format ? { format } : {}) });
  const record = new ContainerWatch(chain).record({ given: a.file, snapshot: null, sha256: [], changed: null, reader: await readerIdentity(chain.reader) });
  const snapshots = (chain.layers[0]?.info.snapshots ?? []).map((s) => ({
    id: safeText(s.id, 100),
    name: safeText(s.name, 200),
    dateSec: s.dateSec,
    vmStateBytes: s.vmStateBytes,
  }));
  if (a.json) {
    process.stdout.write(JSON.stringify({ schema: VDISK_SCHEMA, virtualDisk: record, internalSnapshots: snapshots }, null, 2) + '\n');
    return 0;
  }
  const lines = [
    `virtual disk  ${record.virtualSize} bytes (${humanSize(record.virtualSize)}), ${record.layers.length} layer(s), held to ${record.folder}`,
    ...chainLines(record).map((l) => `  ${l}`),
    'files (every one QEMU reads; none outside the folder):',
    ...record.files.map((f) => `  ${f.role.padEnd(9)} ${String(f.sizeBytes).padStart(14)}  ${f.mtime}  ${f.file}`),
    ...(record.identifiers.length ? [`identifiers   ${record.identifiers.join(', ')}`] : []),
    ...(snapshots.length
      ? [
          `internal snapshots of ${record.layers[0]?.file ?? ''} (acquire --snapshot ID|NAME):`,
          ...snapshots.map(
            (s) =>
              `  ${s.id.padEnd(4)} "${s.name}"${s.dateSec !== null ? `  ${new Date(s.dateSec * 1000).toISOString()}` : ''}${s.vmStateBytes ? `  with ${humanSize(s.vmStateBytes)} of VM state` : ''}`,
          ),
        ]
      : []),
    `read with     ${record.reader.program}`,
    `sandbox       ${record.reader.sandbox}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
