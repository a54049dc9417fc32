// Acquisition options with safe defaults: raw (split on FAT), MD5 + SHA-256,
// verify after, no fast-first. E01 is one switch: fast compression in
// 1.4 GiB segments (they fit FAT), with MD5 and SHA-1 added for its sections;
// a second one asks for best compression (and implies E01).
import blessed from 'blessed';
import { hashesFor, type HashAlgorithm } from '../appliance/imaging/hash/hash-algorithms.js';
import { setText, textBox, waitKey, type Ui } from './ui.js';

export interface Options {
  format: 'raw' | 'split' | 'e01';
  /** E01 only. */
  compression: 'fast' | 'best';
  hashes: HashAlgorithm[];
  verify: boolean;
  fastFirst: boolean;
}

/** `ailing`: why the source drive looks unwell (its SMART or health log), which switches fast-first on and says so; null when it does not. */
export async function askOptions(ui: Ui, needsSplit: boolean, ailing: string | null = null): Promise<Options | null> {
  const o = { e01: false, e01Best: false, split: needsSplit, md5: true, sha1: false, sha256: true, sha512: false, verify: true, fastFirst: ailing !== null };
  type Key = keyof typeof o;
  const rows: [Key, string][] = [
    ['e01', 'E01 (EnCase 6), compressed, 1.4 GiB segments; adds MD5 + SHA-1'],
    ['e01Best', 'E01 at best compression: a little smaller, several times slower'],
    ['split', 'split raw image into 4000 MiB files (needed on FAT)'],
    ['md5', 'MD5'],
    ['sha1', 'SHA-1'],
    ['sha256', 'SHA-256'],
    ['sha512', 'SHA-512'],
    ['verify', 'read every copy back and verify it'],
    ['fastFirst', 'fast-first: skip bad areas, return to them at the end'],
  ];
  ui.page('options', 'Up/Down: move  Space: switch  Enter: continue  Esc: back');
  const list = blessed.list({
    parent: ui.body,
    top: 0,
    left: 1,
    width: '100%-2',
    height: rows.length + 2,
    keys: true,
    tags: false,
    border: { type: 'line' },
    style: { selected: { inverse: true } },
  });
  const note = textBox(ui, { top: rows.length + 2, height: 4, content: '' });
  const draw = () => {
    const at = (list as unknown as { selected: number }).selected ?? 0;
    list.setItems(rows.map(([k, label]) => `[${o[k] ? 'x' : ' '}] ${label}`));
    list.select(at);
    setText(note, problem() ?? (ailing ? `fast-first proposed: ${ailing}` : ''));
    ui.screen.render();
  };
  const problem = (): string | null => {
    if (needsSplit && !o.split && !o.e01 && !o.e01Best) return 'The destination is FAT: a single image file over 4 GiB cannot be written there.';
    if (!(o.md5 || o.sha1 || o.sha256 || o.sha512)) return 'Choose at least one hash.';
    return null;
  };
  list.key('space', () => {
    const row = rows[(list as unknown as { selected: number }).selected];
    if (row) o[row[0]] = !o[row[0]];
    draw();
  });
  draw();
  list.focus();
  for (;;) {
    const k = await waitKey(ui, ['enter', 'escape']);
    if (k === 'escape') return null;
    if (problem()) continue;
    const format = o.e01 || o.e01Best ? 'e01' : o.split ? 'split' : 'raw';
    return {
      format,
      compression: o.e01Best ? 'best' : 'fast',
      hashes: hashesFor(
        format,
        (['md5', 'sha1', 'sha256', 'sha512'] as const).filter((h) => o[h]),
      ),
      verify: o.verify,
      fastFirst: o.fastFirst,
    };
  }
}
