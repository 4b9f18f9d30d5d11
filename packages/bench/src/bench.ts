// `npm run bench` on a machine without Xen: boot the nested lab of a stack (patched hypervisor and
// guest kernel when the repo can build them for it, stock otherwise, and say which), create a 128 MB
// guest, run `fastsuspend bench-run` inside dom0, then print the seed's table and write JSON (with
// the stack) and a plot.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { guestSuspends, Lab, repoDir, stackFacts, stderrProgress, type Stack } from "@fastsuspend/lab";
import { BENCH_PATHS, formatTable, type BenchPathResult, type BenchResult, type CheckpointLoopResult, type GuestPhasesMs, type ToolstackResult } from "@fastsuspend/cli";
import { summarizeGuestPhases } from "./guest-phases";
import { pvhSection } from "./pvh";
import { xlSaveRow } from "./toolstack";
import { latencyCdfSvg } from "./plot";
import { whyFailed } from "./why";

const CLI = "/fastsuspend/packages/cli/dist/main.js";

export interface HostBenchOptions {
  cycles: number;
  intervalMs: number;
  /** Where the JSON result goes; the plot is written beside it (.svg). */
  output: string;
  paths?: string;
  xlSave: number;
  /** Cycles of `checkpoint --interval 0` for the sustained-rate figure (0: skip). */
  checkpointCount: number;
  /** Cycles of the long loop, which shows whether the rate drifts over thousands (0: skip). */
  longCount: number;
  /** The long loop's time budget: it stops there, with its results, if it has not finished. */
  longSeconds: number;
  /** `xl save -c` (and on PVH `xl migrate`) runs per guest kernel for the toolstack table (0: skip, the PVH section too). */
  toolstackRuns: number;
  /** Each `xl remus -b` run of the PVH section (0: none). */
  remusSeconds: number;
  /** The hypervisors the PVH section runs on, one lab each, in this order (issue 14: Debian's Xen and the patched one). */
  toolstackHypervisors: ToolstackHypervisor[];
  stock: boolean;
  /** The lab's Debian release: its Xen, dom0, and the base the guest kernels and hypervisor are built on. */
  stack: Stack;
  log: (line: string) => void;
}

/** Debian's hypervisor, as installed; or ours, built from the series (skipped when it does not build or boot). */
export type ToolstackHypervisor = "debian" | "patched";

/** What the bench builds for a stack, and the words it uses for what it booted. */
export interface BenchStackPlan {
  kernelArgs: string[];
  stockKernelArgs: string[];
  hypervisorArgs: string[];
  patchedHypervisor: string;
  debianHypervisor: string;
  /** The guest kernels' Linux series (6.1, 6.12). */
  linux: string;
}

/** bookworm's plan is what the bench built and said before stacks (as in docs/results-bench.json). */
export function benchStackPlan(stack: Stack): BenchStackPlan {
  const f = stackFacts(stack);
  return {
    kernelArgs: [...f.kernelBuildArgs],
    stockKernelArgs: [...f.kernelBuildArgs, "--stock"],
    hypervisorArgs: [...f.hypervisorBuildArgs],
    patchedHypervisor: `patched ${f.patchedXenVersion} (suspend notify)`,
    debianHypervisor: `Debian ${f.toolsVersion}`,
    linux: f.linux,
  };
}

/** The JSON the bench writes: bench-run's result, and the stack it ran on. */
export function benchJson(result: BenchResult, stack: Stack): BenchResult & { stack: Stack } {
  return { stack, ...result };
}

/** Runs a repo build script that prints its artefact's path last; undefined if it cannot. */
function buildArtefact(repo: string, script: string, args: string[], log: (l: string) => void): string | undefined {
  const path = join(repo, script);
  if (!existsSync(path)) return undefined;
  log(`building ${script} ${args.join(" ")} (cached by content hash)...`);
  const r = spawnSync("bash", [path, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 3_600_000 });
  const last = r.stdout.trim().split("\n").pop() ?? "";
  if (r.status !== 0 || !existsSync(last)) {
    log(`${script} failed (exit ${r.status ?? "signal"}); falling back to the stock artefact`);
    return undefined;
  }
  return last;
}

/** What the checkpoint loops need of the lab (a fake in the unit tests). */
export type Dom0Exec = Pick<Lab, "exec">;

/**
 * What the guest traced since the previous call: its own suspend and resume times, by step.
 * undefined (and said) when it cannot tell: a guest kernel without patch 0005, or no probe.
 */
async function guestView(l: Lab, guest: string, log: (line: string) => void): Promise<GuestPhasesMs | undefined> {
  try {
    return summarizeGuestPhases(await guestSuspends(l, guest));
  } catch (e) {
    log(`guest's own suspend times unavailable: ${whyFailed(e)}`);
    return undefined;
  }
}

export interface PathRunOptions {
  cycles: number;
  intervalMs: number;
  xlSave: number;
  paths?: string;
  guestDesc: string;
  log: (line: string) => void;
}

/**
 * `fastsuspend bench-run` in dom0, one path at a time (then `xl save -c` on its own), so that the
 * guest's account of each path's cycles can be asked for in between and set beside dom0's.
 */
export async function benchRun(l: Lab, domid: number, guest: string, o: PathRunOptions): Promise<{ result?: BenchResult; code: number }> {
  let names = o.paths?.split(",").filter((p) => p !== "");
  if (names === undefined) {
    const info = JSON.parse(await l.mustExec(["node", CLI, "info", String(domid), "--json", "--no-daemon"])) as { paths: string[] };
    names = BENCH_PATHS.filter((p) => info.paths.includes(p));
  }
  await guestView(l, guest, o.log); // empties the guest's trace buffer: its boot is not a path
  const runs = [...names.map((p) => ({ paths: p, xlSave: 0 })), ...(o.xlSave > 0 ? [{ paths: "", xlSave: o.xlSave }] : [])];
  let result: BenchResult | undefined;
  let code = 0;
  for (const [i, run] of runs.entries()) {
    const out = `bench-${i}.json`;
    const r = await l.exec(["node", CLI, "bench-run", String(domid), "--cycles", String(o.cycles), "--interval", String(o.intervalMs),
      "--xl-save", String(run.xlSave), "--guest-kernel", o.guestDesc, "--output", `/lab/${out}`, `--paths=${run.paths}`],
    { timeoutMs: 3_600_000, onStderr: (t: string) => process.stderr.write(t) });
    if (r.code !== 0) {
      o.log(`bench-run ${run.paths || "xl save -c"} exited ${r.code}: ${r.stderr.slice(-500)}`);
      code = r.code;
    }
    const written = join(l.runDir, "share", out);
    // bench-run exits non-zero when any cycle failed, but still writes every path it measured.
    if (!existsSync(written)) continue;
    const part = JSON.parse(readFileSync(written, "utf8")) as BenchResult;
    const guestMs = await guestView(l, guest, o.log);
    if (guestMs) for (const p of part.paths) p.guestMs = guestMs;
    if (part.xlSaveCMs && guestMs) part.xlSaveCMs.guestMs = guestMs;
    if (result === undefined) result = part;
    else {
      result.paths.push(...part.paths);
      result.xlSaveCMs = part.xlSaveCMs ?? result.xlSaveCMs;
    }
  }
  return { ...(result === undefined ? {} : { result }), code };
}

interface LoopSpec {
  count: number;
  /** What the loop asks for; its result records the mode in effect ("auto" resolved). */
  xsResume: "auto" | "inline";
  /** Time budget (`--for`): the loop stops after the cycle in flight once it has elapsed. */
  seconds?: number;
}

/** `fastsuspend checkpoint DOM --interval 0 --count N [--for S]`: the rate a Remus-style loop sustains. */
async function checkpointRate(l: Dom0Exec, domid: number, spec: LoopSpec): Promise<CheckpointLoopResult> {
  const budget = spec.seconds === undefined ? [] : ["--for", String(spec.seconds)];
  const r = await l.exec(["node", CLI, "checkpoint", String(domid), "--interval", "0",
    "--count", String(spec.count), ...budget, "--timeout", "20000", "--xs-resume", spec.xsResume, "--json"],
  // Past the budget, so that the loop stops itself and still prints its JSON.
  { timeoutMs: spec.seconds === undefined ? 3_600_000 : spec.seconds * 1000 + 120_000 });
  // xsResume: absent from a CLI older than the default "auto".
  let j: Omit<CheckpointLoopResult, "xsResume"> & { xsResume?: CheckpointLoopResult["xsResume"] };
  try {
    j = JSON.parse(r.stdout.trim().split("\n").pop() ?? "") as CheckpointLoopResult;
  } catch {
    throw new Error(`checkpoint loop exited ${r.code} without its JSON: ${r.stderr.slice(-300)}`);
  }
  // The summary fields only: the CLI's JSON also carries suspend/resume statistics the table does not use.
  return {
    path: j.path, xsResume: j.xsResume ?? (spec.xsResume === "auto" ? "inline" : spec.xsResume), requested: j.requested, ok: j.ok, failed: j.failed, errors: j.errors,
    elapsedMs: j.elapsedMs, cyclesPerSecond: j.cyclesPerSecond, totalMs: j.totalMs,
    ...(j.totalMsPerHundred === undefined ? {} : { totalMsPerHundred: j.totalMsPerHundred }),
    ...(j.totalMsPerThousand === undefined ? {} : { totalMsPerThousand: j.totalMsPerThousand }),
    ...(j.stoppedBy === undefined ? {} : { stoppedBy: j.stoppedBy }),
    ...(spec.seconds === undefined ? {} : { budgetSeconds: spec.seconds }),
  };
}

type LoopOptions = Pick<HostBenchOptions, "checkpointCount" | "longCount" | "longSeconds" | "log">;

/**
 * The same guest kernel booted with xen_manage.fast_suspend=1 (kernel patch 0006: no task
 * freezer), beside the default guest's rows: libxl's trigger and the channel, then one
 * sustained-rate loop and the long loop. Its rows are named "PATH (fast guest)" and carry guestSuspend "fast".
 */
async function fastSuspendGuest(l: Lab, o: PathRunOptions & LoopOptions): Promise<{ paths: BenchPathResult[]; loops: CheckpointLoopResult[] }> {
  const g = await l.createGuest({ name: "bench-fast", extra: "xen_manage.fast_suspend=1" });
  const feature = (await l.exec(`xenstore-read /local/domain/${g.domid}/feature/fast-suspend`)).stdout.trim();
  if (feature !== "1") {
    o.log(`guest "bench-fast" does not advertise feature/fast-suspend (kernel without patch 0006?): no fast-suspend rows`);
    return { paths: [], loops: [] };
  }
  o.log(`guest "bench-fast" is domain ${g.domid}, booted with xen_manage.fast_suspend=1 (feature/fast-suspend = 1)`);
  const { result } = await benchRun(l, g.domid, "bench-fast", { ...o, paths: "xenstore+watch,evtchn+evtchn", xlSave: 0 });
  const paths = (result?.paths ?? []).map((p) => ({ ...p, name: `${p.name} (fast guest)`, guestSuspend: "fast" as const }));
  const loops: CheckpointLoopResult[] = [];
  if (o.checkpointCount > 0) {
    o.log(`checkpoint loop on the fast-suspend guest: ${o.checkpointCount} cycles, interval 0, XS_RESUME auto`);
    const c = await checkpointRate(l, g.domid, { count: o.checkpointCount, xsResume: "auto" });
    o.log(`checkpoint loop (fast guest): ${c.ok}/${c.requested} via ${c.path} = ${c.cyclesPerSecond.toFixed(1)} cycles/s`);
    loops.push({ ...c, guestSuspend: "fast" });
  }
  // The sustained rate is issue 12's target for the fast mode: the long loop runs here too.
  if (o.longCount > 0) loops.push({ ...(await longLoop(l, g.domid, o, "fast-suspend guest")), guestSuspend: "fast" });
  await l.destroyGuest("bench-fast");
  return { paths, loops };
}

/** The long loop: thousands of cycles on one guest, to show a rate that drifts with the guest's age. */
async function longLoop(l: Dom0Exec, domid: number, o: LoopOptions, guest = "default guest"): Promise<CheckpointLoopResult> {
  o.log(`long checkpoint loop (${guest}): ${o.longCount} cycles or ${o.longSeconds} s, interval 0, default path, XS_RESUME auto`);
  const c = await checkpointRate(l, domid, { count: o.longCount, xsResume: "auto", seconds: o.longSeconds });
  const end = c.stoppedBy === "time" ? `stopped by its ${o.longSeconds} s budget`
    : c.stoppedBy === "count" ? `not stopped by its ${o.longSeconds} s budget` : `stopped by ${c.stoppedBy ?? "an unknown cause"}`;
  o.log(`long checkpoint loop (${guest}): ${c.ok + c.failed} of ${c.requested} cycles (${c.failed} failed) in ${(c.elapsedMs / 1000).toFixed(1)} s, ${end}`);
  return { ...c, long: true };
}

/**
 * The checkpoint loops after bench-run, all on the guest that served the paths: the sustained
 * rate with XS_RESUME as the CLI sends it by default ("auto": never on oxenstored) and inline, as
 * libxl does (--checkpoint-count), then the long loop (--long-count).
 */
export async function checkpointLoops(l: Dom0Exec, domid: number, o: LoopOptions): Promise<CheckpointLoopResult[]> {
  const loops: CheckpointLoopResult[] = [];
  // XS_RESUME is most of a resume on oxenstored, where it does nothing: the inline run shows what
  // dropping it buys a Remus-style loop. (Deferring it bought nothing measurable: docs/results.md.)
  for (const xsResume of o.checkpointCount > 0 ? (["auto", "inline"] as const) : []) {
    o.log(`checkpoint loop: ${o.checkpointCount} cycles, interval 0, default path, XS_RESUME ${xsResume}`);
    const c = await checkpointRate(l, domid, { count: o.checkpointCount, xsResume });
    o.log(`checkpoint loop: ${c.ok}/${c.requested} via ${c.path} in ${(c.elapsedMs / 1000).toFixed(1)} s = ${c.cyclesPerSecond.toFixed(1)} cycles/s`);
    loops.push(c);
  }
  if (o.longCount > 0) loops.push(await longLoop(l, domid, o));
  return loops;
}

export async function benchOnLab(o: HostBenchOptions): Promise<number> {
  const progress = stderrProgress("bench");
  const repo = repoDir;
  const plan = benchStackPlan(o.stack);
  const kernel = o.stock ? undefined : buildArtefact(repo, "kernel/build.sh", plan.kernelArgs, o.log);
  const stockKernel = buildArtefact(repo, "kernel/build.sh", plan.stockKernelArgs, o.log);
  const hypervisor = o.stock ? undefined : buildArtefact(repo, "hypervisor-patches/build.sh", plan.hypervisorArgs, o.log);
  // Every lab of the run on the patched QEMU (issue 13: Debian's delivers an injected interrupt
  // twice and PVH guests die of it), unless one is given or FASTSUSPEND_QEMU_PATCHED=0.
  if (!process.env.FASTSUSPEND_QEMU_BINARY && process.env.FASTSUSPEND_QEMU_PATCHED !== "0") {
    const qemu = buildArtefact(repo, "packages/lab/tools/build-qemu.sh", [], o.log);
    if (qemu !== undefined) process.env.FASTSUSPEND_QEMU_BINARY = qemu;
  }
  const guestKernel = kernel ?? stockKernel;
  const guestDesc = kernel ? "patched (suspend event channel)" : stockKernel ? `stock ${plan.linux} (small config)` : `stock Debian ${plan.linux}`;
  let l: Lab;
  let hvDesc = hypervisor ? plan.patchedHypervisor : plan.debianHypervisor;
  try {
    l = await Lab.up({ name: `bench-${process.pid}`, progress, stack: o.stack, hypervisor, guestKernel });
  } catch (e) {
    if (!hypervisor) throw e;
    o.log(`the patched hypervisor did not boot (${whyFailed(e)}); using Debian's`);
    hvDesc = plan.debianHypervisor;
    l = await Lab.up({ name: `bench-${process.pid}`, progress, stack: o.stack, guestKernel });
  }
  let down = false;
  try {
    o.log(`stack: ${o.stack}; hypervisor: ${hvDesc}; guest kernel: ${guestDesc}`);
    const g = await l.createGuest({ name: "bench" });
    o.log(`guest "bench" is domain ${g.domid} (128 MB, 1 vCPU), created in ${(g.createMs / 1000).toFixed(1)} s`);
    const { result, code } = await benchRun(l, g.domid, "bench", { ...o, guestDesc });
    if (result === undefined) return 1;
    result.xen = `${result.xen} (${hvDesc})`;
    // The loops run on the guest that has just served the paths, no longer each on a fresh one:
    // the 6.1 guest's slowdown with age was the periodic tick's catch-up loop, paid on every
    // resume, and a patch in the guest kernel series fixes it (docs/guest-slowdown.md). A guest
    // that still drifts (the stock kernel, with --stock or when the patched one does not build)
    // shows it here, and in the long loop's medians per 1000 cycles, rather than being hidden.
    const loops = await checkpointLoops(l, g.domid, o);
    // The sections after the paths and loops add rows; one that fails is said and skipped, so
    // that what was measured is still written.
    const optional = async (what: string, f: () => Promise<void>): Promise<void> => {
      try {
        await f();
      } catch (e) {
        o.log(`${what} failed, left out: ${whyFailed(e)}`);
      }
    };
    if (kernel !== undefined) {
      await optional("the fast-suspend guest", async () => {
        await l.destroyGuest("bench");
        const fast = await fastSuspendGuest(l, { ...o, guestDesc });
        result.paths.push(...fast.paths);
        loops.push(...fast.loops);
      });
    }
    if (loops.length > 0) result.checkpointLoops = loops;
    if (o.toolstackRuns > 0) {
      const kernels = [
        ...(stockKernel === undefined ? [] : [{ path: stockKernel, desc: `stock ${plan.linux}`, name: "ts-stock" }]),
        ...(kernel === undefined ? [] : [
          { path: kernel, desc: `patched ${plan.linux}`, name: "ts-patched" },
          { path: kernel, desc: `patched ${plan.linux}, fast suspend`, name: "ts-fast", extra: "xen_manage.fast_suspend=1" },
        ]),
      ];
      const rows: ToolstackResult[] = [];
      for (const k of kernels) await optional(`xl save -c on the ${k.desc} guest`, async () => { rows.push(await xlSaveRow(l, k, { runs: o.toolstackRuns, hypervisor: hvDesc, log: o.log })); });
      if (rows.length > 0) result.toolstack = rows;
    }
    // Written now too, so that a PVH section that breaks leaves the PV figures on disk.
    writeResult(result, o);
    await l.down();
    down = true;
    // The PVH section once per hypervisor: stock xl uses none of our hypervisor patch, so Debian's
    // Xen is what a user who installs the guest patch alone gets; the patched one is the same
    // comparison under ours. Our paths run once, on the patched guest of the last lab.
    const hypervisors = o.toolstackRuns > 0 ? pvhHypervisors(o.toolstackHypervisors, hypervisor, hvDesc === plan.patchedHypervisor, o.log) : [];
    for (const [i, hv] of hypervisors.entries()) {
      const desc = hv === undefined ? plan.debianHypervisor : plan.patchedHypervisor;
      await optional(`the PVH section on ${desc}`, async () => {
        const pvh = await pvhSection({
          labName: `bench-pvh-${i}-${process.pid}`, stack: o.stack, progress, hvDesc: desc, runs: o.toolstackRuns, remusIntervalsMs: o.remusSeconds > 0 ? [25, 100] : [], remusSeconds: o.remusSeconds, log: o.log,
          consolesFile: `${o.output.replace(/\.json$/, "")}-pvh-${hv === undefined ? "debian" : "patched"}-consoles.txt`,
          ...(hv === undefined ? {} : { hypervisor: hv }),
          kernels: [
            ...(stockKernel === undefined ? [] : [{ path: stockKernel, desc: `stock ${plan.linux}`, name: "pvh-stock" }]),
            ...(kernel === undefined ? [] : [
              { path: kernel, desc: `patched ${plan.linux}`, name: "pvh-patched", ourPaths: i === hypervisors.length - 1 },
              // What xl gets when the guest's owner also turns the fast mode on (kernel patch 0006).
              { path: kernel, desc: `patched ${plan.linux}, fast suspend`, name: "pvh-fast", extra: "xen_manage.fast_suspend=1" },
            ]),
          ],
          ourPaths: async (pl, domid, name) => (await benchRun(pl, domid, name, { ...o, guestDesc: `${guestDesc}, PVH`, paths: "xenstore+watch,evtchn+evtchn", xlSave: 0 })).result?.paths ?? [],
        });
        result.toolstack = [...(result.toolstack ?? []), ...pvh.toolstack];
        result.paths.push(...pvh.paths);
      });
      writeResult(result, o);
    }
    writeResult(result, o);
    console.log(formatTable(result));
    return code === 0 && result.paths.every((p) => p.failed === 0) ? 0 : 1;
  } finally {
    if (!down) await l.down();
  }
}

/**
 * The hypervisor image of each PVH lab, in the order asked: undefined for Debian's. The patched one
 * is left out, and said, when it did not build or the PV lab fell back from it.
 */
export function pvhHypervisors(asked: readonly ToolstackHypervisor[], patched: string | undefined, patchedBooted: boolean, log: (line: string) => void): (string | undefined)[] {
  return asked.flatMap((h) => {
    if (h === "debian") return [undefined];
    if (patched !== undefined && patchedBooted) return [patched];
    log(`no PVH rows on the patched hypervisor: it ${patched === undefined ? "was not built" : "did not boot"}`);
    return [];
  });
}

/** The JSON, and the latency plot beside it. */
function writeResult(result: BenchResult, o: HostBenchOptions): void {
  mkdirSync(dirname(o.output), { recursive: true });
  writeFileSync(o.output, JSON.stringify(benchJson(result, o.stack), null, 2) + "\n");
  const svg = o.output.replace(/\.json$/, "") + ".svg";
  writeFileSync(svg, latencyCdfSvg(result));
  o.log(`wrote ${o.output} and ${svg}`);
}
