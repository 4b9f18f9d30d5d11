// `npm run bench -- [--cycles N] [--interval MS] [--paths a,b] [--xl-save N] [--checkpoint-count N]
//                   [--long-count N] [--long-seconds S] [--toolstack N] [--stock] [--output FILE]`
import { parseArgs } from "node:util";

import { UsageError } from "@fastsuspend/cli";

import type { HostBenchOptions } from "./bench";

export const BENCH_USAGE = `usage: npm run bench -- [--cycles N] [--interval MS] [--paths a,b,...] [--xl-save N]
                        [--checkpoint-count N] [--long-count N] [--long-seconds S]
                        [--toolstack N] [--stock] [--output FILE]
Boots the nested Xen lab (patched hypervisor and guest kernel when they build), creates a 128 MB
guest, runs \`fastsuspend bench-run\` in its dom0, then on the same guest two checkpoint loops of
--checkpoint-count cycles at interval 0 (XS_RESUME inline, deferred; default 1000, 0 skips) and
one long loop of --long-count cycles (default 10000, 0 skips) stopped after --long-seconds
(default 600) if it has not finished; then stock \`xl save -c\` --toolstack times (default 20, 0
skips) on a stock-kernel and a patched-kernel guest, timed by dom0 and by the guest's blackout
probe; prints the table, writes FILE (default results/bench.json)
and a latency plot beside it.`;

export function parseBenchHostArgs(argv: readonly string[]): Omit<HostBenchOptions, "log"> {
  const { values: v } = parseArgs({
    args: [...argv],
    options: {
      cycles: { type: "string" }, interval: { type: "string" }, paths: { type: "string" }, "xl-save": { type: "string" },
      "checkpoint-count": { type: "string" }, "long-count": { type: "string" }, "long-seconds": { type: "string" }, toolstack: { type: "string" },
      stock: { type: "boolean" }, output: { type: "string" },
    },
    strict: true,
  });
  if (v.output === "") throw new UsageError("bench: --output FILE is empty");
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
    longCount: int("long-count", v["long-count"], 10000, 0),
    longSeconds: int("long-seconds", v["long-seconds"], 600, 1),
    toolstackRuns: int("toolstack", v.toolstack, 20, 0),
    stock: v.stock === true,
    output: v.output ?? "results/bench.json",
    ...(v.paths === undefined ? {} : { paths: v.paths }),
  };
}
