// `npm run bench` on a machine without Xen: boot the nested lab (patched hypervisor and guest
// kernel when the repo can build them, stock otherwise, and say which), create a 128 MB guest,
// run `fastsuspend bench-run` inside dom0, then print the seed's table and write JSON and a plot.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Lab, repoDir, stderrProgress } from "@fastsuspend/lab";
import { formatTable, type BenchResult, type CheckpointLoopResult } from "@fastsuspend/cli";
import { latencyCdfSvg } from "./plot";

export interface HostBenchOptions {
  cycles: number;
  intervalMs: number;
  jsonFile: string;
  paths?: string;
  xlSave: number;
  /** Cycles of `checkpoint --interval 0` for the sustained-rate figure (0: skip). */
  checkpointCount: number;
  stock: boolean;
  log: (line: string) => void;
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

/** `fastsuspend checkpoint DOM --interval 0 --count N`: the rate a Remus-style loop sustains. */
async function checkpointRate(l: Lab, domid: number, o: HostBenchOptions, xsResume: "inline" | "deferred"): Promise<CheckpointLoopResult> {
  o.log(`checkpoint loop: ${o.checkpointCount} cycles, interval 0, default path, XS_RESUME ${xsResume}`);
  const r = await l.exec(["node", "/fastsuspend/packages/cli/dist/main.js", "checkpoint", String(domid), "--interval", "0",
    "--count", String(o.checkpointCount), "--timeout", "20000", "--xs-resume", xsResume, "--json"], { timeoutMs: 3_600_000 });
  try {
    const j = JSON.parse(r.stdout.trim().split("\n").pop() ?? "") as CheckpointLoopResult;
    o.log(`checkpoint loop: ${j.ok}/${j.requested} via ${j.path} in ${(j.elapsedMs / 1000).toFixed(1)} s = ${j.cyclesPerSecond.toFixed(1)} cycles/s`);
    return { path: j.path, xsResume, requested: j.requested, ok: j.ok, failed: j.failed, errors: j.errors, elapsedMs: j.elapsedMs, cyclesPerSecond: j.cyclesPerSecond, totalMs: j.totalMs, ...(j.totalMsPerHundred === undefined ? {} : { totalMsPerHundred: j.totalMsPerHundred }) };
  } catch {
    throw new Error(`checkpoint loop exited ${r.code} without its JSON: ${r.stderr.slice(-300)}`);
  }
}

export async function benchOnLab(o: HostBenchOptions): Promise<number> {
  const progress = stderrProgress("bench");
  const repo = repoDir;
  const kernel = o.stock ? undefined : buildArtefact(repo, "kernel/build.sh", [], o.log);
  const stockKernel = buildArtefact(repo, "kernel/build.sh", ["--stock"], o.log);
  const hypervisor = o.stock ? undefined : buildArtefact(repo, "hypervisor-patches/build.sh", [], o.log);
  const guestKernel = kernel ?? stockKernel;
  const guestDesc = kernel ? "patched (suspend event channel)" : stockKernel ? "stock 6.1 (small config)" : "stock Debian 6.1";
  let l: Lab;
  let hvDesc = hypervisor ? "patched 4.17.5 (suspend notify)" : "Debian 4.17.7";
  try {
    l = await Lab.up({ name: `bench-${process.pid}`, progress, hypervisor, guestKernel });
  } catch (e) {
    if (!hypervisor) throw e;
    o.log(`the patched hypervisor did not boot (${(e as Error).message.split("\n")[0] ?? ""}); using Debian's`);
    hvDesc = "Debian 4.17.7";
    l = await Lab.up({ name: `bench-${process.pid}`, progress, guestKernel });
  }
  try {
    o.log(`hypervisor: ${hvDesc}; guest kernel: ${guestDesc}`);
    const g = await l.createGuest({ name: "bench" });
    o.log(`guest "bench" is domain ${g.domid} (128 MB, 1 vCPU), created in ${(g.createMs / 1000).toFixed(1)} s`);
    const argv = ["node", "/fastsuspend/packages/cli/dist/main.js", "bench-run", String(g.domid), "--cycles", String(o.cycles),
      "--interval", String(o.intervalMs), "--xl-save", String(o.xlSave), "--guest-kernel", guestDesc, "--json", "/lab/bench.json"];
    if (o.paths) argv.push("--paths", o.paths);
    const r = await l.exec(argv, { timeoutMs: 3_600_000, onStderr: (t: string) => process.stderr.write(t) });
    const written = join(l.runDir, "share", "bench.json");
    if (r.code !== 0) o.log(`bench-run exited ${r.code}: ${r.stderr.slice(-500)}`);
    // bench-run exits non-zero when any cycle failed, but still writes every path it measured.
    if (!existsSync(written)) return 1;
    const result = JSON.parse(readFileSync(written, "utf8")) as BenchResult;
    result.xen = `${result.xen} (${hvDesc})`;
    // XS_RESUME is most of a resume on oxenstored: the deferred run shows what taking it off the
    // critical path buys a Remus-style loop.
    // Each loop on a fresh guest of its own: a Linux 6.1 guest's cooperative resume slows down
    // over its first thousand cycles (docs/results.md), so a guest that has just served the
    // paths above would measure its own age, and the second loop the first one's.
    if (o.checkpointCount > 0) {
      result.checkpointLoops = [];
      for (const xsResume of ["inline", "deferred"] as const) {
        await l.mustExec("xl destroy bench 2>/dev/null; xl destroy bench-ck 2>/dev/null; true");
        const ck = await l.createGuest({ name: "bench-ck" });
        result.checkpointLoops.push(await checkpointRate(l, ck.domid, o, xsResume));
      }
    }
    mkdirSync(dirname(o.jsonFile), { recursive: true });
    writeFileSync(o.jsonFile, JSON.stringify(result, null, 2) + "\n");
    const svg = o.jsonFile.replace(/\.json$/, "") + ".svg";
    writeFileSync(svg, latencyCdfSvg(result));
    console.log(formatTable(result));
    o.log(`wrote ${o.jsonFile} and ${svg}`);
    return r.code === 0 && result.paths.every((p) => p.failed === 0) ? 0 : 1;
  } finally {
    await l.down();
  }
}
