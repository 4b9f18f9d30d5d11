export interface Summary {
  n: number;
  medianUs: number;
  p99Us: number;
  minUs: number;
  maxUs: number;
  meanUs: number;
}

const round = (x: number): number => Math.round(x * 100) / 100;

/** Summarise samples given in nanoseconds, reported in microseconds. */
export function summarize(samplesNs: number[]): Summary {
  const s = [...samplesNs].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
  return {
    n: s.length,
    medianUs: round(at(0.5) / 1000),
    p99Us: round(at(0.99) / 1000),
    minUs: round((s[0] ?? Number.NaN) / 1000),
    maxUs: round((s[s.length - 1] ?? Number.NaN) / 1000),
    meanUs: round(mean / 1000),
  };
}

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
