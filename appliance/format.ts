/**
 * Binary human size, e.g. 10485760 -> "10.0 MiB"; exact bytes are always shown
 * beside it. `fine`: two decimals below 10 of a unit (progress, where the
 * figure moves slowly at first). The one byte formatter of custos.
 */
export function humanSize(bytes: number, fine = false): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${bytes} B` : `${v.toFixed(fine && v < 10 ? 2 : 1)} ${units[i]}`;
}

/** Left-aligned columns separated by two spaces; cells must already be sanitized. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
