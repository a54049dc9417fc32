// How the CLI shows an acquisition while it runs: events and progress on the terminal or as NDJSON.
import type { ImagingEvent } from '../events.js';
import type { ProgressReport } from '../imaging/pipeline/progress.js';
import { humanSize } from '../format.js';

/**
 * Prints events and progress: NDJSON on stdout with --json-progress, else
 * one updating line on a terminal's stderr and every event as a line.
 */
export class ProgressPrinter {
  private readonly json: boolean;
  private readonly tty = process.stderr.isTTY;
  private live = false;

  constructor(o: { json: boolean }) {
    this.json = o.json;
  }

  event(e: ImagingEvent): void {
    if (this.json) {
      process.stdout.write(JSON.stringify({ kind: 'event', ...e }) + '\n');
      return;
    }
    this.clearLine();
    process.stderr.write(`${e.time}  ${e.type.padEnd(14)} ${e.message}\n`);
  }

  progress(p: ProgressReport): void {
    if (this.json) {
      process.stdout.write(JSON.stringify({ kind: 'progress', ...p }) + '\n');
      return;
    }
    if (!this.tty) return;
    const eta = p.etaS === null ? '--' : `${Math.round(p.etaS)} s`;
    const line = `${p.phase} ${p.percent.toFixed(1)}%  ${humanSize(p.bytesDone, true)}/${humanSize(p.bytesTotal, true)}  ${p.rateMiBs.toFixed(0)} MiB/s (avg ${p.averageMiBs.toFixed(0)})  ETA ${eta}  bottleneck ${p.bottleneck ?? '-'}  bad ${p.badSectors}${p.stalledS !== null ? `  NO PROGRESS FOR ${p.stalledS} s` : ''}`;
    process.stderr.write(`\r${line.slice(0, 160)}\x1b[K`);
    this.live = true;
  }

  summary(record: unknown): void {
    process.stdout.write(JSON.stringify(record, null, this.json ? undefined : 2) + '\n');
  }

  text(s: string): void {
    process.stdout.write(s + '\n');
  }

  private clearLine(): void {
    if (this.live) process.stderr.write('\r\x1b[K');
    this.live = false;
  }

  end(): void {
    this.clearLine();
  }
}
