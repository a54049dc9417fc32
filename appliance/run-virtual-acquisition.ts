// The acquisition of a virtual disk (VMDK, VHD/VHDX, QCOW2, VDI, raw, with
// their snapshot chains): the chain is resolved and held to the examiner's
// folder, QEMU's block layer serves the guest's disk read-only from a
// sandbox, the container files are hashed alongside, and the same engine
// and custody record as for a physical disk do the rest.
import path from 'node:path';
import { CustosError } from './errors.js';
import { event } from './events.js';
import { sanitizeText } from './sanitize.js';
import type { SourceInfo } from './imaging/image-record.js';
import { journalCase, journalSourceProblem } from './imaging/resume/journal.js';
import { continuedLog } from './custody/log-resume.js';
import { FileHasher } from './imaging/hash/file-hash.js';
import { acquireWithCustody, type AcquisitionCommon, type AcquisitionOutcome } from './acquisition-session.js';
import { resolveChain, type VirtualDiskChain } from './vdisk/container-chain.js';
import { FORMAT_NAMES, type InternalSnapshot, type VirtualFormat } from './vdisk/qemu-info.js';
import { VirtualDiskReader } from './vdisk/virtual-disk-reader.js';
import { chainIdentifiers, ContainerWatch, readerIdentity } from './vdisk/virtual-disk-record.js';
import { fileSystemText } from './vdisk/container-filesystem.js';
import { chainText } from './vdisk/chain-text.js';

export interface VirtualAcquisitionRequest extends AcquisitionCommon {
  /** The container file the examiner gave (the top of the chain). */
  file: string;
  /** The folder the chain must stay in; default: the file's folder. */
  folder?: string;
  /** Skip QEMU's format probe for the top file. */
  format?: VirtualFormat;
  /** A qcow2 internal snapshot, by name or id, imaged instead of the current state. */
  snapshot?: string;
}

function pickSnapshot(chain: VirtualDiskChain, wanted: string | undefined): InternalSnapshot | null {
  if (wanted === undefined) return null;
  const top = chain.layers[0];
  const list = top?.info.snapshots ?? [];
  if (top?.info.format !== 'qcow2')
    throw new CustosError('ESNAPSHOT', `--snapshot: ${top?.file ?? ''} is ${top?.info.format ?? '?'}; internal snapshots are a qcow2 feature`);
  const s = list.find((x) => x.name === wanted) ?? list.find((x) => x.id === wanted);
  if (!s)
    throw new CustosError(
      'ESNAPSHOT',
      `--snapshot ${wanted}: ${top.file} has ${list.length ? `only ${list.map((x) => `${x.id} "${x.name}"`).join(', ')}` : 'no internal snapshot'}`,
    );
  return s;
}

/** What the E01 header and the record's source say: the format as model, the container's identifiers as serial. */
export function virtualSource(chain: VirtualDiskChain, given: string, size: number): SourceInfo {
  const top = chain.layers[0];
  const kind = top ? `${FORMAT_NAMES[top.info.format]}${top.info.vmdk?.createType ? ` ${top.info.vmdk.createType}` : ''}` : 'virtual disk';
  const layers = chain.layers.length > 1 ? `, ${chain.layers.length} layers` : '';
  const ids = chainIdentifiers(chain);
  return {
    path: path.resolve(given),
    name: path.basename(given),
    stableId: null,
    vendor: sanitizeText('virtual disk'),
    model: sanitizeText(`${kind}${layers}`),
    serial: ids.length ? sanitizeText(ids.join(' ')) : null,
    sizeBytes: size,
    logicalSectorSize: 512,
    physicalSectorSize: null,
    sectors: size / 512,
  };
}

/** Runs one acquisition of a virtual disk; throws AcquisitionAborted (with its record) if it stops early. */
export async function runVirtualAcquisition(r: VirtualAcquisitionRequest): Promise<AcquisitionOutcome> {
  const chain = await resolveChain(r.file, { ...(r.folder ? { folder: r.folder } : {}), ...(r.format ? { format: r.format } : {}) });
  const snapshot = pickSnapshot(chain, r.snapshot);
  const plan = r.resume ?? null;
  const watch = new ContainerWatch(chain);
  const reader = await VirtualDiskReader.open(chain, { snapshotId: snapshot?.id ?? null });
  const hasher = new FileHasher();
  try {
    const source = virtualSource(chain, r.file, reader.size);
    const problem = plan
      ? journalSourceProblem(plan.journal, { path: source.path, sizeBytes: source.sizeBytes, sectorSize: 512, serial: source.serial })
      : null;
    if (problem) throw new CustosError('ERESUMESOURCE', `${problem}: not resumed, nothing changed`);
    const caseData = plan ? journalCase(plan.journal) : r.case;
    const log = plan ? continuedLog(r.custodyCopy ? [...plan.dirs, r.custodyCopy] : plan.dirs) : null;
    // The container files are hashed on a worker while the guest's disk is read.
    for (const f of chain.files) hasher.add(path.join(chain.folder, f.file));
    const identity = await readerIdentity(chain.reader);
    const given = r.file;
    const initial = watch.record({ given, snapshot, sha256: [], changed: null, reader: identity });
    return await acquireWithCustody(
      r,
      {
        reader,
        source,
        sourceDiskName: null,
        writeBlock: null,
        custody: {
          sourceDisk: null,
          virtualDisk: initial,
          virtualDiskAfter: async () => {
            const sha256 = await hasher.all();
            return watch.record({ given, snapshot, sha256, changed: watch.changed(), reader: identity });
          },
        },
        events: [
          event('virtual-disk-chain', chainText(initial), {
            layers: initial.layers,
            files: initial.files.map((f) => ({ file: f.file, role: f.role, sizeBytes: f.sizeBytes })),
          }),
          ...(initial.fileSystem ? [event('container-filesystem', fileSystemText(initial.fileSystem), { ...initial.fileSystem })] : []),
        ],
      },
      caseData,
      log,
    );
  } finally {
    void hasher.close();
    reader.close();
  }
}
