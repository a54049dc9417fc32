// Drives a program in a real terminal: a detached tmux session of a given
// size and TERM, keys sent as an examiner would type them, the screen read back.
import { execa } from 'execa';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export class Terminal {
  private constructor(
    readonly session: string,
    /** Everything the program wrote, raw: a crash message shown for a moment is kept here after the screen moved on. */
    readonly transcriptFile: string,
  ) {}

  static async start(command: string, o: { cols: number; rows: number; term: string; env?: Record<string, string> }): Promise<Terminal> {
    const session = `custos-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const env = Object.entries({ TERM: o.term, ...o.env })
      .map(([k, v]) => `${k}='${v}'`)
      .join(' ');
    // The shell stays after the program ends so its last screen can be read.
    await execa('tmux', ['new-session', '-d', '-s', session, '-x', String(o.cols), '-y', String(o.rows), `env ${env} ${command}; echo "[exit $?]"; sleep 600`]);
    const transcriptFile = path.join(mkdtempSync(path.join(tmpdir(), 'custos-term-')), 'transcript');
    await execa('tmux', ['pipe-pane', '-t', session, `cat >> '${transcriptFile}'`]);
    return new Terminal(session, transcriptFile);
  }

  /** The transcript as text, escape sequences and line drawing removed. */
  transcript(): string {
    let raw = '';
    try {
      raw = readFileSync(this.transcriptFile, 'latin1');
    } catch {
      return '';
    }

    return raw.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78cDEHM]|\x0e|\x0f/g, '');
  }

  /** Lines of the transcript around an error the program reported before the screen moved on, if any. */
  reportedErrors(): string {
    const lines = this.transcript().split(/\r?\n/);
    const out: string[] = [];
    lines.forEach((l, i) => {
      if (/internal error|Error:|Unhandled|Uncaught/.test(l)) out.push(...lines.slice(i, i + 12));
    });
    return out.slice(0, 80).join('\n');
  }

  async screen(withAttributes = false): Promise<string> {
    const r = await execa('tmux', ['capture-pane', '-p', ...(withAttributes ? ['-e'] : []), '-t', this.session]);
    const seen = this.recorded;
    // Recorded once read twice in a row: a capture taken while the program is still writing a screen
    // (half a frame under load) is no screen the examiner sees; the next capture differs from it.
    if (seen && !withAttributes) {
      if (r.stdout === this.lastCapture && seen[seen.length - 1] !== r.stdout) seen.push(r.stdout);
      this.lastCapture = r.stdout;
    }
    return r.stdout;
  }

  /**
   * Until a screen holding `text` reads the same twice in a row, so that a recording holds it: a screen
   * that redraws often (the disk list's write-block counter) may otherwise never be read twice alike under load.
   */
  async waitForSteady(text: string, timeoutMs = 15_000): Promise<string> {
    const end = Date.now() + timeoutMs;
    let previous = '';
    while (Date.now() < end) {
      const s = await this.screen();
      if (s.includes(text) && s === previous) return s;
      previous = s;
      await new Promise((r) => setTimeout(r, 30));
    }
    throw new Error(`no steady screen with ${JSON.stringify(text)} in ${timeoutMs} ms; last:\n${previous}`);
  }

  async waitFor(text: string | RegExp | ((screen: string) => boolean), timeoutMs = 15_000): Promise<string> {
    const end = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < end) {
      last = await this.screen();
      if (typeof text === 'string' ? last.includes(text) : text instanceof RegExp ? text.test(last) : text(last)) return last;
      await new Promise((r) => setTimeout(r, 150));
    }
    const reported = this.reportedErrors();
    throw new Error(
      `screen never showed ${String(text)}; last screen:\n${last}${reported ? `\nerrors the program printed earlier (${this.transcriptFile}):\n${reported}` : ''}`,
    );
  }

  /** Screens kept while recording: every distinct one read twice in a row, by the caller's waits and by a poll every 100 ms. */
  private recorded: string[] | null = null;
  private lastCapture = '';

  recordScreens(): { stop(): Promise<string[]> } {
    const seen: string[] = [];
    this.recorded = seen;
    const loop = (async () => {
      while (this.recorded === seen) {
        await this.screen();
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    return {
      stop: async () => {
        // The screen the caller last waited for, and whatever came after it.
        await this.screen();
        this.recorded = null;
        await loop;
        return seen;
      },
    };
  }

  async keys(...keys: string[]): Promise<void> {
    for (const k of keys) {
      await execa('tmux', ['send-keys', '-t', this.session, k]);
      await new Promise((r) => setTimeout(r, 120));
    }
  }

  /** Types text literally, then Enter. */
  async type(text: string): Promise<void> {
    if (text) await execa('tmux', ['send-keys', '-t', this.session, '-l', text]);
    await this.keys('Enter');
  }

  /** Moves the cursor to the disk named `name` in a custos disk list on screen (rows start RO/RW), then presses Enter. */
  /** Moves to `name` in a disk list and presses `key` (Enter: choose it). */
  async pick(name: string, key = 'Enter'): Promise<void> {
    const at = await this.rowOf(name);
    for (let i = 0; i < at; i++) await this.keys('Down');
    await this.keys(key);
  }

  /** Moves the cursor from the top to `name`, so its details show, and back to the top (where pick() starts); returns the screen showing them. */
  async select(name: string, detail: string | RegExp): Promise<string> {
    const at = await this.rowOf(name);
    for (let i = 0; i < at; i++) await this.keys('Down');
    const screen = await this.waitFor((s) => s.includes(`/dev/${name} `) && (typeof detail === 'string' ? s.includes(detail) : detail.test(s)), 30_000);
    for (let i = 0; i < at; i++) await this.keys('Up');
    await this.waitFor((s) => !s.includes(`/dev/${name} `) || at === 0, 30_000);
    return screen;
  }

  private async rowOf(name: string): Promise<number> {
    // Wait for a list row naming the disk, not just its name: a dialog still closing can name it too.
    const rowsOf = (screen: string): string[] => screen.split('\n').filter((l) => /^ ?(RO|RW) /.test(l));
    const hasRow = (screen: string): boolean => rowsOf(screen).some((l) => l.split(/\s+/).includes(name));
    let screen = '';
    try {
      screen = await this.waitFor(hasRow);
    } catch (e) {
      throw new Error(`${name} not in the list:\n${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    return rowsOf(screen).findIndex((l) => l.split(/\s+/).includes(name));
  }

  async size(): Promise<{ cols: number; rows: number }> {
    const r = await execa('tmux', ['display-message', '-p', '-t', this.session, '#{window_width} #{window_height}']);
    const [cols, rows] = r.stdout.trim().split(' ').map(Number);
    return { cols: cols ?? 0, rows: rows ?? 0 };
  }

  async resize(cols: number, rows: number): Promise<void> {
    await execa('tmux', ['resize-window', '-t', this.session, '-x', String(cols), '-y', String(rows)]);
  }

  async kill(): Promise<void> {
    await execa('tmux', ['kill-session', '-t', this.session], { reject: false });
  }
}
