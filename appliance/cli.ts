// The command line: parses the verb and hands it to its file in commands/.
import { parseArgs } from 'node:util';
import { CustosError, UsageError } from './errors.js';
import { safeText } from './sanitize.js';
import { custosVersion } from './version.js';

const USAGE = `usage: custos <command> [options]

  disks [--json]                               list every block device from sysfs
  writeblock status [DEV...] [--json]          read-only state and kernel write counters
  writeblock protect DEV... [--source] [--json]
  writeblock protect --all [--json]            every disk but the running system
  writeblock release DEV --confirm SERIAL [--json]
                                               make a chosen destination writable
  writeblock watch [DEV...] [--json] [--interval MS]
                                               keep devices read-only, protect new ones
  acquire --source DEV --out DIR [--out DIR2] [--name NAME]
          [--format raw|split|e01] [--split-size SIZE] [--compression none|empty|fast|best]
          [--segment-size SIZE] [--hash md5,sha1,sha256,sha512]
          [--piece-size SIZE] [--block-size SIZE] [--buffers N] [--retries N]
          [--fill BYTE] [--fast-first] [--verify] [--verify-source]
          [--image-locked-drive]
          [--vm-folder DIR] [--vm-format FMT] [--snapshot NAME]   (--source FILE: a virtual disk)
          [--case ID] [--evidence ID] [--examiner NAME] [--organisation ORG]
          [--description TEXT] [--notes TEXT] [--location TEXT]
          [--examiner-time ISO8601] [--key KEYFILE] [--custody-copy DIR]
          [--checkpoint-interval DURATION] [--journal-interval DURATION]
          [--json-progress] [--json]
                                               image a write-blocked disk, with a signed custody record
  acquire --resume DIR [--resume DIR2] --source DEV [--key KEYFILE] [--examiner NAME]
          [--custody-copy DIR] [--journal-interval DURATION] [--json-progress] [--json]
                                               go on with an interrupted acquisition from its journal
  vdisk FILE [--vm-folder DIR] [--vm-format FMT] [--json]
                                               the chain behind a virtual disk file, its files and ids
  evidence mount DEV [--json]                  a write-blocked drive's file system, read-only, replaying nothing
  evidence unmount DEV [--json]                (for VM files to give acquire --source FILE)
  verify DIR [--record-only] [--json] [--json-progress]
                                               check the record's signatures, its log and the image
  tui [--only DEV[,DEV...]] [--appliance] [--journal-interval DURATION]
                                               the guided, keyboard-only acquisition screens
  keygen --out DIR --examiner NAME [--json]    an examiner key pair (passphrase: prompt or CUSTOS_PASSPHRASE)
  host [--json]                                this machine's identity (DMI, CPU, clock)
  version                                      print the version
`;

export async function main(argv: string[]): Promise<number> {
  // acquire has its own options (its --source takes a device; writeblock's is a flag).
  // Commands load on demand: start-up time counts in every acquisition and each
  // command's imports (systeminformation for host) cost tens of milliseconds.
  if (argv[0] === 'acquire') {
    const { acquireCommand, parseAcquireArgs } = await import('./commands/acquire.js');
    return acquireCommand(parseAcquireArgs(argv.slice(1)));
  }
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      json: { type: 'boolean', default: false },
      source: { type: 'boolean', default: false },
      all: { type: 'boolean', default: false },
      confirm: { type: 'string' },
      interval: { type: 'string', default: '250' },
      help: { type: 'boolean', short: 'h', default: false },
      version: { type: 'boolean', default: false },
      'json-progress': { type: 'boolean', default: false },
      out: { type: 'string' },
      examiner: { type: 'string' },
      'record-only': { type: 'boolean', default: false },
      only: { type: 'string', multiple: true, default: [] },
      appliance: { type: 'boolean', default: false },
      'journal-interval': { type: 'string' },
      'vm-folder': { type: 'string' },
      'vm-format': { type: 'string' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.version || command === 'version') {
    process.stdout.write(`custos ${custosVersion()} (node ${process.version})\n`);
    return 0;
  }
  switch (command) {
    case 'disks':
      if (rest.length > 0) throw new UsageError(`disks takes no arguments (got "${rest[0]}")`);
      return (await import('./commands/disks.js')).disksCommand(values.json);
    case 'writeblock': {
      const interval = Number(values.interval);
      if (!Number.isInteger(interval) || interval < 20 || interval > 60000) throw new UsageError('--interval must be 20..60000 ms');
      const [action, ...devices] = rest;
      return (await import('./commands/writeblock.js')).writeblockCommand({
        action,
        devices,
        json: values.json,
        source: values.source,
        all: values.all,
        confirm: values.confirm,
        intervalMs: interval,
      });
    }
    case 'vdisk':
      if (rest.length !== 1) throw new UsageError('vdisk takes one FILE');
      return (await import('./commands/vdisk.js')).vdiskCommand({ file: rest[0], folder: values['vm-folder'], format: values['vm-format'], json: values.json });
    case 'evidence':
      if (rest.length > 2) throw new UsageError('evidence takes mount DEV or unmount DEV');
      return (await import('./commands/evidence.js')).evidenceCommand({ action: rest[0], device: rest[1], json: values.json });
    case 'verify':
      if (rest.length > 1) throw new UsageError('verify takes one DIR');
      return (await import('./commands/verify.js')).verifyCommand({
        dir: rest[0],
        json: values.json,
        jsonProgress: values['json-progress'],
        recordOnly: values['record-only'],
      });
    case 'tui': {
      if (rest.length > 0) throw new UsageError('tui takes options only');
      // The UI sits outside the core; the core's CLI only starts it.
      const { runTui } = await import('../tui/app.js');
      const journal = values['journal-interval'];
      const journalIntervalMs = journal === undefined ? undefined : (await import('./commands/acquire.js')).parseDurationMs(journal, '--journal-interval');
      return runTui({
        only: values.only.flatMap((x) => x.split(',')).filter((x) => x !== ''),
        appliance: values.appliance,
        ...(journalIntervalMs ? { journalIntervalMs } : {}),
      });
    }
    case 'keygen':
      if (rest.length > 0) throw new UsageError('keygen takes options only');
      return (await import('./commands/keygen.js')).keygenCommand({ out: values.out, examiner: values.examiner, json: values.json });
    case 'host':
      return (await import('./commands/host.js')).hostCommand(values.json);
    case undefined:
      throw new UsageError('no command given; try custos help');
    default:
      throw new UsageError(`unknown command "${command}"; try custos help`);
  }
}

/** Runs the CLI and turns every failure into one line on stderr and a non-zero exit. */
export async function run(argv: string[]): Promise<void> {
  let code: number;
  try {
    code = await main(argv);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`custos: ${safeText(msg.split('\n')[0] ?? msg, 400)}\n`);
    const usage = e instanceof UsageError || (e instanceof Error && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'));
    code = usage ? 2 : e instanceof CustosError ? 1 : 70;
  }
  process.exitCode = code;
}
