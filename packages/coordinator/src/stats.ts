// Summary statistics for latency samples (ms).

export interface Summary {
  n: number;
  avg: number;
  min: number;
  max: number;
  median: number;
  /** Nearest-rank 99th percentile: the ceil(0.99 n)-th smallest sample. */
  p99: number;
}

function nearestRank(sorted: readonly number[], p: number): number {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] ?? Number.NaN;
}

/** NaN fields for no samples (JSON writes them as null), so an empty run is visible, not zero. */
export function summarize(samples: readonly number[]): Summary {
  const n = samples.length;
  if (n === 0) return { n: 0, avg: Number.NaN, min: Number.NaN, max: Number.NaN, median: Number.NaN, p99: Number.NaN };
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((s, x) => s + x, 0);
  const mid = Math.floor(n / 2);
  const median = n % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
  return {
    n,
    avg: sum / n,
    min: sorted[0] ?? Number.NaN,
    max: sorted[n - 1] ?? Number.NaN,
    median,
    p99: nearestRank(sorted, 99),
  };
}
