// `npm run bench -- [--cycles N] [--interval MS] [--paths a,b] [--xl-save N] [--checkpoint-count N] [--stock] [--json FILE]`
import { parseArgs } from "node:util";

import { UsageError } from "@fastsuspend/cli";

import type { HostBenchOptions } from "./bench";

export const BENCH_USAGE = `usage: npm run bench -- [--cycles N] [--interval MS] [--paths a,b,...] [--xl-save N]
                        [--checkpoint-count N] [--stock] [--json FILE]
Boots the nested Xen lab (patched hypervisor and guest kernel when they build), creates a 128 MB
guest, runs \`fastsuspend bench-run\` in its dom0, prints the table, writes FILE (default
results/bench.json) and a latency plot beside it.`;

export function parseBenchHostArgs(argv: readonly string[]): Omit<HostBenchOptions, "log"> {
  const { values: v } = parseArgs({
    args: [...argv],
    options: {
      cycles: { type: "string" }, interval: { type: "string" }, paths: { type: "string" }, "xl-save": { type: "string" },
      "checkpoint-count": { type: "string" },
      stock: { type: "boolean" }, json: { type: "string" },
    },
    strict: true,
  });
  const int = (name: string, s: string | undefined, dflt: number, min: number): number => {
    if (s === undefined) return dflt;
    const n = Number(s);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`bench: --${name} must be an integer >= ${min}, got "${s}"`);
    return n;
  };
  return {
    cycles: int("cycles", v.cycles, 100, 1),
    intervalMs: int("interval", v.interval, 20, 0),
    xlSave: int("xl-save", v["xl-save"], 5, 0),
    checkpointCount: int("checkpoint-count", v["checkpoint-count"], 1000, 0),
    stock: v.stock === true,
    jsonFile: v.json ?? "results/bench.json",
    ...(v.paths === undefined ? {} : { paths: v.paths }),
  };
}
