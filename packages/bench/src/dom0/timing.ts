// Timing loops for the dom0 micro-benchmarks, and their summaries in the unit each one prints,
// computed by the coordinator's one latency summary (nearest-rank p99).
import { summarize } from "@fastsuspend/coordinator";

/** Runs `fn` warmup + iterations times; the durations of the last `iterations`, in ns. */
export async function timeAsync(iterations: number, warmup: number, fn: () => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < warmup + iterations; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    const dt = Number(process.hrtime.bigint() - t0);
    if (i >= warmup) out.push(dt);
  }
  return out;
}

export function timeSync(iterations: number, warmup: number, fn: () => void): number[] {
  const out: number[] = [];
  for (let i = 0; i < warmup + iterations; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    const dt = Number(process.hrtime.bigint() - t0);
    if (i >= warmup) out.push(dt);
  }
  return out;
}

export interface MicroSummary {
  n: number;
  median: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

/** summarize() of `samples` divided by `per` (1000: ns to us) and rounded to `digits` decimals. */
export function summaryIn(samples: readonly number[], per: number, digits: number): MicroSummary {
  const s = summarize(samples);
  const f = 10 ** digits;
  const r = (x: number): number => Math.round((x / per) * f) / f;
  return { n: s.n, median: r(s.median), p99: r(s.p99), min: r(s.min), max: r(s.max), mean: r(s.avg) };
}
