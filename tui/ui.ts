// The frame every screen draws into (title, body, help line) and the few
// interactions the screens are made of. blessed tag parsing is off
// everywhere: device and case strings are shown as the plain text they are.
import blessed from 'blessed';

export interface Ui {
  screen: blessed.Widgets.Screen;
  body: blessed.Widgets.BoxElement;
  /** Sets the title and the help line, and empties the body. */
  page(title: string, help: string): void;
  destroy(): void;
}

export function createUi(): Ui {
  const screen = blessed.screen({ smartCSR: true, fullUnicode: false, title: 'custos', autoPadding: false, warnings: false, dockBorders: true });
  const header = blessed.box({ parent: screen, top: 0, left: 0, width: '100%', height: 1, style: { inverse: true } });
  const body = blessed.box({ parent: screen, top: 1, left: 0, width: '100%', height: '100%-2' });
  const help = blessed.box({ parent: screen, bottom: 0, left: 0, width: '100%', height: 1, style: { inverse: true } });
  // Resizing only re-renders: every screen lays out in percentages of the terminal.
  screen.on('resize', () => screen.render());
  return {
    screen,
    body,
    page(title, keys) {
      for (const child of [...body.children]) child.destroy();
      header.setContent(` custos  ${title}`);
      help.setContent(` ${keys}`);
      screen.render();
    },
    destroy() {
      screen.destroy();
    },
  };
}

/**
 * Lines longer than `width` broken at a space (or hard, for a word longer
 * than half the width), each continuation indented two spaces more than its
 * line. blessed's own wrap starts a continuation at the frame, where it reads
 * as a line of its own (a progress bar split in two, a half value).
 */
export function fitText(text: string, width: number): string {
  const w = Math.max(8, width);
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const indent = ' '.repeat(Math.min(Math.floor(w / 2), (/^ */.exec(line)?.[0].length ?? 0) + 2));
    let rest = line;
    while (rest.length > w) {
      const space = rest.lastIndexOf(' ', w);
      const cut = space > w / 2 ? space : w;
      out.push(rest.slice(0, cut).trimEnd());
      rest = indent + rest.slice(cut).trimStart();
    }
    out.push(rest);
  }
  return out.join('\n');
}

/** What fits inside a framed box, in columns. */
export function innerWidth(box: blessed.Widgets.BoxElement): number {
  return Number(box.width) - 2;
}

/** Sets a framed box's text, fitted to its width. */
export function setText(box: blessed.Widgets.BoxElement, text: string): void {
  box.setContent(fitText(text, innerWidth(box)));
}

/** A framed text box in the body; its text is fitted to its width (see fitText). */
export function textBox(
  ui: Ui,
  o: { top: number | string; height: number | string; label?: string; content?: string; left?: number | string; width?: number | string },
): blessed.Widgets.BoxElement {
  const box = blessed.box({
    parent: ui.body,
    top: o.top,
    left: o.left ?? 0,
    width: o.width ?? '100%',
    height: o.height,
    ...(o.label ? { label: ` ${o.label} ` } : {}),
    border: { type: 'line' },
    tags: false,
    scrollable: true,
  });
  setText(box, o.content ?? '');
  return box;
}

/** Resolves with the first of `keys` pressed (names as blessed gives them: 'enter', 'escape', 'y', ...). */
export function waitKey(ui: Ui, keys: string[]): Promise<string> {
  return new Promise((resolve) => {
    const handler = (_ch: unknown, key: { full?: string; name?: string }) => {
      const k = key.full ?? key.name ?? '';
      if (!keys.includes(k)) return;
      ui.screen.removeListener('keypress', handler);
      resolve(k);
    };
    ui.screen.on('keypress', handler);
  });
}

/**
 * One line of typed text (a confirmation, a case field, a passphrase).
 * Resolves with the text on Enter, or null on Esc.
 */
export function askText(ui: Ui, o: { top: number | string; label: string; initial?: string; censor?: boolean }): Promise<string | null> {
  const box = blessed.textbox({
    parent: ui.body,
    top: o.top,
    left: 0,
    width: '100%',
    height: 3,
    label: ` ${o.label} `,
    border: { type: 'line' },
    inputOnFocus: false,
    censor: o.censor ?? false,
    value: o.initial ?? '',
    tags: false,
  });
  ui.screen.render();
  return new Promise((resolve) => {
    box.readInput((err, value) => {
      const v = err ? null : (value ?? null);
      box.destroy();
      ui.screen.render();
      resolve(v);
    });
  });
}
