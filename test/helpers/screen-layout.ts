// What a custos screen must look like at any terminal size, checked on the
// text tmux shows: no line wider than the terminal, the title on the first row
// and the help on the last, every full-width frame closed on the right, and no
// word blessed cut in two at the frame (`[####` then `.] 31.3%`).

/** Vertical frame and corner characters: drawn as line-drawing on a console, as their ACS letters on a vt100 line. */
const VERTICAL = new Set(['│', 'x']);
const LEFT_EDGE = new Set(['│', '┌', '└', '├', 'x', 'l', 'm', 't']);
const RIGHT_OF: Record<string, string[]> = { '│': ['│'], '┌': ['┐'], '└': ['┘'], '├': ['┤', '│'], x: ['x'], l: ['k'], m: ['j'], t: ['u', 'x'] };

/** Every way `screen` breaks the layout of a `cols` x `rows` terminal; empty when it fits. */
export function layoutProblems(screen: string, cols: number, rows: number): string[] {
  const lines = screen.split('\n');
  const problems: string[] = [];
  if (lines.length > rows) problems.push(`${lines.length} lines on a ${rows}-line terminal`);
  lines.forEach((l, i) => {
    if ([...l].length > cols) problems.push(`line ${i + 1} is ${[...l].length} columns wide: ${l}`);
  });
  if (!lines[0]?.startsWith(' custos ')) problems.push(`the first line is not the title: ${lines[0] ?? ''}`);
  // The help line: a text cut by the right edge fills the last column.
  const help = lines.length === rows ? (lines[rows - 1] ?? '') : '';
  if ([...help.trimEnd()].length >= cols) problems.push(`the help line is cut at the right edge: ${help}`);
  for (let i = 1; i < lines.length - 1; i++) {
    const row = [...(lines[i] ?? '')];
    const left = row[0] ?? '';
    if (!LEFT_EDGE.has(left)) continue;
    const right = row[cols - 1] ?? '';
    if (!(RIGHT_OF[left] ?? []).includes(right)) problems.push(`line ${i + 1}: a frame opened at the left is not closed at column ${cols}: ${lines[i]}`);
    if (VERTICAL.has(left) && VERTICAL.has(right)) {
      const next = [...(lines[i + 1] ?? '')];
      if (VERTICAL.has(next[0] ?? '') && VERTICAL.has(next[cols - 1] ?? '') && wrapped(row.slice(1, cols - 1).join(''), next.slice(1, cols - 1).join(''))) {
        problems.push(`line ${i + 2} continues line ${i + 1} from the frame (a line wrapped):\n${lines[i]}\n${lines[i + 1]}`);
      }
    }
  }
  return problems;
}

/**
 * blessed breaks a line that does not fit at its last space, or, for a word
 * longer than the width, hard at the width. A word cut in two (the line above
 * full to the frame, this one going on at the frame) is such a wrap; a break
 * at a space looks like prose broken by hand, and is caught per screen by
 * what its lines must start with (see the TUI screen test).
 */
function wrapped(above: string, below: string): boolean {
  return !above.endsWith(' ') && !below.startsWith(' ') && above.trim() !== '' && below.trim() !== '';
}
