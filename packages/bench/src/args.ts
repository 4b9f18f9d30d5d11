// `npm run bench -- [--cycles N] [--interval MS] [--paths a,b] [--xl-save N] [--checkpoint-count N]
//                   [--long-count N] [--long-seconds S] [--toolstack N] [--remus-seconds S] [--stock]
//                   [--toolstack-hypervisors debian,patched] [--stack bookworm|trixie] [--output FILE]`
import { parseArgs } from "node:util";

import { UsageError } from "@fastsuspend/cli";
import { STACKS, parseStack, type Stack } from "@fastsuspend/lab";

import type { HostBenchOptions, ToolstackHypervisor } from "./bench";

export const BENCH_USAGE = `usage: npm run bench -- [--cycles N] [--interval MS] [--paths a,b,...] [--xl-save N]
                        [--checkpoint-count N] [--long-count N] [--long-seconds S]
                        [--toolstack N] [--remus-seconds S] [--stock]
                        [--toolstack-hypervisors debian,patched] [--stack bookworm|trixie]
                        [--output FILE]
Boots the nested Xen lab of --stack (trixie, Debian 13's Xen 4.20 and Linux 6.12, the default;
bookworm: Xen 4.17 and Linux 6.1), with the patched hypervisor and guest kernel when they build, creates a 128 MB
guest, runs \`fastsuspend bench-run\` in its dom0, then on the same guest two checkpoint loops of
--checkpoint-count cycles at interval 0 (XS_RESUME auto, inline; default 1000, 0 skips) and
one long loop of --long-count cycles (default 10000, 0 skips) stopped after --long-seconds
(default 600) if it has not finished; then stock \`xl save -c\` --toolstack times (default 20, 0
skips) on a stock-kernel and a patched-kernel guest, timed by dom0 and by the guest's blackout
probe. Then, unless --toolstack is 0, a lab whose CPU runs PVH guests, once per hypervisor of
--toolstack-hypervisors (default debian,patched: Debian's Xen, then the patched one when it
builds): on a stock-kernel, a patched-kernel and a fast-suspend PVH guest, created first and
taken in turns (each guest's share of every row per round, the order rotated, the others paused;
3 rounds, more for xl save -c and xl migrate so that a turn holds at most 3 runs),
--toolstack times \`xl save -c\`, \`xl remus -b\` at 25 and 100 ms for --remus-seconds each
(default 60, 0 skips), --toolstack times \`xl migrate\` to localhost; our paths on the patched
guest of the last lab. Prints the table, writes FILE (default results/bench.json) and a latency
plot beside it.`;

export function parseBenchHostArgs(argv: readonly string[]): Omit<HostBenchOptions, "log"> {
  const { values: v } = parseArgs({
    args: [...argv],
    options: {
      cycles: { type: "string" }, interval: { type: "string" }, paths: { type: "string" }, "xl-save": { type: "string" },
      "checkpoint-count": { type: "string" }, "long-count": { type: "string" }, "long-seconds": { type: "string" }, toolstack: { type: "string" },
      "remus-seconds": { type: "string" }, "toolstack-hypervisors": { type: "string" }, stock: { type: "boolean" }, stack: { type: "string" }, output: { type: "string" },
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
    remusSeconds: int("remus-seconds", v["remus-seconds"], 60, 0),
    toolstackHypervisors: hypervisorsArg(v["toolstack-hypervisors"]),
    stock: v.stock === true,
    // Debian 13 is what an administrator installs today (issue 17); the lab's own default stays bookworm.
    stack: v.stack === undefined ? "trixie" : stackArg(v.stack),
    output: v.output ?? "results/bench.json",
    ...(v.paths === undefined ? {} : { paths: v.paths }),
  };
}

function stackArg(s: string | undefined): Stack {
  try {
    return parseStack(s);
  } catch (e) {
    throw new UsageError(`bench: --stack: ${(e as Error).message}; use --stack ${STACKS.join(" or --stack ")}`);
  }
}

const TOOLSTACK_HYPERVISORS: readonly ToolstackHypervisor[] = ["debian", "patched"];

/** Which hypervisors the PVH toolstack rows run on, in the order given; each at most once. */
function hypervisorsArg(s: string | undefined): ToolstackHypervisor[] {
  if (s === undefined) return [...TOOLSTACK_HYPERVISORS];
  const list = s.split(",").map((x) => x.trim());
  for (const h of list) {
    if (!(TOOLSTACK_HYPERVISORS as readonly string[]).includes(h)) {
      throw new UsageError(`bench: --toolstack-hypervisors: unknown hypervisor "${h}"; use debian, patched or both, as debian,patched`);
    }
  }
  if (new Set(list).size !== list.length) throw new UsageError(`bench: --toolstack-hypervisors: "${s}" names a hypervisor twice`);
  return list as ToolstackHypervisor[];
}
