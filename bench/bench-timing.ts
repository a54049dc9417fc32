// Timing helpers shared by the benchmarks: wall-clock seconds of a command and medians.
import { execa } from 'execa';

export const MiB = 1024 * 1024;

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

export function seconds(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

export async function timed(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ s: number; stdout: string }> {
  const t0 = process.hrtime.bigint();
  const r = await execa(cmd, args, { env, maxBuffer: 64 * MiB });
  return { s: seconds(t0), stdout: r.stdout };
}
