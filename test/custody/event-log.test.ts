// A custody log copy whose medium fails is dropped, the others say so and go
// on, and nothing throws: a tmpfs of a few KiB fills up under one copy.
import test from 'ava';
import { execa } from 'execa';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { EventLog, LOG_FILE } from '../../appliance/custody/event-log.js';
import { checkLog } from '../../appliance/custody/log-check.js';
import { tempDir } from '../helpers/loop.js';

test('a copy that fills up is dropped with an entry in the other copy; appends never throw; the surviving copy chains', async (t) => {
  const good = tempDir();
  const small = tempDir();
  t.teardown(async () => {
    await execa('umount', [small], { reject: false });
    rmSync(good, { recursive: true, force: true });
    rmSync(small, { recursive: true, force: true });
  });
  await execa('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'custos-small', small]);
  mkdirSync(path.join(small, 'x'));
  const log = new EventLog([good, small]);
  // Leave the small copy almost no room.
  writeFileSync(path.join(small, 'x', 'filler'), Buffer.alloc(8 * 1024));
  for (let i = 0; i < 40; i++) t.notThrows(() => log.append('note', { i, pad: 'p'.repeat(200) }));
  t.is(log.lost.length, 1);
  t.regex(log.lost[0]?.error ?? '', /ENOSPC/);
  t.deepEqual(log.paths, [path.join(good, LOG_FILE)]);
  const kept = readFileSync(path.join(good, LOG_FILE));
  const check = checkLog(kept);
  t.deepEqual(check.problems, ['events.jsonl has no seal entry: the acquisition did not finish'], 'a chain without gaps, only unsealed');
  t.true(kept.toString('utf8').includes('"type":"custody-copy-lost"'));
  t.true(kept.equals(log.content), 'the surviving copy holds every entry');
  const partial = readFileSync(path.join(small, LOG_FILE));
  // What the lost copy holds is a prefix of the log, up to where its medium failed (a line may be cut short).
  t.true(partial.length < log.content.length);
  const whole = partial.subarray(0, partial.lastIndexOf(10) + 1);
  t.true(log.content.subarray(0, whole.length).equals(whole));
  log.close();
});
