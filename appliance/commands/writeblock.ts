// `custos writeblock`: protect, release, watch and report the write-block of disks (writeblock/guardian.ts).
import { WriteBlockGuardian, type DeviceStatus, type GuardianEvent } from '../writeblock/guardian.js';
import { FileStateStore, appendEvents } from '../writeblock/guardian-state.js';
import { UsageError } from '../errors.js';
import { table } from '../format.js';
import { resolveDevice, requireWholeDisk } from '../disk/resolve-device.js';
import { Sysfs } from '../disk/sysfs.js';

export const WRITEBLOCK_SCHEMA = 'custos.writeblock/1';

export interface WriteblockArgs {
  action: string | undefined;
  devices: string[];
  json: boolean;
  source: boolean;
  all: boolean;
  confirm: string | undefined;
  intervalMs: number;
}

function eventLine(e: GuardianEvent): string {
  return `${e.time}  ${e.type.padEnd(18)} ${e.device.padEnd(10)} ${e.attachment.padEnd(14)} ${e.detail}`;
}

function formatStatus(rows: DeviceStatus[]): string {
  return table(
    ['NAME', 'SYSFS', 'IOCTL', 'PARTITIONS', 'CUSTOS', 'SINCE', 'WRITES SINCE', 'WRITES SINCE BOOT'],
    rows.map((r) => [
      r.name,
      r.readOnly ? 'ro' : 'rw',
      r.ioctlReadOnly === null ? '?' : r.ioctlReadOnly ? 'ro' : 'rw',
      r.partitions.map((p) => `${p.name}:${p.readOnly ? 'ro' : 'rw'}`).join(' ') || '-',
      (r.source ? 'source' : r.released ? 'released' : r.protectedAt ? 'protected' : r.roles.includes('running-system') ? 'system' : '-') +
        (r.protectedAt && !r.intact ? ' FLAG RESET!' : ''),
      r.protectedAt ?? '-',
      r.sinceProtect ? `${r.sinceProtect.writeIos} w / ${r.sinceProtect.discardIos} d` : '-',
      r.counters.disk ? `${r.counters.disk.writeIos} w / ${r.counters.disk.writeSectors} sect` : '?',
    ]),
  );
}

/** Checks every argument before any device is touched, so bad input changes nothing. */
function checkWholeDisks(devices: string[]): void {
  const sysfs = new Sysfs();
  for (const d of devices) requireWholeDisk(d, resolveDevice(d, sysfs));
}

export async function writeblockCommand(a: WriteblockArgs): Promise<number> {
  // Shared with every other custos process: each decision is kept the moment it is made, under a lock.
  const guardian = new WriteBlockGuardian({ store: new FileStateStore(), intervalMs: a.intervalMs });
  const out = (obj: unknown, text: string) => process.stdout.write(a.json ? JSON.stringify(obj, null, 2) + '\n' : text + '\n');

  switch (a.action) {
    case 'status': {
      const rows = guardian.status(a.devices);
      out({ schema: WRITEBLOCK_SCHEMA, status: rows }, formatStatus(rows));
      return 0;
    }
    case 'protect': {
      if (a.all === a.devices.length > 0) throw new UsageError('writeblock protect needs DEV... or --all (not both)');
      if (a.all && a.source) throw new UsageError('--source names one disk; it does not go with --all');
      const start = guardian.log.length;
      try {
        if (a.all) guardian.protectAll();
        else {
          checkWholeDisks(a.devices);
          for (const d of a.devices) {
            if (a.source) guardian.holdAsSource(d);
            else guardian.protect(d);
          }
        }
      } finally {
        appendEvents(guardian.log.slice(start));
      }
      const rows = a.all ? guardian.status().filter((r) => r.protectedAt !== null) : guardian.status(a.devices);
      out({ schema: WRITEBLOCK_SCHEMA, events: guardian.log.slice(start), status: rows }, guardian.log.slice(start).map(eventLine).join('\n'));
      return 0;
    }
    case 'release': {
      if (a.devices.length !== 1) throw new UsageError('writeblock release takes exactly one DEV');
      if (a.confirm === undefined)
        throw new UsageError('writeblock release needs --confirm TEXT: the serial (or stable id) of the disk, as `custos disks` shows it');
      const dev = a.devices[0] ?? '';
      const start = guardian.log.length;
      try {
        guardian.release(dev, a.confirm);
      } finally {
        appendEvents(guardian.log.slice(start));
      }
      out(
        { schema: WRITEBLOCK_SCHEMA, events: guardian.log.slice(start), status: guardian.status([dev]) },
        guardian.log.slice(start).map(eventLine).join('\n'),
      );
      return 0;
    }
    case 'watch':
      return watch(guardian, a);
    default:
      throw new UsageError(`writeblock needs one of: status, protect, release, watch${a.action ? ` (got "${a.action}")` : ''}`);
  }
}

/** Runs the guardian until SIGINT/SIGTERM, printing each event as it happens. */
async function watch(guardian: WriteBlockGuardian, a: WriteblockArgs): Promise<number> {
  // Signal handlers first: a stop request that arrives while the first pass is
  // still running must end the watch cleanly, not kill the process mid-write.
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  if (a.devices.length > 0) {
    checkWholeDisks(a.devices);
    const ids = new Set(a.devices.map((d) => guardian.protect(d).stableId));
    // Watch only these devices, following them across kernel names.
    guardian.setScope((d) => ids.has(d.stableId));
  } else {
    guardian.protectAll();
  }
  for (const e of guardian.log) print(e, a.json);
  appendEvents(guardian.log);
  guardian.on('event', (e) => {
    print(e, a.json);
    appendEvents([e]);
  });
  if (!a.json) process.stderr.write('custos: guarding; Ctrl-C to stop (flags stay set)\n');
  guardian.start();
  await stopped;
  guardian.stop();
  return 0;
}

function print(e: GuardianEvent, json: boolean): void {
  process.stdout.write((json ? JSON.stringify(e) : eventLine(e)) + '\n');
}
