// bench-run: the part of the benchmark that runs inside dom0. For each available path, N cycles
// (suspend -> resume fast, `interval` apart), then `xl save -c DOM /dev/null` a few times for scale.
import { BASELINE_PATH, CheckpointRunner, choosePath, detect, SuspendSession, summarize, type CycleTimings, type PathName } from "@fastsuspend/coordinator";

import type { CliArgs } from "./args";
import type { BenchPathResult, BenchResult } from "./bench-result";
import type { Deps, XenEnv } from "./context";
import { sessionOptions } from "./commands";
import { EXIT } from "./exit-codes";
import { formatTable } from "./format";

const MAX_ERRORS = 5;

/**
 * The seed's paths, stock first: what `bench-run` measures by default, those the domain supports.
 * The other combinations (e.g. evtchn+watch) add no information and cost minutes under TCG.
 */
export const BENCH_PATHS: readonly PathName[] = [
  "xenstore+watch", "xenstore+poll", "xenstore+evtchn", "evtchn+evtchn", "evtchn+virq", "xenstore+virq",
];
async function benchPath(env: XenEnv, a: CliArgs, path: PathName, cycles: number, intervalMs: number): Promise<BenchPathResult> {
  let samples: CycleTimings[] = [];
  const errors: string[] = [];
  // libxl's path is measured as libxl runs it, XS_RESUME in the cycle, unless --xs-resume says otherwise.
  const xsResume = a.xsResume ?? (path === BASELINE_PATH ? "inline" : "auto");
  const s = new SuspendSession(env.xen, env.xs, a.domid, { ...sessionOptions(a), path, fallback: false, xsResume });
  try {
    await s.open();
    // Every cycle is a sample or a failure: no failure ends a path's run early, unless the
    // domain went away (the cycles not run then count as failed).
    const stats = await new CheckpointRunner({
      intervalMs,
      count: cycles,
      failureBudget: Number.POSITIVE_INFINITY,
      cycle: () => s.cycle(a.timeoutMs === undefined ? {} : { timeoutMs: a.timeoutMs }),
    }).run();
    samples = stats.samples;
    errors.push(...stats.errors.slice(0, MAX_ERRORS));
  } catch (err) {
    errors.push(`open: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    const r = await s.close();
    errors.push(...r.problems);
  }
  const col = (f: (t: CycleTimings) => number): number[] => samples.map(f);
  const suspendMs = col((t) => t.suspendMs);
  const resumeMs = col((t) => t.resumeMs + t.xsResumeMs);
  const totalMs = col((t) => t.totalMs);
  return {
    name: path,
    n: cycles,
    ok: samples.length,
    failed: cycles - samples.length,
    suspendMs: summarize(suspendMs),
    resumeMs: summarize(resumeMs),
    xsResume: s.xsResumeMode,
    totalMs: summarize(totalMs),
    phases: {
      triggerMs: summarize(col((t) => t.triggerMs)),
      awaitMs: summarize(col((t) => t.awaitMs)),
      confirmMs: summarize(col((t) => t.confirmMs)),
      xsResumeMs: summarize(col((t) => t.xsResumeMs)),
    },
    samples: { suspendMs, resumeMs, totalMs },
    errors,
  };
}

function xenVersion(deps: Deps): string {
  const r = (f: string): string | undefined => deps.readText?.(`/sys/hypervisor/version/${f}`);
  const major = r("major");
  const minor = r("minor");
  return major !== undefined && minor !== undefined ? `${major}.${minor}${r("extra") ?? ""}` : "unknown";
}

export async function cmdBenchRun(env: XenEnv, a: CliArgs, deps: Deps): Promise<number> {
  const cycles = a.cycles ?? 100;
  const intervalMs = a.intervalMs ?? 20;
  const caps = await detect(env.xen, env.xs, a.domid);
  if (!caps.exists || caps.isDom0 || caps.dying) choosePath(caps); // throws ENODOMAIN, ECONTROLDOMAIN or EDYING, saying why
  let paths: PathName[] = BENCH_PATHS.filter((p) => caps.paths.includes(p));
  // parseCli has checked the names.
  if (a.paths !== undefined) paths = a.paths as PathName[];
  const results: BenchPathResult[] = [];
  const result: BenchResult = {
    xen: xenVersion(deps),
    guestKernel: a.guestKernel ?? process.env.FASTSUSPEND_GUEST_KERNEL ?? "unknown",
    xenstored: deps.readText?.("/var/run/xenstored.flavour") ?? "unknown",
    domid: a.domid,
    cycles,
    intervalMs,
    paths: results,
    xlSaveCMs: null,
  };
  const file = a.output ?? "bench.json";
  // Written after every path, so a run that is stopped or dies keeps what it measured.
  const save = (): void => { (deps.writeFile ?? (() => undefined))(file, `${JSON.stringify(result, null, 2)}\n`); };
  for (const p of paths) {
    deps.stderr(`bench-run: ${p}: ${cycles} cycles\n`);
    const r = await benchPath(env, a, p, cycles, intervalMs);
    results.push(r);
    deps.stderr(`bench-run: ${p}: ${r.ok}/${r.n} ok, cycle median ${r.totalMs.median.toFixed(1)} ms\n`);
    save();
  }
  let xlSaveCMs: BenchResult["xlSaveCMs"] = null;
  const runs = a.xlSave ?? 3;
  if (runs > 0 && deps.spawnTimed !== undefined) {
    const samples: number[] = [];
    let failed = 0;
    for (let i = 0; i < runs; i++) {
      const r = await deps.spawnTimed(["xl", "save", "-c", String(a.domid), "/dev/null"]);
      if (r.code === 0) samples.push(r.ms);
      else failed++;
    }
    xlSaveCMs = { ...summarize(samples), samples, failed };
  }
  result.xlSaveCMs = xlSaveCMs;
  save();
  deps.stdout(`${formatTable(result)}\n`);
  return results.some((r) => r.failed > 0) ? EXIT.failed : EXIT.ok;
}
