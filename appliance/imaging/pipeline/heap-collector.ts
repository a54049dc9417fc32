// Bounds the main thread's heap during a run. The pipeline's garbage (promises,
// views, worker messages) outlives the young generation and piles up in the old
// one, which V8 collects only when it reaches a limit it set from the heap's
// size at start-up: RSS rose by some 15 MiB over the first minute of an E01 run
// and then stayed there (docs/memory.md). A major collection every few seconds
// keeps the heap near what is live (about 9 MB), for a few milliseconds each.

/** V8's collector as `--expose-gc` (scripts/node-flags) gives it. */
type Collect = (options: { type: 'major'; execution: 'async' }) => Promise<void> | undefined;

export const COLLECT_EVERY_MS = 5000;

/** Collects the heap every `everyMs` until the returned stop is called; nothing where the collector is not exposed (in-process tests). */
export function collectHeapEvery(everyMs = COLLECT_EVERY_MS): () => void {
  const gc = (globalThis as { gc?: Collect }).gc;
  if (typeof gc !== 'function') return () => undefined;
  const timer = setInterval(() => {
    // Async: V8 runs it as a task of its own, not inside this timer's callback.
    void Promise.resolve(gc({ type: 'major', execution: 'async' })).catch(() => undefined);
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
