/**
 * The custody log's events: everything that happens during an acquisition
 * or verification, in order, from every stage (write-block, read, write,
 * verify, custody). Nothing that affects the image is left out.
 */
export type ImagingEventType =
  | 'preflight'
  | 'memory-plan'
  | 'started'
  | 'read-error'
  | 'read-recovered'
  | 'read-stall'
  | 'slow-area'
  | 'bad-range'
  | 'writeblock'
  | 'source-lost'
  | 'source-refused'
  | 'source-returned'
  | 'source-twin'
  | 'custody'
  | 'drive-probe'
  | 'drive-locked-confirmed'
  | 'encrypted-volume'
  | 'virtual-disk-chain'
  | 'container-files'
  | 'container-filesystem'
  | 'drive-health'
  | 'write-error'
  | 'aborted'
  | 'recovery-started'
  | 'recovery-finished'
  | 'rehashed'
  | 'acquired'
  | 'verify-started'
  | 'verify-result'
  | 'completed'
  | 'journal'
  | 'journal-off'
  | 'journal-error'
  | 'resume-started'
  | 'resume-discard'
  | 'resume-checked'
  | 'resume-source-checked';

export interface ImagingEvent {
  time: string;
  type: ImagingEventType;
  message: string;
  /** Structured detail; shape depends on type (offsets, LBAs, errno, hashes). */
  data?: Record<string, unknown>;
}

export type EventSink = (e: ImagingEvent) => void;

export function event(type: ImagingEventType, message: string, data?: Record<string, unknown>): ImagingEvent {
  return data ? { time: new Date().toISOString(), type, message, data } : { time: new Date().toISOString(), type, message };
}
