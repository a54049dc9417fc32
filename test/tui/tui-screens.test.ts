import test from 'ava';
import { execa } from 'execa';
import path from 'node:path';
import { CUSTOS } from '../helpers/cli.js';
import { ext4Loop, mountNtfsReadOnly, mountReadOnly, ntfsLoop, patternLoop, sha256File, tempDir } from '../helpers/loop.js';
import { layoutProblems } from '../helpers/screen-layout.js';
import { Terminal } from '../helpers/tmux.js';
import { caseFieldsToSigningKey } from '../helpers/ui-script.js';

// Every screen of a whole acquisition with verify, read as the examiner sees it on a console (80x25) and on a serial line (80x24).
// The source is large enough (640 MiB) that each phase draws its progress more than once. The serial-line raw run writes to an
// NTFS evidence drive (through ntfs-3g, as examiners from Windows labs bring them), read back afterwards by ntfs-3g on the host.

/** The rows inside the first frame under the title: the progress box while acquiring, the result box at the end. */
function firstBoxRows(screen: string): string[] {
  const rows: string[] = [];
  for (const l of screen.split('\n').slice(2)) {
    if (!/^[│x]/.test(l)) break;
    rows.push(l.slice(1, -1));
  }
  return rows;
}

// Each row of these boxes is a labelled field or an indented continuation: a row starting otherwise is a field blessed wrapped at a space.
const PROGRESS_ROW =
  /^(?:\s|$|(?:acquire|verify|verify-source|rehash|resume-check)\b|\d|now |stages |bottleneck|unreadable|write-block|resume |SOURCE|NO PROGRESS)/;
const RESULT_ROW = /^(?:\s|$|status |md5 |sha1 |sha256 |sha512 |copy |bad |record )/;

const SIZES = [
  { cols: 80, rows: 25, term: 'linux' },
  { cols: 80, rows: 24, term: 'vt100' },
];

for (const format of ['raw', 'e01'] as const) {
  for (const size of SIZES) {
    test.serial(
      `${size.cols}x${size.rows} ${size.term}, ${format} with verify${format === 'raw' && size.term === 'vt100' ? ' onto NTFS' : ''}: every screen fits, no line wraps, the write-block line holds through verify`,
      async (t) => {
        t.timeout(180_000);
        const src = await patternLoop(640 * 1024 * 1024, {}, 67);
        t.teardown(src.detach);
        const ntfs = format === 'raw' && size.term === 'vt100';
        const dst = ntfs ? await ntfsLoop(t, 760) : await ext4Loop(t, 760);
        const state = tempDir();
        const term = await Terminal.start(`${CUSTOS} tui --only ${src.name},${dst.name}`, { ...size, env: { CUSTOS_STATE_DIR: state } });
        t.teardown(async () => {
          await term.kill();
          await execa('sh', ['-c', `for m in ${state}/mnt/*; do umount "$m" 2>/dev/null; done; true`]);
        });
        const recording = term.recordScreens();

        await term.waitForSteady('choose the SOURCE disk', 60_000);
        await term.pick(src.name);
        await term.waitForSteady('choose destination 1', 60_000);
        await term.pick(dst.name);
        const ask = await term.waitFor('Type its stable id exactly to confirm');
        await term.type(/stable id (\S+)/.exec(ask)?.[1] ?? '');
        const ready = await term.waitFor('destination ready');
        t.regex(ready, ntfs ? /\(ntfs\) mounted at/ : /\(ext4\) mounted at/);
        await term.keys('Enter');
        await caseFieldsToSigningKey(term, ['2026-310', 'E-31', 'Screen Examiner', `${format} at ${size.cols}x${size.rows}`, 'every screen read']);
        await term.keys('Enter');
        await term.waitFor('options');
        if (format === 'e01') {
          await term.keys('Space');
          await term.waitFor('[x] E01');
        }
        await term.keys('Enter');
        await term.waitFor('check and start');
        await term.keys('Enter');
        await term.waitFor('result: complete', 150_000);
        await term.waitFor(/SHA256: (?:[A-Za-z0-9+/]{4} ){10}/);
        const screens = await recording.stop();

        const title = (s: string) => s.split('\n')[0]?.trim() ?? '';
        const fields = (s: string): string[] => {
          const rule = title(s).includes('acquiring') ? PROGRESS_ROW : title(s).includes('result') ? RESULT_ROW : null;
          return rule
            ? firstBoxRows(s)
                .filter((r) => !rule.test(r))
                .map((r) => `a row that is no field of its box (a wrapped line): ${r}`)
            : [];
        };
        // Before the first draw the terminal is blank; that is no screen of custos.
        const problems = screens
          .filter((s) => s.trim() !== '')
          .flatMap((s) => [...layoutProblems(s, size.cols, size.rows), ...fields(s)].map((p) => `${p}\n--- on the screen:\n${s}`));
        t.deepEqual(problems.slice(0, 3), [], `${problems.length} layout problem(s) over ${screens.length} screens`);
        const titles = [...new Set(screens.map(title))];
        for (const expected of ['choose the SOURCE disk', 'choose destination 1', 'options', 'check and start', `acquiring ${src.name}`, 'result: complete']) {
          t.true(
            titles.some((x) => x.includes(expected)),
            `the screen "${expected}" was read (${titles.join(' | ')})`,
          );
        }
        // The progress line whole on one line, in both phases, and the write-block still checked while the copy is read back.
        const progress = (phase: string) => new RegExp(`^│?x? ?${phase}\\S*(?: \\S+)?  \\[[#.]{20,50}\\] \\d+\\.\\d%`, 'm');
        t.true(
          screens.some((s) => progress('acquire').test(s)),
          'an acquire progress line',
        );
        const verifying = screens.filter((s) => progress('verify').test(s));
        t.true(verifying.length > 0, 'a verify progress line');
        t.true(
          verifying.every((s) => /write-block: intact, [1-9]\d* checks, last \d\d:\d\d:\d\d/.test(s)),
          verifying.find((s) => !/write-block: intact, [1-9]/.test(s)) ?? '',
        );

        await term.keys('q');
        await term.waitFor('[exit 0]');
        const mnt = ntfs ? await mountNtfsReadOnly(t, dst.dev) : await mountReadOnly(t, dst.dev);
        if (format === 'raw') t.is(await sha256File(path.join(mnt, 'image.raw')), await sha256File(src.file));
        else t.is((await execa('ewfverify', ['-q', path.join(mnt, 'image.E01')], { reject: false })).exitCode, 0);
      },
    );
  }
}
