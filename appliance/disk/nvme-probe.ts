// Asks an NVMe controller, through a namespace's block device, what it holds:
// its identity, every namespace it has allocated and which are attached, so
// that capacity the kernel cannot show (a detached namespace, unallocated NVM)
// is reported. Identify only, through the native allowlist.
import { native } from '../native.js';
import { decodeController, decodeNamespace, decodeNamespaceList, IDENTIFY_NVME_BYTES, type NvmeController } from './nvme-identify.js';

const IDENTIFY = 0x06;
const TIMEOUT_MS = 10_000;
const CNS = { namespace: 0x00, controller: 0x01, activeList: 0x02, allocatedList: 0x10, allocatedNamespace: 0x11 } as const;

export interface NvmeNamespaceView {
  nsid: number;
  attached: boolean;
  bytes: number;
}

export interface NvmeProbe {
  controller: NvmeController;
  /** The namespace this block device is. */
  nsid: number;
  namespaces: NvmeNamespaceView[];
  /** Bytes in allocated namespaces not attached to this controller: data the kernel does not show. */
  detachedBytes: number;
  notes: string[];
}

async function identify(fd: number, cns: number, nsid: number): Promise<Buffer | null> {
  const a = await native().nvmeAdminRead(fd, IDENTIFY, nsid, Uint32Array.of(cns, 0, 0, 0, 0, 0), IDENTIFY_NVME_BYTES, TIMEOUT_MS);
  return a.status === 0 && a.data.length === IDENTIFY_NVME_BYTES ? a.data : null;
}

/** Probes the controller behind `fd` (a read-only fd of namespace `nsid`'s block device); null when it does not answer Identify. */
export async function probeNvme(fd: number, nsid: number): Promise<NvmeProbe | null> {
  const c = await identify(fd, CNS.controller, 0).catch(() => null);
  if (c === null) return null;
  const controller = decodeController(c);
  const notes: string[] = [];
  const list = async (cns: number) => {
    const b = await identify(fd, cns, 0).catch(() => null);
    return b === null ? null : decodeNamespaceList(b);
  };
  const active = (await list(CNS.activeList)) ?? [nsid];
  const allocated = controller.namespaceManagement ? await list(CNS.allocatedList) : null;
  if (controller.namespaceManagement && allocated === null)
    notes.push('the controller did not list its allocated namespaces: detached ones cannot be ruled out');
  const namespaces: NvmeNamespaceView[] = [];
  for (const id of [...new Set([...active, ...(allocated ?? [])])].sort((a, b) => a - b)) {
    const attached = active.includes(id);
    const b = await identify(fd, attached ? CNS.namespace : CNS.allocatedNamespace, id).catch(() => null);
    if (b === null) {
      notes.push(`namespace ${id}: no Identify answer`);
      continue;
    }
    const ns = decodeNamespace(b);
    namespaces.push({ nsid: id, attached, bytes: ns.sizeBlocks * ns.blockBytes });
  }
  const detachedBytes = namespaces.filter((n) => !n.attached).reduce((s, n) => s + n.bytes, 0);
  return { controller, nsid, namespaces, detachedBytes, notes };
}
