// A memory cgroup of its own for one command, on whichever hierarchy the
// machine has: cgroup v1's memory controller or cgroup v2. What the kernel
// counted (peak usage, OOM kills) is read back after the command.
import { execa, type Result } from 'execa';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface MemoryCgroup {
  dir: string;
  version: 1 | 2;
  /** Runs `cmd` inside the cgroup. */
  run(cmd: string, args: string[], env: Record<string, string>, timeoutMs: number): Promise<Result>;
  /** Peak bytes charged, and how many times the OOM killer ran in it. */
  counters(): { peakBytes: number | null; oomKills: number };
  remove(): void;
}

function own(controller: string): string | null {
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (m && (controller === '' ? m[1] === '' : (m[1] ?? '').split(',').includes(controller))) return m[2] ?? '/';
  }
  return null;
}

export function memoryCgroup(limitBytes: number): MemoryCgroup {
  const name = `custos-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const v1 = own('memory');
  let dir: string;
  let version: 1 | 2;
  if (v1 !== null && existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes')) {
    version = 1;
    dir = path.join('/sys/fs/cgroup/memory', v1, name);
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(limitBytes));
  } else {
    version = 2;
    const rel = own('') ?? '/';
    const mount = existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup' : '/sys/fs/cgroup/unified';
    const parent = path.join(mount, rel);
    if (!readFileSync(path.join(parent, 'cgroup.subtree_control'), 'utf8').includes('memory'))
      writeFileSync(path.join(parent, 'cgroup.subtree_control'), '+memory');
    dir = path.join(parent, name);
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'memory.max'), String(limitBytes));
  }
  const read = (f: string) => readFileSync(path.join(dir, f), 'utf8');
  return {
    dir,
    version,
    run: (cmd, args, env, timeoutMs) =>
      execa('sh', ['-c', `echo $$ > '${path.join(dir, 'cgroup.procs')}' && exec "$@"`, 'sh', cmd, ...args], { reject: false, env, timeout: timeoutMs }),
    counters: () => {
      if (version === 1) {
        const kills = /^oom_kill (\d+)$/m.exec(read('memory.oom_control'));
        return { peakBytes: Number(read('memory.max_usage_in_bytes')), oomKills: kills ? Number(kills[1]) : 0 };
      }
      const kills = /^oom_kill (\d+)$/m.exec(read('memory.events'));
      const peak = existsSync(path.join(dir, 'memory.peak')) ? Number(read('memory.peak')) : null;
      return { peakBytes: peak, oomKills: kills ? Number(kills[1]) : 0 };
    },
    remove: () => {
      try {
        rmdirSync(dir);
      } catch {
        // Still busy for a moment after its last process; the kernel removes nothing else with it.
      }
    },
  };
}
