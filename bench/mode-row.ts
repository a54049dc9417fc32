// One row of the benchmark's report: a mode's runs against its peer's and its limit (mode-limits.ts).
// The whole process and the acquisition alone are both given: the record's timing says how long the
// start-up took (process start, workers, key, record opening) apart from the copy itself.
import type { ImageRecord } from '../appliance/imaging/image-record.js';
import { MiB, median } from './bench-timing.js';
import type { ModeLimit } from './mode-limits.js';

export interface ModeRow {
  mode: string;
  /** Source bytes over the whole process's wall clock. */
  custosMiBs: number;
  /** Source bytes over the acquisition alone (timing.acquireS). */
  acquireMiBs: number;
  startupS: number;
  peerMiBs: number;
  limitMiBs: number;
  boundBy: string;
  custosOverLimit: number;
  acquireOverLimit: number;
  custosOverPeer: number;
  peakRssMiB: number;
  /** The stage busiest in the median run, with its busy share of the acquisition. */
  bottleneck: { stage: string; busyShare: number };
  secondsPerRun: { custos: number[]; peer: number[] };
}

export function modeRow(mode: string, bytes: number, custosS: number[], peerS: number[], records: ImageRecord[], limit: ModeLimit): ModeRow {
  const rate = (s: number) => bytes / MiB / s;
  // The record of the run whose wall clock is the median stands for the mode.
  const order = custosS.map((s, i) => ({ s, r: records[i] })).sort((a, b) => a.s - b.s);
  const mid = order[order.length >> 1]?.r;
  if (!mid) throw new Error(`bench: no custos run for ${mode}`);
  const acquireS = median(records.map((r) => r.timing.acquireS));
  const busiest = [...mid.stages].sort((a, b) => b.busyS - a.busyS)[0];
  const custosMiBs = rate(median(custosS));
  const peerMiBs = rate(median(peerS));
  return {
    mode,
    custosMiBs,
    acquireMiBs: rate(acquireS),
    startupS: median(records.map((r) => r.timing.startupS)),
    peerMiBs,
    limitMiBs: limit.limitMiBs,
    boundBy: limit.boundBy,
    custosOverLimit: custosMiBs / limit.limitMiBs,
    acquireOverLimit: rate(acquireS) / limit.limitMiBs,
    custosOverPeer: custosMiBs / peerMiBs,
    peakRssMiB: Math.max(...records.map((r) => r.timing.peakRssMiB)),
    bottleneck: {
      stage: !busiest ? '-' : busiest.name === busiest.kind ? busiest.name : `${busiest.name} (${busiest.kind})`,
      busyShare: busiest && mid.timing.acquireS > 0 ? busiest.busyS / mid.timing.acquireS : 0,
    },
    secondsPerRun: { custos: custosS, peer: peerS },
  };
}

/** The report's lines for these rows. */
export function modeTable(rows: ModeRow[], peer: string): string[] {
  const f = (n: number) => n.toFixed(0).padStart(6);
  const r2 = (n: number) => n.toFixed(2).padStart(5);
  return [
    `mode         whole  acquire  start-up  ${peer.padStart(6)}  limit (bound by)              whole/limit  acquire/limit  whole/${peer}  peak RSS  bottleneck (busy share)`,
    ...rows.map(
      (r) =>
        `${r.mode.padEnd(11)} ${f(r.custosMiBs)}  ${f(r.acquireMiBs)}   ${r.startupS.toFixed(2).padStart(5)} s  ${f(r.peerMiBs)}  ${f(r.limitMiBs)} (${r.boundBy.padEnd(20)})  ${r2(r.custosOverLimit)}        ${r2(r.acquireOverLimit)}          ${r2(r.custosOverPeer)}x     ${String(r.peakRssMiB).padStart(4)} MiB  ${r.bottleneck.stage} (${(r.bottleneck.busyShare * 100).toFixed(0)}%)`,
    ),
  ];
}
