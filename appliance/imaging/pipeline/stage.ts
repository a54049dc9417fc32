/** A filled buffer on its way through the pipeline; `offset` is its place in the image. */
export interface Chunk {
  index: number;
  buffer: Buffer;
  length: number;
  offset: number;
}

export type StageKind = 'read' | 'hash' | 'compress' | 'write';

/** Cumulative counters of one stage; progress turns their deltas into rates. */
export interface StageStats {
  name: string;
  kind: StageKind;
  bytes: number;
  /** Time spent working (not waiting for input). */
  busyMs: number;
  /** Chunks handed to the stage and not yet finished. */
  queued: number;
}

/** A stage after the reader: every chunk goes to every consumer, in order. */
export interface Consumer {
  readonly stats: StageStats;
  consume(chunk: Chunk): Promise<void>;
  /** Further stages working inside this one (the E01 writer's compression workers), shown in progress. */
  readonly innerStats?: StageStats[];
}

export function newStats(name: string, kind: StageKind): StageStats {
  return { name, kind, bytes: 0, busyMs: 0, queued: 0 };
}
