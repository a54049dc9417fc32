// The steps of the custos UI that every TUI and ISO test walks through, in
// one place: the case fields, the clock check, the one-time key, the options
// and the start. Boxes are drawn with ─ on a console and q on a serial line.
import type { Terminal } from './tmux.js';

export const CASE_LABELS = ['case number', 'evidence number', 'examiner', 'description', 'notes'] as const;

/** Types the five case fields in order, each once its own box is on screen, then confirms the shown time; stops at the signing key. */
export async function caseFieldsToSigningKey(term: Terminal, values: readonly string[], timeoutMs = 15_000): Promise<void> {
  for (const [i, label] of CASE_LABELS.entries()) {
    // Each field's own box, so no keystroke arrives before its field exists.
    await term.waitFor(new RegExp(`[─q] ${label} [─q]`), timeoutMs);
    await term.type(values[i] ?? '');
  }
  await term.waitFor('clock check', timeoutMs);
  await term.type('');
  await term.waitFor('signing key', timeoutMs);
}

/** At the signing key: a one-time key, the default options; returns the summary screen, then starts. */
export async function oneTimeKeyAndStart(term: Terminal, timeoutMs = 15_000): Promise<string> {
  await term.keys('Enter');
  await term.waitFor('options', timeoutMs);
  await term.keys('Enter');
  const summary = await term.waitFor('check and start', timeoutMs);
  await term.keys('Enter');
  return summary;
}
